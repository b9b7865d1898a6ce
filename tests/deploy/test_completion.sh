#!/usr/bin/env bash
# The bash completion (deploy/completions/flowpic) against the built programs:
# subcommands, options read from each program's --help, class names.
# Usage: test_completion.sh BUILD_DIR
set -uo pipefail
build=$1
PATH=$build/cli:$build/agent:$build/collector:$build/stream:$PATH
# shellcheck disable=SC1091
source "$(dirname "$0")/../../deploy/completions/flowpic"
fail=0
# expect "WORDS..." "wanted completions" (the word being completed is the last)
expect() {
	local want=$1 f
	shift
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	f=$(complete -p "$1" | sed 's/.*-F \([^ ]*\).*/\1/')
	"$f" 2>/dev/null
	if [ "${COMPREPLY[*]}" = "$want" ]; then
		echo "ok   [$*] -> $want"
	else
		echo "FAIL [$*] -> '${COMPREPLY[*]}', want '$want'"
		fail=1
	fi
}
expect "classify" flowpic cl
expect "--min-block-packets= --min-confidence= --min-packets=" flowpic classify --mi
expect "query" flowpic-collector qu
expect "--class=" flowpic-collector query --cl
expect "video" flowpic-collector query --class vi
expect "--token-file= --token=" flowpic-send --tok
expect "--verbose --version --vote-ratio=" flowpic-agent --v
exit $fail
