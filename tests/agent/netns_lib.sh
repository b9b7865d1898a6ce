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
