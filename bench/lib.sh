# SPDX-License-Identifier: MIT
#
# bench/lib.sh - what bench/run.sh and bench/classify/run.sh share: messages,
# the temporary directory, the Requet captures concatenated in capture-time
# order, and the timing of one command.  Sourced (not run); the caller sets
# bench_name (its path, for messages) and keep (1: keep the directory) first.
#
# shellcheck shell=bash disable=SC2034,SC2154  # sets and reads the caller's globals

die() {
	echo "$bench_name: $*" >&2
	exit 1
}

say() {
	echo "# $*" >&2
}

# warn_unless_release DIR: a Debug build measures the sanitizers, not flowpic.
warn_unless_release() {
	if [ -f "$1/CMakeCache.txt" ] &&
	   ! grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$1/CMakeCache.txt"; then
		say "warning: $1 is not a Release build"
	fi
}

# list_captures DIR: sets all_files to the *.pcap.xz captures in DIR, by name.
list_captures() {
	[ -d "$1" ] || die "no data directory $1 (--data DIR)"
	mapfile -t all_files < <(find "$1" -maxdepth 1 -name '*.pcap.xz' | LC_ALL=C sort)
	[ ${#all_files[@]} -gt 0 ] || die "no *.pcap.xz captures in $1"
}

# bench_tmpdir PREFIX: sets tmp to a new directory, removed on exit unless keep=1.
bench_tmpdir() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	trap bench_cleanup EXIT
}

bench_cleanup() {
	if [ "$keep" = 1 ]; then
		say "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}

# time_order FILE...: sets ordered to the captures in capture-time order, so
# that time never runs back across the seams: the flow table then sees one
# long capture, as it would a real one.
time_order() {
	mapfile -t ordered < <(capinfos -T -r -S -a "$@" | sort -t $'\t' -k2,2n | cut -f1)
	[ ${#ordered[@]} -eq $# ] || die "capinfos could not date every capture"
}

# merge_ordered OUT: concatenates $ordered into OUT; sets big_mb to its size.
merge_ordered() {
	mergecap -a -F pcap -w "$1" "${ordered[@]}" || die "mergecap failed"
	big_mb=$(awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.0f", b / 1048576 }')
}

# time_run NAME CMD...: one run; appends "wall_s rss_kb cpu_s" to $tmp/NAME.runs
# (cpu = user + system time of the command: less disturbed by other load on
# the shared machine than wall time).
# stdout and stderr of CMD go to $tmp/NAME.out / .err (or where CMD says).
time_run() {
	local name=$1 t0 t1 rc
	shift
	t0=$EPOCHREALTIME
	/usr/bin/time -f '%M %U %S' -o "$tmp/$name.rss" "$@" > "$tmp/$name.out" 2> "$tmp/$name.err" &&
		rc=0 || rc=$?
	t1=$EPOCHREALTIME
	if [ $rc -ne 0 ]; then
		cat "$tmp/$name.err" >&2
		die "$name failed (exit $rc): $*"
	fi
	tail -n 1 "$tmp/$name.rss" | awk -v a="$t0" -v b="$t1" \
		'{ printf "%.4f %d %.2f\n", b - a, $1, $2 + $3 }' >> "$tmp/$name.runs"
}

# best NAME: "best_wall max_rss_kb best_cpu" over the runs.
best() {
	awk 'NR == 1 || $1 < w { w = $1 } $2 > m { m = $2 } NR == 1 || $3 < c { c = $3 }
	     END { print w, m, c }' "$tmp/$1.runs"
}

# host_info: sets cpu (model name) and commit (of the checkout at $repo).
host_info() {
	cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	commit=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
}

# build_type DIR: the CMAKE_BUILD_TYPE of the build in DIR ('?' if unknown).
build_type() {
	grep -o '^CMAKE_BUILD_TYPE:STRING=.*' "$1/CMakeCache.txt" 2>/dev/null | cut -d= -f2 || echo '?'
}
