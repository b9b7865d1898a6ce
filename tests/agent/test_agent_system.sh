#!/usr/bin/env bash
# System test of flowpic-agent on live traffic (root): two network
# namespaces joined by a veth pair; an HTTPS download (curl from
# `openssl s_server -WWW`), a UDP media-like stream (50 packets/s) and pings
# between them; the agent on the client side, and tcpdump on the same
# interface at the same time.  Checks:
#   - per flow, the packets, IP bytes and payload bytes the agent saw equal
#     what tcpdump captured (read back with tshark), and no other flows;
#   - the ICMP packets the BPF programs skipped equal tshark's count;
#   - zero loss counters, verdicts for every flow (early: shorter than a
#     block), a counters line on SIGUSR1 and one at exit;
#   - capabilities all dropped once attached, and root left for the
#     flowpic (or nobody) user; the spool written as that user;
#   - nothing left attached after SIGTERM, and after kill -9: the agent's
#     bpf_links (from /proc/PID/fdinfo) are gone, no XDP on the interface,
#     no TC filter on its egress.
# Namespaces and interfaces are named fpt-agent-*, removed by a trap.
# Usage: test_agent_system.sh AGENT
set -uo pipefail
agent=$1
py=/usr/bin/python3
ns_s=fpt-agent-srv ns_c=fpt-agent-cli
if_s=fpt-agent-s0 if_c=fpt-agent-c0
ip_s=10.198.77.1 ip_c=10.198.77.2
tmp=$(mktemp -d /tmp/fpt-agent-system.XXXXXX)
keep_var=FPT_AGENT_KEEP
. "$(cd "$(dirname "$0")" && pwd)/netns_lib.sh"

[ -x "$agent" ] || die "no flowpic-agent binary at $agent"
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, BPF); CI runs as root"
for t in ip tcpdump tshark openssl curl ethtool bpftool tc; do
	command -v $t > /dev/null || die "$t is missing (scripts/install-deps.sh installs it)"
done

# The wire carries what tcpdump sees: no TSO/GSO super-packets, no GRO
# (netns_pair also removes the namespaces of a run killed before its trap).
netns_pair off

# ---- the peers ----
mkdir -p "$tmp/www"
head -c 6000000 /dev/urandom > "$tmp/www/big.bin"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 1 \
	-subj /CN=fpt-agent > /dev/null 2>&1 || die "openssl req"
(cd "$tmp/www" && exec ip netns exec $ns_s openssl s_server -WWW -accept 4433 -quiet \
	-cert "$tmp/cert.pem" -key "$tmp/key.pem") > "$tmp/s_server.log" 2>&1 &
pids+=($!)
# UDP sink, so the stream gets no ICMP port-unreachable back.
ip netns exec $ns_s "$py" -c "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('$ip_s', 5004))
s.settimeout(30)
try:
    while True:
        s.recv(2048)
except socket.timeout:
    pass
" &
pids+=($!)


# A gRPC collector (python3-grpcio test server) on the client's loopback:
# the agent there streams its verdicts to it (loopback, not the veth).
server=$(cd "$(dirname "$0")" && pwd)/../stream/grpc_server.py
ip netns exec $ns_c "$py" "$server" --pyout "$tmp/py" --store "$tmp/store.jsonl" \
	> "$tmp/grpc.port" 2> "$tmp/grpc.err" &
pids+=($!)
wait_for "$tmp/grpc.port" listening 20 || die "the gRPC test server did not start: $(cat "$tmp/grpc.err")"
grpc_port=$(awk '/listening/ {print $2}' "$tmp/grpc.port")

ip netns exec $ns_c tcpdump -i $if_c -n -U -s 256 -w "$tmp/cap.pcap" 2> "$tmp/tcpdump.err" &
tcpdump_pid=$!
pids+=($tcpdump_pid)
wait_for "$tmp/tcpdump.err" "listening on" 10 || die "tcpdump did not start: $(cat "$tmp/tcpdump.err")"

# Once attached the agent runs as flowpic (or nobody): its spool directory
# is that user's, mode 0700, on a path that user can reach.
run_uid=$(id -u flowpic 2> /dev/null || id -u nobody)
chmod 711 "$tmp"
mkdir -m 700 "$tmp/spool" "$tmp/spool3" && chown $run_uid "$tmp/spool" "$tmp/spool3"

# ip netns exec execs the agent: $! is its pid.
ip netns exec $ns_c "$agent" --iface $if_c -v --collector 127.0.0.1:$grpc_port \
	--agent-id fpt-agent-system --spool-dir "$tmp/spool" > "$tmp/verdicts" 2> "$tmp/agent.err" &
agent_pid=$!
pids+=($agent_pid)
wait_for "$tmp/agent.err" "capabilities dropped" 30 || die "the agent did not start: $(cat "$tmp/agent.err")"

# ---- attached, and the checks that it is can see it (else they prove nothing) ----
links=$(grep -h '^link_id:' /proc/$agent_pid/fdinfo/* 2> /dev/null | awk '{print $2}' | sort -n | tr '\n' ' ')
nlinks=$(echo $links | wc -w)
if [ "$nlinks" -ge 2 ]; then ok "agent holds $nlinks bpf_links ($links)"; else bad "agent links: '$links'"; fi
if ip -n $ns_c link show dev $if_c | grep -q "prog/xdp"; then ok "XDP attached while running"; else bad "no XDP while running"; fi
# Capabilities are per thread: every thread (the stream's too) has none.
sleep 0.5
nthreads=$(ls /proc/$agent_pid/task | wc -l)
withcaps=$(grep -L "CapEff:[[:space:]]*0000000000000000" /proc/$agent_pid/task/*/status | wc -l)
withbnd=$(grep -L "CapBnd:[[:space:]]*0000000000000000" /proc/$agent_pid/task/*/status | wc -l)
if [ "$nthreads" -ge 2 ] && [ "$withcaps" -eq 0 ] && [ "$withbnd" -eq 0 ]; then
	ok "capabilities all dropped after attaching, in all $nthreads threads"
else
	bad "capabilities: $nthreads threads, $withcaps with effective, $withbnd with bounding capabilities"
fi

# No thread left with uid 0 (real, effective, saved or filesystem) nor gid 0.
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' /proc/$agent_pid/task/*/status | tr ' ' '\n' | sort -u | tr '\n' ' ')
gids=$(awk '/^Gid:/ {print $2, $3, $4, $5}' /proc/$agent_pid/task/*/status | tr ' ' '\n' | sort -u | tr '\n' ' ')
if [ "$uids" = "$run_uid " ] && [ "$gids" != "0 " ] && ! echo " $gids" | grep -q " 0 " \
	&& grep -q "running as user .*(uid $run_uid," "$tmp/agent.err"; then
	ok "switched to uid $run_uid after attaching, in all $nthreads threads (gid $gids)"
else
	bad "user switch: uids '$uids', gids '$gids': $(grep -i user "$tmp/agent.err")"
fi

# ---- traffic ----
# 3 MB/s: a shared, loaded CI machine must not make tcpdump (the reference) drop.
ip netns exec $ns_c curl -sk --max-time 60 --limit-rate 3M -o "$tmp/got.bin" https://$ip_s:4433/big.bin
if cmp -s "$tmp/got.bin" "$tmp/www/big.bin"; then ok "HTTPS download (6 MB)"; else bad "HTTPS download failed"; fi
ip netns exec $ns_c "$py" -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('$ip_c', 40004))
t0 = time.monotonic()
for i in range(200):   # 4 s at 50 packets/s, 160-byte payloads (20 ms audio frames)
    s.sendto(i.to_bytes(4, 'big') + bytes(156), ('$ip_s', 5004))
    time.sleep(max(0, t0 + (i + 1) * 0.02 - time.monotonic()))
"
# A flow the other side opens (inbound here): 20 datagrams to a closed port,
# answered by ICMP port-unreachable (counted as ICMP both by BPF and tshark).
ip netns exec $ns_s "$py" -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('$ip_s', 40006))
for i in range(20):
    s.sendto(bytes(60), ('$ip_c', 5006))
    time.sleep(0.01)
"
ip netns exec $ns_c ping -c 5 -i 0.2 -q $ip_s > /dev/null || bad "ping"
sleep 1

# What it cost (for the record, not a pass/fail: the machine is shared).
read -r ut st < <(awk '{print $14, $15}' /proc/$agent_pid/stat)
echo "info agent after $(grep -c . "$tmp/verdicts") verdict lines: peak RSS $(awk '/VmHWM/ {print $2, $3}' /proc/$agent_pid/status), CPU $(( (ut + st) * 1000 / $(getconf CLK_TCK) )) ms"

# ---- counters on SIGUSR1, then a clean stop ----
kill -USR1 $agent_pid
wait_for "$tmp/agent.err" '^{"counters"' 10 && ok "SIGUSR1 writes a counters line" || bad "no counters line on SIGUSR1"
sleep 0.5
kill -TERM $agent_pid
wait $agent_pid
rc=$?
[ $rc -eq 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit $rc: $(tail -3 "$tmp/agent.err")"
kill -INT $tcpdump_pid
wait $tcpdump_pid
# The reference must be whole, or the comparison says nothing.
if grep -q "^0 packets dropped by kernel" "$tmp/tcpdump.err"; then
	ok "tcpdump dropped nothing"
else
	bad "tcpdump dropped packets, the reference is incomplete: $(grep dropped "$tmp/tcpdump.err" | tr '\n' ' ')"
fi

nothing_attached() { # what
	local id left=""
	for id in $links; do
		bpftool link show id $id > /dev/null 2>&1 && left="$left $id"
	done
	if [ -n "$left" ]; then
		bad "$1: bpf_links still there:$left"
	elif ip -n $ns_c link show dev $if_c | grep -q xdp; then
		bad "$1: XDP still attached: $(ip -n $ns_c link show dev $if_c)"
	elif [ -n "$(tc -n $ns_c filter show dev $if_c egress 2> /dev/null)" ]; then
		bad "$1: TC filter left: $(tc -n $ns_c filter show dev $if_c egress)"
	elif ip netns exec $ns_c bpftool net show dev $if_c | grep -q "id "; then
		bad "$1: bpftool net: $(ip netns exec $ns_c bpftool net show dev $if_c)"
	else
		ok "$1: nothing left attached"
	fi
}
nothing_attached "after SIGTERM"

# ---- what the agent saw against what tcpdump saw ----
tshark -r "$tmp/cap.pcap" -n -T fields -E separator=, -e frame.protocols -e ip.src -e ip.dst \
	-e ip.proto -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport -e ip.len \
	-e tcp.len -e udp.length > "$tmp/tshark.csv" 2> "$tmp/tshark.err" || bad "tshark: $(cat "$tmp/tshark.err")"
"$py" - "$tmp/verdicts" "$tmp/agent.err" "$tmp/tshark.csv" "$tmp/store.jsonl" "$if_c" "$ip_c" \
	> "$tmp/compare.out" 2>&1 <<'EOF'
import json, sys
verdicts, agent_err, tsv, store, ifname, local = sys.argv[1:7]
fails = []
def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        fails.append(what)

# tcpdump's view, bidirectional 5-tuples
want, icmp = {}, 0
for line in open(tsv):
    f = line.rstrip("\n").split(",")
    protos, src, dst, proto = f[0], f[1], f[2], f[3]
    if "icmp" in protos.split(":"):
        icmp += 1
        continue
    if proto == "6":
        sp, dp, pay = int(f[4]), int(f[5]), int(f[9])
    elif proto == "17":
        sp, dp, pay = int(f[6]), int(f[7]), int(f[10]) - 8
    else:
        continue
    key = (int(proto), frozenset([(src, sp), (dst, dp)]))
    w = want.setdefault(key, [0, 0, 0])
    w[0] += 1
    w[1] += int(f[8])
    w[2] += pay

flows, blocks, got = [], [], {}
for line in open(verdicts):
    v = json.loads(line)
    if v["type"] == "block":
        blocks.append(v)
        continue
    flows.append(v)
    key = ({"tcp": 6, "udp": 17}[v["proto"]],
           frozenset([(v["src"], v["sport"]), (v["dst"], v["dport"])]))
    g = got.setdefault(key, [0, 0, 0])
    g[0] += v["packets"]
    g[1] += v["bytes"]
    g[2] += v["payload_bytes"]

check(set(got) == set(want), "same flows as tcpdump: agent %d, tcpdump %d" % (len(got), len(want)))
for key in sorted(want, key=lambda k: -want[k][0]):
    proto, ends = key
    name = "%s %s" % ({6: "tcp", 17: "udp"}[proto], " <-> ".join("%s:%d" % e for e in sorted(ends)))
    check(got.get(key) == want[key], "%s: agent packets/bytes/payload %s, tcpdump %s"
          % (name, got.get(key), want[key]))
big = [w for (p, _), w in want.items() if p == 6 and w[2] >= 6000000]
check(len(big) == 1, "the HTTPS download is one TCP flow carrying >= 6 MB")
udp = [w for (p, _), w in want.items() if p == 17 and w[0] == 200]
check(len(udp) == 1, "the UDP stream is one flow of 200 packets")
check(len(want) == 3, "3 flows: HTTPS, the UDP stream, the inbound datagrams")

counters = [json.loads(l)["counters"] for l in open(agent_err) if l.startswith('{"counters"')]
check(len(counters) == 2, "two counters lines (SIGUSR1, exit): %d" % len(counters))
c = counters[-1]
losses = {k: n for k, n in c.items() if ("lost" in k or k in (
    "skipped_flow_table_full", "cells_refused", "blocks_failed", "output_errors",
    "flows_untracked")) and n}
check(not losses, "zero loss counters %s" % (losses or ""))
check(c["packets"] == sum(w[0] for w in want.values()), "packets %d = tcpdump's TCP+UDP" % c["packets"])
check(c["capture_delivered"] == c["packets"], "capture_delivered = packets")
check(c["capture_skip_icmp"] == icmp, "ICMP skipped by BPF %d = tcpdump's %d" % (c["capture_skip_icmp"], icmp))
# 10 for the pings; port-unreachables are rate-limited by the kernel
check(icmp > 10, "pings and port-unreachables seen (%d ICMP)" % icmp)
check(c["capture_tcp_packets"] == c["packets_tcp"] and c["capture_udp_packets"] == c["packets_udp"],
      "per-protocol counts: BPF = userspace")
check(c["packets_ingress"] + c["packets_egress"] == c["packets"] and c["packets_egress"] > 0,
      "both directions seen (ingress %d, egress %d)" % (c["packets_ingress"], c["packets_egress"]))
check(c["flows"] == len(flows) == c["verdicts_flow"], "a verdict per flow (%d)" % len(flows))
check(len(blocks) == c["verdicts_block"] > 0, "block verdicts (%d)" % len(blocks))
check(all(f["early"] and f["class"] for f in flows), "flow verdicts marked early (shorter than a block)")
check(all(b["early"] for b in blocks), "block verdicts marked early (partial blocks)")

# The same verdicts at the collector, with interface and direction.
stored = [json.loads(l) for l in open(store)]
final = {s["flow_id"]: s for s in stored if s["stage"] == 3}
check(len(stored) == len(flows) + len(blocks) == c["stream.acked"],
      "collector stored every verdict (%d) and acknowledged them" % len(stored))
for f in flows:
    s = final.get(f["flow_id"], {})
    want_dir = 1 if f["src"] == local else 2   # outbound when this side opened it
    check(s.get("class_name") == f["class"] and s.get("packets_fwd") == f["packets_fwd"]
          and s.get("packets_rev") == f["packets_rev"] and s.get("interface") == ifname
          and s.get("direction") == want_dir,
          "collector: flow %d (%s:%d -> %s:%d) final verdict on %s, direction %s (want %d)"
          % (f["flow_id"], f["src"], f["sport"], f["dst"], f["dport"], s.get("interface"),
             s.get("direction"), want_dir))
check({1, 2} <= {s["direction"] for s in final.values()}, "both outbound and inbound flows")
sys.exit(1 if fails else 0)
EOF
rc=$?
cat "$tmp/compare.out"
pass=$((pass + $(grep -c '^ok' "$tmp/compare.out")))
fail=$((fail + $(grep -c '^FAIL' "$tmp/compare.out")))
[ $rc -eq 0 ] || [ "$(grep -c '^FAIL' "$tmp/compare.out")" -gt 0 ] || bad "comparison script: exit $rc"

# ---- a crash: kill -9 leaves nothing attached ----
ip netns exec $ns_c "$agent" --iface $if_c -v > /dev/null 2> "$tmp/agent2.err" &
agent_pid=$!
pids+=($agent_pid)
if wait_for "$tmp/agent2.err" "capabilities dropped" 30; then
	links=$(grep -h '^link_id:' /proc/$agent_pid/fdinfo/* 2> /dev/null | awk '{print $2}' | tr '\n' ' ')
	if [ "$(echo $links | wc -w)" -ge 2 ] && ip -n $ns_c link show dev $if_c | grep -q prog/xdp; then
		ok "second agent attached (links $links)"
	else
		bad "second agent: links '$links', $(ip -n $ns_c link show dev $if_c)"
	fi
	ip netns exec $ns_c ping -c 2 -i 0.2 -q $ip_s > /dev/null
	kill -9 $agent_pid
	wait $agent_pid 2> /dev/null
	# Links are released with the last reference: the process's fds.
	for i in 1 2 3 4 5 6 7 8 9 10; do
		ip -n $ns_c link show dev $if_c | grep -q xdp || break
		sleep 0.2
	done
	nothing_attached "after kill -9"
	ip netns exec $ns_c ping -c 2 -i 0.2 -q $ip_s > /dev/null && ok "traffic flows after kill -9" \
		|| bad "no traffic after kill -9"
else
	bad "second agent did not start: $(cat "$tmp/agent2.err")"
fi

# ---- the deadline sweep: a flow that goes quiet ends on time, no packet needed ----
# Its collector is away: the verdicts go to the spool, written as the new user.
ip netns exec $ns_c "$agent" --iface $if_c,lo -v --idle-timeout 2 --sweep 0.5 --sweep-lag 0.5 \
	--counters-every 1 --collector 127.0.0.1:1 --spool-dir "$tmp/spool3" --collector-wait 0.2 \
	> "$tmp/verdicts3" 2> "$tmp/agent3.err" &
agent_pid=$!
pids+=($agent_pid)
if wait_for "$tmp/agent3.err" "capabilities dropped" 30; then
	ip netns exec $ns_c "$py" -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('$ip_c', 40005))
for i in range(20):
    s.sendto(bytes(100), ('$ip_s', 5004))
    time.sleep(0.02)
"
	sent=$(date +%s.%N)
	# idle 2 s + lag 0.5 s + sweep period 0.5 s, and the agent running all along.
	if wait_for "$tmp/verdicts3" '"sport":40005.*"end":"idle"' 8; then
		took=$("$py" -c "import time; print('%.1f' % (time.time() - $sent))")
		ok "quiet flow ended by the sweep, ${took} s after its last packet (idle timeout 2 s)"
	else
		bad "quiet flow did not end while the agent ran: $(cat "$tmp/verdicts3")"
	fi
	# --counters-every 1: a line a second while it runs (it ran 3 s or more).
	n=$(grep -c '^{"counters"' "$tmp/agent3.err")
	[ "$n" -ge 2 ] && ok "--counters-every 1: $n lines so far" || bad "--counters-every: $n lines"
	# Two interfaces (the veth and lo): both attached, loopback traffic seen.
	ip netns exec $ns_c "$py" -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(7):
    s.sendto(bytes(10), ('127.0.0.1', 9))
"
	sleep 1
	kill -TERM $agent_pid
	wait $agent_pid || bad "third agent exit $?"
	if grep -q '"src":"127.0.0.1".*"dport":9,"packets":7,' "$tmp/verdicts3" \
		&& grep -q "lo: capturing" "$tmp/agent3.err"; then
		ok "two interfaces: the loopback flow seen on lo (7 packets)"
	else
		bad "two interfaces: $(grep -v '^{' "$tmp/agent3.err" | head -5)"
	fi
	segs=$(find "$tmp/spool3" -name 'seg-*.fps' -size +0 -uid $run_uid | wc -l)
	if [ "$segs" -ge 1 ] && grep -q "verdicts wait in the spool" "$tmp/agent3.err"; then
		ok "collector away: verdicts spooled by uid $run_uid ($segs segment(s))"
	else
		bad "spool as uid $run_uid: $segs segments; $(ls -ln "$tmp/spool3"); $(grep -i spool "$tmp/agent3.err")"
	fi
else
	bad "third agent did not start: $(cat "$tmp/agent3.err")"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
