#!/usr/bin/env bash
# The main job on its embedded defaults: install what is needed, build, then
# replay the bundled lab capture (data/lab-mix.pcap.xz: seven held-out lab
# sessions, voip, video, file_transfer, chat and browsing, on one link at
# once; data/lab-mix.md) through the agent (flowpic-agent --pcap: the live
# agent's path, embedded model), which streams its verdicts over gRPC to a
# local collector (flowpic-collector, SQLite in out/); show what the
# collector stored, score the flow verdicts against the sessions' labels,
# and draw the FlowPic of the busiest flow to out/demo-flow.png.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" runtime build
# Only the programs (the tests need the dev profile: scripts/test.sh).
"$root/scripts/build.sh" -DBUILD_TESTING=OFF
flowpic=$root/build/cli/flowpic
agent=$root/build/agent/flowpic-agent
collector=$root/build/collector/flowpic-collector
capture=$root/data/lab-mix.pcap.xz
out=$root/out
db=$out/demo-verdicts.db
mkdir -p "$out"
rm -f "$db" "$db-wal" "$db-shm"

# The collector: cleartext h2c on a free loopback port, no token (local demo).
"$collector" --listen 127.0.0.1:0 --db "sqlite:$db" --no-token >"$out/demo-collector.log" 2>&1 &
collector_pid=$!
trap 'kill "$collector_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
	grep -q '"listening"' "$out/demo-collector.log" && break
	kill -0 "$collector_pid" 2>/dev/null || { cat "$out/demo-collector.log" >&2; exit 1; }
	sleep 0.1
done
address=$(/usr/bin/python3 -c 'import json,sys
print(next(json.loads(l)["address"] for l in sys.stdin if "listening" in l))' <"$out/demo-collector.log")

# The agent: replay, one flow verdict per line on stdout, every block and flow
# verdict to the collector; its counters (one JSON line) at exit.
"$agent" --pcap "$capture" --collector "$address" --flow-verdicts-only \
	>"$out/demo-verdicts.jsonl" 2>"$out/demo-agent-counters.json"
echo "agent: $(grep -c . "$out/demo-verdicts.jsonl") flow verdicts printed; stream counters:"
/usr/bin/python3 -c 'import json,sys
c=[json.loads(l) for l in sys.stdin if l.startswith("{\"counters")][-1]["counters"]
print("  " + ", ".join("%s %d" % (k[7:], c[k]) for k in ("stream.submitted", "stream.acked", "stream.stored", "stream.spooled", "stream.dropped")))' \
	<"$out/demo-agent-counters.json"
echo
echo "collector: the stored verdicts (newest first; flowpic-collector query --help):"
"$collector" query --db "sqlite:$db" --table --limit 25
echo
/usr/bin/python3 "$root/tests/classify/score_labels.py" "$root/data/lab-mix.labels.jsonl" \
	<"$out/demo-verdicts.jsonl"
busiest=$(/usr/bin/python3 -c 'import json,sys
flows=[o for o in map(json.loads, sys.stdin) if o["type"] == "flow"]
print(max(flows, key=lambda f: f["packets"])["flow_id"])' <"$out/demo-verdicts.jsonl")
"$flowpic" render "$capture" --flow "$busiest" --block 0 -o "$out/demo-flow.png"
echo "flow verdicts in out/demo-verdicts.jsonl, stored verdicts in out/demo-verdicts.db" \
	"(flowpic-collector query --db sqlite:out/demo-verdicts.db), FlowPic of flow $busiest in out/demo-flow.png"
