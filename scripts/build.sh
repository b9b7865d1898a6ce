#!/usr/bin/env bash
# Configure and build flowpic into build/ (or $FLOWPIC_BUILD_DIR).
# Extra arguments go to cmake's configure step, e.g. -DFLOWPIC_SANITIZE=ON.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FLOWPIC_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DFLOWPIC_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
