#!/usr/bin/env bash
# The Debian packages, end to end (issue 13; docs/deploy.md):
#  1. build the sources in Release into a temporary folder and `cpack -G DEB`;
#  2. lintian (pedantic) finds nothing but the justified overrides;
#  3. shlibdeps worked, conffiles are declared, units pass systemd-analyze;
#  4. dpkg -i: the flowpic user, the token (0600, flowpic), the folders;
#     the collector as the unit runs it (flowpic user, no capabilities, its
#     env file) stores a verdict sent with the generated token; the agent as
#     the flowpic user with exactly CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON
#     captures and classifies a download on a veth between two network
#     namespaces, and with any one of them missing it cannot start;
#  5. dpkg --purge removes programs, units, conffiles, state and token.
# Needs root (dpkg, the flowpic user, BPF) and refuses to touch a machine
# where flowpic packages are already installed.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pkgs=(flowpic flowpic-agent flowpic-collector)
fail() { echo "test_packages: FAIL: $*" >&2; exit 1; }
cleanup() {
	[ -n "${cpid:-}" ] && kill "$cpid" 2>/dev/null || true
	[ -n "${hpid:-}" ] && kill "$hpid" 2>/dev/null || true
	[ -n "${ns_s:-}" ] && ip netns del "$ns_s" 2>/dev/null || true
	[ -n "${ns_c:-}" ] && ip netns del "$ns_c" 2>/dev/null || true
	if [ "${installed:-0}" = 1 ]; then dpkg --purge "${pkgs[@]}" >/dev/null 2>&1 || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "test_packages: needs root (dpkg); skipped"; exit 77; }
for p in "${pkgs[@]}"; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		echo "test_packages: $p is installed on this machine; not touching it"; exit 77
	fi
done

echo "== 1. Release build and cpack"
cmake -S "$src" -B "$work/b" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >"$work/cmake.log"
cmake --build "$work/b" -j"$(nproc)" >>"$work/cmake.log" 2>&1 || { tail -20 "$work/cmake.log"; fail "build"; }
(cd "$work/b" && cpack -G DEB >"$work/cpack.log" 2>&1) || { tail "$work/cpack.log"; fail "cpack"; }
debs=()
for p in "${pkgs[@]}"; do
	f=$(ls "$work/b/${p}"_*_*.deb)
	debs+=("$f")
done

echo "== 2. lintian"
lintian --no-cfg --pedantic --fail-on error,warning,info,pedantic "${debs[@]}" \
	|| fail "lintian reported tags (above)"

echo "== 3. package metadata and units"
dpkg-deb -f "$work/b"/flowpic-agent_*.deb Depends | grep -q "libbpf1" || fail "agent Depends lacks libbpf1 (shlibdeps)"
dpkg-deb -f "$work/b"/flowpic-collector_*.deb Depends | grep -q "libsqlite3-0" || fail "collector Depends lacks libsqlite3-0"
dpkg-deb --ctrl-tarfile "$work/b"/flowpic-agent_*.deb | tar -xO ./conffiles | grep -qx /etc/flowpic/agent.conf \
	|| fail "agent.conf is not a conffile"

echo "== 4. install and run as the units do"
dpkg -i "${debs[@]}" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
installed=1
getent passwd flowpic >/dev/null || fail "no flowpic user"
for p in flowpic flowpic-agent flowpic-collector flowpic-send; do
	[ -f "/usr/share/bash-completion/completions/$p" ] || fail "no bash completion for $p"
	ls /usr/share/man/man[18]/"$p".[18].gz >/dev/null 2>&1 || fail "no man page for $p"
done
# The dashboard's pages where the collector looks for them, and Debian's chart library.
for f in login.html overview.html app.css; do
	[ -f "/usr/share/flowpic/web/$f" ] || fail "no /usr/share/flowpic/web/$f"
done
dpkg-deb -f "$work/b"/flowpic-collector_*.deb Depends | grep -q libjs-chart.js ||
	fail "flowpic-collector does not depend on libjs-chart.js"
[ "$(stat -c '%U %a' /etc/flowpic/collector.token)" = "flowpic 600" ] || fail "token: $(stat -c '%U %a' /etc/flowpic/collector.token)"
[ "$(stat -c '%U %a' /var/lib/flowpic/spool)" = "flowpic 700" ] || fail "spool: $(stat -c '%U %a' /var/lib/flowpic/spool)"
for u in flowpic-agent flowpic-collector; do
	systemd-analyze verify "/lib/systemd/system/$u.service" || fail "systemd-analyze verify $u"
	score=$(systemd-analyze security --offline=true "/lib/systemd/system/$u.service" 2>/dev/null |
		sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
	echo "   $u: systemd-analyze security exposure $score"
	awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' || fail "$u exposure $score > 2.0"
done
# The collector: the unit's own ExecStart line, its environment file expanded,
# with only the listening port moved; as the unit's user, umask and (no)
# capabilities, in its working folder.
# shellcheck disable=SC1091
. /etc/flowpic/collector.env
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/flowpic-collector.service)
eval "set -- $exec_start"
[ "$1" = /usr/bin/flowpic-collector ] || fail "unexpected ExecStart: $exec_start"
(cd /var/lib/flowpic-collector && umask 077 && exec setpriv --reuid flowpic --regid flowpic --init-groups \
	--inh-caps=-all --bounding-set=-all --no-new-privs "$@" --listen "127.0.0.1:$port") \
	>"$work/collector.out" 2>"$work/collector.err" &
cpid=$!
for _ in $(seq 50); do grep -q listening "$work/collector.out" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$work/collector.out" || { cat "$work/collector.err"; fail "collector did not start"; }
flowpic classify --json "$src/data/demo.pcap.xz" >"$work/v.jsonl" 2>/dev/null
flowpic-send --collector "127.0.0.1:$port" --token-file /etc/flowpic/collector.token "$work/v.jsonl" \
	>"$work/send.out" 2>&1 || { cat "$work/send.out"; fail "flowpic-send"; }
kill -INT "$cpid"; wait "$cpid" || true; cpid=
n=$(flowpic-collector query --db sqlite:/var/lib/flowpic-collector/verdicts.db | grep -c '"agent_id"' || true)
want=$(grep -c . "$work/v.jsonl")
[ "$n" -ge 1 ] && [ "$n" -le "$want" ] || fail "collector stored $n verdicts of $want lines"
echo "   collector: $n verdicts stored as the flowpic user"
[ "$(stat -c '%U %a' /var/lib/flowpic-collector/verdicts.db)" = "flowpic 600" ] \
	|| fail "database file: $(stat -c '%U %a' /var/lib/flowpic-collector/verdicts.db)"
# The agent: as flowpic with exactly the unit's three capabilities, in a
# namespace joined to another by a veth pair, captures an HTTP download and
# classifies it; with any one capability missing it cannot start.
ns_s=fpdeb-s.$$ ns_c=fpdeb-c.$$
ip netns add "$ns_s" && ip netns add "$ns_c" || fail "cannot create network namespaces"
ip link add fpdeb-c netns "$ns_c" type veth peer name fpdeb-s netns "$ns_s" || fail "veth"
ip -n "$ns_s" addr add 10.231.7.1/24 dev fpdeb-s && ip -n "$ns_s" link set fpdeb-s up
ip -n "$ns_c" addr add 10.231.7.2/24 dev fpdeb-c && ip -n "$ns_c" link set fpdeb-c up
ip -n "$ns_s" link set lo up
mkdir -p "$work/www" && head -c 8000000 /dev/urandom >"$work/www/blob"
ip netns exec "$ns_s" /usr/bin/python3 -m http.server --bind 10.231.7.1 8080 \
	--directory "$work/www" >/dev/null 2>&1 &
hpid=$!
agent_with() {
	local caps=$1 secs=$2
	ip netns exec "$ns_c" setpriv --reuid flowpic --regid flowpic --init-groups \
		--inh-caps="-all$caps" --ambient-caps="-all$caps" --bounding-set="-all$caps" \
		timeout -s INT "$secs" flowpic-agent --iface fpdeb-c -v >"$work/agent.out" 2>"$work/agent.err"
}
# The unit's capabilities, as setpriv takes them (",+bpf,+net_admin,+perfmon").
unit=/lib/systemd/system/flowpic-agent.service
ucaps=$(sed -n 's/^AmbientCapabilities=//p' "$unit" | tr 'A-Z' 'a-z' | sed 's/cap_/,+/g; s/ //g')
[ "$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")" = "$(sed -n 's/^AmbientCapabilities=//p' "$unit")" ] \
	|| fail "the agent unit's bounding set differs from its ambient capabilities"
rc=0
agent_with "$ucaps" 8 &
apid=$!
sleep 2
ip netns exec "$ns_c" /usr/bin/python3 -c '
import time, urllib.request
end = time.time() + 4
while time.time() < end:
    urllib.request.urlopen("http://10.231.7.1:8080/blob", timeout=5).read()
    time.sleep(0.3)' || fail "download in the namespace"
wait "$apid" || rc=$?
kill "$hpid" 2>/dev/null || true
[ "$rc" = 124 ] || { cat "$work/agent.err"; fail "agent with the unit's capabilities ($ucaps): exit $rc"; }
pk=$(grep -o '"packets":[0-9]*' "$work/agent.err" | tail -1 | cut -d: -f2)
nv=$(grep -c '"class"' "$work/agent.out" || true)
[ "${pk:-0}" -ge 1000 ] && [ "$nv" -ge 1 ] || { tail -3 "$work/agent.err"; fail "agent captured ${pk:-0} packets, $nv verdicts"; }
echo "   agent: as flowpic with the unit's capabilities ($ucaps) on a veth: $pk packets, $nv verdict lines"
for caps in ",+net_admin,+perfmon" ",+bpf,+perfmon" ",+bpf,+net_admin"; do
	rc=0; agent_with "$caps" 2 || rc=$?
	[ "$rc" != 124 ] && grep -q "missing capability" "$work/agent.err" \
		|| fail "agent with only $caps: exit $rc ($(head -1 "$work/agent.err"))"
done
echo "   agent: refuses to start with any one of the three missing"
ip netns del "$ns_s"; ip netns del "$ns_c"; ns_s= ns_c=

echo "== 5. purge"
dpkg --purge "${pkgs[@]}" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg --purge"; }
installed=0
for f in /usr/sbin/flowpic-agent /usr/bin/flowpic-collector /usr/bin/flowpic \
	/lib/systemd/system/flowpic-agent.service /etc/flowpic /var/lib/flowpic-collector /var/lib/flowpic; do
	[ ! -e "$f" ] || fail "$f left after purge"
done
echo "test_packages: OK"
