#!/usr/bin/env bash
# bench/bpf/run.sh - the BPF capture benchmark, one run, four tables:
#  1. BPF cost per packet (bpf_prog_test_run_opts, repeat) of the capture's
#     XDP and TC programs in both designs against an empty XDP program;
#  2. the time-ordered merge's cost per packet (merge_cost), beside table 1's decode;
#  3. the rings at the fastest producer this host has: the XDP program run
#     back to back on CPU 0 (bpf_prog_test_run), the consumer on CPU 1;
#  4. packet rate over a veth pair: trafgen (netsniff-ng) in one network
#     namespace sends small UDP packets (60-byte frames) at fixed rates to
#     the other, where capture_count drains the capture attached to the
#     receiving veth; per design and rate: what was sent, what XDP saw, what
#     was delivered, the losses, the consumer's CPU and peak memory.
# Needs root.  Every run is bounded (packet count and time); the namespaces
# (fpt-bpf-*) are removed on exit.
#
# usage: bench/bpf/run.sh [BUILD_DIR] [SECONDS_PER_RUN] [RATES...]
#   FPT_CAPTURE_ARGS="--eager-wakeup" adds options to capture_count.
#   e.g. bench/bpf/run.sh build-bpf 3 250000 500000 1000000 2000000 max
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build-bpf}" && pwd)
secs=${2:-3}
shift $(( $# > 2 ? 2 : $# )) || true
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(250000 500000 1000000 1500000 2000000 max)
count_bin=$build/bench/bpf/capture_count
cost_bin=$build/bench/bpf/bpf_cost
merge_bin=$build/bench/bpf/merge_cost
for b in "$count_bin" "$cost_bin" "$merge_bin"; do
	[ -x "$b" ] || { echo "run.sh: $b missing: build the bench targets first" >&2; exit 1; }
done
command -v trafgen >/dev/null || { echo "run.sh: trafgen missing (apt-get install netsniff-ng)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (network namespaces, BPF)" >&2; exit 1; }

tag=$$
tx=fpt-bpf-tx-$tag
rx=fpt-bpf-rx-$tag
va=fptb${tag}a
vb=fptb${tag}b
tmp=$(mktemp -d /tmp/fpt-bpf-bench.XXXXXX)
cap_pid=
gen_pid=
cleanup() {
	[ -n "$cap_pid" ] && kill "$cap_pid" 2>/dev/null || true
	[ -n "$gen_pid" ] && kill "$gen_pid" 2>/dev/null || true
	ip netns del "$tx" 2>/dev/null || true
	ip netns del "$rx" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

echo "## BPF cost per packet (bpf_prog_test_run_opts, 1,000,000 runs, 64-byte UDP frame)"
echo
"$cost_bin" 1000000
echo

ip netns add "$tx"
ip netns add "$rx"
ip link add "$va" type veth peer name "$vb"
ip link set "$va" netns "$tx"
ip link set "$vb" netns "$rx"
ip -n "$tx" addr add 10.201.0.1/24 dev "$va"
ip -n "$rx" addr add 10.201.0.2/24 dev "$vb"
ip -n "$tx" link set "$va" up
ip -n "$rx" link set "$vb" up
ip -n "$tx" link set lo up
ip -n "$rx" link set lo up
echo "## The time-ordered merge per packet (bench/bpf/merge_cost: the batches design's arrival"
echo "## pattern simulated for 5 s, 256 flows over 2 CPUs, 200 ms batches; consumer CPU time),"
echo "## to read beside the decode column above"
echo
"$merge_bin" 100000 5 256
"$merge_bin" 1000000 5 256 | tail -1
"$merge_bin" 2000000 5 4096 | tail -1
echo

echo "## The rings under the fastest producer here (bpf_cost --stress 3: XDP program run back to back"
echo "## by bpf_prog_test_run on CPU 0, 256 flows; consumer draining the default 8 MiB rings on CPU 1)"
echo
"$cost_bin" --stress 3
echo

mac=$(ip -n "$rx" -br link show "$vb" | awk '{print $3}')
macb=$(echo "$mac" | sed 's/^/0x/; s/:/, 0x/g')
# 60-byte frame: Ethernet, IPv4 (total 46), UDP (length 26), 18 payload bytes.
cat > "$tmp/udp.cfg" <<EOF
{
  $macb, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, c16(0x0800),
  0x45, 0x00, c16(46), c16(0), c16(0x4000), 64, 17, csumip(14, 33),
  10, 201, 0, 1, 10, 201, 0, 2,
  c16(40000), c16(5004), c16(26), c16(0),
  fill(0x41, 18)
}
EOF

rx_packets() {
	ip netns exec "$rx" cat "/sys/class/net/$vb/statistics/rx_packets"
}
tx_packets() {
	ip netns exec "$tx" cat "/sys/class/net/$va/statistics/tx_packets"
}
json() { # json FILE KEY: a number from capture_count's JSON line
	/usr/bin/python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
k=sys.argv[2]
print(d["counters"][k] if k in d["counters"] else d[k])' "$1" "$2"
}

echo "## Packet rate over veth (trafgen -> XDP on the receiving veth; up to ${secs} s per run; capture consumer on CPU 1, trafgen on CPU 0)"
echo
echo "received pps: packets that reached the receiving veth per second of trafgen's run ('none': no"
echo "XDP at all, 'empty': an XDP program that only passes (bench/bpf/empty.bpf.c), both from"
echo "rx_packets; else the capture's ingress_frames counter)."

echo
echo "| design | XDP | offered pps | received pps | seen by XDP | UDP delivered | capture losses | consumer CPU % | consumer max RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|"
for design in none empty records batches batches-nomerge; do
	for rate in "${rates[@]}"; do
		if [ "$rate" = max ]; then
			n=$(( 3000000 * secs ))
			rate_opt=()
		else
			n=$(( rate * secs ))
			rate_opt=(-b "${rate}pps")
		fi
		if [ "$design" = empty ]; then
			ip -n "$rx" link set dev "$vb" xdpdrv obj "$build/bench/bpf/empty_bpf.bpf.o" sec xdp
		elif [ "$design" != none ]; then
			: > "$tmp/cap.err"
			# shellcheck disable=SC2086
			ip netns exec "$rx" taskset -c 1 "$count_bin" -i "$vb" --design "${design%-nomerge}" \
				$([ "$design" = batches-nomerge ] && echo --no-merge) \
				--no-egress ${FPT_CAPTURE_ARGS:-} > "$tmp/cap.json" 2> "$tmp/cap.err" &
			cap_pid=$!
			for _ in $(seq 100); do
				grep -q ready "$tmp/cap.err" && break
				kill -0 "$cap_pid" 2>/dev/null || break
				sleep 0.1
			done
			grep -q ready "$tmp/cap.err" || { cat "$tmp/cap.err" >&2; exit 1; }
			mode=$(grep -o 'XDP ingress [a-z]*' "$tmp/cap.err" | awk '{print $3}')
		fi
		# Bounded: n packets, or the time limit when veth cannot take them.
		rx0=$(rx_packets)
		t0=$(date +%s.%N)
		timeout -s INT $(( secs + 2 )) ip netns exec "$tx" taskset -c 0 trafgen -o "$va" \
			-i "$tmp/udp.cfg" -n "$n" -P 1 "${rate_opt[@]}" -C >/dev/null 2>&1 || true
		t1=$(date +%s.%N)
		sleep 0.5
		rx1=$(rx_packets)
		pps=$(/usr/bin/python3 -c "print('%.0f' % (($rx1-$rx0)/($t1-$t0)))")
		if [ "$design" = none ] || [ "$design" = empty ]; then
			[ "$design" = empty ] && ip -n "$rx" link set dev "$vb" xdpdrv off
			echo "| $design | $([ "$design" = empty ] && echo native || echo -) | $rate | $pps | - | - | - | - | - |"
			continue
		fi
		kill -INT "$cap_pid"
		wait "$cap_pid" || true
		cap_pid=
		seen=$(json "$tmp/cap.json" ingress_frames)
		deliv=$(json "$tmp/cap.json" udp)
		lost=$(( $(json "$tmp/cap.json" lost_ring_full) + $(json "$tmp/cap.json" lost_too_big) \
			+ $(json "$tmp/cap.json" lost_bad_record) + $(json "$tmp/cap.json" lost_unknown_slot) ))
		cpu=$(/usr/bin/python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print("%.1f" % (100*(d["cpu_user_s"]+d["cpu_sys_s"])/d["seconds"]))' "$tmp/cap.json")
		rss=$(( $(json "$tmp/cap.json" max_rss_kib) / 1024 ))
		pps=$(/usr/bin/python3 -c "print('%.0f' % ($seen/($t1-$t0)))")
		echo "| $design | $mode | $rate | $pps | $seen | $deliv | $lost | $cpu | $rss |"
	done
done
echo
echo "capture losses = lost_ring_full + lost_too_big + lost_bad_record + lost_unknown_slot."
echo "seen by XDP - UDP delivered = the namespace's own non-UDP frames (IPv6 ND) when losses are 0."
