#!/usr/bin/env bash
# Check C files against the repository's .clang-format (clang-format 14),
# changing nothing: clang-format --dry-run -Werror, one warning per place
# that is not formatted, exit status 1 if any.
#
#   scripts/style-check.sh [BASE]     the *.c/*.h changed against BASE (a commit,
#                                     branch or tag: git diff --name-only BASE),
#                                     including uncommitted changes; BASE defaults
#                                     to $FLOWPIC_STYLE_BASE
#   scripts/style-check.sh --all      every *.c/*.h git knows (tracked and new,
#                                     not ignored; build*/ and bpf/vmlinux/ left out)
#   scripts/style-check.sh -- FILE... these files
#
# Fix a file with: clang-format -i FILE
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() {
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-2}"
}

command -v clang-format >/dev/null || { echo "style-check: clang-format not found (apt-get install clang-format)" >&2; exit 2; }
[ -f .clang-format ] || { echo "style-check: no .clang-format in $root" >&2; exit 2; }

# Not ours to format: generated or vendored.
exclude() { grep -v -e '^build' -e '^bpf/vmlinux/' || true; }

mode=diff
base=${FLOWPIC_STYLE_BASE:-}
files=()
case "${1:-}" in
-h|--help) usage 0 ;;
--all) mode=all; shift ;;
--) mode=list; shift; files=("$@") ;;
-*) echo "style-check: unknown option $1" >&2; usage ;;
"") ;;
*) base=$1; shift ;;
esac

case $mode in
all)
	mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.c' '*.h' | exclude)
	;;
diff)
	if [ -z "$base" ]; then
		echo "style-check: give a base (scripts/style-check.sh origin/main, or FLOWPIC_STYLE_BASE), or --all" >&2
		usage
	fi
	git rev-parse --verify --quiet "$base^{commit}" >/dev/null ||
		{ echo "style-check: '$base' is not a commit" >&2; exit 2; }
	# Changed against BASE (committed and not), deleted files left out.
	mapfile -t files < <(git diff --name-only --diff-filter=d "$base" -- '*.c' '*.h' | exclude)
	;;
esac

if [ ${#files[@]} -eq 0 ]; then
	echo "style-check: no C files to check"
	exit 0
fi

bad=0
for f in "${files[@]}"; do
	if ! clang-format --style=file:"$root/.clang-format" --dry-run -Werror "$f"; then
		bad=$((bad + 1))
	fi
done
if [ $bad -ne 0 ]; then
	echo "style-check: $bad of ${#files[@]} files not formatted (clang-format -i FILE fixes one)" >&2
	exit 1
fi
echo "style-check: ${#files[@]} files formatted"
