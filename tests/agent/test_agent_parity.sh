#!/usr/bin/env bash
# Parity of live capture and replay (root): the agent must draw, from live
# traffic, the FlowPics that `flowpic` draws from tcpdump's capture of the
# same traffic on the same interface.
#
# Two network namespaces joined by a veth pair.  Traffic for about 18 s (one
# complete 15 s block) in both directions, spread over both CPUs (senders
# pinned to different CPUs; one UDP sender hops between CPUs mid-flow):
#   - a rate-limited HTTP download and a paced TCP upload (long flows);
#   - a UDP stream each way at 50 packets/s (long flows);
#   - 30 short HTTP requests and 30 UDP request/response pairs.
# The agent (--samples-out: every packet its flow table took) and tcpdump
# run on the client's interface.  tests/agent/parity.py then checks, per
# flow: the same initiator, the same packet and byte totals, every block's
# picture cell for cell (differences only from packets whose time falls
# across a bin edge, counted, < 0.1 %), the same class for every complete
# block, and reordered = merge_late = 0.
#
# Runs: each capture design (records, batches) with TSO/GSO off and on, and
# a negative control: batches without the merge (--no-merge) must fail the
# same checks, or the test could not see what it guards.
# Namespaces fpt-par-*, removed by a trap.  Traffic stays on the veth pair.
# Usage: test_agent_parity.sh AGENT FLOWPIC [RUNS]   (RUNS: e.g. "batches:off")
set -uo pipefail
agent=$1 flowpic=$2
runs=${3:-"records:off records:on batches:off batches:on batches:off:nomerge"}
py=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
ns_s=fpt-par-srv ns_c=fpt-par-cli
if_s=fpt-par-s0 if_c=fpt-par-c0
ip_s=10.198.78.1 ip_c=10.198.78.2
secs=${FPT_PARITY_SECONDS:-18}
tmp=$(mktemp -d /tmp/fpt-parity.XXXXXX)
keep_var=FPT_PARITY_KEEP
. "$(cd "$(dirname "$0")" && pwd)/netns_lib.sh"

[ -x "$agent" ] || die "no flowpic-agent binary at $agent"
[ -x "$flowpic" ] || die "no flowpic binary at $flowpic"
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, BPF); CI runs as root"
for t in ip tcpdump ethtool curl taskset; do
	command -v $t > /dev/null || die "$t is missing (scripts/install-deps.sh installs it)"
done
ncpu=$(nproc)
cpu_a=0 cpu_b=$((ncpu > 1 ? 1 : 0))

setup_net() { # tso: on|off (one_run's local)
	netns_pair "$tso"
	# RPS: the client's receive path spreads over every CPU.
	ip netns exec $ns_c sh -c "printf '%x' $(((1 << ncpu) - 1)) > /sys/class/net/$if_c/queues/rx-0/rps_cpus" 2> /dev/null
}

start_servers() {
	mkdir -p "$tmp/www"
	[ -f "$tmp/www/big.bin" ] || head -c 60000000 /dev/zero > "$tmp/www/big.bin"
	[ -f "$tmp/www/small.txt" ] || head -c 3000 /dev/zero > "$tmp/www/small.txt"
	(cd "$tmp/www" && exec ip netns exec $ns_s taskset -c $cpu_a "$py" -m http.server \
		--bind $ip_s 8080) > "$tmp/http.log" 2>&1 &
	pids+=($!)
	# TCP sink (the upload) and UDP echo (request/response pairs) and sink.
	ip netns exec $ns_s taskset -c $cpu_b "$py" "$here/parity_peer.py" server $ip_s \
		$((secs + 20)) > "$tmp/peer.log" 2>&1 &
	pids+=($!)
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q listening "$tmp/peer.log" 2> /dev/null &&
			ip netns exec $ns_c curl -s -o /dev/null http://$ip_s:8080/small.txt 2> /dev/null &&
			return 0
		sleep 0.1
	done
	die "the test servers did not start: $(cat "$tmp/http.log" "$tmp/peer.log")"
}


one_run() { # design tso [nomerge]
	local design=$1 tso=$2 nomerge=${3:-} name="$1 tso=$2${3:+ no-merge}" d="$tmp/$1-$2${3:+-$3}"
	local extra=() apid tpid
	mkdir -p "$d"
	[ -n "$nomerge" ] && extra=(--no-merge)
	setup_net
	start_servers
	ip netns exec $ns_c tcpdump -i $if_c -n -U -s 160 -B 16384 -w "$d/cap.pcap" \
		"ip and (tcp or udp)" 2> "$d/tcpdump.err" &
	tpid=$!
	pids+=($tpid)
	wait_for "$d/tcpdump.err" "listening on" 10 || die "tcpdump did not start: $(cat "$d/tcpdump.err")"
	ip netns exec $ns_c "$agent" --iface $if_c --design "$design" -v "${extra[@]}" \
		--samples-out "$d/samples.csv" > "$d/verdicts" 2> "$d/agent.err" &
	apid=$!
	pids+=($apid)
	wait_for "$d/agent.err" "capabilities dropped" 30 || die "the agent did not start: $(cat "$d/agent.err")"

	# ---- traffic: long flows in both directions on both CPUs, short flows ----
	ip netns exec $ns_c taskset -c $cpu_a curl -s --max-time $((secs + 2)) --limit-rate 1500K \
		-o /dev/null http://$ip_s:8080/big.bin &
	local cpid=$!
	ip netns exec $ns_c taskset -c $cpu_b "$py" "$here/parity_peer.py" client $ip_s $secs \
		$cpu_a $cpu_b > "$d/client.log" 2>&1
	wait $cpid 2> /dev/null
	sleep 1
	kill -TERM $apid
	wait $apid
	local rc=$?
	sleep 0.5
	kill -INT $tpid
	wait $tpid 2> /dev/null
	kill -9 "${pids[@]}" 2> /dev/null
	wait 2> /dev/null
	pids=()
	if [ $rc -ne 0 ]; then
		bad "$name: agent exited $rc: $(tail -3 "$d/agent.err")"
		return
	fi
	grep -q "dropped by kernel" "$d/tcpdump.err" &&
		! grep -q " 0 packets dropped by kernel" "$d/tcpdump.err" &&
		echo "note $name: tcpdump: $(grep 'dropped by kernel' "$d/tcpdump.err")"
	"$py" "$here/parity.py" --flowpic "$flowpic" --dir "$d" --name "$name" \
		${nomerge:+--expect-differences} > "$d/parity.out" 2>&1
	local prc=$?
	cat "$d/parity.out"
	if [ $prc -eq 0 ] && [ -n "$nomerge" ]; then
		ok "$name: live differs from the capture, as it must without the merge"
	elif [ $prc -eq 0 ]; then
		ok "$name: live = capture"
	elif [ -n "$nomerge" ]; then
		bad "$name: the negative control found no difference: the checks see nothing"
	else
		bad "$name: live differs from the capture"
	fi
}

for r in $runs; do
	IFS=: read -r design tso nomerge <<< "$r"
	one_run "$design" "$tso" "$nomerge"
done
echo "parity: $pass passed, $fail failed"
[ $fail -eq 0 ]
