#!/usr/bin/env bash
# Make data/demo.pcap.xz, the small capture the README's main job classifies:
# real traffic between two network namespaces joined by a veth pair, captured
# with headers only.  About 70 s.  Needs root, iproute2, tcpdump, curl, python3.
#
# Flows: an HTTP download through a 1.2 Mbit/s link (file transfer), a UDP
# G.711-shaped call (voip), and a TCP chat with typing pauses (chat).
# The model/lab issue builds the full traffic lab; this is only the demo.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../data/demo.pcap.xz}
ns_c=fpdemo-cli$$ ns_s=fpdemo-srv$$
work=$(mktemp -d)

cleanup() {
	set +e
	[ -n "${pids:-}" ] && kill $pids 2>/dev/null
	wait 2>/dev/null
	ip netns del "$ns_c" 2>/dev/null
	ip netns del "$ns_s" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns_c"
ip netns add "$ns_s"
ip link add fpd-c type veth peer name fpd-s
ip link set fpd-c netns "$ns_c"
ip link set fpd-s netns "$ns_s"
ip -n "$ns_c" addr add 10.77.0.1/24 dev fpd-c
ip -n "$ns_s" addr add 10.77.0.2/24 dev fpd-s
for n in "$ns_c" "$ns_s"; do
	ip -n "$n" link set lo up
done
ip -n "$ns_c" link set fpd-c up
ip -n "$ns_s" link set fpd-s up
# No offloads: the capture shows wire-sized segments.
ip netns exec "$ns_c" ethtool -K fpd-c tso off gso off gro off >/dev/null
ip netns exec "$ns_s" ethtool -K fpd-s tso off gso off gro off >/dev/null
# The link, not the client, limits the download: shaping at the sender's
# interface paces packets on the wire as a slow link does (curl's own
# --limit-rate only slows its reads, and the socket buffers fill in a burst).
tc -n "$ns_s" qdisc add dev fpd-s root tbf rate 1200kbit burst 16kb latency 300ms

head -c 9000000 /dev/urandom > "$work/file.bin"
pids=""
ip netns exec "$ns_c" tcpdump -i fpd-c -s 96 -w "$work/demo.pcap" -U 2>/dev/null &
pids="$pids $!"
sleep 1
ip netns exec "$ns_s" /usr/bin/python3 -m http.server 8080 --bind 10.77.0.2 -d "$work" \
	>/dev/null 2>&1 &
pids="$pids $!"
ip netns exec "$ns_s" /usr/bin/python3 "$here/demo_peers.py" voip server - 5004 62 1 &
pids="$pids $!"
ip netns exec "$ns_s" /usr/bin/python3 "$here/demo_peers.py" chat server - 5222 62 2 &
pids="$pids $!"
sleep 1
ip netns exec "$ns_c" /usr/bin/python3 "$here/demo_peers.py" voip client 10.77.0.2 5004 60 3 &
c1=$!
ip netns exec "$ns_c" /usr/bin/python3 "$here/demo_peers.py" chat client 10.77.0.2 5222 60 4 &
c2=$!
ip netns exec "$ns_c" curl -s -o /dev/null http://10.77.0.2:8080/file.bin &
c3=$!
wait $c1 $c2
kill $c3 2>/dev/null || true
sleep 1
kill $pids 2>/dev/null || true
wait 2>/dev/null || true
pids=""
xz -9e -c "$work/demo.pcap" > "$out"
echo "wrote $out ($(stat -c %s "$out") bytes)"
