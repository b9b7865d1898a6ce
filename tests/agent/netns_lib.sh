# netns_lib.sh - what the agent's namespace tests share (sourced, not run):
# results (ok/bad/die), a cleanup that kills the test's processes, removes
# its two namespaces and its temp folder (kept when $KEEP_VAR is set), and
# wait_for.  The caller sets ns_s, ns_c, tmp and keep_var first.
pids=()
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
die() { echo "FAIL $1"; exit 1; }

cleanup() {
	local p
	for p in "${pids[@]}"; do kill -9 "$p" 2> /dev/null; done
	wait 2> /dev/null
	ip netns del "$ns_s" 2> /dev/null
	ip netns del "$ns_c" 2> /dev/null
	[ -n "${!keep_var:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for FILE PATTERN SECONDS: until FILE holds PATTERN, or fail.
wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -q -- "$2" "$1" 2> /dev/null && return 0
		sleep 0.1
	done
	return 1
}

# netns_pair TSO: (re)create the two namespaces joined by a veth pair, with
# addresses, IPv6 off and GRO off on both ends (tcpdump then sees frames as
# the peer sent them); TSO/GSO on or off as asked.  Needs ns_s, ns_c, if_s,
# if_c, ip_s, ip_c.
netns_pair() {
	local side tso=$1
	ip netns del "$ns_s" 2> /dev/null
	ip netns del "$ns_c" 2> /dev/null
	ip netns add "$ns_s" && ip netns add "$ns_c" || die "cannot create network namespaces"
	ip link add "$if_c" netns "$ns_c" type veth peer name "$if_s" netns "$ns_s" ||
		die "cannot create the veth pair"
	for side in "$ns_s $if_s $ip_s" "$ns_c $if_c $ip_c"; do
		set -- $side
		ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
		ip -n "$1" addr add "$3/24" dev "$2"
		ip -n "$1" link set lo up
		ip -n "$1" link set "$2" up
		ip netns exec "$1" ethtool -K "$2" tso "$tso" gso "$tso" gro off > /dev/null 2>&1
	done
}
