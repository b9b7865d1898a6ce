#!/usr/bin/env bash
# Error test of flowpic-agent: every bad start prints one clear line on
# stderr (what is wrong and what to do), nothing on stdout, and exits with
# its documented non-zero status (docs/agent.md).  The live cases need root
# (a missing capability is made real by running as nobody and by dropping
# one capability with capsh; a kernel without BTF by hiding
# /sys/kernel/btf in a private mount namespace).
# Usage: test_agent_errors.sh AGENT DEMO_CAPTURE DENY_BPF
set -uo pipefail
agent=$1 demo=$2 deny_bpf=$3
tmp=$(mktemp -d /tmp/fpt-agent-errors.XXXXXX)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

[ -x "$agent" ] || { echo "no flowpic-agent binary at $agent"; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "the live error cases need root (CI runs as root)"; exit 1; }
for t in capsh setpriv unshare; do
	command -v $t > /dev/null || { echo "$t is missing (libcap2-bin, util-linux)"; exit 1; }
done

# name, expected status, expected number of stderr lines, stderr pattern, command...
expect() {
	local name=$1 want=$2 lines=$3 pat=$4
	shift 4
	"$@" > "$tmp/out" 2> "$tmp/err"
	local rc=$? n
	n=$(wc -l < "$tmp/err")
	if [ "$rc" -ne "$want" ]; then
		bad "$name: exit $rc, want $want; stderr: $(head -c 400 "$tmp/err")"
	elif [ "$n" -ne "$lines" ]; then
		bad "$name: $n lines on stderr, want $lines: $(head -c 600 "$tmp/err")"
	elif ! grep -q -- "$pat" "$tmp/err"; then
		bad "$name: stderr lacks '$pat': $(head -c 400 "$tmp/err")"
	elif [ -s "$tmp/out" ]; then
		bad "$name: something on stdout: $(head -c 200 "$tmp/out")"
	else
		ok "$name: $(head -1 "$tmp/err")"
	fi
}

# --- settings: status 2 ---
expect "no input" 2 1 "give --iface IF to capture live or --pcap FILE" "$agent"
expect "both inputs" 2 1 "not both" "$agent" --iface lo --pcap "$demo"
expect "bad number" 2 1 "error: --idle-timeout 'soon': give seconds" "$agent" --pcap "$demo" --idle-timeout soon
expect "bad design" 2 1 "design 'fast': give records or batches" "$agent" --iface lo --design fast
expect "bad switch value" 2 1 "xdp-generic 'maybe': give true or false" "$agent" --iface lo --xdp-generic=maybe
expect "empty interface name" 2 1 "empty interface name" "$agent" --iface lo,,eth0
expect "stray argument" 2 2 "unexpected argument 'capture.pcap'" "$agent" capture.pcap
expect "unreadable config" 2 1 "$tmp/none.conf: cannot read the config file" "$agent" -c "$tmp/none.conf"
printf 'iface = lo\nidle-timeout = 1 minute\ncolour = blue\n# fine\nmax-flows 5\n' > "$tmp/bad.conf"
expect "config: each bad line" 2 3 "bad.conf:2: idle-timeout '1 minute'" "$agent" -c "$tmp/bad.conf"
grep -q "bad.conf:3: unknown key 'colour'" "$tmp/err" && grep -q "bad.conf:5: expected 'key = value'" "$tmp/err" \
	&& ok "config: lines 3 and 5 named too" || bad "config lines: $(cat "$tmp/err")"
expect "counters file not writable" 2 1 "cannot open the counters file" \
	"$agent" --pcap "$demo" --counters-file "$tmp/no/such/dir/c"
# A link in the counters file's place is not followed: the target stays empty.
: > "$tmp/target"
ln -s "$tmp/target" "$tmp/counters-link"
expect "counters file is a symbolic link" 2 1 "counters-link: the counters file is a symbolic link; refusing" \
	"$agent" --pcap "$demo" --counters-file "$tmp/counters-link"
[ -s "$tmp/target" ] && bad "the symbolic link's target was written"

# --- model: status 4 ---
expect "model missing" 4 1 "$tmp/none.fpcnn.*give --model a flowpic model file" "$agent" --pcap "$demo" --model "$tmp/none.fpcnn"
head -c 4096 /dev/urandom > "$tmp/junk.fpcnn"
expect "model not a model" 4 1 "junk.fpcnn: .*give --model" "$agent" --iface lo --model "$tmp/junk.fpcnn"

# --- replay input: status 1 and 3 ---
expect "capture missing" 1 1 "$tmp/none.pcap: cannot open" "$agent" --pcap "$tmp/none.pcap"
head -c 3000 "$demo" > "$tmp/cut.pcap.xz"
"$agent" --pcap "$tmp/cut.pcap.xz" > "$tmp/out" 2> "$tmp/err"
rc=$?
if [ $rc -eq 3 ] && grep -q "xz data ends early" "$tmp/err" && grep -q '^{"counters"' "$tmp/err"; then
	ok "capture cut short: exit 3, message, counters of what was read"
else
	bad "capture cut short: exit $rc: $(head -c 400 "$tmp/err")"
fi

# --- live capture: status 5 and 6 ---
expect "no such interface" 5 1 "interface 'fpt-agent-none' does not exist" "$agent" --iface lo,fpt-agent-none
expect "not root" 6 1 "missing capability CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN.*run as root" \
	setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$agent" --iface lo
expect "no CAP_NET_ADMIN" 6 1 "missing capability CAP_NET_ADMIN to load" \
	capsh --drop=cap_net_admin -- -c "exec '$agent' --iface lo"
expect "no CAP_BPF nor CAP_SYS_ADMIN" 6 1 "missing capability CAP_BPF to load" \
	capsh --drop=cap_bpf,cap_sys_admin -- -c "exec '$agent' --iface lo"
expect "bpf() refused by seccomp" 6 1 "refused to create a BPF map.*seccomp.*allow the bpf() system call" \
	"$deny_bpf" "$agent" --iface lo
expect "kernel without BTF" 5 1 "this kernel has no BTF.*CONFIG_DEBUG_INFO_BTF.*use --pcap" \
	unshare -m sh -c "mount -t tmpfs none /sys/kernel/btf && exec '$agent' --iface lo"

# --- after attaching: the user switch and the spool (status 2) ---
expect "no such --user" 2 1 "no user 'fpt-no-such-user' to run as after attaching; give --user NAME" \
	"$agent" --iface lo --user fpt-no-such-user
run_uid=$(id -u flowpic 2> /dev/null || id -u nobody)
mkdir -m 700 "$tmp/rootspool"
expect "spool not the agent user's" 2 1 "rootspool: owned by uid 0, not by this process's user (uid $run_uid): run chown $run_uid" \
	"$agent" --iface lo --collector 127.0.0.1:1 --spool-dir "$tmp/rootspool"
mkdir -m 755 "$tmp/openspool"
chown $run_uid "$tmp/openspool"
expect "spool open to others" 2 1 "openspool: mode 0755, expected 0700.*run chmod 700" \
	"$agent" --iface lo --collector 127.0.0.1:1 --spool-dir "$tmp/openspool"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
