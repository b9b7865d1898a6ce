#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Differential test: flowpic against tshark on real captures.

For every capture listed below, tshark (Wireshark's dissectors, a decoder
written independently of ours) extracts the header fields of every frame.
From those fields alone this script recomputes what flowpic must report,
following the written spec (docs/flowpic.md, docs/export.md):

  - records, and the TCP / UDP / fragment / ICMP packet counts;
  - the flows: bidirectional sessions of (proto, {addr, port} pair), the
    initiator (first sender, or the destination of a first SYN+ACK), a new
    flow after more than --idle-timeout of silence; per flow the packets,
    IP bytes and payload bytes in each direction, start, duration, blocks,
    oversize packets and how the flow ended;
  - the FlowPics: block k = floor(t / window), x = floor((t - k*window) *
    res / window), y = floor(size * res / 1500), counts saturating at 255,
    sizes >= 1500 not drawn.  Every block at res 32; at res 1500 the first
    and the busiest later block of the busiest flows (exported with
    --min-samples, so a few 2.25 MB pictures are written, not hundreds);

and compares them with `flowpic flows --json` and `flowpic export --format
npy`.  Then pcap -> samples CSV -> flows / pictures must give byte-identical
output to pcap -> flows / pictures.

Reading tshark: reassembly is off (IPv4/IPv6 fragments stay single frames);
`-E occurrence=f` keeps the first value of fields that tunnels or ICMP
errors repeat, which is the outer header's; whether the outer header
carries TCP or UDP is read from frame.protocols (the layer right after the
outer ip, or after the outer ipv6 and its extension headers), never from
an inner header's fields.  Sizes: IPv4 total length - IHL*4 - TCP data
offset*4 from the header fields, tcp.len for IPv6, UDP length - 8; IP
bytes from ip.len or 40 + ipv6.plen.  Where the two cannot agree, the
frames are left out of both sides, with the reason (EXCLUDE_FRAMES).

Run by CTest (tests/diff/CMakeLists.txt); by hand:
    /usr/bin/python3 tests/diff/diff_tshark.py --flowpic build/cli/flowpic \
        --data ../shared/data [--only NAME] [--verbose]
--inject-fault {res,size,idle} deliberately breaks the reference side (model
pictures at res 31, one packet one byte bigger, idle timeout doubled); the
script then exits 0 only if comparisons caught it (CTest diff.selfcheck.*).
"""

import argparse
import collections
import csv
import decimal
import heapq
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

# ---- what is compared -------------------------------------------------------

# Real YouTube sessions (Ethernet, snaplen 72: sizes only from IP lengths).
# TCP-heavy, QUIC-heavy, and the file with the most video flows.
REQUET = [
    "A_PCAP_FILES_baseline_Jan17_exp_41.pcap.xz",
    "A_PCAP_FILES_baseline_Mar05_exp_52.pcap.xz",
    "D_PCAP_FILES_baseline_May17_exp_375.pcap.xz",
]

# Robustness traces that tshark decodes normally, picked by content (names
# grepped, then checked with `tshark -T fields -e frame.protocols`).
ROBUST = [
    # Ethernet, IPv4 TCP/UDP, longer transfers
    "zeek/workshop_2011_browse.pcap",            # 121 pkts, HTTP, several flows
    "zeek/ftp_ipv6.pcap",                        # IPv6 FTP control + data
    "zeek/postgresql_greenhouse-app.pcap",       # 230 pkts TCP
    "zeek/websocket_wstunnel-ssh.pcap",          # 258 pkts TCP
    "zeek/smb_raw_ntlm_in_smb.pcap",             # SMB
    "zeek/quic_chromium-115.0.5790.110-google-de-fragmented.pcap",  # QUIC, large UDP
    "zeek/tls_tls-conn-with-extensions.pcap",
    "zeek/http_basic-auth-with-extra-space.pcap",
    "suricata/tests_bug-4663-03_icmp_and_ssh.pcap",  # ICMP + SSH
    "suricata/tests_firewall_ruletype-firewall-117-ftp-all-data-ipv6_input.pcap",
    "zeek/communityid_udp.pcap",
    "zeek/communityid_tcp.pcap",
    "zeek/communityid_icmp.pcap",               # ICMP only: counted, no flows
    "zeek/communityid_icmp6.pcap",
    "zeek/communityid_sctp.pcap",               # SCTP: other_l4
    # VLAN: 802.1Q, QinQ, three tags
    "zeek/http-vlan-0.pcap",
    "zeek/http-qinq-0.pcap",
    "zeek/vlan-qinqinq.pcap",
    "zeek/icmp_dot1q.pcap",
    "zeek/vlan-collisions.pcap",
    "suricata/tests_eve-flow-vlan_input.pcap",
    # Linux cooked (SLL v1 / v2), raw IP, BSD null
    "suricata/tests_detect-pcre_detect-pcre-02_input.pcap",
    "suricata/tests_tcp-fastopen-05_tfo.pcap",
    "suricata/tests_websocket-ping_input.pcap",
    "zeek/tls_irc-starttls.pcap",
    # IPv4 fragments (tshark reassembly off: each fragment is its own frame)
    "zeek/ipv4_fragmented-1.pcap",
    "zeek/ipv4_fragmented-2.pcap",
    "zeek/ipv4_fragmented-3.pcap",
    "zeek/ipv4_fragmented-4.pcap",
    "zeek/ipv4_fragmented-syn.pcap",
    "suricata/tests_krb5-request-frag-log_krb5-frag.pcap",
    # IPv6 fragments, atomic fragments, extension headers
    "zeek/ipv6-fragmented-dns.pcap",
    "zeek/ipv6-http-atomic-frag.pcap",
    "zeek/ipv6-hbh-routing0.pcap",
    "zeek/ipv6-mobility-dst-opts.pcap",
    "zeek/chksums_ip6-route0-tcp-good-chksum.pcap",
    "zeek/chksums_ip6-route0-udp-good-chksum.pcap",
    "zeek/chksums_ip6-hoa-tcp-good-chksum.pcap",
    "zeek/chksums_ip6-hoa-udp-good-chksum.pcap",
    "zeek/mobile-ipv6_mip6_bu.pcap",
    "suricata/tests_ipv6-evasion_ipv6-covert-dstopts_covert_send6.pcap",
    "suricata/tests_community-id-ipv6_input.pcap",
    # Tunnels: only the outer header counts (other_l4, or the outer UDP)
    "zeek/tunnels_6in4.pcap",
    "zeek/tunnels_4in6.pcap",
    "zeek/tunnels_gre-sample.pcap",
    "zeek/tunnels_Teredo.pcap",
    "zeek/tunnels_vxlan.pcap",
    "zeek/icmp_icmp-destunreach-udp.pcap",       # ICMP error quoting UDP
    # More link types: SLL v2, raw IP (101, 228, 229), BSD null; pcapng
    "suricata/tests_decode-sll2-02_input.pcap",
    "zeek/linux_dlt_sll2.pcap",
    "zeek/rotation.pcap",
    "zeek/tcp-syslog.pcap",
    "suricata/tests_defrag_bug-6887-defrag-ipv6-tcp_frag-ip-tcp.pcap",
    "suricata/tests_defrag_bug-6887-defrag-eth-vlan-ipv6-tcp_frag-eth-vlan-ipv6-tcp.pcap",
    "suricata/tests_exception-policy-defrag-01_ipv4frags.pcap",
    "zeek/redis_pubsub-resp3.pcap",
    "suricata/tests_http2-range_http2-range.pcap",
    "zeek/redis_start-with-server.pcapng",
    "zeek/pcapng-multi-interface.pcapng",
    "zeek/irc-dcc-send.pcapng",
    "zeek/krb_kerberos_tso.pcapng",
    # Fuzzed: IPv4 total length 0 (TSO: wire length used, as tshark does),
    # UDP lengths beyond the IP payload, bogus IP versions.
    "zeek/quic_383379789-decrypt-crash.pcap",
    # Long or busy: several 60 s blocks, idle gaps, many packets
    "zeek/ftp_cwd-navigation.pcap",              # 8317 pkts over 600 s
    "suricata/tests_filestore-filecontainer-smb_filecontainer-smb.pcap",
    "suricata/tests_smb-length-5770_input.pcap",  # BSD null, 387 s
    "zeek/modbus_modbusBig.pcap",
    "zeek/ssh_ssh.pcap",                         # years between sessions
    "suricata/tests_nfs3-procedure_input.pcap",
    "suricata/tests_ipv6-evasion_ipv6-dos-with-ext-headers-5_denial6-5.pcap",
    "suricata/tests_security-8510_defrag-af-confusion-spray-h8.pcap",
]

# Frames where flowpic and tshark cannot agree, with the reason.  Both sides
# then read a copy of the capture without those frames (editcap), so the
# rest of the file is still compared.
EXCLUDE_FRAMES = {
    # Frame 1: a Destination Options header of a consistent length (24
    # bytes, inside the payload length) whose option TLVs overrun it.  tshark
    # validates the options and stops there ("Malformed Packet"); flowpic
    # steps over extension headers by their length only (as the kernel's
    # ipv6_skip_exthdr does) and decodes the UDP header behind it.  Frame 3
    # of the same file (valid options) is still compared.
    "robustness/zeek/ipv6-mobility-dst-opts.pcap": [1],
}

# (window s, idle timeout s) runs: the defaults, and a short window and
# timeout so short traces get several blocks and idle-split flows too.
CONFIGS_REQUET = [(60, 120), (10, 30)]
CONFIGS_ROBUST = [(60, 120), (1, 2)]

RES_LOW = 32
RES_HIGH = 1500
MAX_HIGH_PICS = 32          # res-1500 pictures per run (2.25 MB each)
MAX_SIZE = 1500
NS = 1_000_000_000

TSHARK_FIELDS = [
    "frame.number", "frame.time_epoch", "frame.protocols",
    "ip.hdr_len", "ip.len", "ip.flags.mf", "ip.frag_offset", "ip.proto", "ip.src", "ip.dst",
    "ipv6.plen", "ipv6.src", "ipv6.dst", "ipv6.fraghdr.offset", "ipv6.fraghdr.more",
    "tcp.srcport", "tcp.dstport", "tcp.hdr_len", "tcp.len", "tcp.flags",
    "tcp.options.mss_val", "tcp.options.timestamp.tsval",
    "udp.srcport", "udp.dstport", "udp.length",
]
# Layers flowpic steps over between the IPv6 header and the transport.
IPV6_EXT = {"ipv6.hopopts", "ipv6.routing", "ipv6.dstopts", "ipv6.fraghdr", "ah", "mipv6"}
TAG = {"vlan", "ieee8021ad"}

# ---- tshark side --------------------------------------------------------------


def ts_ns(s):
    sec, _, frac = s.partition(".")
    return int(sec) * NS + int((frac + "000000000")[:9])


def link_ok(layers):
    """Index of the outermost IP layer when the layers before it are ones
    flowpic decodes (Ethernet + up to 4 VLAN tags, SLL, raw, null/loop),
    else None."""
    for i, name in enumerate(layers):
        if name in ("ip", "ipv6"):
            break
    else:
        return None
    pre = layers[:i]
    if pre in (["raw"], ["null"], ["loop"], [], ["sll", "ethertype"]):
        return i
    if pre[:2] != ["eth", "ethertype"]:
        return None
    rest = pre[2:]
    tags = 0
    while rest[:2] and rest[0] in TAG and rest[1:2] == ["ethertype"]:
        rest = rest[2:]
        tags += 1
    return i if not rest and tags <= 4 else None


class Pkt:
    __slots__ = ("ts", "proto", "src", "sport", "dst", "dport", "size", "ip_len", "flags", "mss", "tsopt")


def classify(row):
    """One tshark row -> (kind, Pkt or None).  kind: tcp, udp, fragment,
    icmp, other (other_l4), nonip (not IP or a link layer flowpic does not
    take), l4bad (inconsistent transport lengths), undecoded (tshark could
    not dissect the transport header)."""
    f = dict(zip(TSHARK_FIELDS, row + [""] * (len(TSHARK_FIELDS) - len(row))))
    layers = f["frame.protocols"].split(":")
    i = link_ok(layers)
    if i is None:
        return "nonip", None
    p = Pkt()
    p.ts = ts_ns(f["frame.time_epoch"])
    after = layers[i + 1:]
    if layers[i] == "ip":
        if f["ip.flags.mf"] == "1" or int(f["ip.frag_offset"] or 0) != 0:
            return "fragment", None
        proto = int(f["ip.proto"])
        p.src, p.dst = f["ip.src"], f["ip.dst"]
        p.ip_len = int(f["ip.len"])
        l4_len = p.ip_len - int(f["ip.hdr_len"])
        l4 = after[0] if after else ""
    else:
        j = 0
        while j < len(after) and after[j] in IPV6_EXT:
            j += 1
        if "ipv6.fraghdr" in after[:j] and (int(f["ipv6.fraghdr.offset"] or 0) != 0 or
                                            f["ipv6.fraghdr.more"] == "1"):
            return "fragment", None
        l4 = after[j] if j < len(after) else ""
        proto = {"tcp": 6, "udp": 17, "icmpv6": 58}.get(l4, -1)
        p.src, p.dst = f["ipv6.src"], f["ipv6.dst"]
        p.ip_len = 40 + int(f["ipv6.plen"])
        l4_len = None
    if proto in (1, 58):
        return "icmp", None
    if proto not in (6, 17):
        return "other", None
    if l4 != ("tcp" if proto == 6 else "udp"):
        return "undecoded", None
    p.proto = proto
    # The spec's consistency rules: a TCP header longer than the IP payload,
    # or a UDP length beyond it, is l4_malformed (tshark warns, decodes on).
    if proto == 6:
        p.sport, p.dport = int(f["tcp.srcport"]), int(f["tcp.dstport"])
        hl = int(f["tcp.hdr_len"])
        p.flags = int(f["tcp.flags"], 16)
        # A SYN's MSS and timestamp offer (tshark reads a timestamp option
        # the snap length cut; flowpic does not: the SYN-ACK decides anyway).
        p.mss = int(f["tcp.options.mss_val"] or 0) if p.flags & 0x02 else 0
        p.tsopt = bool(f["tcp.options.timestamp.tsval"]) and bool(p.flags & 0x02)
        # IPv4: from the header fields; IPv6: tshark's own payload length
        # (payload length minus extension headers minus TCP header).
        p.size = l4_len - hl if l4_len is not None else int(f["tcp.len"])
        if hl < 20 or p.size < 0:
            return "l4bad", None
    else:
        p.sport, p.dport = int(f["udp.srcport"]), int(f["udp.dstport"])
        p.size = int(f["udp.length"]) - 8
        p.flags = 0
        p.mss, p.tsopt = 0, False
        if p.size < 0 or (l4_len is not None and p.size + 8 > l4_len):
            return "l4bad", None
    p.src = ipaddress.ip_address(p.src).compressed
    p.dst = ipaddress.ip_address(p.dst).compressed
    return ("tcp" if proto == 6 else "udp"), p


def run_tshark(path):
    cmd = ["tshark", "-n", "-r", path, "-o", "ip.defragment:FALSE",
           "-o", "ipv6.defragment:FALSE", "-o", "tcp.desegment_tcp_streams:FALSE",
           "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]
    for fld in TSHARK_FIELDS:
        cmd += ["-e", fld]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("tshark failed on %s: %s" % (path, r.stderr.strip()[-300:]))
    rows = [ln.split("\t") for ln in r.stdout.split("\n") if ln]
    return rows


class Flow:
    def __init__(self, fid, p):
        self.id = fid
        self.proto = p.proto
        if p.proto == 6 and (p.flags & 0x12) == 0x12:
            self.a, self.b = (p.dst, p.dport), (p.src, p.sport)
        else:
            self.a, self.b = (p.src, p.sport), (p.dst, p.dport)
        self.first = self.last = p.ts
        self.packets = [0, 0]
        self.bytes = [0, 0]
        self.payload = [0, 0]
        self.oversize = 0
        self.reordered = 0
        self.mss = 0            # TCP: smallest MSS its SYNs announced
        self.syn_ts = self.synack_seen = self.synack_ts = False
        self.blocks = collections.OrderedDict()   # k -> [samples, bytes, {(y, x): n}]
        self.end = None
        self.end_now = None


def model(pkts, window_s, idle_s, res_list):
    """The spec, applied to the decoded packets in file order."""
    window, idle = int(window_s * NS), int(idle_s * NS)
    active = {}
    done = []
    heap = []           # (last + idle, id, key); stale entries are skipped
    now = 0
    next_id = 1

    def end(fl, why):
        fl.end, fl.end_now = why, now
        done.append(fl)

    for p in pkts:
        now = max(now, p.ts)
        # Every flow silent for more than idle ends as time passes.
        while heap and heap[0][0] < now:
            _, fid, key = heapq.heappop(heap)
            fl = active.get(key)
            if fl and fl.id == fid and fl.last + idle < now:
                del active[key]
                end(fl, "idle")
        key = (p.proto,) + tuple(sorted([(p.src, p.sport), (p.dst, p.dport)]))
        fl = active.get(key)
        if fl is None:
            fl = Flow(next_id, p)
            next_id += 1
            active[key] = fl
        d = 0 if (p.src, p.sport) == fl.a else 1
        ts = p.ts
        if ts < fl.last:
            ts = fl.last
            fl.reordered += 1
        fl.last = ts
        heapq.heappush(heap, (ts + idle, fl.id, key))
        if p.proto == 6 and p.flags & 0x02:
            if p.mss and (not fl.mss or p.mss < fl.mss):
                fl.mss = p.mss
            if p.flags & 0x10:
                fl.synack_seen, fl.synack_ts = True, fl.synack_ts or p.tsopt
            else:
                fl.syn_ts = fl.syn_ts or p.tsopt
        # A TSO/GRO super-packet is the wire segments it stands for: the
        # handshake's MSS, less 12 when the SYN-ACK took the timestamp offer.
        seg = fl.mss
        if seg and (fl.synack_ts if fl.synack_seen else fl.syn_ts) and seg > 12:
            seg -= 12
        sizes = [p.size]
        if seg and p.size > seg:
            sizes = [seg] * (p.size // seg) + ([p.size % seg] if p.size % seg else [])
        for size in sizes:
            fl.packets[d] += 1
            fl.bytes[d] += p.ip_len - p.size + size
            fl.payload[d] += size
            if size >= MAX_SIZE:
                fl.oversize += 1
                continue
            t = ts - fl.first
            k = t // window
            blk = fl.blocks.setdefault(k, [0, 0, {r: collections.Counter() for r in res_list}])
            blk[0] += 1
            blk[1] += size
            for r in res_list:
                blk[2][r][(size * r // MAX_SIZE, (t - k * window) * r // window)] += 1
    for fl in sorted(active.values(), key=lambda x: x.id):
        end(fl, "input")
    flows = sorted(done, key=lambda x: x.id)
    return flows, window


def block_complete(fl, k, window):
    """A block is complete when its window passed within the input: a later
    block of its flow began, or capture time had passed its end when the
    flow ended."""
    last_k = next(reversed(fl.blocks))
    return k != last_k or fl.first + (k + 1) * window <= fl.end_now


def picture(cells, res):
    """The reference picture; cells outside res x res (a reference built at
    another resolution) land on the border, so they differ, not crash."""
    pic = np.zeros((res, res), dtype=np.int64)
    for (y, x), n in cells.items():
        pic[min(y, res - 1), min(x, res - 1)] += n
    return np.minimum(pic, 255).astype(np.uint8)


# ---- flowpic side -------------------------------------------------------------

def run(cmd, tmp, expect=(0,)):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp)
    if r.returncode not in expect:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode,
                                                 r.stderr.strip()[-400:]))
    return r.stdout


def flowpic_flows(fp, path, window, idle, tmp):
    out = run([fp, "flows", "--json", "--window", str(window), "--idle-timeout", str(idle),
               path], tmp)
    flows, summary = {}, None
    lines = []
    for ln in out.splitlines():
        o = json.loads(ln, parse_float=decimal.Decimal)
        if o["type"] == "summary":
            summary = o
        else:
            flows[o["flow_id"]] = o
            lines.append(ln)
    return flows, summary, lines


def flowpic_npy(fp, path, window, idle, res, min_samples, prefix, tmp):
    run([fp, "export", path, "--format", "npy", "--res", str(res), "--window", str(window),
         "--idle-timeout", str(idle), "--min-samples", str(min_samples), "-q", "-o", prefix], tmp)
    pics = np.load(prefix + ".npy")
    with open(prefix + ".index.csv") as fh:
        index = list(csv.DictReader(fh))
    return pics, index


# ---- comparison ---------------------------------------------------------------

class Report:
    def __init__(self, verbose):
        self.passed = 0
        self.failed = 0
        self.verbose = verbose
        self.errors = 0
        self.rows = []

    def check(self, label, problems):
        if problems:
            self.failed += 1
            print("FAIL %s" % label)
            for pr in problems[:8]:
                print("     %s" % pr)
            if len(problems) > 8:
                print("     ... %d more" % (len(problems) - 8))
        else:
            self.passed += 1
            if self.verbose:
                print("ok   %s" % label)
        return not problems


def addr(s):
    return ipaddress.ip_address(s).compressed


def compare_counts(kinds, summary):
    sk = summary["skipped"]
    pairs = [("records", sum(kinds.values()), summary["records"]),
             ("tcp", kinds["tcp"], summary["tcp"]),
             ("udp", kinds["udp"], summary["udp"]),
             ("fragment", kinds["fragment"], sk["fragment"]),
             ("icmp", kinds["icmp"], sk["icmp"])]
    probs = ["%s: tshark %d, flowpic %d" % (n, a, b) for n, a, b in pairs if a != b]
    if kinds["undecoded"]:
        probs.append("tshark could not decode the transport header of %d packets"
                     % kinds["undecoded"])
    if not summary["complete"]:
        probs.append("flowpic read the file only in part: %s" % summary.get("error"))
    return probs


def compare_flows(mflows, fjson):
    probs = []
    if len(mflows) != len(fjson):
        probs.append("flows: tshark %d, flowpic %d" % (len(mflows), len(fjson)))
    for fl in mflows:
        o = fjson.get(fl.id)
        if o is None:
            probs.append("flow %d missing in flowpic" % fl.id)
            continue
        want = {
            "proto": "tcp" if fl.proto == 6 else "udp",
            "src": fl.a[0], "sport": fl.a[1], "dst": fl.b[0], "dport": fl.b[1],
            "packets": sum(fl.packets), "bytes": sum(fl.bytes),
            "payload_bytes": sum(fl.payload),
            "packets_fwd": fl.packets[0], "packets_rev": fl.packets[1],
            "bytes_fwd": fl.bytes[0], "bytes_rev": fl.bytes[1],
            "start_ns": fl.first, "duration_ns": fl.last - fl.first,
            "blocks": len(fl.blocks), "oversize": fl.oversize, "reordered": fl.reordered,
            "end": fl.end,
        }
        got = dict(o)
        got["src"], got["dst"] = addr(o["src"]), addr(o["dst"])
        got["duration_ns"] = int(o["duration"] * NS)
        for k, v in want.items():
            if got.get(k) != v:
                probs.append("flow %d %s %s:%s-%s:%s: %s tshark %r, flowpic %r"
                             % (fl.id, want["proto"], fl.a[0], fl.a[1], fl.b[0], fl.b[1],
                                k, v, got.get(k)))
        if o["start"] != decimal.Decimal(fl.first) / NS:
            probs.append("flow %d start %s, want %d ns" % (fl.id, o["start"], fl.first))
    return probs


def expected_blocks(mflows, window, res, min_samples):
    """(flow, block) -> (index row, cells) of every block with at least
    min_samples samples.  flowpic writes blocks as they close, an order the
    reference does not model: rows are matched by (flow, block)."""
    out = {}
    for fl in mflows:
        for k, (samples, nbytes, cells) in fl.blocks.items():
            if samples < min_samples:
                continue
            out[(fl.id, k)] = ({
                "proto": str(fl.proto), "src": fl.a[0], "sport": str(fl.a[1]),
                "dst": fl.b[0], "dport": str(fl.b[1]),
                "start_ns": str(fl.first + k * window), "samples": str(samples),
                "bytes": str(nbytes),
                "complete": "1" if block_complete(fl, k, window) else "0",
            }, cells[res])
    return out


def compare_pics(expect, pics, index, res):
    probs = []
    if pics.dtype != np.uint8 or pics.ndim != 3 or pics.shape[1:] != (res, res):
        return ["npy has dtype %s shape %s, want uint8 [N, %d, %d]" % (pics.dtype, pics.shape,
                                                                      res, res)]
    if len(index) != pics.shape[0]:
        probs.append("index has %d rows, npy %d pictures" % (len(index), pics.shape[0]))
    seen = set()
    for i, row in enumerate(index):
        key = (int(row["flow"]), int(row["block"]))
        if int(row["pic"]) != i:
            probs.append("index row %d has pic %s" % (i, row["pic"]))
        if key in seen:
            probs.append("flow %d block %d exported twice" % key)
        seen.add(key)
        if key not in expect:
            probs.append("flow %d block %d exported, tshark has no such block" % key)
            continue
        want, cells = expect[key]
        got = dict(row)
        got["src"], got["dst"] = addr(row["src"]), addr(row["dst"])
        for k, v in want.items():
            if got[k] != v:
                probs.append("flow %d block %d: %s tshark %s, flowpic %s" % (key + (k, v, got[k])))
        if i < pics.shape[0]:
            want_pic = picture(cells, res)
            diff = np.argwhere(want_pic != pics[i])
            if len(diff):
                y, x = diff[0]
                probs.append("flow %d block %d res %d: %d cells differ, first [y=%d, x=%d] "
                             "tshark %d, flowpic %d" % (key + (res, len(diff), y, x,
                                                              want_pic[y, x], pics[i][y, x])))
    for key in sorted(set(expect) - seen):
        probs.append("flow %d block %d (%s samples) not exported"
                     % (key + (expect[key][0]["samples"],)))
    return probs


def high_res_threshold(mflows):
    """--min-samples for the res-1500 export, and the (flow, block) keys it
    was chosen for: block 0 and the busiest later block of the three flows
    with the busiest block 0, as many of them as fit in MAX_HIGH_PICS
    pictures (busiest first); failing that, the MAX_HIGH_PICS busiest."""
    all_samples = sorted((s for fl in mflows for s, _, _ in fl.blocks.values()), reverse=True)
    # Busy: most samples in block 0, the block every flow has.
    busy = sorted((fl for fl in mflows if 0 in fl.blocks),
                  key=lambda fl: (-fl.blocks[0][0], fl.id))[:3]
    wanted = []
    for fl in busy:
        ks = list(fl.blocks)
        # Its first block, and its busiest later one.
        later = sorted(ks[1:], key=lambda k: (-fl.blocks[k][0], k))[:1]
        for k in ks[:1] + later:
            wanted.append((fl.blocks[k][0], (fl.id, k)))
    wanted.sort(key=lambda w: -w[0])
    while wanted:
        t = wanted[-1][0]
        if sum(1 for s in all_samples if s >= t) <= MAX_HIGH_PICS:
            return t, [w[1] for w in wanted]
        wanted.pop()
    return (all_samples[min(len(all_samples), MAX_HIGH_PICS) - 1] if all_samples else 1), []


def files_equal(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def inject(pkts, fault):
    """--inject-fault: break the reference on purpose (the test must fail)."""
    if fault == "size":
        for p in pkts:
            if p.size > 0:
                p.size += 1
                break


def do_file(args, rep, rel, path_flowpic, path_tshark, configs, tmp):
    rows = run_tshark(path_tshark)
    kinds = collections.Counter({k: 0 for k in ("tcp", "udp", "fragment", "icmp", "other",
                                                "nonip", "l4bad", "undecoded")})
    pkts = []
    for row in rows:
        kind, p = classify(row)
        kinds[kind] += 1
        if p:
            pkts.append(p)
    inject(pkts, args.inject_fault)
    name = os.path.basename(rel)
    stats = {"records": len(rows), "tcp": kinds["tcp"], "udp": kinds["udp"],
             "frag": kinds["fragment"], "icmp": kinds["icmp"], "flows": [], "pics32": 0,
             "pics1500": 0, "fail": 0}
    failed_before = rep.failed
    for window, idle in configs:
        res32 = RES_LOW - 1 if args.inject_fault == "res" else RES_LOW
        midle = idle * 2 if args.inject_fault == "idle" else idle
        mflows, window_ns = model(pkts, window, midle, [res32, RES_HIGH])
        cfg = "w%g/i%g" % (window, idle)
        fjson, summary, lines = flowpic_flows(args.flowpic, path_flowpic, window, idle, tmp)
        if (window, idle) == configs[0]:
            rep.check("%s counts" % name, compare_counts(kinds, summary))
        rep.check("%s %s flows (%d)" % (name, cfg, len(mflows)),
                  compare_flows(mflows, fjson))
        stats["flows"].append(len(mflows))

        # Every block at res 32.
        pre = os.path.join(tmp, "p32")
        pics, index = flowpic_npy(args.flowpic, path_flowpic, window, idle, RES_LOW, 1, pre, tmp)
        exp = expected_blocks(mflows, window_ns, res32, 1)
        rep.check("%s %s res %d pictures (%d)" % (name, cfg, RES_LOW, len(exp)),
                  compare_pics(exp, pics, index, RES_LOW))
        stats["pics32"] += len(exp)

        # Block 0 and a later block of the busiest flows at res 1500.
        thr, busy = high_res_threshold(mflows)
        preh = os.path.join(tmp, "p1500")
        pics, index = flowpic_npy(args.flowpic, path_flowpic, window, idle, RES_HIGH, thr, preh,
                                  tmp)
        exp = expected_blocks(mflows, window_ns, RES_HIGH, thr)
        rep.check("%s %s res %d pictures (%d with >= %d samples: %d flows, %d block 0, "
                  "%d later; busy flow/block %s)"
                  % (name, cfg, RES_HIGH, len(exp), thr, len({k[0] for k in exp}),
                     sum(1 for k in exp if k[1] == 0), sum(1 for k in exp if k[1] > 0),
                     " ".join("%d/%d" % b for b in sorted(busy)) or "-"),
                  compare_pics(exp, pics, index, RES_HIGH))
        stats["pics1500"] += len(exp)
        del pics

        # pcap -> CSV -> flows / pictures == pcap -> flows / pictures.
        csvp = os.path.join(tmp, "samples.csv")
        run([args.flowpic, "export", path_flowpic, "-q", "-o", csvp], tmp)
        _, csum, clines = flowpic_flows(args.flowpic, csvp, window, idle, tmp)
        probs = []
        if clines != lines:
            probs.append("flows JSON from the CSV differs (%d vs %d lines)" % (len(clines),
                                                                              len(lines)))
        if csum["records"] != summary["tcp"] + summary["udp"]:
            probs.append("CSV has %d rows, the capture %d TCP/UDP packets"
                         % (csum["records"], summary["tcp"] + summary["udp"]))
        for k in ("in_flows", "tcp", "udp", "flows", "blocks", "samples", "oversize",
                  "reordered"):
            if csum[k] != summary[k]:
                probs.append("summary %s: %s from the CSV, %s from the capture"
                             % (k, csum[k], summary[k]))
        for res, thr_, p in ((RES_LOW, 1, pre), (RES_HIGH, thr, preh)):
            flowpic_npy(args.flowpic, csvp, window, idle, res, thr_, p + "c", tmp)
            for ext in (".npy", ".index.csv"):
                if not files_equal(p + ext, p + "c" + ext):
                    probs.append("res %d %s from the CSV differs" % (res, ext))
        rep.check("%s %s pcap->csv->flows/pictures identical" % (name, cfg), probs)
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
    stats["fail"] = rep.failed - failed_before
    rep.rows.append((rel, stats))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flowpic", required=True)
    ap.add_argument("--data", required=True, help="the shared data directory")
    ap.add_argument("--only", action="append", help="run files whose name contains this")
    ap.add_argument("--inject-fault", choices=["res", "size", "idle"],
                    help="break the reference on purpose: the test must then fail")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    args.flowpic = os.path.abspath(args.flowpic)
    args.data = os.path.abspath(args.data)

    for need, what in ((args.data, "data directory"),
                       (os.path.join(args.data, "requet"), "requet captures"),
                       (os.path.join(args.data, "robustness"), "robustness traces")):
        if not os.path.isdir(need):
            print("FAIL: %s %s not found (set FLOWPIC_DATA_DIR when configuring)" % (what, need))
            print("0 passed, 1 failed")
            return 1
    if not shutil.which("tshark"):
        print("FAIL: tshark not found on PATH")
        print("0 passed, 1 failed")
        return 1
    if not os.access(args.flowpic, os.X_OK):
        print("FAIL: flowpic binary %s not found" % args.flowpic)
        print("0 passed, 1 failed")
        return 1

    rep = Report(args.verbose)
    t0 = time.time()
    work = tempfile.mkdtemp(prefix="flowpic-diff-")
    try:
        runs = [("requet/" + f, CONFIGS_REQUET) for f in REQUET] + \
               [("robustness/" + f, CONFIGS_ROBUST) for f in ROBUST]
        if args.only:
            runs = [t for t in runs if any(o in t[0] for o in args.only)]
        for rel, configs in runs:
            path = os.path.join(args.data, rel)
            if not os.path.exists(path):
                rep.errors += 1
                rep.check(rel, ["missing: %s" % path])
                continue
            tmp = os.path.join(work, "run")
            os.makedirs(tmp, exist_ok=True)
            path_t = path
            if path.endswith(".xz"):
                # tshark reads the decompressed copy; flowpic the .xz itself.
                path_t = os.path.join(work, os.path.basename(path)[:-3])
                with open(path_t, "wb") as out:
                    subprocess.run(["xz", "-dc", path], stdout=out, check=True)
            if rel in EXCLUDE_FRAMES:
                frames = EXCLUDE_FRAMES[rel]
                path_t = os.path.join(work, "excl-" + os.path.basename(path))
                subprocess.run(["editcap", path, path_t] + [str(n) for n in frames],
                               check=True, stdout=subprocess.DEVNULL)
                path = path_t
                print("note %s: frames %s left out (see EXCLUDE_FRAMES)" %
                      (rel, ",".join(map(str, frames))))
            try:
                do_file(args, rep, rel, path, path_t, configs, tmp)
            except Exception as e:     # pylint: disable=broad-except
                rep.errors += 1
                rep.check(rel, ["error: %s: %s" % (type(e).__name__, e)])
            if path_t != path:
                os.unlink(path_t)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print("%-62s %7s %6s %6s %5s %5s %9s %5s %5s %s" % ("file", "records", "tcp", "udp", "frag",
                                                        "icmp", "flows", "pic32", "p1500",
                                                        "result"))
    for rel, s in rep.rows:
        print("%-62s %7d %6d %6d %5d %5d %9s %5d %5d %s"
              % (rel[-62:], s["records"], s["tcp"], s["udp"], s["frag"], s["icmp"],
                 "/".join(map(str, s["flows"])), s["pics32"], s["pics1500"],
                 "ok" if not s["fail"] else "%d FAILED" % s["fail"]))
    print("%d files, %d packets compared with tshark in %.0f s" %
          (len(rep.rows), sum(s["records"] for _, s in rep.rows), time.time() - t0))
    print("%d passed, %d failed" % (rep.passed, rep.failed))
    if args.inject_fault:
        # Self-check: the broken reference must be caught, by comparisons
        # that ran (not by a missing file or tool).
        ok = rep.failed > 0 and rep.errors == 0 and rep.rows
        print("self-check (--inject-fault %s): %s" % (
            args.inject_fault, "the fault was detected" if ok else "NOT DETECTED"))
        return 0 if ok else 1
    return 1 if rep.failed or not rep.rows else 0


if __name__ == "__main__":
    sys.exit(main())
