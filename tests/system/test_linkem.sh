#!/usr/bin/env bash
# System test of linkem, the lab's link emulator: client and server network
# namespaces joined through a router namespace where linkem bridges the two
# veth ends.  Measures through it what it promises: the round trip of ping
# is twice the one-way delay, the loss rate is the one configured (bursty
# too), a bulk TCP transfer takes size x 8 / rate, jitter never reorders, a
# full bottleneck buffer tail-drops, and the counters it prints at exit
# agree with what was sent.  Every random draw of linkem is seeded, and ARP
# and IPv6 are kept off the link, so the frames and the outcome repeat.
# Needs root (namespaces); skips (77) without it.  KEEP=1 keeps the scratch
# directory (linkem's output of each run).  Usage: test_linkem.sh LINKEM
set -uo pipefail
linkem=$1
py=/usr/bin/python3
# shellcheck source=results.sh
. "$(dirname "$0")/results.sh"
# within NAME VALUE LO HI: LO <= VALUE <= HI (numbers, compared by python)
within() {
	if $py -c "import sys; sys.exit(not ($3 <= $2 <= $4))"; then
		ok "$1: $2 in [$3, $4]"
	else
		bad "$1: $2 not in [$3, $4]"
	fi
}

[ -x "$linkem" ] || { echo "no linkem binary at $linkem"; exit 1; }
if [ "$(id -u)" -ne 0 ] || ! command -v ip > /dev/null || ! command -v ping > /dev/null; then
	echo "skipped: needs root, ip and ping (network namespaces)"
	exit 77
fi

tag=lk$$
nc=${tag}c nr=${tag}r ns=${tag}s
cip=10.249.0.1 sip=10.249.0.2
tmp=$(mktemp -d)
lkpid=
cleanup() {
	[ -n "$lkpid" ] && kill -KILL "$lkpid" 2> /dev/null
	for n in "$nc" "$nr" "$ns"; do
		for pid in $(ip netns pids "$n" 2> /dev/null); do kill -KILL "$pid" 2> /dev/null; done
		ip netns del "$n" 2> /dev/null
	done
	if [ -n "${KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

inc() { ip netns exec "$nc" "$@"; }
ins() { ip netns exec "$ns" "$@"; }

# --- helpers in python: UDP and TCP ends, timed with the clock all namespaces share ---
cat > "$tmp/ends.py" << 'EOF'
import json, socket, struct, sys, time
mode = sys.argv[1]
if mode == "udp-sink":     # PORT COUNT READYFILE: one-way delays and order
    port, count, ready = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("0.0.0.0", port))
    open(ready, "w").close()
    s.settimeout(10)
    seqs, delays = [], []
    try:
        while len(seqs) < count:
            data = s.recv(65536)
            now = time.monotonic_ns()
            seq, sent = struct.unpack("!QQ", data[:16])
            if seq == 2**64 - 1:
                break
            seqs.append(seq)
            delays.append((now - sent) / 1e6)
            s.settimeout(2)
    except socket.timeout:
        pass
    n = len(delays)
    mean = sum(delays) / n if n else 0
    std = (sum((d - mean) ** 2 for d in delays) / n) ** 0.5 if n else 0
    print(json.dumps({"count": n, "in_order": seqs == sorted(seqs),
                      "mean": round(mean, 3), "std": round(std, 3),
                      "min": round(min(delays, default=0), 3), "max": round(max(delays, default=0), 3)}))
elif mode == "udp-send":   # HOST PORT COUNT INTERVAL_MS SIZE
    host, port, count = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    interval, size = float(sys.argv[5]) / 1000, int(sys.argv[6])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    t0 = time.monotonic()
    for i in range(count):
        if interval:
            time.sleep(max(0, t0 + i * interval - time.monotonic()))
        s.sendto(struct.pack("!QQ", i, time.monotonic_ns()).ljust(size, b"x"), (host, port))
elif mode == "tcp-server":  # PORT READYFILE: one connection, "PUT n" or "GET n"
    port, ready = int(sys.argv[2]), sys.argv[3]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(1)
    open(ready, "w").close()
    ls.settimeout(20)
    c, _ = ls.accept()
    f = c.makefile("rb")
    verb, n = f.readline().split()
    n = int(n)
    if verb == b"PUT":
        got = 0
        while got < n:
            chunk = f.read1(65536)
            if not chunk:
                break
            got += len(chunk)
        c.sendall(b"%d\n" % got)
    else:
        block = b"y" * 65536
        left = n
        while left > 0:
            c.sendall(block[:min(left, len(block))])
            left -= min(left, len(block))
    c.close()
elif mode == "tcp-client":  # HOST PORT PUT|GET BYTES: seconds from connect to the end
    host, port, verb, n = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    t0 = time.monotonic()
    c = socket.create_connection((host, port), timeout=30)
    c.sendall(b"%s %d\n" % (verb.encode(), n))
    got = 0
    if verb == "PUT":
        block = b"z" * 65536
        left = n
        while left > 0:
            c.sendall(block[:min(left, len(block))])
            left -= min(left, len(block))
        got = int(c.makefile("rb").readline())
    else:
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            got += len(chunk)
    print(json.dumps({"bytes": got, "seconds": round(time.monotonic() - t0, 3)}))
EOF

# jget FILE EXPR: evaluate a python expression over the JSON object j in FILE
jget() { $py -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

# --- usage errors: one line naming the option, exit 2 ---
expect_usage() { # name, stderr pattern, args...
	local name=$1 pat=$2
	shift 2
	"$linkem" "$@" > "$tmp/out" 2> "$tmp/err"
	local rc=$?
	if [ "$rc" -eq 2 ] && grep -q -- "$pat" "$tmp/err" && [ ! -s "$tmp/out" ]; then
		ok "usage: $name"
	else
		bad "usage: $name (exit $rc, stderr: $(head -c 300 "$tmp/err"))"
	fi
}
check "--help has examples" bash -c "'$linkem' --help | grep -q Examples"
expect_usage "no interfaces" "give both interfaces"
expect_usage "same interface twice" "give two different" --a x --b x
expect_usage "loss above 100" "loss 101" --a x --b y --loss 101
expect_usage "negative delay" "delay-ms-up -5" --a x --b y --delay-ms-up -5
expect_usage "fractional rate" "whole number" --a x --b y --rate 1.5
expect_usage "tiny queue" "queue-down 100" --a x --b y --queue-down 100
expect_usage "burst below 1" "at least 1 frame" --a x --b y --loss-burst 0.5
expect_usage "burst too short for the loss" "allows at most 50.0% loss" --a x --b y --loss 60 --loss-burst 1
expect_usage "jitter correlation out of range" "jitter-corr-ms-up 1e6" --a x --b y --jitter-corr-ms-up 1e6
expect_usage "bad jitter distribution" "normal or uniform" --a x --b y --jitter-dist pareto
expect_usage "unknown option" "unrecognized option" --a x --b y --latency 5
expect_usage "stray argument" "unexpected argument" --a x --b y 40
expect_usage "huge buffer" "would hold" --a x --b y --rate 10000000 --delay-ms 10000

# --- the topology ---
setup() {
	ip netns add "$nc" && ip netns add "$nr" && ip netns add "$ns" || return 1
	ip link add lkc0 netns "$nc" type veth peer name lka netns "$nr" || return 1
	ip link add lks0 netns "$ns" type veth peer name lkb netns "$nr" || return 1
	for n in "$nc" "$nr" "$ns"; do
		# No IPv6 (router solicitations, MLD): only the test's frames cross.
		ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1 2> /dev/null
		ip -n "$n" link set lo up
	done
	for d in "$nc lkc0" "$nr lka" "$nr lkb" "$ns lks0"; do
		set -- $d
		ip netns exec "$1" ethtool -K "$2" tso off gso off gro off > /dev/null 2>&1
		ip -n "$1" link set "$2" up || return 1
	done
	ip -n "$nc" addr add "$cip/24" dev lkc0 || return 1
	ip -n "$ns" addr add "$sip/24" dev lks0 || return 1
	# Static neighbours: no ARP frames take random draws or show in counters.
	local cmac smac
	cmac=$(ip -n "$nc" -br link show lkc0 | awk '{print $3}')
	smac=$(ip -n "$ns" -br link show lks0 | awk '{print $3}')
	ip -n "$nc" neigh replace "$sip" lladdr "$smac" dev lkc0 nud permanent || return 1
	ip -n "$ns" neigh replace "$cip" lladdr "$cmac" dev lks0 nud permanent || return 1
}
if ! setup; then
	bad "namespaces: cannot create $nc, $nr, $ns"
	echo "$pass passed, $fail failed"
	exit 1
fi
ok "namespaces $nc, $nr, $ns"

n_run=0
start_linkem() { # linkem options...: start it in the router, wait for the path
	n_run=$((n_run + 1))
	ip netns exec "$nr" "$linkem" --a lka --b lkb "$@" > "$tmp/lk$n_run.out" \
		2> "$tmp/lk$n_run.err" &
	lkpid=$!
	# Ready when both packet sockets are open (ip netns exec execs linkem).
	for _ in $(seq 100); do
		[ -d "/proc/$lkpid" ] || break
		[ "$(ls -l "/proc/$lkpid/fd" 2> /dev/null | grep -c 'socket:')" -ge 2 ] && break
		sleep 0.02
	done
	sleep 0.05
}
# stop_linkem NAME [SIGNAL]: stop it, keep its JSON in $tmp/lk.json, check its exit
stop_linkem() {
	local name=$1 sig=${2:-TERM} rc
	kill -"$sig" "$lkpid"
	wait "$lkpid"
	rc=$?
	lkpid=
	grep '^{' "$tmp/lk$n_run.out" | tail -1 > "$tmp/lk.json"
	if [ "$rc" -eq 0 ] && [ -s "$tmp/lk.json" ] && ! grep -qiE 'sanitizer|runtime error' "$tmp/lk$n_run.err"; then
		ok "$name: linkem exits 0 on SIG$sig with its counters, nothing on stderr"
	else
		bad "$name: linkem exit $rc, stderr: $(head -c 600 "$tmp/lk$n_run.err")"
	fi
	# Every frame read is accounted for.
	local acct
	acct=$(jget "$tmp/lk.json" "all(d['received'] == d['frames'] + d['lost'] + d['queue_drops'] + d['pending'] + d['send_errors'] + d['too_big'] for d in (j['up'], j['down']))")
	check "$name: received = frames + lost + queue_drops + pending + errors" test "$acct" = True
}
ping_stats() { # ping options...: prints "received transmitted avg_ms"
	inc ping "$@" "$sip" > "$tmp/ping.out" 2>&1
	$py - "$tmp/ping.out" << 'EOF'
import re, sys
t = open(sys.argv[1]).read()
m = re.search(r"(\d+) packets transmitted, (\d+) received", t)
a = re.search(r"= [\d.]+/([\d.]+)/", t)
print(m.group(2) if m else 0, m.group(1) if m else 0, a.group(1) if a else 0)
EOF
}
udp_run() { # PORT COUNT INTERVAL_MS SIZE: a UDP stream client -> server; sink JSON in $tmp/udp.json
	rm -f "$tmp/ready"
	ins "$py" "$tmp/ends.py" udp-sink "$1" "$2" "$tmp/ready" > "$tmp/udp.json" &
	local sink=$!
	for _ in $(seq 100); do [ -e "$tmp/ready" ] && break; sleep 0.05; done
	inc "$py" "$tmp/ends.py" udp-send "$sip" "$1" "$2" "$3" "$4"
	wait "$sink"
}
tcp_run() { # PORT PUT|GET BYTES: prints the client's JSON
	rm -f "$tmp/ready"
	ins "$py" "$tmp/ends.py" tcp-server "$1" "$tmp/ready" &
	local srv=$!
	for _ in $(seq 100); do [ -e "$tmp/ready" ] && break; sleep 0.05; done
	inc timeout 30 "$py" "$tmp/ends.py" tcp-client "$sip" "$1" "$2" "$3"
	wait "$srv"
}

# --- a missing interface in the router: exit 1, one line ---
ip netns exec "$nr" "$linkem" --a lka --b nope0 > /dev/null 2> "$tmp/err"
rc=$?
check "missing interface: exit 1, says which" bash -c "[ $rc -eq 1 ] && grep -q 'no interface nope0' '$tmp/err'"

# --- delay: RTT = 2 x one-way ---
start_linkem --delay-ms 40 --seed 1
read -r rx tx avg <<< "$(ping_stats -c 20 -i 0.05 -W 2)"
check "delay 40 ms: 20 of 20 pings answered" test "$rx" = 20
within "delay 40 ms each way: ping RTT avg (ms)" "$avg" 80 95
stop_linkem "delay"
within "delay: up frames = pings" "$(jget "$tmp/lk.json" "j['up']['frames']")" 20 20
within "delay: up bytes = 20 x 98" "$(jget "$tmp/lk.json" "j['up']['bytes']")" 1960 1960

# --- asymmetric delay: one-way delays measured on the shared clock ---
start_linkem --delay-ms-up 10 --delay-ms-down 50 --delay-ms 99 --seed 2
udp_run 5001 100 5 200
within "asymmetric: one-way up delay (ms), configured 10" "$(jget "$tmp/udp.json" "j['mean']")" 10 14
read -r rx tx avg <<< "$(ping_stats -c 10 -i 0.05 -W 2)"
within "asymmetric 10 up + 50 down: ping RTT avg (ms)" "$avg" 60 72
stop_linkem "asymmetric"

# --- jitter: delay varies, order never does ---
# Drawn fresh per frame, a frame waits behind any slower one ahead of it,
# which lifts the mean; correlated in time, the mean stays the delay.
start_linkem --delay-ms 20 --jitter-ms 5 --seed 3
udp_run 5002 1000 2 200
check "jitter: all 1000 datagrams arrive" test "$(jget "$tmp/udp.json" "j['count']")" = 1000
check "jitter: in the order sent" test "$(jget "$tmp/udp.json" "j['in_order']")" = True
within "jitter 5 ms: one-way delay std (ms)" "$(jget "$tmp/udp.json" "j['std']")" 1.5 8
within "jitter: one-way delay min (ms), floor 20 - 3 x 5" "$(jget "$tmp/udp.json" "j['min']")" 5 25
within "jitter: one-way delay mean (ms)" "$(jget "$tmp/udp.json" "j['mean']")" 20 32
stop_linkem "jitter"
start_linkem --delay-ms 20 --jitter-ms 5 --jitter-corr-ms 20 --seed 3
udp_run 5006 1000 2 200
check "correlated jitter: in the order sent" test "$(jget "$tmp/udp.json" "j['in_order']")" = True
within "correlated jitter 5 ms: one-way delay std (ms)" "$(jget "$tmp/udp.json" "j['std']")" 2 7
within "correlated jitter: one-way delay mean (ms), configured 20" "$(jget "$tmp/udp.json" "j['mean']")" 17 24
stop_linkem "correlated jitter"

# --- random loss: 20% each way, so 0.8 x 0.8 = 0.64 of pings come back ---
start_linkem --loss 20 --seed 4
read -r rx tx avg <<< "$(ping_stats -c 500 -i 0.01 -W 1 -q)"
within "loss 20% each way: ping success of 500, expect 0.64 (sd 0.021)" \
	"$($py -c "print($rx / max(1, $tx))")" 0.54 0.74
stop_linkem "loss"
within "loss: linkem up lost / received, expect 0.20 (sd 0.018)" \
	"$(jget "$tmp/lk.json" "round(j['up']['lost'] / max(1, j['up']['received']), 4)")" 0.13 0.27
within "loss: down received = up frames (every echo request answered)" \
	"$(jget "$tmp/lk.json" "j['down']['received'] - j['up']['frames']")" 0 0
within "loss: pings answered = down frames" \
	"$(jget "$tmp/lk.json" "j['down']['frames'] - $rx")" 0 0

# --- bursty loss, one direction: 10% in bursts of 5 frames on average ---
start_linkem --loss-up 10 --loss-burst-up 5 --seed 5
inc ping -c 2000 -i 0.002 -W 1 "$sip" > "$tmp/ping.out" 2>&1
stop_linkem "burst"
$py - "$tmp/ping.out" 2000 > "$tmp/burst" << 'EOF'
import re, sys
got = {int(s) for s in re.findall(r"icmp_seq=(\d+)", open(sys.argv[1]).read())}
n = int(sys.argv[2])
runs, run = [], 0
for i in range(1, n + 1):
    if i in got:
        if run:
            runs.append(run)
        run = 0
    else:
        run += 1
if run:
    runs.append(run)
print(round(1 - len(got) / n, 4), round(sum(runs) / max(1, len(runs)), 2))
EOF
read -r lossfrac meanrun < "$tmp/burst"
within "burst: loss fraction of 2000 pings, expect 0.10 (sd 0.021)" "$lossfrac" 0.03 0.17
within "burst: mean run of lost pings, expect 5 (sd 0.7; independent: 1.1)" "$meanrun" 2.5 9
within "burst: down direction lost none" "$(jget "$tmp/lk.json" "j['down']['lost']")" 0 0

# --- rate: bulk TCP up at 4000 kbit/s and down at 2000 kbit/s ---
start_linkem --rate-up 4000 --rate-down 2000 --delay-ms 5 --seed 6
tcp_run 5003 PUT 2000000 > "$tmp/put.json"
tcp_run 5004 GET 1000000 > "$tmp/get.json"
# Let the connections close (no FIN retransmitted into the next run).
for _ in $(seq 60); do
	[ -z "$(inc ss -Htan exclude time-wait)$(ins ss -Htan exclude time-wait)" ] && break
	sleep 0.05
done
stop_linkem "rate"
check "rate: 2 MB up delivered" test "$(jget "$tmp/put.json" "j['bytes']")" = 2000000
check "rate: 1 MB down delivered" test "$(jget "$tmp/get.json" "j['bytes']")" = 1000000
within "rate up 4000 kbit/s: 2 MB in (s), expect 2e6 x 8 / 4e6 = 4.0" \
	"$(jget "$tmp/put.json" "j['seconds']")" 3.0 5.0
within "rate down 2000 kbit/s: 1 MB in (s), expect 1e6 x 8 / 2e6 = 4.0" \
	"$(jget "$tmp/get.json" "j['seconds']")" 3.0 5.0
# Wire bytes: payload plus 66 bytes of headers per segment of at most 1448.
within "rate: linkem up bytes / 2 MB payload" \
	"$(jget "$tmp/lk.json" "round(j['up']['bytes'] / 2e6, 4)")" 1.04 1.12
within "rate: linkem down bytes / 1 MB payload" \
	"$(jget "$tmp/lk.json" "round(j['down']['bytes'] / 1e6, 4)")" 1.04 1.15
within "rate: queue depth within the default buffer (100 ms at 4000 kbit/s)" \
	"$(jget "$tmp/lk.json" "j['up']['queue_max_bytes']")" 1 50000

# --- queue: a burst into a 10000-byte buffer at 1000 kbit/s is tail-dropped ---
start_linkem --rate 1000 --queue 10000 --seed 7 --name lk-queue-test
udp_run 5005 200 0 1400
stop_linkem "queue" INT
got=$(jget "$tmp/udp.json" "j['count']")
within "queue: some of 200 back-to-back datagrams dropped" "$(jget "$tmp/lk.json" "j['up']['queue_drops']")" 20 199
within "queue: deepest buffer (bytes) within the 10000 limit" "$(jget "$tmp/lk.json" "j['up']['queue_max_bytes']")" 1442 10000
within "queue: datagrams received = linkem up frames" "$(jget "$tmp/lk.json" "j['up']['frames'] - $got")" 0 0
within "queue: up received = 200 datagrams" "$(jget "$tmp/lk.json" "j['up']['received']")" 200 200
check "queue: --name and --seed echoed" test "$(jget "$tmp/lk.json" "j['name'] + str(j['seed'])")" = lk-queue-test7

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
