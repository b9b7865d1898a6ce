#!/usr/bin/env bash
# Install what is needed, build with AddressSanitizer and
# UndefinedBehaviorSanitizer (warnings are errors), and run every test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
export FLOWPIC_BUILD_DIR=${FLOWPIC_BUILD_DIR:-$root/build-asan}
"$root/scripts/build.sh" -DFLOWPIC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The fuzz targets need clang's libFuzzer: a second, small build.
FLOWPIC_BUILD_DIR=$root/build-fuzz CC=clang "$root/scripts/build.sh" -DFLOWPIC_FUZZ=ON \
	-DCMAKE_BUILD_TYPE=Debug
(cd "$root/build-fuzz" && ctest --output-on-failure -L fuzz)
cd "$FLOWPIC_BUILD_DIR"
ctest --output-on-failure -j"$(nproc)" "$@"
