#!/usr/bin/env bash
# Install what is needed, build with AddressSanitizer and
# UndefinedBehaviorSanitizer (warnings are errors), and run every test:
# unit, fuzz (bounded), differential, robustness and system.
# The test build uses clang (for libFuzzer); scripts/build.sh uses the default cc.
# Arguments go to ctest, e.g. scripts/test.sh -L unit
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
export FLOWPIC_BUILD_DIR=${FLOWPIC_BUILD_DIR:-$root/build-asan}
CC=clang "$root/scripts/build.sh" -DFLOWPIC_SANITIZE=ON -DFLOWPIC_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$FLOWPIC_BUILD_DIR"
ctest --output-on-failure -j"$(nproc)" "$@"
