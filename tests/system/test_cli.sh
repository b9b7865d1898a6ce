#!/usr/bin/env bash
# System test of the flowpic command line: every entry point's errors (one
# clear line, the right exit status, nothing lost), and that the same packets
# give the same flows and pictures whatever the container (plain, gz, xz,
# samples CSV).  Usage: test_cli.sh FLOWPIC DEMO_CAPTURE SHARED_DATA_DIR
set -uo pipefail
flowpic=$1 demo=$2 data=$3
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=results.sh
. "$(dirname "$0")/results.sh"

[ -x "$flowpic" ] || { echo "no flowpic binary at $flowpic"; exit 1; }
[ -f "$demo" ] || { echo "no demo capture at $demo"; exit 1; }
[ -d "$data/robustness" ] || { echo "no shared data at $data (need ../shared/data)"; exit 1; }

xz -dc "$demo" > "$tmp/demo.pcap"
gzip -c "$tmp/demo.pcap" > "$tmp/demo.pcap.gz"

# --- help ---
for cmd in flows export render; do
	check "$cmd --help has examples" bash -c "'$flowpic' $cmd --help | grep -q Examples"
done
check "top-level --help lists commands" bash -c "'$flowpic' --help | grep -q render"

# --- bad input: one line on stderr, exit 1, nothing on stdout ---
expect_fail() { # name, expected status, stderr pattern, args...
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
expect_fail "missing file" 1 "$tmp/nope.pcap: cannot open" flows "$tmp/nope.pcap"
check "missing file: nothing on stdout" test ! -s "$tmp/out"
echo "hello, world" > "$tmp/text.txt"
expect_fail "text that is not our CSV" 1 "text.txt:1: header lacks the column 'time'" flows "$tmp/text.txt"
head -c 64 /dev/urandom | tr '\000' '\001' | { printf '\001\002\003\004'; cat; } > "$tmp/bin.dat"
expect_fail "binary that is not a capture" 1 "not a pcap, pcapng or flowpic samples CSV file (starts 01 02 03 04)" flows "$tmp/bin.dat"
expect_fail "an empty device (read as a stream)" 1 "/dev/stdin: empty file" flows /dev/stdin < /dev/null
head -c 2000 "$demo" > "$tmp/cut.pcap.xz"
expect_fail "xz cut short" 3 "xz data ends early" flows "$tmp/cut.pcap.xz"
: > "$tmp/empty"
expect_fail "empty file" 1 "empty file" flows "$tmp/empty"
expect_fail "directory" 1 "is a directory" flows "$tmp"
expect_fail "bad --res" 2 "res" flows --res 0 "$tmp/demo.pcap"
expect_fail "bad --window" 2 "window" flows --window abc "$tmp/demo.pcap"
expect_fail "hop above window" 2 "hop" flows --window 10 --hop 20 "$tmp/demo.pcap"
expect_fail "render: no such flow" 1 "has no flow 999999" render "$tmp/demo.pcap" --flow 999999 -o "$tmp/x.png"
expect_fail "render: no such block" 1 "has no block 99" render "$tmp/demo.pcap" --flow 1 --block 99 -o "$tmp/x.png"
expect_fail "export npy without -o" 2 "need -o" export --format npy "$tmp/demo.pcap"
expect_fail "export to unwritable path" 1 "cannot create" export --format npy -o "$tmp/no/dir/x" "$tmp/demo.pcap"

echo "precious" > "$tmp/keep.csv"
"$flowpic" export "$tmp/nope.pcap" -o "$tmp/keep.csv" 2>/dev/null
check "export of a missing input leaves an existing output as it was" \
	bash -c "[ \"\$(cat '$tmp/keep.csv')\" = precious ] && [ ! -e '$tmp/keep.csv.part' ]"

# A good file after a bad one is still read, and the status says a file failed.
"$flowpic" flows --json "$tmp/nope.pcap" "$tmp/demo.pcap" > "$tmp/two.json" 2>/dev/null
rc=$?
check "bad file then good file: exit 1, good file reported" \
	bash -c "[ $rc -eq 1 ] && grep -q '\"type\":\"summary\"' '$tmp/two.json'"

# --- truncated capture: what was read is reported, exit 3 ---
size=$(stat -c %s "$tmp/demo.pcap")
head -c $((size / 2 + 7)) "$tmp/demo.pcap" > "$tmp/cut.pcap"
"$flowpic" flows --json "$tmp/cut.pcap" > "$tmp/cut.json" 2> "$tmp/cut.err"
rc=$?
check "truncated: exit 3" test "$rc" -eq 3
check "truncated: error names file and record" grep -q "cut.pcap: reading stopped after record" "$tmp/cut.err"
check "truncated: summary says incomplete, records kept" $py - "$tmp/cut.json" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
s = lines[-1]
flows = [l for l in lines if l["type"] == "flow"]
assert s["complete"] is False and s["records"] > 0, s
assert s["records"] == s["in_flows"] + s["skipped_total"], s
assert sum(f["packets"] for f in flows) == s["in_flows"], (sum(f["packets"] for f in flows), s)
PY

# --- unknown link type: counted, not lost ---
radiotap=$(ls "$data"/robustness/zeek/*radiotap*.pcap | head -1)
"$flowpic" flows --json "$radiotap" > "$tmp/rt.json" 2> "$tmp/rt.err"
rc=$?
check "unknown link type: exit 0 and a warning" bash -c "[ $rc -eq 0 ] && grep -q 'is not decoded' '$tmp/rt.err'"
check "unknown link type: every record counted" $py - "$tmp/rt.json" <<'PY'
import json, sys
s = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert s["records"] > 0 and s["skipped"]["link_unsupported"] == s["records"], s
PY

# --- same packets, same result: plain, gz, xz, CSV ---
summary_strip() { # drop the fields that name the container
	$py -c 'import json,sys
for l in sys.stdin:
    o = json.loads(l)
    if o["type"] == "summary":
        for k in ("file", "format", "linktype"): o.pop(k)
    print(json.dumps(o, sort_keys=True))'
}
"$flowpic" flows --json "$tmp/demo.pcap" | summary_strip > "$tmp/plain.json"
"$flowpic" flows --json "$tmp/demo.pcap.gz" | summary_strip > "$tmp/gz.json"
"$flowpic" flows --json "$demo" | summary_strip > "$tmp/xz.json"
check "gzip input gives the same flows" cmp -s "$tmp/plain.json" "$tmp/gz.json"
check "xz input gives the same flows" cmp -s "$tmp/plain.json" "$tmp/xz.json"
"$flowpic" export -q "$tmp/demo.pcap" -o "$tmp/demo.csv"
check "CSV starts with the format line" bash -c "head -1 '$tmp/demo.csv' | grep -qx '# flowpic samples v1'"
"$flowpic" flows --json "$tmp/demo.csv" | summary_strip > "$tmp/csv.json"
# The CSV holds only TCP/UDP records: compare flows, and in_flows.
check "pcap -> CSV -> flows: same flows" $py - "$tmp/plain.json" "$tmp/csv.json" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert [x for x in a if x["type"] == "flow"] == [x for x in b if x["type"] == "flow"]
sa, sb = a[-1], b[-1]
for k in ("in_flows", "tcp", "udp", "flows", "blocks", "samples", "oversize"):
    assert sa[k] == sb[k], (k, sa[k], sb[k])
PY
for fmt in npy sparse; do
	"$flowpic" export -q "$tmp/demo.pcap" --format $fmt --res 64 -o "$tmp/p_$fmt"
	"$flowpic" export -q "$tmp/demo.csv" --format $fmt --res 64 -o "$tmp/c_$fmt"
done
check "pcap -> CSV -> pictures: same npy bytes" cmp -s "$tmp/p_npy.npy" "$tmp/c_npy.npy"
check "pcap -> CSV -> pictures: same sparse cells" cmp -s "$tmp/p_sparse.cells.npy" "$tmp/c_sparse.cells.npy"
check "pcap -> CSV -> pictures: same index" cmp -s "$tmp/p_npy.index.csv" "$tmp/c_npy.index.csv"
check "dense and sparse exports agree" $py - "$tmp/p_npy" "$tmp/p_sparse" <<'PY'
import sys, numpy as np
dense = np.load(sys.argv[1] + ".npy")
cells = np.load(sys.argv[2] + ".cells.npy")
idx = open(sys.argv[1] + ".index.csv").read().splitlines()
assert dense.dtype == np.uint8 and dense.shape[1:] == (64, 64), dense.shape
assert len(idx) - 1 == dense.shape[0] > 0
acc = np.zeros(dense.shape, dtype=np.int64)
np.add.at(acc, (cells[:, 0], cells[:, 2], cells[:, 3]), cells[:, 4])
assert (np.minimum(acc, 255) == dense).all()
samples = sum(int(r.split(",")[9]) for r in idx[1:])
# Every sample is in a cell, unless its cell entry saturated at 255.
assert acc.sum() == samples or (acc.sum() < samples and (cells[:, 4] == 255).any()), (acc.sum(), samples)
PY
"$flowpic" export -q "$tmp/demo.pcap" --format npy --direction split --res 32 -o "$tmp/split"
"$flowpic" export -q "$tmp/demo.pcap" --format npy --res 32 -o "$tmp/both"
check "split channels add up to both directions" $py - "$tmp/split.npy" "$tmp/both.npy" <<'PY'
import sys, numpy as np
s, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert s.shape == (b.shape[0], 2, 32, 32)
assert (np.minimum(s.astype(int).sum(axis=1), 255) == b).all()
PY

# --- bad CSV rows: reported with file:line, counted, the rest kept ---
{ head -5 "$tmp/demo.csv"; echo "garbage,row"; echo "1.0,6,10.0.0.1,70000,10.0.0.2,1,1,1,0,,"; tail -n +6 "$tmp/demo.csv"; } > "$tmp/badrows.csv"
"$flowpic" flows --json "$tmp/badrows.csv" > "$tmp/badrows.json" 2> "$tmp/badrows.err"
rc=$?
check "bad CSV rows: exit 0, file:line named" bash -c "[ $rc -eq 0 ] && grep -q 'badrows.csv:6: bad CSV row' '$tmp/badrows.err' && grep -q 'badrows.csv:7: bad CSV row.*sport' '$tmp/badrows.err'"
check "bad CSV rows: counted, other flows unchanged" $py - "$tmp/badrows.json" "$tmp/csv.json" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert a[-1]["skipped"]["csv_bad_line"] == 2
assert [x for x in a if x["type"] == "flow"] == [x for x in b if x["type"] == "flow"]
PY

# --- CSV columns in any order, a byte order mark, a NUL byte ---
{ printf '\xef\xbb\xbfsize,label,dport,dst,sport,src,proto,time\n'
  printf '100,chat,443,10.0.0.2,5000,10.0.0.1,tcp,12.5\n'
  printf '100,chat,443,10.0.0.2,5000,10.0.0.1,tcp,13\000junk\n'
  printf '200,chat,5000,10.0.0.1,443,10.0.0.2,tcp,13.5\n'; } > "$tmp/order.csv"
"$flowpic" flows --json "$tmp/order.csv" > "$tmp/order.json" 2> "$tmp/order.err"
rc=$?
check "CSV with BOM, any column order and a NUL row: read, NUL row counted" $py - "$tmp/order.json" "$rc" "$tmp/order.err" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert sys.argv[2] == "0", sys.argv[2]
s = lines[-1]
assert s["in_flows"] == 2 and s["skipped"]["csv_bad_line"] == 1, s
assert "NUL" in open(sys.argv[3]).read()
PY

# --- render: a PNG ---
"$flowpic" render -q "$tmp/demo.pcap" --flow 1 -o "$tmp/f1.png"
check "render writes a PNG" bash -c "head -c 8 '$tmp/f1.png' | od -An -tx1 | grep -q '89 50 4e 47'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
