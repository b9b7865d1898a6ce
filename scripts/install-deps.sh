#!/usr/bin/env bash
# Install every Debian package flowpic needs to build, test and benchmark.
# Idempotent; run as root (CI runs it on a fresh Debian 12 machine).
set -euo pipefail

packages=(
	# build
	build-essential cmake pkg-config
	# core library and CLI
	libpcap-dev libpng-dev zlib1g-dev liblzma-dev
	# tests (clang: the libFuzzer targets)
	libcmocka-dev clang tshark python3 python3-numpy xz-utils
	# benchmarks
	time
	# the demo capture generator (scripts/make-demo-capture.sh)
	iproute2 ethtool tcpdump curl iputils-ping
)

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: run as root (apt-get needs it)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages present"
	exit 0
fi
echo "install-deps: installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
