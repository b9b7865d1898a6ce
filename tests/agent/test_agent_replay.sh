#!/usr/bin/env bash
# Replay test: `flowpic-agent --pcap FILE` runs the packets of real captures
# through the agent's one packet path, and must print exactly the block and
# flow verdict lines of `flowpic classify --json --blocks FILE` (same flow
# table, same classifier, same JSON writer), with counters that account for
# every record as classify's summary does.  Settings given as flags or in a
# config file must give the same output.
# Usage: test_agent_replay.sh AGENT FLOWPIC DEMO_CAPTURE SHARED_DATA_DIR
set -uo pipefail
agent=$1 flowpic=$2 demo=$3 data=$4
py=/usr/bin/python3
tmp=$(mktemp -d /tmp/fpt-agent-replay.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

[ -x "$agent" ] || { echo "no flowpic-agent binary at $agent"; exit 1; }
[ -x "$flowpic" ] || { echo "no flowpic binary at $flowpic"; exit 1; }
[ -f "$demo" ] || { echo "no demo capture at $demo"; exit 1; }
ls "$data"/requet/*.pcap.xz > /dev/null 2>&1 || { echo "no captures in $data/requet"; exit 1; }

# Counters line (stderr) against classify's summary line: every record
# accounted the same way.
check_counters() { # counters-file summary-file
	"$py" - "$1" "$2" <<'EOF'
import json, sys
c = [json.loads(l)["counters"] for l in open(sys.argv[1]) if l.startswith('{"counters"')]
s = [o for o in map(json.loads, open(sys.argv[2])) if o["type"] == "summary" and "file" in o]
assert len(c) == 1 and len(s) == 1, (len(c), len(s))
c, s = c[0], s[0]
want = {"packets": s["tcp"] + s["udp"], "packets_tcp": s["tcp"], "packets_udp": s["udp"],
        "flows": s["flows"], "blocks": s["blocks"], "samples": s["samples"],
        "oversize": s["oversize"], "cells_refused": s["cells_refused"], "flows_active": 0}
for reason, n in s["skipped"].items():
    want["skipped_" + reason] = n
bad = {k: (c.get(k), v) for k, v in want.items() if c.get(k) != v}
assert not bad, bad
# every record: a packet or a skip
assert c["packets"] + sum(v for k, v in c.items() if k.startswith("skipped_")) \
    - c["skipped_flow_table_full"] == s["records"], (c, s["records"])
assert c["verdicts_block"] == s["blocks"] and c["verdicts_flow"] == s["flows"], c
EOF
}

# One capture: the agent's stdout is classify's output minus the summary lines.
compare() { # name file [agent/classify flags...]
	local name=$1 f=$2
	shift 2
	"$agent" --pcap "$f" "$@" > "$tmp/agent.out" 2> "$tmp/agent.err"
	local rc=$?
	"$flowpic" classify --json --blocks "$@" "$f" > "$tmp/classify.all" 2> /dev/null
	grep -v '"type":"summary"}$' "$tmp/classify.all" > "$tmp/classify.out"
	if [ "$rc" -ne 0 ]; then
		bad "$name: agent exit $rc: $(head -c 300 "$tmp/agent.err")"
	elif [ ! -s "$tmp/agent.out" ]; then
		bad "$name: no verdicts"
	elif ! cmp -s "$tmp/agent.out" "$tmp/classify.out"; then
		bad "$name: verdicts differ from flowpic classify: $(diff "$tmp/agent.out" "$tmp/classify.out" | head -4)"
	elif ! err=$(check_counters "$tmp/agent.err" "$tmp/classify.all" 2>&1); then
		bad "$name: counters: $(echo "$err" | tail -1)"
	else
		ok "$name ($(wc -l < "$tmp/agent.out") verdict lines)"
	fi
}

compare "demo capture" "$demo"
lab=$(dirname "$demo")/lab-mix.pcap.xz
[ -f "$lab" ] && compare "lab mix (7 sessions)" "$lab"
# Every third Requet capture (24 of 70; FPT_AGENT_REPLAY_ALL=1: all): the
# sanitizer build takes about 4 s per capture for the two programs.
i=0
for f in "$data"/requet/*.pcap.xz; do
	if [ -n "${FPT_AGENT_REPLAY_ALL:-}" ] || [ $((i % 3)) -eq 0 ]; then
		compare "requet $(basename "$f")" "$f"
	fi
	i=$((i + 1))
done
# Settings that change flows and blocks change both the same way.
f=$(ls "$data"/requet/*.pcap.xz | head -1)
compare "idle timeout 5 s" "$f" --idle-timeout 5
compare "small flow table (4 flows)" "$f" --max-flows 4
compare "verdict rule (--vote-ratio 0.3 --min-confidence 0.8)" "$lab" --vote-ratio 0.3 --min-confidence 0.8

# Flow verdicts only: classify --json without --blocks.
"$agent" --pcap "$demo" --flow-verdicts-only > "$tmp/a" 2> /dev/null
"$flowpic" classify --json "$demo" 2> /dev/null | grep -v '"type":"summary"}$' > "$tmp/c"
if cmp -s "$tmp/a" "$tmp/c" && [ -s "$tmp/a" ]; then ok "--flow-verdicts-only"; else bad "--flow-verdicts-only"; fi

# The same settings from a config file, and flags over the file.
cat > "$tmp/agent.conf" <<EOF
# replay through a config file
pcap = "$f"
idle-timeout = 5
flow-verdicts-only = true
EOF
"$agent" -c "$tmp/agent.conf" > "$tmp/a" 2> /dev/null
"$agent" --pcap "$f" --idle-timeout 5 --flow-verdicts-only > "$tmp/b" 2> /dev/null
if cmp -s "$tmp/a" "$tmp/b" && [ -s "$tmp/a" ]; then ok "config file = flags"; else bad "config file = flags"; fi
"$agent" -c "$tmp/agent.conf" --idle-timeout 120 --flow-verdicts-only=false > "$tmp/a" 2> /dev/null
"$agent" --pcap "$f" > "$tmp/b" 2> /dev/null
if cmp -s "$tmp/a" "$tmp/b" && [ -s "$tmp/a" ]; then ok "flags override the config file"; else bad "flags override the config file"; fi
"$agent" -c "$tmp/agent.conf" --idle-timeout 7 --print-config > "$tmp/p" 2> /dev/null
if grep -qx "idle-timeout = 7" "$tmp/p" && grep -qx "flow-verdicts-only = true" "$tmp/p"; then
	ok "--print-config shows file and flags merged"
else
	bad "--print-config: $(cat "$tmp/p")"
fi

# The example config file parses, with its commented settings too.
example=$(dirname "$0")/../../agent/agent.conf.example
sed 's/^# \([a-z-]* = \)/\1/' "$example" > "$tmp/all.conf"
if "$agent" -c "$example" --print-config > /dev/null 2> "$tmp/e1" \
	&& "$agent" -c "$tmp/all.conf" --print-config > "$tmp/p" 2> "$tmp/e2" \
	&& grep -q '^collector = "collector.example:4317"' "$tmp/p" && grep -q '^vote-ratio = 0.7' "$tmp/p"; then
	ok "agent/agent.conf.example parses (all $(grep -c ' = ' "$tmp/all.conf") settings)"
else
	bad "agent.conf.example: $(cat "$tmp/e1" "$tmp/e2")"
fi

# Counters to a file, not stderr.
"$agent" --pcap "$demo" --counters-file "$tmp/counters" > /dev/null 2> "$tmp/err"
if grep -q '^{"counters":{"packets":' "$tmp/counters" && ! grep -q counters "$tmp/err"; then
	ok "--counters-file"
else
	bad "--counters-file"
fi

# A closed stdout is counted, not fatal: the counters still come.
"$agent" --pcap "$demo" 2> "$tmp/err" >&-
if grep -q '"output_errors":[1-9]' "$tmp/err"; then ok "closed stdout counted"; else bad "closed stdout: $(tail -c 300 "$tmp/err")"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
