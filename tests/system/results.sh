# results.sh - what the system test scripts share (sourced, not run): the
# pass/fail tally and check NAME COMMAND...; each script ends with its own
# summary line from $pass and $fail.
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { # name, then a command that must succeed
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}
