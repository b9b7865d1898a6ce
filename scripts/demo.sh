#!/usr/bin/env bash
# The main job on its embedded defaults: install what is needed, build, then
# replay the bundled lab capture (data/lab-mix.pcap.xz: seven held-out lab
# sessions, voip, video, file_transfer, chat and browsing, on one link at
# once; data/lab-mix.md) through the agent (flowpic-agent --pcap: the live
# agent's path, embedded model), which streams its verdicts over gRPC to a
# local collector (flowpic-collector, SQLite in out/); show what the
# collector stored, score the flow verdicts against the sessions' labels,
# and draw the FlowPic of the busiest flow to out/demo-flow.png.  Then the
# collector stays up with its dashboard (--web-listen 127.0.0.1:8080, a new
# viewer token in out/demo-web-token) until Ctrl-C; --no-wait (or
# FLOWPIC_DEMO_NO_WAIT=1, for CI) ends after the replay instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
wait_web=1
[ "${FLOWPIC_DEMO_NO_WAIT:-0}" = 1 ] && wait_web=0
for arg in "$@"; do
	case "$arg" in
	--no-wait) wait_web=0 ;;
	-h | --help)
		echo "usage: scripts/demo.sh [--no-wait]   (--no-wait or FLOWPIC_DEMO_NO_WAIT=1: end after the replay, no dashboard)"
		exit 0 ;;
	*) echo "demo.sh: unknown argument '$arg' (--no-wait, --help)" >&2; exit 2 ;;
	esac
done
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

# The collector: cleartext h2c on a free loopback port, no token for agents
# (local demo); with the dashboard, viewers log in with a new random token.
web_args=()
if [ "$wait_web" = 1 ]; then
	(umask 077 && head -c 32 /dev/urandom | base64 | tr -d '=+/\n' >"$out/demo-web-token" && echo >>"$out/demo-web-token")
	web_args=(--web-token-file "$out/demo-web-token" --web-root "$root/collector/web/static")
fi
collector_pid=
trap '[ -n "$collector_pid" ] && kill "$collector_pid" 2>/dev/null || true' EXIT
# start_collector [WEB_ADDRESS]: 0 when it listens, 1 when it exited.
start_collector() {
	local extra=()
	[ -n "${1:-}" ] && extra=(--web-listen "$1" "${web_args[@]}")
	"$collector" --listen 127.0.0.1:0 --db "sqlite:$db" --no-token "${extra[@]}" \
		>"$out/demo-collector.log" 2>&1 &
	collector_pid=$!
	for _ in $(seq 100); do
		if grep -q '"listening"' "$out/demo-collector.log" &&
			{ [ -z "${1:-}" ] || grep -q '"event":"web"' "$out/demo-collector.log"; }; then
			return 0
		fi
		kill -0 "$collector_pid" 2>/dev/null || { wait "$collector_pid" || true; collector_pid=; return 1; }
		sleep 0.1
	done
	cat "$out/demo-collector.log" >&2
	exit 1
}
if [ "$wait_web" = 1 ]; then
	# 8080 taken: any free port.
	start_collector 127.0.0.1:8080 || start_collector 127.0.0.1:0 ||
		{ cat "$out/demo-collector.log" >&2; exit 1; }
else
	start_collector || { cat "$out/demo-collector.log" >&2; exit 1; }
fi
address=$(/usr/bin/python3 -c 'import json,sys
print(next(json.loads(l)["address"] for l in sys.stdin if "listening" in l))' <"$out/demo-collector.log")

# The agent: replay, one flow verdict per line on stdout, every block and flow
# verdict to the collector; its counters (one JSON line) at exit.
"$agent" --pcap "$capture" --collector "$address" --flow-verdicts-only --send-pictures \
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

[ "$wait_web" = 1 ] || exit 0
url=$(/usr/bin/python3 -c 'import json,sys
for l in sys.stdin:
    try:
        e = json.loads(l)
    except ValueError:
        continue
    if e.get("event") == "web":
        print(e.get("url") or "http://%s/" % e["address"]); break' <"$out/demo-collector.log")
echo
echo "dashboard: $url   viewer token: $(cat "$out/demo-web-token") (in out/demo-web-token)"
echo "the collector keeps running for it; Ctrl-C stops it (scripts/demo.sh --no-wait: no dashboard, end here)"
trap 'echo; echo "stopping the collector"; exit 0' INT TERM
wait "$collector_pid" || true
