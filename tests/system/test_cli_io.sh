#!/usr/bin/env bash
# System test of issue 17's command-line parts: standard input ('-', pipes,
# FIFOs, /dev/stdin) for every command that reads a capture, streaming and
# not seekable; the block window from the model everywhere; the verdict in
# render's title; export's .part files; a classify table that fits 120
# columns (--wide for everything); --version on every subcommand; help
# examples that print whole.
# Usage: test_cli_io.sh FLOWPIC FLOWPIC_AGENT DEMO_CAPTURE
set -uo pipefail
flowpic=$1 agent=$2 demo=$3
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=results.sh
. "$(dirname "$0")/results.sh"
expect_fail() { # name, expected status, stderr pattern, args... (stdin as given)
	local name=$1 want=$2 pat=$3
	shift 3
	"$flowpic" "$@" > "$tmp/out" 2> "$tmp/err"
	local rc=$?
	if [ "$rc" -eq "$want" ] && grep -q -- "$pat" "$tmp/err"; then
		ok "$name"
	else
		bad "$name (exit $rc, stderr: $(head -c 300 "$tmp/err"))"
	fi
}
# JSON lines without the fields that name the input (summary file, format).
strip_name() {
	$py -c 'import json,sys
for l in sys.stdin:
    o = json.loads(l)
    if o["type"] == "summary":
        for k in ("file", "format", "linktype"): o.pop(k)
    print(json.dumps(o, sort_keys=True))'
}

for t in xz gzip tcpdump editcap mkfifo; do
	command -v $t > /dev/null || { echo "missing $t"; exit 1; }
done
xz -dc "$demo" > "$tmp/demo.pcap"
gzip -c "$tmp/demo.pcap" > "$tmp/demo.pcap.gz"
editcap -F pcapng "$tmp/demo.pcap" "$tmp/demo.pcapng"
"$flowpic" export -q "$tmp/demo.pcap" -o "$tmp/demo.csv"

# --- 1. standard input: the same verdicts as the file ---
"$flowpic" classify --json "$tmp/demo.pcap" | strip_name > "$tmp/want.json"
check "classify on the file gives flows" grep -q '"class"' "$tmp/want.json"
same_as_file() { # name, then a shell pipeline whose output is classify --json's
	local name=$1
	bash -c "$2" 2> "$tmp/pipe.err" | strip_name > "$tmp/got.json"
	if cmp -s "$tmp/want.json" "$tmp/got.json"; then
		ok "$name"
	else
		bad "$name ($(head -c 300 "$tmp/pipe.err"))"
	fi
}
same_as_file "xz -dc | classify -" "xz -dc '$demo' | '$flowpic' classify --json -"
same_as_file "cat FILE.xz | classify - (xz on a pipe)" "cat '$demo' | '$flowpic' classify --json -"
same_as_file "gzip on a pipe" "cat '$tmp/demo.pcap.gz' | '$flowpic' classify --json -"
same_as_file "pcapng on a pipe" "cat '$tmp/demo.pcapng' | '$flowpic' classify --json -"
same_as_file "pcapng, xz, on a pipe" "xz -c '$tmp/demo.pcapng' | '$flowpic' classify --json -"
same_as_file "tcpdump -w - | classify -" \
	"tcpdump -r '$tmp/demo.pcap' -w - 2>/dev/null | '$flowpic' classify --json -"
same_as_file "/dev/stdin" "'$flowpic' classify --json /dev/stdin < '$demo'"
# Several inputs add "file" to the lines.
cat "$demo" | "$flowpic" classify --json "$tmp/demo.pcap" - > "$tmp/two.json"
check "classify FILE -: both read, stdin named (stdin)" $py - "$tmp/two.json" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
files = [l["file"] for l in lines if l["type"] == "summary" and "file" in l]
assert len(files) == 2 and files[1] == "(stdin)", files
flows = [l for l in lines if "class" in l]
assert {f["file"] for f in flows} == {files[0], "(stdin)"}, flows[:1]
PY
mkfifo "$tmp/fifo"
cat "$tmp/demo.pcap.gz" > "$tmp/fifo" &
same_as_file "a named pipe (gzip)" "'$flowpic' classify --json '$tmp/fifo'"
wait
# The CSV holds only the TCP/UDP records: compare with the CSV file.
"$flowpic" classify --json "$tmp/demo.csv" | strip_name > "$tmp/want.json"
same_as_file "samples CSV on a pipe" "cat '$tmp/demo.csv' | '$flowpic' classify --json -"
same_as_file "samples CSV, gzip, on a pipe" "gzip -c '$tmp/demo.csv' | '$flowpic' classify --json -"

"$flowpic" flows --json "$tmp/demo.pcap" | strip_name > "$tmp/flows_want.json"
xz -dc "$demo" | "$flowpic" flows --json - | strip_name > "$tmp/flows_got.json"
check "flows -: the same flows and summary" cmp -s "$tmp/flows_want.json" "$tmp/flows_got.json"
"$flowpic" export -q "$tmp/demo.pcap" --format npy -o "$tmp/e_file"
cat "$demo" | "$flowpic" export -q - --format npy -o "$tmp/e_pipe"
check "export -: the same pictures" cmp -s "$tmp/e_file.npy" "$tmp/e_pipe.npy"
check "export -: the same index" cmp -s "$tmp/e_file.index.csv" "$tmp/e_pipe.index.csv"
cat "$demo" | "$flowpic" export -q - -o - > "$tmp/pipe.csv"
check "export - -o -: the samples CSV" cmp -s "$tmp/demo.csv" "$tmp/pipe.csv"
"$flowpic" render -q "$tmp/demo.pcap" --flow 3 --block 1 -o "$tmp/r_file.png"
cat "$demo" | "$flowpic" render -q - --flow 3 --block 1 -o "$tmp/r_pipe.png"
check "render -: the same PNG" cmp -s "$tmp/r_file.png" "$tmp/r_pipe.png"

"$agent" --pcap "$tmp/demo.pcap" > "$tmp/agent_file.json" 2> /dev/null
xz -dc "$demo" | "$agent" --pcap - > "$tmp/agent_pipe.json" 2> "$tmp/agent.err"
check "flowpic-agent --pcap -: the same verdicts" \
	bash -c "[ -s '$tmp/agent_file.json' ] && cmp -s '$tmp/agent_file.json' '$tmp/agent_pipe.json'"
# Streaming: verdicts of blocks already over come out before the input ends.
{ cat "$tmp/demo.pcap.gz"; sleep 6; } | "$agent" --pcap - > "$tmp/live.json" 2> /dev/null &
live=$!
n=0
for _ in $(seq 40); do
	n=$(grep -c '"type":"block"' "$tmp/live.json")
	[ "$n" -gt 0 ] && break
	sleep 0.1
done
check "flowpic-agent --pcap -: block verdicts before the end of a gzip pipe ($n)" test "$n" -gt 0
wait $live

: | expect_fail "empty stdin: named (stdin)" 1 "(stdin): empty file" flows -
printf 'GARBAGE\001\002' | expect_fail "garbage on stdin: named (stdin)" 1 \
	"(stdin): not a pcap, pcapng or flowpic samples CSV" classify -
head -c 3000 "$demo" | expect_fail "xz cut short on stdin: exit 3" 3 "(stdin).*xz data ends early" flows -
expect_fail "'-' twice refused" 2 "given twice" classify - - < /dev/null

# --- 2. windows from the model ---
"$flowpic" classify --json "$tmp/demo.pcap" > "$tmp/c.json"
"$flowpic" flows --json "$tmp/demo.pcap" > "$tmp/f.json"
check "flows counts the blocks classify judges (model window)" $py - "$tmp/c.json" "$tmp/f.json" <<'PY'
import json, sys
c = {l["flow_id"]: l["blocks"] for l in map(json.loads, open(sys.argv[1])) if l["type"] == "flow"}
f = {l["flow_id"]: l["blocks"] for l in map(json.loads, open(sys.argv[2])) if l["type"] == "flow"}
assert c == f and max(f.values()) == 5, (c, f)
PY
expect_fail "classify --window 60 (the old default) refused" 2 "window 60.*15 s blocks" \
	classify --window 60 "$tmp/demo.pcap"
expect_fail "classify --window 30 refused" 2 "window 30" classify --window 30 "$tmp/demo.pcap"
expect_fail "classify --res 64 refused" 2 "res 64" classify --res 64 "$tmp/demo.pcap"
expect_fail "classify --hop 5 refused" 2 "hop" classify --hop 5 "$tmp/demo.pcap"
"$flowpic" classify --json --window 15 --res 32 --hop 15 "$tmp/demo.pcap" > "$tmp/c15.json"
check "classify --window 15 --res 32 --hop 15 (the model's) accepted" cmp -s "$tmp/c.json" "$tmp/c15.json"
"$flowpic" flows --json --window 60 "$tmp/demo.pcap" > "$tmp/f60.json"
check "flows --window 60 still draws 60 s blocks when asked" $py - "$tmp/f60.json" <<'PY'
import json, sys
f = {l["flow_id"]: l["blocks"] for l in map(json.loads, open(sys.argv[1])) if l["type"] == "flow"}
assert f[3] == 2, f
PY

# render: the model's blocks, the verdict in the title (PNG tEXt "Title").
title() {
	$py - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
i = 8
while i < len(d):
    n, t = struct.unpack(">I4s", d[i:i + 8])
    if t == b"tEXt":
        k, v = d[i + 8:i + 8 + n].split(b"\0", 1)
        if k == b"Title":
            print(v.decode("latin-1"))
    i += 12 + n
PY
}
"$flowpic" classify --json --blocks "$tmp/demo.pcap" > "$tmp/b.json"
for fb in "3 0" "3 4" "1 2" "2 0"; do
	set -- $fb
	if "$flowpic" render -q "$tmp/demo.pcap" --flow $1 --block $2 -o "$tmp/r.png" 2> "$tmp/err"; then
		t=$(title "$tmp/r.png")
		want=$($py - "$tmp/b.json" $1 $2 <<'PY'
import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    b = o
    if b["type"] == "block" and b["flow_id"] == int(sys.argv[2]) and b["block_index"] == int(sys.argv[3]):
        print("%s %.2f" % (b["class"], b["confidence"]) if b["reason"] == "ok"
              else "unknown (%s" % b["reason"])
PY
)
		case "$t" in
		"$want"*) ok "render flow $1 block $2: title starts with classify's verdict '$want' ($t)" ;;
		*) bad "render flow $1 block $2: title '$t', classify says '$want'" ;;
		esac
	else
		bad "render flow $1 block $2 ($(cat "$tmp/err"))"
	fi
done
"$flowpic" render -q "$tmp/demo.pcap" --flow 3 --window 60 -o "$tmp/r60.png"
t=$(title "$tmp/r60.png")
case "$t" in
"no verdict (60 s"*) ok "render --window 60: drawn, the title says no verdict ($t)" ;;
*) bad "render --window 60: title '$t'" ;;
esac

# --- 3. export: .part files, renamed at the end ---
expect_fail "export of a mistyped input" 1 "cannot open" export "$tmp/nope.pcap" --format npy -o "$tmp/m"
check "export of a mistyped input leaves no file" \
	bash -c "! ls '$tmp'/m.* 2>/dev/null | grep -q ."
# Interrupted while reading a FIFO: no output and no .part left.  (Not
# SIGINT: a background job of a script starts with it ignored.)
for sig in TERM HUP; do
	rm -f "$tmp/fifo2"
	mkfifo "$tmp/fifo2"
	"$flowpic" export -q "$tmp/fifo2" --format npy -o "$tmp/int" &
	pid=$!
	exec 3> "$tmp/fifo2"
	head -c 100000 "$tmp/demo.pcap" >&3
	for _ in $(seq 50); do [ -e "$tmp/int.npy.part" ] && break; sleep 0.1; done
	seen=$([ -e "$tmp/int.npy.part" ] && echo yes || echo no)
	kill -$sig $pid
	wait $pid
	rc=$?
	exec 3>&-
	check "export interrupted by SIG$sig (exit $rc, .part seen: $seen): no file, no .part" \
		bash -c "[ $seen = yes ] && [ $rc -gt 128 ] && ! ls '$tmp'/int.* 2>/dev/null | grep -q ."
done
"$flowpic" export -q "$tmp/demo.pcap" --format sparse -o "$tmp/done"
check "export done: the files renamed, no .part" \
	bash -c "[ -s '$tmp/done.cells.npy' ] && [ -s '$tmp/done.index.csv' ] && ! ls '$tmp'/done.*.part 2>/dev/null | grep -q ."

# --- 4. the classify table fits 120 columns; --wide prints everything ---
widest() { awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$1"; }
"$flowpic" classify --blocks "$tmp/demo.pcap" > "$tmp/t4.txt"
w=$(widest "$tmp/t4.txt")
check "IPv4 table: at most 120 columns ($w)" test "$w" -le 120
sed -e 's/10\.77\.0\.1/2001:db8:85a3:1234:5678:8a2e:370:7334/g' \
	-e 's/10\.77\.0\.2/fd00:abcd:ef01:2345:6789:abcd:ef01:2345/g' "$tmp/demo.csv" > "$tmp/v6.csv"
"$flowpic" classify --blocks "$tmp/v6.csv" > "$tmp/t6.txt"
w=$(widest "$tmp/t6.txt")
check "IPv6 table: at most 120 columns ($w)" test "$w" -le 120
check "IPv6 table: addresses elided in the middle, ports kept" \
	grep -q '\[2001:db[0-9a-f:]*\.\.[0-9a-f:]*7334\]:59640' "$tmp/t6.txt"
"$flowpic" classify --wide "$tmp/v6.csv" > "$tmp/w6.txt"
check "--wide: whole IPv6 addresses and every column" bash -c "
	grep -q '\[2001:db8:85a3:1234:5678:8a2e:370:7334\]:59640' '$tmp/w6.txt' &&
	head -1 '$tmp/w6.txt' | grep -q 'BYTES.*START.*BLOCKS.*VOTING.*SPARSE.*CLASS.*TOP.*CONF.*REASON'"
check "narrow and wide tables: the same verdicts" bash -c "
	diff <(awk '/^ *[0-9]/ {print \$1, \$7}' '$tmp/t6.txt') \
	     <(awk '/^ *[0-9]/ {print \$1, \$12}' '$tmp/w6.txt')"

# --- 5. --version on every subcommand ---
"$flowpic" --version > "$tmp/v"
for cmd in flows export render classify; do
	"$flowpic" $cmd --version > "$tmp/vc" 2>&1
	rc=$?
	check "$cmd --version = flowpic --version" bash -c "[ $rc -eq 0 ] && [ -s '$tmp/v' ] && cmp -s '$tmp/v' '$tmp/vc'"
done

# --- help that prints whole in 80 columns ---
for cmd in "" flows export render classify; do
	"$flowpic" $cmd --help > "$tmp/h"
	check "flowpic $cmd --help: no line over 79 columns, no blank-but-spaces line" \
		awk 'length($0) > 79 || /^ +$/ { bad = 1 } END { exit bad }' "$tmp/h"
	# An example split by argp's wrapping leaves a line in column 0.
	check "flowpic $cmd --help: every example line whole" \
		awk '/^Examples:/ { ex = 1; n = 0; next } ex && /^$/ { ex = 0 }
		     ex { n++; if ($0 !~ /^  / || $0 ~ /^ *\\$/) bad = 1 } END { exit bad || !n }' "$tmp/h"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
