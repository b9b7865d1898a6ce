#!/usr/bin/env bash
# Install the Debian packages flowpic needs, by profile (--help); with no
# profile, everything: build, test, train, run the lab and benchmark.
# Idempotent; run as root (CI runs it on a fresh Debian 12 machine).
set -euo pipefail

usage="usage: install-deps.sh [PROFILE...]   (default: all)
  runtime  the libraries flowpic, flowpic-agent and flowpic-collector run with
  build    compilers, headers and generators to build them (and their .deb);
           runtime + build is all the README's main job (scripts/demo.sh) needs
  dev      build + what the tests run: cmocka, tshark, PostgreSQL, gRPC peers, lintian,
           Prometheus, nats-server, Chromium with its WebDriver and Selenium
  model    PyTorch and the rest of model/ (training, evaluation, ndpiReader labels)
  lab      model + every traffic-lab driver's programs (model/lab; test lab.packages)
  all      all of the above (CI, scripts/test.sh)"

runtime=(
	libpcap0.8 libpng16-16 zlib1g liblzma5 libbpf1 libelf1 libcap2 libnghttp2-14
	libssl3 libprotobuf-c1 libsqlite3-0 libpq5 libnats3.4
	# the collector's dashboard (--web-listen) serves Debian's Chart.js 3.9.1
	libjs-chart.js
)
build=(
	build-essential cmake pkg-config
	# core library and CLI
	libpcap-dev libpng-dev zlib1g-dev liblzma-dev
	# BPF programs and the agent (bpf/, agent/): CO-RE skeletons, capabilities
	clang libbpf-dev bpftool libelf-dev llvm libcap-dev
	# the verdict stream and the collector (proto/, stream/, collector/)
	libnghttp2-dev libssl-dev nanopb libnanopb-dev protobuf-compiler
	protobuf-c-compiler libprotobuf-c-dev libsqlite3-dev libpq-dev
	# the collector's JetStream publisher (--nats)
	libnats-dev
	# Debian packages (deploy/: cpack -G DEB, man pages from --help)
	dpkg-dev help2man
	# the scripts (scripts/demo.sh scores its verdicts with tests/classify/score_labels.py)
	python3
)
dev=(
	"${build[@]}"
	# tests (clang: the libFuzzer targets)
	libcmocka-dev tshark python3 python3-numpy xz-utils
	# the C style check (scripts/style-check.sh, test style.clang_format)
	clang-format git
	# benchmarks
	time
	# system tests and the demo capture generator (scripts/make-demo-capture.sh)
	iproute2 ethtool tcpdump curl iputils-ping netsniff-ng
	# real peers of the verdict stream: nghttp, SQLite, PostgreSQL, Python gRPC
	nghttp2-client sqlite3 postgresql python3-grpcio python3-grpc-tools python3-protobuf
	# a JetStream cluster for the collector's publisher (test collector.jetstream)
	nats-server
	# the packages' tests (tests/deploy): lint, units, the manifests (YAML)
	lintian systemd python3-yaml
	# every program's JSON lines against docs/output.schema.json (test system.json_schema)
	python3-jsonschema
	# the metrics test (tests/deploy/test_metrics.sh): a real Prometheus, promtool
	prometheus
	# the dashboard in a real headless browser (test web.dashboard), and over
	# HTTP/2 from another HTTP/2 stack (test collector.web_h2)
	chromium chromium-driver python3-selenium python3-h2
)
model=(
	python3 python3-numpy python3-torch python3-sklearn python3-matplotlib
	# labels of real captures (model/realeval.py) and the classifier benchmark's reference
	libndpi-bin
)
lab=(
	"${model[@]}"
	openssl procps
	baresip baresip-core espeak-ng sox libasound2 python3-aiortc nftables
	mosquitto python3-paho-mqtt openvpn dovecot-imapd python3-aiosmtpd vim less
	prosody lua-sec python3-slixmpp ngircd
	nginx openssh-server openssh-client rsync vsftpd lftp opentracker aria2 mktorrent
	ffmpeg python3-httpx python3-h2 python3-gi gir1.2-gstreamer-1.0
	gir1.2-gst-rtsp-server-1.0 gir1.2-gst-plugins-base-1.0 gstreamer1.0-plugins-base
	gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
	chromium chromium-driver python3-selenium
	# the lab's own tools: captures, namespaces, probes, the drivers' language
	tcpdump iproute2 curl iputils-ping python3
)

profiles=("$@")
[ ${#profiles[@]} -gt 0 ] || profiles=(all)
packages=()
for prof in "${profiles[@]}"; do
	case "$prof" in
	runtime) packages+=("${runtime[@]}") ;;
	build) packages+=("${build[@]}") ;;
	dev) packages+=("${dev[@]}") ;;
	model) packages+=("${model[@]}") ;;
	lab) packages+=("${lab[@]}") ;;
	all) packages+=("${runtime[@]}" "${dev[@]}" "${lab[@]}") ;;
	-h | --help) echo "$usage"; exit 0 ;;
	*) echo "install-deps: unknown profile '$prof'" >&2; echo "$usage" >&2; exit 2 ;;
	esac
done
# Each package once, in order.
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | awk '!seen[$0]++')

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
