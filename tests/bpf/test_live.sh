#!/usr/bin/env bash
# test_live.sh - the capture attached to a real veth between two network
# namespaces (root): UDP both ways (IPv4, IPv6), pings, a TCP download (GSO on egress).
# Checks: exact UDP packet and payload counts per direction, ICMP counted
# as skipped, zero loss counters, the TCP payload complete, GSO segments
# accounted; and nothing left attached after a clean exit, after SIGKILL
# (bpf_links die with the process), and a clear error for a missing
# interface.  Both designs, native and generic XDP, tcx and the netlink fallback.
# usage: test_live.sh CAPTURE_COUNT ATTACHED
set -euo pipefail
cc=$1
att=$2
[ "$(id -u)" = 0 ] || { echo "test_live: needs root (namespaces, BPF)" >&2; exit 1; }
py=/usr/bin/python3
tag=$$
a=fpt-bpf-a-$tag
b=fpt-bpf-b-$tag
va=fptl${tag}a
vb=fptl${tag}b
tmp=$(mktemp -d /tmp/fpt-bpf-live.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	ip netns del "$a" 2>/dev/null || true
	ip netns del "$b" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
fail() { echo "test_live: FAIL: $*" >&2; exit 1; }

ip netns add "$a"
ip netns add "$b"
ip link add "$va" type veth peer name "$vb"
ip link set "$va" netns "$a"
ip link set "$vb" netns "$b"
ip -n "$a" addr add 10.202.0.1/24 dev "$va"
ip -n "$b" addr add 10.202.0.2/24 dev "$vb"
ip -n "$a" addr add fd00:fb::1/64 dev "$va" nodad
ip -n "$b" addr add fd00:fb::2/64 dev "$vb" nodad
ip -n "$a" link set "$va" up
ip -n "$b" link set "$vb" up

cat > "$tmp/server.py" <<'PY'
import socket, sys, threading
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("10.202.0.2", 5004))
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u6.bind(("fd00:fb::2", 5006))
def v6():
    while True:
        d, peer = u6.recvfrom(2048)
        u6.sendto(d[:30], peer)     # reply: 30 bytes
threading.Thread(target=v6, daemon=True).start()
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("10.202.0.2", 8443))
t.listen(1)
def tcp():
    c, _ = t.accept()
    c.sendall(b"x" * 1048576)
    c.close()
threading.Thread(target=tcp, daemon=True).start()
print("up", flush=True)
while True:
    d, peer = u.recvfrom(2048)
    u.sendto(d[:50], peer)          # reply: 50 bytes
PY
cat > "$tmp/client.py" <<'PY'
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
for i in range(1000):
    u.sendto(b"q" * 100, ("10.202.0.2", 5004))
    u.recvfrom(2048)
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u6.settimeout(5)
for i in range(100):
    u6.sendto(b"s" * 70, ("fd00:fb::2", 5006))
    u6.recvfrom(2048)
t = socket.create_connection(("10.202.0.2", 8443), timeout=10)
n = 0
while True:
    d = t.recv(65536)
    if not d:
        break
    n += len(d)
assert n == 1048576, n
print("done", flush=True)
PY

num() { $py -c 'import json,sys
d=json.load(open(sys.argv[1])); k=sys.argv[2]
print(d["counters"][k] if k in d["counters"] else d[k])' "$1" "$2"; }

for design in batches records; do
	# Truncated here, not by the children's redirections: they may run late
	# and a poll loop would read the previous round's lines.
	: > "$tmp/cap.err"
	: > "$tmp/server.out"
	ip netns exec "$b" timeout 60 $py "$tmp/server.py" > "$tmp/server.out" &
	pids+=($!)
	# records with generic (skb) XDP, batches with native: both XDP paths.
	gen=()
	[ "$design" = records ] && gen=(--generic)
	ip netns exec "$b" timeout 60 "$cc" -i "$vb" --design "$design" "${gen[@]}" \
		> "$tmp/cap.json" 2> "$tmp/cap.err" &
	cap=$!
	pids+=($cap)
	for _ in $(seq 100); do
		grep -q ready "$tmp/cap.err" && grep -q up "$tmp/server.out" && break
		sleep 0.1
	done
	grep -q ready "$tmp/cap.err" || { cat "$tmp/cap.err" >&2; fail "capture did not start"; }
	want_mode=native
	[ "$design" = records ] && want_mode=generic
	grep -q "$vb: capturing (ifindex [0-9]*): XDP ingress $want_mode, TC egress tcx link" \
		"$tmp/cap.err" || fail "no per-interface log line with XDP $want_mode: $(cat "$tmp/cap.err")"
	[ "$(ip netns exec "$b" "$att" "$vb")" = "xdp=1 tcx_egress=1" ] ||
		fail "not attached: $(ip netns exec "$b" "$att" "$vb")"
	ip netns exec "$a" ping -c 5 -i 0.2 -q 10.202.0.2 >/dev/null
	ip netns exec "$a" timeout 60 $py "$tmp/client.py" | grep -q done || fail "traffic failed"
	sleep 0.5
	kill -INT "$cap"
	wait "$cap" || fail "capture_count exited with an error"
	kill "${pids[0]}" 2>/dev/null || true
	wait "${pids[0]}" 2>/dev/null || true
	pids=()
	[ "$(ip netns exec "$b" "$att" "$vb")" = "xdp=0 tcx_egress=0" ] ||
		fail "left attached after exit: $(ip netns exec "$b" "$att" "$vb")"
	udp=$(num "$tmp/cap.json" udp)
	bytes=$(num "$tmp/cap.json" payload_bytes)
	icmp=$(num "$tmp/cap.json" skip_icmp)
	gso=$(num "$tmp/cap.json" gso_super_packets)
	lost=$(( $(num "$tmp/cap.json" lost_ring_full) + $(num "$tmp/cap.json" lost_too_big) \
		+ $(num "$tmp/cap.json" lost_bad_record) + $(num "$tmp/cap.json" lost_unknown_slot) ))
	echo "test_live: $design: $(cat "$tmp/cap.json")"
	[ "$udp" = 2200 ] || fail "$design: $udp UDP packets, want 2200 (1000 + 100 IPv6 each way)"
	[ "$lost" = 0 ] || fail "$design: $lost packets lost"
	[ "$icmp" -ge 10 ] || fail "$design: $icmp ICMP skipped, want >= 10 (5 pings each way)"
	# UDP 1000 x 100 in + 1000 x 50 out, IPv6 100 x 70 in + 100 x 30 out;
	# TCP 1 MiB out (more only if something was retransmitted: allow 64 KiB).
	min=$(( 150000 + 10000 + 1048576 ))
	[ "$bytes" -ge "$min" ] && [ "$bytes" -le $(( min + 65536 )) ] ||
		fail "$design: payload bytes $bytes, want $min"
	[ "$gso" -gt 0 ] || echo "test_live: note: no GSO super-packet seen (TSO off on veth?)"
done

# A crash: SIGKILL leaves nothing attached (the links close with the fds).
# No timeout(1) wrapper here: $! must be capture_count itself ('ip netns
# exec' execs it); --seconds bounds it.
: > "$tmp/cap.err"
ip netns exec "$b" "$cc" -i "$vb" --seconds 60 > /dev/null 2> "$tmp/cap.err" &
cap=$!
for _ in $(seq 100); do grep -q ready "$tmp/cap.err" && break; sleep 0.1; done
[ "$(ip netns exec "$b" "$att" "$vb")" = "xdp=1 tcx_egress=1" ] || fail "not attached before kill"
kill -KILL "$cap"
wait "$cap" 2>/dev/null || true
for _ in $(seq 50); do
	[ "$(ip netns exec "$b" "$att" "$vb")" = "xdp=0 tcx_egress=0" ] && break
	sleep 0.1
done
[ "$(ip netns exec "$b" "$att" "$vb")" = "xdp=0 tcx_egress=0" ] ||
	fail "left attached after SIGKILL: $(ip netns exec "$b" "$att" "$vb")"

# The netlink (cls_bpf) fallback of kernels without tcx, forced: attached
# while running, removed at a clean exit; after SIGKILL it stays, and the
# next start replaces it (one filter, not two).
tcf() { ip netns exec "$b" tc filter show dev "$vb" egress | grep -c 'fp_tc' || true; }
run_nl() {
	: > "$tmp/cap.err"	# here, not in the child: it may truncate late
	FLOWPIC_CAPTURE_NO_TCX=1 ip netns exec "$b" "$cc" -i "$vb" --seconds 60 \
		> /dev/null 2> "$tmp/cap.err" &
	cap=$!
	for _ in $(seq 100); do grep -q ready "$tmp/cap.err" && break; sleep 0.1; done
	grep -q "TC egress cls_bpf (netlink)" "$tmp/cap.err" || fail "netlink fallback not taken"
}
run_nl
[ "$(tcf)" = 1 ] || fail "netlink: $(tcf) filters while running, want 1"
kill -INT "$cap"; wait "$cap" || fail "netlink: exit status"
[ "$(tcf)" = 0 ] || fail "netlink: filter left after a clean exit"
run_nl
kill -KILL "$cap"; wait "$cap" 2>/dev/null || true
[ "$(tcf)" = 1 ] || fail "netlink: $(tcf) filters after SIGKILL, want the stale 1"
run_nl
[ "$(tcf)" = 1 ] || fail "netlink: $(tcf) filters after a restart, want 1"
kill -INT "$cap"; wait "$cap" || fail "netlink: exit status"
[ "$(tcf)" = 0 ] || fail "netlink: filter left after the restart's exit"

# A missing interface: one clear line, non-zero exit.
if ip netns exec "$b" "$cc" -i fpt-bpf-nosuch > /dev/null 2> "$tmp/err"; then
	fail "a missing interface did not fail"
fi
grep -q "interface 'fpt-bpf-nosuch' does not exist" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
# Without capabilities (as nobody): one clear line naming the capability.
# (A copy in the temporary directory: the build tree may be closed to nobody.)
chmod 755 "$tmp"
cp "$cc" "$tmp/cc"
chmod 755 "$tmp/cc"
if setpriv --reuid=65534 --regid=65534 --clear-groups "$tmp/cc" -i lo > /dev/null 2> "$tmp/err"; then
	fail "no capabilities, yet capture_count ran"
fi
grep -q "missing capability CAP_BPF" "$tmp/err" || fail "unclear capability error: $(cat "$tmp/err")"
echo "test_live: ok"
