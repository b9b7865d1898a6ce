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
	# the C style check (scripts/style-check.sh, test style.clang_format)
	clang-format git
	# the model: training, evaluation, plots (model/)
	python3-torch python3-sklearn python3-matplotlib
	# benchmarks
	time
	# the demo capture generator (scripts/make-demo-capture.sh)
	iproute2 ethtool tcpdump curl iputils-ping
	# the traffic lab (model/lab): every driver's PACKAGES (test lab.packages checks)
	openssl procps
	baresip baresip-core espeak-ng sox libasound2 python3-aiortc nftables
	mosquitto python3-paho-mqtt openvpn dovecot-imapd python3-aiosmtpd vim less
	prosody lua-sec python3-slixmpp ngircd
	nginx openssh-server openssh-client rsync vsftpd lftp opentracker aria2 mktorrent
	ffmpeg python3-httpx python3-h2 python3-gi gir1.2-gstreamer-1.0
	gir1.2-gst-rtsp-server-1.0 gir1.2-gst-plugins-base-1.0 gstreamer1.0-plugins-base
	gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
	chromium chromium-driver python3-selenium
	# the classifier benchmark's reference (bench/classify)
	libndpi-bin
	# BPF programs and the agent (bpf/, agent/): CO-RE skeletons, capabilities,
	# the packet generator of the agent benchmark
	libbpf-dev bpftool libelf-dev llvm libcap-dev netsniff-ng
	# the verdict stream and the collector (proto/, stream/, collector/)
	libnghttp2-dev nghttp2-client libssl-dev nanopb libnanopb-dev
	protobuf-compiler protobuf-c-compiler libprotobuf-c-dev libsqlite3-dev sqlite3
	postgresql libpq-dev python3-grpcio python3-grpc-tools python3-protobuf
)

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: ${#missing[@]} packages missing (${missing[*]}): run as root (apt-get needs it)" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
# Servers the lab runs itself (nginx, sshd, prosody, ...) must not start as
# system services when installed: a policy-rc.d that says no, for the install only.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e $policy ]; then
	printf '#!/bin/sh\nexit 101\n' > $policy
	chmod +x $policy
	own_policy=1
fi
trap '[ $own_policy = 1 ] && rm -f $policy' EXIT
apt-get update -qq
apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
