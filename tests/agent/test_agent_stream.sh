#!/usr/bin/env bash
# The agent's verdicts to a collector (--collector, stream/): a real gRPC
# server of proto/flowpic.proto (python3-grpcio, tests/stream/grpc_server.py)
# stores every verdict it acknowledges.  Checks: the stored verdicts are the
# ones printed on stdout (same flows, stages, classes, probabilities), the
# counters say every verdict was acknowledged, the batches carry the agent's
# counters; with the collector away the verdicts wait in the spool and the
# next run delivers them.
# Usage: test_agent_stream.sh AGENT DEMO_CAPTURE
set -uo pipefail
agent=$1 demo=$2
py=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
server=$here/../stream/grpc_server.py
tmp=$(mktemp -d /tmp/fpt-agent-stream.XXXXXX)
srv_pid=
trap '[ -n "$srv_pid" ] && kill $srv_pid 2> /dev/null; wait 2> /dev/null; rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

[ -x "$agent" ] || { echo "no flowpic-agent binary at $agent"; exit 1; }
[ -f "$server" ] || { echo "no gRPC test server at $server"; exit 1; }
"$py" -c "import grpc" 2> /dev/null || { echo "python3-grpcio is missing (scripts/install-deps.sh)"; exit 1; }
"$agent" --help > "$tmp/help"; grep -q -- --collector "$tmp/help" || { echo "this flowpic-agent has no --collector (built without stream/)"; exit 1; }

start_server() {
	"$py" "$server" --pyout "$tmp/py" --store "$tmp/store.jsonl" > "$tmp/port" 2> "$tmp/server.err" &
	srv_pid=$!
	# Up to 60 s: importing grpc and generating the messages is slow on a
	# loaded machine (ctest runs tests in parallel); stop early if it died.
	for i in $(seq 600); do
		grep -q listening "$tmp/port" && break
		kill -0 "$srv_pid" 2> /dev/null || break
		sleep 0.1
	done
	port=$(awk '/listening/ {print $2}' "$tmp/port")
	[ -n "$port" ] || { echo "the gRPC test server did not start within 60 s: $(cat "$tmp/server.err")"; exit 1; }
}

# Stored verdicts against the stdout lines and the counters.
compare() { # name stdout stderr expected-runs
	"$py" - "$2" "$3" "$tmp/store.jsonl" "$4" <<'EOF'
import json, sys
out, err, store, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
printed = []
for l in open(out):
    v = json.loads(l)
    if v["type"] == "block":
        printed.append((v["flow_id"], 1 if v["early"] else 2, v["block_index"], v["class"],
                        v["probs"]))
    else:
        printed.append((v["flow_id"], 3, 0, v["class"], v["probs"]))
stored = [json.loads(l) for l in open(store)]
assert len({(s["run_id"]) for s in stored}) == runs, "runs"
got = [(s["flow_id"], s["stage"], s["block_index"], s["class_name"],
        dict(zip(s["classes"], s["probs"]))) for s in stored]
assert len(got) == len(printed), (len(got), len(printed))
for p, g in zip(sorted(printed), sorted(got)):
    assert p[:4] == g[:4], (p, g)
    assert all(abs(p[4][k] - g[4][k]) < 6e-5 for k in p[4]), (p, g)
assert sorted(s["seq"] for s in stored) == list(range(1, len(stored) + 1)) or runs > 1
c = [json.loads(l)["counters"] for l in open(err) if l.startswith('{"counters"')][-1]
assert c["stream.acked"] == c["stream.submitted"] == len(printed) or runs > 1, c
assert c["stream.dropped"] == 0 and c["stream_rejected"] == 0, c
# The agent's counters ride in the first batch of each run (then every 10 s).
for run in {s["run_id"] for s in stored}:
    first = min(s["batch"] for s in stored if s["run_id"] == run)
    assert all("packets" in s["counters"] and "stream.submitted" in s["counters"]
               for s in stored if s["run_id"] == run and s["batch"] == first), run
print("%d verdicts" % len(stored))
EOF
}

start_server
"$agent" --pcap "$demo" --collector 127.0.0.1:$port --agent-id fpt-agent-test > "$tmp/out" 2> "$tmp/err"
rc=$?
if [ $rc -ne 0 ]; then
	bad "replay to the collector: exit $rc: $(head -c 300 "$tmp/err")"
elif msg=$(compare x "$tmp/out" "$tmp/err" 1 2>&1); then
	ok "stored verdicts = printed verdicts, all acknowledged ($msg)"
else
	bad "stored vs printed: $(echo "$msg" | tail -2)"
fi

# Collector away: the verdicts wait in the spool; the next run delivers them.
kill $srv_pid
wait $srv_pid 2> /dev/null
srv_pid=
rm -f "$tmp/store.jsonl"
"$agent" --pcap "$demo" --collector 127.0.0.1:$port --agent-id fpt-agent-test \
	--spool-dir "$tmp/spool" --collector-wait 1 > "$tmp/out1" 2> "$tmp/err1"
rc=$?
n1=$(wc -l < "$tmp/out1")
if [ $rc -eq 0 ] && grep -q "\"stream.spooled\":$n1," "$tmp/err1" && grep -q "wait in the spool" "$tmp/err1"; then
	ok "collector away: $n1 verdicts spooled, exit 0"
else
	bad "collector away: exit $rc: $(grep -v '^{' "$tmp/err1" | head -3) $(grep -o '"stream.spooled":[0-9]*' "$tmp/err1")"
fi
start_server
"$agent" --pcap "$demo" --collector 127.0.0.1:$port --agent-id fpt-agent-test \
	--spool-dir "$tmp/spool" > "$tmp/out2" 2> "$tmp/err2"
rc=$?
cat "$tmp/out1" "$tmp/out2" > "$tmp/out12"
if [ $rc -eq 0 ] && msg=$(compare x "$tmp/out12" "$tmp/err2" 2 2>&1) \
	&& grep -q "\"stream.replayed\":$n1," "$tmp/err2" && grep -q '"stream.spooled":0,' "$tmp/err2"; then
	ok "next run delivered the spool and its own verdicts ($msg)"
else
	bad "spool replay: exit $rc: $msg $(grep -o '"stream[.a-z_]*":[0-9]*' "$tmp/err2" | tr '\n' ' ')"
fi

# A collector setting without --collector, and an unreadable token file.
"$agent" --pcap "$demo" --spool-dir "$tmp/spool" > /dev/null 2> "$tmp/e"
[ $? -eq 2 ] && grep -q "without --collector" "$tmp/e" && ok "spool without collector: exit 2" || bad "spool without collector: $(cat "$tmp/e")"
"$agent" --pcap "$demo" --collector 127.0.0.1:$port --collector-token-file "$tmp/none" > /dev/null 2> "$tmp/e"
[ $? -eq 2 ] && [ "$(wc -l < "$tmp/e")" -eq 1 ] && grep -q "collector 127.0.0.1:$port: .*none" "$tmp/e" \
	&& ok "token file missing: one line, exit 2" || bad "token file missing: $(cat "$tmp/e")"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
