#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/classify/run.sh - whole-file classification rate, side by side on one
# input: `flowpic classify` against the bare libpcap read loop (the ceiling)
# and against nDPI's ndpiReader (Debian libndpi-bin), which also reads every
# packet and tracks every flow to name its application.
#
# The input is the Requet captures (all 69 by default) decompressed and
# concatenated in capture-time order with `mergecap -a`, as bench/run.sh
# does.  Rounds interleave the tools (a burst of load on the shared machine
# does not hit only one); the best wall time of --repeat runs counts, and
# peak RSS comes from /usr/bin/time.  One markdown table on stdout
# (docs/benchmarks.md, docs/classify.md), progress on stderr.
#
# shellcheck disable=SC2016  # backquotes in single quotes are markdown

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bench_name=bench/classify/run.sh
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

data_dir=${FLOWPIC_REQUET:-/work/shared/data/requet}
build_dir=$repo/build-classify-bench
nfiles=0		# 0: all
repeat=3
keep=0

usage() {
	cat <<EOF
Usage: bench/classify/run.sh [OPTION...]
Time pcap_count, flowpic classify and ndpiReader on one concatenation of the
Requet captures and print a markdown table.

  --files N      the first N captures by name (default: all)
  --repeat R     best of R runs (default $repeat)
  --data DIR     the *.pcap.xz captures (default $data_dir)
  --build DIR    a Release build with cli/flowpic and bench/pcap_count
                 (default $build_dir)
  --keep         keep the temporary directory
  -h, --help     this help

Build first:
  cmake -S . -B build-classify-bench -DCMAKE_BUILD_TYPE=Release
  cmake --build build-classify-bench -j2 --target flowpic pcap_count
Example:
  bench/classify/run.sh --repeat 3 > /tmp/classify-bench.md
EOF
}

cmdline=$(printf '%q ' "bench/classify/run.sh" "$@")
cmdline=${cmdline% }

while [ $# -gt 0 ]; do
	case $1 in
	--files) nfiles=${2:?--files needs N}; shift 2 ;;
	--repeat) repeat=${2:?--repeat needs R}; shift 2 ;;
	--data) data_dir=${2:?--data needs DIR}; shift 2 ;;
	--build) build_dir=${2:?--build needs DIR}; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done
[[ $nfiles =~ ^[0-9]+$ ]] || die "--files wants a number, not '$nfiles'"
[[ $repeat =~ ^[1-9][0-9]*$ ]] || die "--repeat wants a number >= 1, not '$repeat'"

pcap_count=$build_dir/bench/pcap_count
flowpic=$build_dir/cli/flowpic
for b in "$pcap_count" "$flowpic"; do
	[ -x "$b" ] || die "$b not found; build it first (see --help)"
done
warn_unless_release "$build_dir"
for t in xz mergecap capinfos ndpiReader; do
	command -v "$t" >/dev/null ||
		die "$t not found (apt-get install xz-utils wireshark-common libndpi-bin)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
list_captures "$data_dir"
[ "$nfiles" -gt 0 ] || nfiles=${#all_files[@]}
[ "$nfiles" -le ${#all_files[@]} ] || die "--files $nfiles: only ${#all_files[@]} captures"

bench_tmpdir flowpic-classify-bench
mkdir "$tmp/in"

# ---- the input ----

say "decompressing $nfiles captures into $tmp/in"
picked=()
for f in "${all_files[@]:0:$nfiles}"; do
	out=$tmp/in/$(basename "$f" .xz)
	xz -dc "$f" > "$out" || die "cannot decompress $f"
	picked+=("$out")
done
time_order "${picked[@]}"
big=$tmp/all.pcap
say "concatenating with mergecap -a"
merge_ordered "$big"
rm -rf "$tmp/in"

# ---- timing ----

cmd_count=("$pcap_count" "$big")
cmd_json=("$flowpic" classify -q --json "$big")
cmd_table=("$flowpic" classify -q "$big")
cmd_one=("$flowpic" classify -q --json --workers 0 "$big")
cmd_ndpi=(ndpiReader -i "$big")

for ((r = 1; r <= repeat; r++)); do
	say "round $r/$repeat"
	time_run count "${cmd_count[@]}"
	time_run json "${cmd_json[@]}"
	time_run table "${cmd_table[@]}"
	time_run one "${cmd_one[@]}"
	time_run ndpi "${cmd_ndpi[@]}"
done

# ---- every tool read the whole file; the flows each found ----

read -r packets _ < "$tmp/count.out"
rec=$(grep -o '"records":[0-9]*' "$tmp/json.out" | tail -n 1 | cut -d: -f2)
[ "$rec" = "$packets" ] || die "flowpic classify read ${rec:-?} records, not $packets"
fp_flows=$(grep -o '^{"model":"[^"]*","flows":[0-9]*' "$tmp/json.out" | grep -o '[0-9]*$')
[ "$fp_flows" = "$(grep -c '"type":"flow"}$' "$tmp/json.out")" ] || die "flowpic: flow lines and summary differ"
nd_total=$(awk '/IP packets:/ { print $5 }' "$tmp/ndpi.out")
[ "$nd_total" = "$packets" ] ||
	die "ndpiReader read ${nd_total:-?} packets, not $packets; see $tmp/ndpi.out"
nd_flows=$(awk '/Unique flows:/ { print $3 }' "$tmp/ndpi.out")
model=$(grep -o '^#   model .*' "$tmp/table.out" | sed 's/^#   model //')

# ---- the table ----

host_info
read -r bare_wall _ bare_cpu < <(best count)
read -r ndpi_wall _ _ < <(best ndpi)

row() {
	local label=$1 name=$2 flows=$3 w m c
	read -r w m c < <(best "$name")
	awk -v l="$label" -v p="$packets" -v f="$flows" -v w="$w" -v m="$m" -v c="$c" \
		-v b="$bare_wall" -v nd="$ndpi_wall" -v bc="$bare_cpu" \
		'BEGIN { printf "| %s | %d | %s | %.3f | %.2f | %s | %.2f | %.2f | %.2f | %.2f | %.1f |\n",
			 l, p, f == "" ? "-" : f, w, p / w / 1e6,
			 f == "" ? "-" : sprintf("%.0f", f / w), c, b / w, (c > 0 ? bc / c : 0),
			 nd / w, m / 1024 }'
}

cat <<EOF
## flowpic classify: whole-file classification rate

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(uname -sr)
- flowpic: $commit ($(basename "$build_dir"), $(build_type "$build_dir")); model $model
- ndpiReader: $(ndpiReader -h 2>&1 | grep -o 'nDPI [0-9.]*' | head -n 1) (Debian libndpi-bin)
- command: \`$cmdline\`
- input: ${#ordered[@]} Requet captures, \`mergecap -a\` in capture-time order:
  $packets packets, $big_mb MiB (pcap, snaplen 72)
- wall: best of $repeat interleaved runs; "x bare" = the bare loop's wall time / this
  one's (1 = as fast as only reading the file), "cpu x bare" the same for user + system
  CPU seconds (best run, 10 ms resolution; with the worker thread it adds both
  threads), "x ndpi" = ndpiReader's wall time / this one's (above 1 = faster than
  ndpiReader); flows: what each tool counts as a flow (flowpic: bidirectional
  sessions split by 120 s idle; nDPI: its own flow table)

| what | packets | flows | wall s | Mpackets/s | flows/s | cpu s | x bare | cpu x bare | x ndpi | peak RSS MiB |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
row 'bare libpcap loop (`pcap_count`)' count ""
row '`flowpic classify --json`' json "$fp_flows"
row '`flowpic classify` (table)' table "$fp_flows"
row '`flowpic classify --json --workers 0` (one thread)' one "$fp_flows"
row '`ndpiReader -i`' ndpi "$nd_flows"
