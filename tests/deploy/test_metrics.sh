#!/usr/bin/env bash
# Prometheus metrics of both programs, scraped by a real Prometheus (Debian's
# prometheus package), about 40 s, root (a network namespace, BPF):
#   - promtool checks deploy/prometheus/alerts.yml and its unit tests
#     (tests/deploy/alerts_test.yml: each alert fires on the series it is for);
#   - a live agent on a veth between two namespaces (a 17 s UDP stream, a TCP
#     transfer) streams to a collector; both serve --metrics-listen; a
#     Prometheus in the same namespace scrapes them every second and loads
#     the alert rules;
#   - once every verdict is acknowledged, both print their counters line
#     (SIGUSR1); after two more scrapes, each counter in Prometheus equals
#     the line's (metrics_check.py), every family has HELP and TYPE, the
#     histograms count what they say they count, the rules evaluate;
#   - the listener's refusals: 404, 405, 400, 431, a client that never sends
#     its request (timeout) while scrapes go on, more clients than allowed;
#     each counted under its reason.
# Everything runs in namespaces named fpt-metrics-*, removed by a trap.
# Usage: test_metrics.sh AGENT COLLECTOR
set -uo pipefail
agent=$1 collector=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
ns_s=fpt-metrics-srv ns_c=fpt-metrics-cli
if_s=fpt-met-s0 if_c=fpt-met-c0
ip_s=10.198.79.1 ip_c=10.198.79.2
tmp=$(mktemp -d)
keep_var=FPT_METRICS_KEEP
. "$here/../agent/netns_lib.sh"

[ -x "$agent" ] && [ -x "$collector" ] || die "usage: test_metrics.sh AGENT COLLECTOR"
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, BPF); CI runs as root"
for t in ip ethtool curl prometheus promtool; do
	command -v $t > /dev/null || die "$t is missing (scripts/install-deps.sh dev installs it)"
done
in_ns() { ip netns exec $ns_c "$@"; }

# ---- the rules, statically ----
if promtool check rules "$root/deploy/prometheus/alerts.yml" > "$tmp/promtool.out" 2>&1; then
	ok "promtool check rules: $(grep -o '[0-9]* rules found' "$tmp/promtool.out")"
else
	bad "promtool check rules: $(cat "$tmp/promtool.out")"
fi
if (cd "$root" && promtool test rules tests/deploy/alerts_test.yml) > "$tmp/promtool-test.out" 2>&1; then
	ok "promtool test rules: every alert fires on its series, and only then"
else
	bad "promtool test rules: $(tail -20 "$tmp/promtool-test.out")"
fi

netns_pair off

# ---- collector, agent, Prometheus: all on the client namespace's loopback ----
ip netns exec $ns_c "$collector" --listen 127.0.0.1:50051 --db "sqlite:$tmp/verdicts.db" --no-token \
	--metrics-listen :9102 > "$tmp/collector.out" 2> "$tmp/collector.err" &
coll_pid=$!
pids+=($coll_pid)
wait_for "$tmp/collector.out" '"event":"metrics"' 10 || die "collector did not start: $(cat "$tmp/collector.err")"

chmod 711 "$tmp"
ip netns exec $ns_c "$agent" --iface $if_c -v --collector 127.0.0.1:50051 --agent-id fpt-metrics \
	--idle-timeout 3 --metrics-listen :9101 > "$tmp/verdicts" 2> "$tmp/agent.err" &
agent_pid=$!
pids+=($agent_pid)
wait_for "$tmp/agent.err" "capabilities dropped" 30 || die "agent did not start: $(cat "$tmp/agent.err")"
# The metrics thread, like the stream's, starts after the drop: no capability anywhere.
withcaps=$(grep -L "CapEff:[[:space:]]*0000000000000000" /proc/$agent_pid/task/*/status | wc -l)
nthreads=$(ls /proc/$agent_pid/task | wc -l)
if [ "$nthreads" -ge 3 ] && [ "$withcaps" -eq 0 ]; then
	ok "agent: $nthreads threads (metrics, stream), none with a capability"
else
	bad "agent threads: $nthreads, $withcaps with capabilities"
fi

cp "$root/deploy/prometheus/alerts.yml" "$tmp/alerts.yml"
cat > "$tmp/prometheus.yml" << EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: flowpic-agent
    static_configs: [{targets: ["127.0.0.1:9101"]}]
  - job_name: flowpic-collector
    static_configs: [{targets: ["127.0.0.1:9102"]}]
EOF
ip netns exec $ns_c prometheus --config.file "$tmp/prometheus.yml" --storage.tsdb.path "$tmp/tsdb" \
	--web.listen-address 127.0.0.1:9090 > "$tmp/prometheus.log" 2>&1 &
prom_pid=$!
pids+=($prom_pid)
for i in $(seq 100); do
	in_ns curl -sf http://127.0.0.1:9090/-/ready > /dev/null && break
	sleep 0.2
done
in_ns curl -sf http://127.0.0.1:9090/-/ready > /dev/null || die "Prometheus not ready: $(tail -5 "$tmp/prometheus.log")"
ok "Prometheus $(prometheus --version 2>&1 | awk 'NR == 1 {print $3}') up, scraping every second"

# ---- traffic: a 17 s UDP stream (one whole 15 s block), a 2 MB TCP transfer ----
ip netns exec $ns_s "$py" -c "
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('$ip_s', 5004)); u.settimeout(25)
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(('$ip_s', 5005)); t.listen(1); t.settimeout(25)
c, _ = t.accept()
while c.recv(65536):
    pass
try:
    while True:
        u.recv(2048)
except socket.timeout:
    pass
" &
pids+=($!)
sleep 0.5
in_ns "$py" -c "
import socket, time
t = socket.create_connection(('$ip_s', 5005)); t.sendall(bytes(2000000)); t.close()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('$ip_c', 40004))
t0 = time.monotonic()
for i in range(850):   # 17 s at 50 packets/s
    s.sendto(i.to_bytes(4, 'big') + bytes(156), ('$ip_s', 5004))
    time.sleep(max(0, t0 + (i + 1) * 0.02 - time.monotonic()))
"

# ---- wait until every flow ended and every verdict is acknowledged ----
line() { # line PID FILE PATTERN: SIGUSR1, then the newest line with PATTERN
	local before
	before=$(grep -c -- "$3" "$2" 2> /dev/null)
	kill -USR1 $1
	for i in $(seq 50); do
		[ "$(grep -c -- "$3" "$2" 2> /dev/null)" -gt "$before" ] && break
		sleep 0.1
	done
	grep -- "$3" "$2" | tail -1
}
for i in $(seq 30); do
	sleep 1
	l=$(line $agent_pid "$tmp/agent.err" '^{"counters"')
	"$py" -c "
import json, sys
c = json.loads(sys.argv[1])['counters']
sys.exit(0 if c['flows_active'] == 0 and c['verdicts_flow'] >= 2 and c['stream.submitted'] > 0
         and c['stream.acked'] == c['stream.submitted'] and c['stream.queued'] == 0 else 1)
" "$l" && break
done
echo "$l" > "$tmp/agent.line"
line $coll_pid "$tmp/collector.out" '^{"counters"' > "$tmp/collector.line"
grep -q '"stream.acked"' "$tmp/agent.line" || die "no agent counters line: $(tail -3 "$tmp/agent.err")"
# Two scrapes after the lines (1 s each), and the rules evaluated on them.
sleep 3
in_ns "$py" "$here/metrics_check.py" http://127.0.0.1:9090 http://127.0.0.1:9101/metrics \
	"$tmp/agent.line" http://127.0.0.1:9102/metrics "$tmp/collector.line" > "$tmp/check.out" 2>&1
cat "$tmp/check.out"
pass=$((pass + $(grep -c '^ok' "$tmp/check.out")))
fail=$((fail + $(grep -c '^FAIL' "$tmp/check.out")))
grep -q '^ok.*alert rules' "$tmp/check.out" || bad "metrics_check.py did not finish: $(tail -3 "$tmp/check.out")"

# ---- the listener's refusals, counted (Prometheus stopped: only ours count) ----
kill $prom_pid
wait $prom_pid 2> /dev/null
in_ns "$py" - > "$tmp/refusals.out" 2>&1 << EOF
import socket, time, urllib.request
def raw(data, port=9102):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            return out.split(b"\r\n")[0].decode()
        out += b
print("404", raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
print("405", raw(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"))
print("400", raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"))
print("431", raw(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 5000 + b"\r\n\r\n"))
# A client that connects and says nothing: closed after 5 s, counted as a
# timeout; meanwhile scrapes are answered at once.
idle = socket.create_connection(("127.0.0.1", 9102))
t0 = time.monotonic()
for i in range(5):
    urllib.request.urlopen("http://127.0.0.1:9102/metrics", timeout=2).read()
print("scrapes_beside_idle_s %.3f" % (time.monotonic() - t0))
idle.settimeout(8)
got = idle.recv(10)
print("idle_closed_after_s %.1f" % (time.monotonic() - t0))
# More clients than allowed (4): the rest are closed at once.
held = [socket.create_connection(("127.0.0.1", 9101)) for i in range(4)]
time.sleep(0.3)
extra = socket.create_connection(("127.0.0.1", 9101))
extra.settimeout(3)
try:
    print("busy_extra_got", len(extra.recv(10)))
except ConnectionResetError:
    print("busy_extra_got", 0)
for h in held:
    h.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
print("held_answered", sum(h.recv(12).startswith(b"HTTP/1.1 200") for h in held))
EOF
r() { awk -v k="$1" '$1 == k {print $2}' "$tmp/refusals.out"; }
for code in 404 405 400 431; do
	if [ "$(r $code)" = "HTTP/1.1" ] && grep -q "^$code HTTP/1.1 $code " "$tmp/refusals.out"; then
		ok "listener answers $code: $(grep "^$code " "$tmp/refusals.out" | cut -d' ' -f2-)"
	else
		bad "listener $code: $(grep "^$code " "$tmp/refusals.out")"
	fi
done
beside=$(r scrapes_beside_idle_s) closed=$(r idle_closed_after_s)
if [ -n "$beside" ] && awk "BEGIN {exit !($beside < 2 && $closed >= 4 && $closed < 7)}"; then
	ok "a silent client does not hold scrapes up (5 scrapes in $beside s) and is closed after ${closed} s"
else
	bad "silent client: scrapes beside it '$beside' s, closed after '$closed' s: $(cat "$tmp/refusals.out")"
fi
if [ "$(r busy_extra_got)" = 0 ] && [ "$(r held_answered)" = 4 ]; then
	ok "a fifth client is closed at once; the four held ones are answered"
else
	bad "busy: $(cat "$tmp/refusals.out")"
fi
c=$(line $coll_pid "$tmp/collector.out" '^{"counters"')
a=$(line $agent_pid "$tmp/agent.err" '^{"counters"')
counts=$("$py" -c "
import json, sys
c = json.loads(sys.argv[1])['counters']; a = json.loads(sys.argv[2])['counters']
print(c['metrics_err_not_found'], c['metrics_err_method'], c['metrics_err_bad_request'],
      c['metrics_err_too_large'], c['metrics_err_timeout'], a['metrics_err_busy'])
" "$c" "$a")
if [ "$counts" = "1 1 1 1 1 1" ]; then
	ok "each refusal counted under its reason (not_found, method, bad_request, too_large, timeout, busy)"
else
	bad "refusal counters (not_found method bad_request too_large timeout busy): $counts"
fi
if grep -q '"event":"listening"' "$tmp/collector.out" && kill -0 $coll_pid && kill -0 $agent_pid; then
	ok "collector and agent still running"
else
	bad "a program died: $(tail -3 "$tmp/collector.err" "$tmp/agent.err")"
fi
kill -TERM $agent_pid $coll_pid
wait $agent_pid
st_a=$?
wait $coll_pid
st_c=$?
if [ $st_a = 0 ] && [ $st_c = 0 ]; then ok "both exit 0 on SIGTERM"; else bad "exit statuses: agent $st_a, collector $st_c"; fi

echo "test_metrics: $pass passed, $fail failed"
[ $fail -eq 0 ]
