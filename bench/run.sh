#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/run.sh - throughput of the offline pipeline, side by side on one input.
#
# Decompresses Requet captures into a temporary directory, concatenates them
# (in capture-time order) into one pcap with `mergecap -a`, then times on that
# one file:
#   a. pcap_count          the bare libpcap read loop: the ceiling
#   b. flowpic flows       parse + flow table + blocks (res 32)
#   c. flowpic export npy  the full pcap -> FlowPics path (res 32)
#   d. flowpic export sparse at the seed's resolution (1500)
#   e. tshark -T fields    the fields the seed extracted
# and reports packets, wall seconds (best of --repeat), packets/s, the ratio
# to the bare loop and the peak RSS.  Then the memory check: peak RSS of
# `flowpic export --format npy` on one file and on the whole concatenation.
# The markdown table goes to stdout, progress to stderr.  See docs/benchmarks.md.
#
# shellcheck disable=SC2016  # backquotes in single quotes are markdown

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bench_name=bench/run.sh
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

data_dir=${FLOWPIC_REQUET:-/work/shared/data/requet}
build_dir=$repo/build-bench
nfiles=0		# 0: enough files for target_packets (or all of them)
target_packets=2000000
repeat=5
tshark_repeat_max=10	# seconds: a slower tshark run is not repeated
keep=0
run_tshark=1

usage() {
	cat <<EOF
Usage: bench/run.sh [OPTION...]
Time pcap_count, flowpic and tshark on one concatenation of Requet captures
and print a markdown table (docs/benchmarks.md).

  --files N      concatenate the first N captures (by name; default: enough
                 for at least $target_packets packets, or all of them)
  --repeat R     best of R runs (default $repeat; tshark once if it takes
                 over ${tshark_repeat_max} s)
  --data DIR     the *.pcap.xz captures (default $data_dir)
  --build DIR    the Release build with cli/flowpic and bench/pcap_count
                 (default $build_dir)
  --no-tshark    skip the tshark row
  --keep         keep the temporary directory
  -h, --help     this help

Build first:
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench -j2
EOF
}

cmdline=$(printf '%q ' "bench/run.sh" "$@")
cmdline=${cmdline% }

while [ $# -gt 0 ]; do
	case $1 in
	--files) nfiles=${2:?--files needs N}; shift 2 ;;
	--files=*) nfiles=${1#*=}; shift ;;
	--repeat) repeat=${2:?--repeat needs R}; shift 2 ;;
	--repeat=*) repeat=${1#*=}; shift ;;
	--data) data_dir=${2:?--data needs DIR}; shift 2 ;;
	--data=*) data_dir=${1#*=}; shift ;;
	--build) build_dir=${2:?--build needs DIR}; shift 2 ;;
	--build=*) build_dir=${1#*=}; shift ;;
	--no-tshark) run_tshark=0; shift ;;
	--keep) keep=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done
[[ $nfiles =~ ^[0-9]+$ ]] || die "--files wants a number, not '$nfiles'"
[[ $repeat =~ ^[1-9][0-9]*$ ]] || die "--repeat wants a number >= 1, not '$repeat'"

# ---- what the run needs ----

pcap_count=$build_dir/bench/pcap_count
flowpic=$build_dir/cli/flowpic
for b in "$pcap_count" "$flowpic"; do
	[ -x "$b" ] || die "$b not found; build it first:
  cd $repo && cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench -j2"
done
warn_unless_release "$build_dir"
for t in xz mergecap capinfos; do
	command -v "$t" >/dev/null || die "$t not found (apt-get install xz-utils wireshark-common)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
if [ $run_tshark = 1 ]; then
	command -v tshark >/dev/null || die "tshark not found (apt-get install tshark, or --no-tshark)"
fi
list_captures "$data_dir"
[ "$nfiles" -le ${#all_files[@]} ] ||
	die "--files $nfiles: only ${#all_files[@]} captures in $data_dir"

bench_tmpdir flowpic-bench
mkdir "$tmp/in" "$tmp/out"

# ---- the input: N captures, decompressed, concatenated in time order ----

packets_of() {
	capinfos -M -c "$1" | awk '/Number of packets/ { print $NF }'
}

say "decompressing into $tmp/in"
picked=()
total=0
for f in "${all_files[@]}"; do
	if [ "$nfiles" -gt 0 ]; then
		[ ${#picked[@]} -lt "$nfiles" ] || break
	else
		[ "$total" -lt $target_packets ] || break
	fi
	out=$tmp/in/$(basename "$f" .xz)
	xz -dc "$f" > "$out" || die "cannot decompress $f"
	n=$(packets_of "$out")
	[[ $n =~ ^[0-9]+$ ]] || die "capinfos cannot read $out"
	total=$((total + n))
	picked+=("$out")
done

time_order "${picked[@]}"
big=$tmp/all.pcap
say "concatenating ${#ordered[@]} captures ($total packets) with mergecap -a"
merge_ordered "$big"
one=${ordered[0]}

# ---- timing ----

# The commands, as run (stdout of flows goes to $tmp/flows.out, not printed).
cmd_count=("$pcap_count" "$big")
cmd_flows=("$flowpic" flows --json "$big")
cmd_npy=("$flowpic" export "$big" --format npy --res 32 -o "$tmp/out/x")
cmd_sparse=("$flowpic" export "$big" --format sparse --res 1500 -o "$tmp/out/y")
cmd_tshark=(tshark -r "$big" -T fields -e frame.time_epoch -e ip.src -e ip.dst
	-e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport -e ip.proto -e ip.len)

# Rounds interleave the tools, so a burst of load on the shared machine
# does not hit only one of them.
for ((r = 1; r <= repeat; r++)); do
	say "round $r/$repeat"
	time_run count "${cmd_count[@]}"
	time_run flows "${cmd_flows[@]}"
	time_run npy "${cmd_npy[@]}"
	time_run sparse "${cmd_sparse[@]}"
done
if [ $run_tshark = 1 ]; then
	for ((r = 1; r <= repeat; r++)); do
		say "tshark run $r"
		time_run tshark "${cmd_tshark[@]}"
		read -r w _ < <(best tshark)
		awk -v w="$w" -v m=$tshark_repeat_max 'BEGIN { exit !(w > m) }' && break
	done
fi

# Every tool must have read the whole file.
read -r packets _ < "$tmp/count.out"
[ "$packets" = "$total" ] || die "pcap_count read $packets packets, capinfos counted $total"
rec=$(grep -o '"records":[0-9]*' "$tmp/flows.out" | tail -n 1 | cut -d: -f2)
[ "$rec" = "$packets" ] || die "flowpic flows read ${rec:-?} records, not $packets"
for n in npy sparse; do
	grep -q "): $packets records" "$tmp/$n.err" ||
		die "flowpic export ($n) did not report $packets records; see $tmp/$n.err"
done

# ---- memory: one capture vs the whole concatenation ----

say "memory check"
time_run mem_one "$flowpic" export "$one" --format npy --res 32 -o "$tmp/out/one"
read -r _ rss_one < <(best mem_one)
read -r _ rss_big < <(best npy)
packets_one=$(packets_of "$one")

# ---- the table ----

host_info
read -r bare_wall _ bare_cpu < <(best count)

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

row() {
	local label=$1 name=$2 runs w m c
	read -r w m c < <(best "$name")
	runs=$(wc -l < "$tmp/$name.runs")
	awk -v l="$label" -v p="$packets" -v w="$w" -v m="$m" -v b="$bare_wall" -v n="$runs" \
		-v c="$c" -v bc="$bare_cpu" \
		'BEGIN { r = b / w; rc = c > 0 ? bc / c : 0;
			 printf "| %s | %d | %.3f | %d | %.*f | %.2f | %.*f | %.1f | %d |\n",
			 l, p, w, p / w, r < 0.1 ? 4 : 2, r, c, rc < 0.1 ? 4 : 2, rc, m / 1024, n }'
}

cat <<EOF
## flowpic throughput benchmark

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(uname -sr)
- flowpic: $commit ($(basename "$build_dir"), $(build_type "$build_dir"))
- command: \`$cmdline\`
- input: ${#ordered[@]} Requet captures, \`mergecap -a\` in capture-time order:
  $packets packets, $big_mb MiB (pcap, snaplen 72)
- wall: best of $repeat runs (tshark: runs column); ratio = packets/s over
  the bare loop's packets/s, from this one run; cpu = user + system seconds
  (best run), 10 ms resolution, and its ratio to the bare loop's

| what | packets | wall s | packets/s | vs bare loop | cpu s | cpu: bare / this | peak RSS MiB | runs |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
row 'a. bare libpcap loop (`pcap_count`)' count
row 'b. `flowpic flows --json` (res 32)' flows
row 'c. `flowpic export --format npy --res 32`' npy
row 'd. `flowpic export --format sparse --res 1500`' sparse
if [ $run_tshark = 1 ]; then
	row 'e. `tshark -T fields` (seed fields)' tshark
fi
cat <<EOF

Memory, \`flowpic export --format npy --res 32\`:

| input | packets | peak RSS MiB |
|---|---:|---:|
| 1 capture ($(basename "$one")) | $packets_one | $(mib "$rss_one") |
| all ${#ordered[@]} captures | $packets | $(mib "$rss_big") |
| ratio all / one | $(awk -v a="$packets" -v b="$packets_one" 'BEGIN { printf "%.1f", a / b }') | $(awk -v a="$rss_big" -v b="$rss_one" 'BEGIN { printf "%.2f", a / b }') |
EOF
