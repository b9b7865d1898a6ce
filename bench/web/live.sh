#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The dashboard's live feed at a fleet's rate (issue 14: "keeps up with
# 10,000 verdicts/s without slowing the gRPC loop"): 150 simulated agents
# (collector_fleetgen, TLS, 10x a host's rate: 10,000 verdicts/s) stream to
# one collector (SQLite) three ways, each twice, in turns: the dashboard off;
# on with no client; on with one SSE client (curl) reading /api/live.  It
# prints, per run, the rate acked, submit-to-ack p50/p99, the collector's CPU
# seconds and the live events the client got (and gap events).  The first
# row is the baseline; the machine is shared, so compare rows of one run.
#   bench/web/live.sh [BUILD_DIR]   (Release; default build-scale)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-scale}
collector=$build/collector/flowpic-collector
fleetgen=$build/bench/collector/collector_fleetgen
for b in "$collector" "$fleetgen"; do
	[ -x "$b" ] || { echo "missing $b: cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release &&" \
		"make -C $build flowpic-collector collector_fleetgen" >&2; exit 1; }
done
command -v curl > /dev/null || { echo "needs curl" >&2; exit 1; }
tmp=$(mktemp -d)
coll=
cleanup() {
	[ -n "$coll" ] && kill "$coll" 2> /dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
/usr/bin/python3 -c "import sys; sys.path.insert(0, '$root/tests/collector'); import harness; harness.make_pki('$tmp')"
echo "viewtok bench" > "$tmp/tok"
chmod 600 "$tmp/tok"
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

one() { # off|on|sse
	local mode=$1 args=() sse= t0 t1 ev=- gaps=-
	rm -f "$tmp"/v.db*
	[ "$mode" != off ] && args=(--web-listen "127.0.0.1:$port" --web-token-file "$tmp/tok")
	"$collector" --listen 127.0.0.1:0 --db "sqlite:$tmp/v.db" --no-token -q \
		--tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key" --max-per-source 100000 \
		"${args[@]}" > "$tmp/coll.out" 2> "$tmp/coll.err" &
	coll=$!
	for _ in $(seq 50); do [ -s "$tmp/coll.out" ] && break; sleep 0.1; done
	local addr
	addr=$(head -1 "$tmp/coll.out" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["address"])')
	if [ "$mode" = sse ]; then
		curl -s --cacert "$tmp/ca.pem" -c "$tmp/jar" -o /dev/null -d token=viewtok \
			"https://localhost:$port/login"
		curl -s --cacert "$tmp/ca.pem" -N -b "$tmp/jar" "https://localhost:$port/api/live" \
			> "$tmp/sse.out" &
		sse=$!
	fi
	t0=$(awk '{ print $14 + $15 }' "/proc/$coll/stat")
	timeout 300 "$fleetgen" -n 150 -x 10 -t "$addr" -d 20 --drain 10 --counters 0 \
		--ca "$tmp/ca.pem" --server-name localhost 2> /dev/null | tail -1 > "$tmp/fg.json"
	t1=$(awk '{ print $14 + $15 }' "/proc/$coll/stat")
	if [ -n "$sse" ]; then
		kill "$sse" 2> /dev/null || true
		wait "$sse" 2> /dev/null || true
		ev=$(grep -c '^event: verdict' "$tmp/sse.out" || true)
		gaps=$(grep -c '^event: gap' "$tmp/sse.out" || true)
	fi
	kill "$coll"
	wait "$coll" 2> /dev/null || true
	coll=
	/usr/bin/python3 - "$mode" "$t0" "$t1" "$ev" "$gaps" "$tmp/fg.json" <<'PY'
import json, sys
mode, t0, t1, ev, gaps, fg = sys.argv[1:]
j = json.load(open(fg))
tick = 100.0
print("%-22s %9.0f %9.1f %9.1f %9.2f %10s %5s" % (
    {"off": "dashboard off", "on": "on, no client", "sse": "on, one SSE client"}[mode],
    j["verdicts_acked"] / j["window_s"], j["ack_p50_ms"], j["ack_p99_ms"],
    (int(t1) - int(t0)) / tick, ev, gaps))
PY
}

printf '%-22s %9s %9s %9s %9s %10s %5s\n' "collector" "acked/s" "p50 ms" "p99 ms" "cpu s" "live evts" "gaps"
for round in 1 2; do
	for mode in off on sse; do
		one "$mode"
	done
done
echo "150 TLS agents at 10x a host's rate (10,000 verdicts/s offered) for 20 s, SQLite;"
echo "'on' includes the dashboard's indexes (docs/dashboard.md); live events count the"
echo "window, the ramp and the drain; gaps: events the feed had to drop for the client."
