#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Real-traffic evaluation: `flowpic classify` judged as a user would see it.

Labeled flows from the real captures in ../shared/data (used in place, never
copied), one set per source:

  requet            flows of requet/video_flows.tsv: video; the other flows of
                    those files: unlabeled background (reported apart)
  vtd-youtube       every session (merged flows, converted to a samples CSV
                    with synthetic addresses): video
  whatsapp-web      flows ndpiReader calls WhatsApp*: chat
  bittorrent        flows ndpiReader calls BitTorrent: file_transfer
  sip               flows ndpiReader calls RTP: voip
  zeek, suricata    (robustness/ traces) flows ndpiReader calls a protocol of
                    none of the five classes (DNS, SSH, VPNs, MQTT, SMB, NTP,
                    SNMP, Modbus, DNP3, mining, ...): "other", the right
                    verdict being unknown

In every ndpi source, flows of such "other" protocols are scored as other;
flows of protocols that could be one of the classes (HTTP, TLS, QUIC, FTP,
RTP outside sip/, ...) are "ambiguous" and flows ndpi cannot name are
"unlabeled": both are reported (verdicts per protocol), never scored.

Measures, per source and overall, by flow (the flow verdict) and by density
of packets per block (the block verdicts; a block is unknown when its
confidence is below --min-confidence, as a flow would be): per-class
precision / recall / F1 (a class verdict on an "other" flow is a false
positive), coverage (class flows given any class), precision of class
verdicts, background false-positive rate (other flows given a class), and the
reasons for unknown.

The labels (ndpiReader over ~2,300 traces, the vtd-youtube CSVs) are made once
into --cache (default /tmp/flowpic-realeval); later runs only classify.

Split by capture (never by flow): split_of() is the one rule; training
scripts import it (or run --export-train) to get the train captures.

Examples:
  model/realeval.py                                   # all, embedded model, report on stdout
  model/realeval.py --split test --model runs/x/model.fpcnn --json /tmp/x.json
  model/realeval.py --out docs/model-real.md --json /tmp/real.json
  model/realeval.py --split train --export-train /tmp/train-flows.csv
  model/realeval.py --sources requet,sip -- --vote-ratio 0.5   # extra classify flags after --
"""
import argparse
import collections
import csv
import glob
import hashlib
import ipaddress
import json
import lzma
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
FLOWPIC = os.path.join(ROOT, "build", "cli", "flowpic")
CACHE = "/tmp/flowpic-realeval"
CACHE_VERSION = 1

CLASSES = ["voip", "video", "file_transfer", "chat", "browsing"]
OTHER = "other"
SOURCES = ["requet", "vtd-youtube", "whatsapp-web", "bittorrent", "sip", "zeek", "suricata"]
SOURCE_DESC = {
    "requet": "requet/: 69 YouTube captures (2018, WiFi, snaplen 72); video_flows.tsv flows = video",
    "vtd-youtube": "real/vtd-youtube/: 640 YouTube QUIC sessions (2025, first ~30 s), merged flows as one synthetic flow = video",
    "whatsapp-web": "real/whatsapp-web/: 5 WhatsApp Web captures; ndpi WhatsApp / WhatsAppFiles flows = chat",
    "bittorrent": "real/bittorrent/: one BitTorrent download; ndpi BitTorrent flows = file_transfer",
    "sip": "real/sip/: SIPp RTP samples; ndpi RTP flows = voip",
    "zeek": "robustness/zeek/: Zeek test traces; ndpi other-protocol flows = other",
    "suricata": "robustness/suricata/: suricata-verify traces; ndpi other-protocol flows = other",
}
# density bins of packets per 15-s block
BINS = [(0, 5, "<5"), (5, 20, "5-19"), (20, 100, "20-99"), (100, 500, "100-499"),
        (500, 1 << 62, ">=500")]

# ndpiReader protocol names (the master part, before a '.') that belong to
# none of the five classes. Anything else ndpi names is "ambiguous" (HTTP,
# TLS, QUIC, FTP, RTP, STUN, BitTorrent, WhatsApp, ... could be a class).
OTHER_PROTOCOLS = {
    "DNS", "MDNS", "LLMNR", "NetBIOS", "SSDP", "NTP", "SNMP", "Syslog", "DHCP", "DHCPV6",
    "BGP", "OSPF", "VRRP", "EGP", "ICMP", "ICMPV6", "IGMP", "SSH", "Telnet", "OpenVPN",
    "WireGuard", "IPsec", "GRE", "PPTP", "CiscoVPN", "TINC", "HotspotShield", "FortiClient",
    "Teredo", "Ayiya", "CAPWAP", "GTP", "GTP_U", "GTP_C", "GTP_PRIME", "LISP", "MQTT", "AMQP",
    "Nats", "ZeroMQ", "Modbus", "DNP3", "IEC60870", "s7comm", "EthernetIP", "SOMEIP", "COAP",
    "SMBv1", "SMBv23", "NFS", "AFP", "Kerberos", "LDAP", "Radius", "Diameter", "DCE_RPC",
    "Mining", "MySQL", "PostgreSQL", "MsSQL-TDS", "Oracle", "Redis", "MongoDB", "Memcached",
    "Cassandra", "DRDA", "SMTP", "SMTPS", "POP3", "POPS", "IMAP", "IMAPS", "CHECKMK",
    "Zabbix", "NetFlow", "sFlow", "Collectd", "IPP", "BJNP", "WSD", "RDP", "VNC", "XDMCP",
    "Whois-DAS", "Z39.50", "SMPP", "FIX", "DNScrypt", "DoH_DoT", "OCSP", "NestLogSink",
    "UBNTAC2", "VMware", "Corba", "RX", "SAP", "AJP", "CPHA", "Citrix", "TeamViewer",
    "AnyDesk", "RemoteScan", "HP_VIRTGRP", "Megaco", "MGCP", "H323", "IAX",
}
NDPI_UNKNOWN = {"Unknown", ""}


def log(msg):
    print(f"realeval: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the split

def _h(key):
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 100


def split_of(source, capture, group=None):
    """'train' or 'test' for one capture (or vtd-youtube session): the one rule.

    source:  one of SOURCES
    capture: the capture's file name (vtd-youtube: the session name, e.g. '480_17')
    group:   vtd-youtube only: the session's file name (its group of 50)

    - requet: captures whose names start with A_ are train (the default model
      was trained on their video flows), the other campaigns test;
    - vtd-youtube: the 720p and 1080p files are held out whole (a resolution,
      hence a traffic shape, never trained on); 480p sessions by hash of the
      session name, 70 % train;
    - bittorrent: its only capture is test (no other real file_transfer);
    - sip: g711a.pcap (the only real call) is test, the DTMF samples by hash;
    - everything else: by hash of source/file name, 70 % train.
    """
    name = os.path.basename(capture)
    if source == "requet":
        return "train" if name.startswith("A_") else "test"
    if source == "vtd-youtube":
        g = os.path.basename(group or "")
        if g and not g.startswith("youtube_480_"):
            return "test"
        return "train" if _h("vtd-youtube/" + name) < 70 else "test"
    if source == "bittorrent" or (source == "sip" and name == "g711a.pcap"):
        return "test"
    return "train" if _h(source + "/" + name) < 70 else "test"


def dev_of(source, capture):
    """Whether a train-split capture (vtd-youtube: session) is in the "dev"
    slice: about 20 % of the train split by hash of its name, kept out of
    training to choose rules (--min-block-packets, reject thresholds) without
    touching the test split. Requet has none (its A_ captures train whole)."""
    if source == "requet":
        return False
    return _h("dev/" + source + "/" + os.path.basename(capture)) < 20


def in_split(split, source, capture, group=None):
    """split: all, train, test, or fit / dev (the two parts of train, dev_of())."""
    if split == "all":
        return True
    if split in ("fit", "dev"):
        return (split_of(source, capture, group) == "train" and
                dev_of(source, capture) == (split == "dev"))
    return split_of(source, capture, group) == split


# ---------------------------------------------------------------- flow keys

def norm_ip(s):
    try:
        return str(ipaddress.ip_address(s))
    except ValueError:
        return s


def flow_key(proto, a, ap, b, bp):
    """Direction-free 5-tuple: (proto, (ip, port), (ip, port)) with the ends sorted."""
    p = {"tcp": 6, "udp": 17, "6": 6, "17": 17}.get(str(proto).lower(), proto)
    e1, e2 = (norm_ip(a), int(ap)), (norm_ip(b), int(bp))
    return (int(p),) + tuple(sorted([e1, e2]))


def key_str(k):
    return f"{k[0]}|{k[1][0]}|{k[1][1]}|{k[2][0]}|{k[2][1]}"


def key_from_str(s):
    p, a, ap, b, bp = s.split("|")
    return flow_key(p, a, ap, b, bp)


# ---------------------------------------------------------------- labels

def ndpi_category(proto_name):
    """'other', 'ambiguous' or 'unlabeled' for an ndpiReader protocol name."""
    if proto_name in NDPI_UNKNOWN:
        return "unlabeled"
    master = proto_name.split(".")[0]
    if master in NDPI_UNKNOWN:
        return "unlabeled"
    return OTHER if master in OTHER_PROTOCOLS else "ambiguous"


def label_of(source, ndpi_proto):
    """A flow's label from its source and ndpi protocol: a class, 'other',
    'ambiguous' or 'unlabeled'."""
    parts = ndpi_proto.split(".")
    if source == "whatsapp-web" and any(p.startswith("WhatsApp") for p in parts):
        return "chat"
    if source == "bittorrent" and "BitTorrent" in parts:
        return "file_transfer"
    if source == "sip" and "RTP" in parts:
        return "voip"
    return ndpi_category(ndpi_proto)


def run_ndpi(path, tmp):
    """{flow_key: ndpi protocol name} for one capture (decompressed into tmp)."""
    src = path
    if path.endswith(".xz") or path.endswith(".gz"):
        src = os.path.join(tmp, "cap.pcap")
        opener = lzma.open if path.endswith(".xz") else gzip.open
        try:
            with opener(path, "rb") as fi, open(src, "wb") as fo:
                shutil.copyfileobj(fi, fo)
        except (OSError, EOFError, lzma.LZMAError) as e:
            # a cut archive: keep what decompressed
            log(f"{path}: {e} (using what decompressed)")
    out = os.path.join(tmp, "ndpi.csv")
    if os.path.exists(out):
        os.unlink(out)
    try:
        subprocess.run(["ndpiReader", "-q", "-i", src, "-C", out], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)
    except subprocess.TimeoutExpired:
        log(f"{path}: ndpiReader timed out")
    flows = {}
    if not os.path.exists(out):
        return flows
    with open(out, newline="", errors="replace") as f:
        rd = csv.reader(f)
        head = next(rd, None)
        if not head:
            return flows
        head[0] = head[0].lstrip("#")
        ix = {h: i for i, h in enumerate(head)}
        for row in rd:
            try:
                proto = row[ix["protocol"]]
                if proto not in ("6", "17"):
                    continue
                k = flow_key(proto, row[ix["src_ip"]], row[ix["src_port"]],
                             row[ix["dst_ip"]], row[ix["dst_port"]])
                name = row[ix["ndpi_proto"]]
            except (IndexError, ValueError, KeyError):
                continue
            old = flows.get(k)
            if old is None or old in NDPI_UNKNOWN:     # a named one wins
                flows[k] = name
    return flows


def convert_vtd(path, outdir):
    """One vtd-youtube file (50 sessions) -> one samples CSV; {session: flow_key}.

    Session i is UDP 10.0.0.2:(40000+i) <-> 10.0.0.1:443, its packets start
    at 1700000000 s + 1000 s x i (sessions never overlap); positive len is
    uplink (client -> server); size = |len| - 14 (Ethernet) - 20 (IPv4) -
    8 (UDP), at least 0. The first row's direction makes the initiator.
    """
    group = os.path.basename(path).replace(".csv.xz", "")
    out = os.path.join(outdir, group + ".csv")
    sessions = {}
    i = -1
    with lzma.open(path, "rt") as fi, open(out + ".tmp", "w") as fo:
        fo.write("# flowpic samples v1 (realeval: %s)\n" % os.path.basename(path))
        fo.write("time,proto,src,sport,dst,dport,size,ip_len\n")
        for line in fi:
            line = line.strip()
            if not line or line.startswith("rel_ts_us"):
                continue
            if line.startswith("session,"):
                i += 1
                name = line.split(",", 1)[1]
                port = 40000 + i
                sessions[name] = key_str(flow_key(17, "10.0.0.2", port, "10.0.0.1", 443))
                base_us = (1700000000 + 1000 * i) * 1000000
                continue
            ts, ln = line.split(",")
            ln = int(ln)
            t = base_us + int(ts)
            size = max(abs(ln) - 42, 0)
            ip_len = max(abs(ln) - 14, 28)
            if ln >= 0:
                s, sp, d, dp = "10.0.0.2", port, "10.0.0.1", 443
            else:
                s, sp, d, dp = "10.0.0.1", 443, "10.0.0.2", port
            fo.write(f"{t // 1000000}.{t % 1000000:06d},17,{s},{sp},{d},{dp},{size},{ip_len}\n")
    os.replace(out + ".tmp", out)
    return out, sessions


def requet_video(tsv):
    """{pcap name: set of (proto, frozenset(ports))}."""
    out = {}
    with open(tsv, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            out.setdefault(row["pcap"], set()).add(
                (int(row["proto"]), frozenset((int(row["port_a"]), int(row["port_b"])))))
    return out


def build_labels(data, cache, sources):
    """The labels cache: cache/labels.json (and cache/vtd/*.csv)."""
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, "labels.json")
    lab = {"version": CACHE_VERSION, "data": data, "captures": {}}
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        if old.get("version") == CACHE_VERSION and old.get("data") == data:
            lab = old
    caps = lab["captures"]
    todo = []
    if "requet" in sources and not any(c["source"] == "requet" for c in caps.values()):
        for p in sorted(glob.glob(os.path.join(data, "requet", "*.pcap.xz"))):
            caps["requet/" + os.path.basename(p)] = {
                "source": "requet", "path": p, "name": os.path.basename(p), "flows": {}}
    if "vtd-youtube" in sources:
        vdir = os.path.join(cache, "vtd")
        os.makedirs(vdir, exist_ok=True)
        for p in sorted(glob.glob(os.path.join(data, "real", "vtd-youtube", "*.csv.xz"))):
            cid = "vtd-youtube/" + os.path.basename(p)
            if cid in caps and os.path.exists(caps[cid]["path"]):
                continue
            out, sess = convert_vtd(p, vdir)
            caps[cid] = {"source": "vtd-youtube", "path": out, "name": os.path.basename(p),
                         "orig": p, "sessions": sess,
                         "flows": {k: "vtd-session" for k in sess.values()}}
    nd = {"whatsapp-web": "real/whatsapp-web", "bittorrent": "real/bittorrent",
          "sip": "real/sip", "zeek": "robustness/zeek", "suricata": "robustness/suricata"}
    for src, sub in nd.items():
        if src not in sources:
            continue
        for p in sorted(glob.glob(os.path.join(data, sub, "*"))):
            if not os.path.isfile(p):
                continue
            cid = src + "/" + os.path.basename(p)
            if cid not in caps:
                todo.append((cid, src, p))
    if todo:
        log(f"ndpiReader on {len(todo)} captures (once; cached in {path})")
        t0 = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            for n, (cid, src, p) in enumerate(todo):
                flows = run_ndpi(p, tmp)
                caps[cid] = {"source": src, "path": p, "name": os.path.basename(p),
                             "flows": {key_str(k): v for k, v in flows.items()}}
                if (n + 1) % 200 == 0:
                    log(f"  {n + 1}/{len(todo)} ({time.time() - t0:.0f} s)")
                    _save(path, lab)
        log(f"ndpiReader done in {time.time() - t0:.0f} s")
    _save(path, lab)
    return lab


def _save(path, lab):
    with open(path + ".tmp", "w") as f:
        json.dump(lab, f)
    os.replace(path + ".tmp", path)


def flow_label(cap, key, video):
    """(label, protocol) of one flowpic flow of a cached capture."""
    src = cap["source"]
    if src == "requet":
        rq = video.get(cap["name"].replace(".xz", ""), set())
        return ("video" if (key[0], frozenset((key[1][1], key[2][1]))) in rq
                else "background", "")
    if src == "vtd-youtube":
        ks = key_str(key)
        return ("video", "YouTube-QUIC") if ks in cap["flows"] else ("unlabeled", "")
    name = cap["flows"].get(key_str(key))
    if name is None:
        return "unlabeled", "(no ndpi flow)"
    return label_of(src, name), name


def captures(lab, split, sources):
    """[(capture id, capture, group-split unit)] of the labels cache in a split.

    vtd-youtube files are kept whole here; their sessions are split one by one
    (session_in_split())."""
    out = []
    for cid, cap in sorted(lab["captures"].items()):
        if cap["source"] not in sources:
            continue
        if cap["source"] == "vtd-youtube":
            if split == "all" or any(in_split(split, "vtd-youtube", s, cap["name"])
                                     for s in cap["sessions"]):
                out.append((cid, cap))
        elif in_split(split, cap["source"], cap["name"]):
            out.append((cid, cap))
    return out


def session_in_split(cap, key, split):
    """vtd-youtube: whether the session of this flow is in the split."""
    if cap["source"] != "vtd-youtube" or split == "all":
        return True
    ks = key_str(key)
    for s, k in cap["sessions"].items():
        if k == ks:
            return in_split(split, "vtd-youtube", s, cap["name"])
    return False


# ---------------------------------------------------------------- classify

def classify(flowpic, files, model, extra, batch=150):
    """Yield (file, flow dict, [block dicts]) from `flowpic classify --json --blocks`."""
    for i in range(0, len(files), batch):
        cmd = [flowpic, "classify", "--json", "--blocks", "--quiet"]
        if model:
            cmd += ["--model", model]
        part = files[i:i + batch]
        cmd += list(extra) + part
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pending = {}
        for line in p.stdout:
            try:
                o = json.loads(line)
            except ValueError:
                continue
            kind = o.get("type")
            if kind == "block":
                pending.setdefault(o["flow_id"], []).append(o)
            elif kind == "summary":
                if "file" in o:  # a file's summary (the last one has the totals)
                    pending = {}
            elif kind == "flow":
                # one file: the flow lines carry no "file"
                yield o.get("file", part[0] if len(part) == 1 else None), o, \
                    pending.pop(o["flow_id"], [])
        err = p.stderr.read()
        rc = p.wait()
        if rc == 1:     # a file (of the batch) could not be read at all: the rest was
            bad = sum(1 for l in err.splitlines() if "error" in l)
            log(f"classify: {bad} file(s) of a batch unreadable (first: "
                f"{err.strip().splitlines()[0][:200] if err.strip() else '?'})")
        elif rc not in (0, 3):
            raise SystemExit(f"realeval: {' '.join(cmd[:8])} ...: exit {rc}: {err.strip()[:500]}")


# ---------------------------------------------------------------- metrics

def bin_of(n):
    for lo, hi, name in BINS:
        if lo <= n < hi:
            return name
    return BINS[-1][2]


def metrics(pairs):
    """Measures of [(truth, prediction)]: truth a class or 'other', prediction a
    class or 'unknown'. Pure arithmetic (tested by model/tests/test_realeval.py)."""
    per = {}
    for c in CLASSES:
        tp = sum(1 for t, p in pairs if t == c and p == c)
        fp = sum(1 for t, p in pairs if t != c and p == c)
        fn = sum(1 for t, p in pairs if t == c and p != c)
        prec = tp / (tp + fp) if tp + fp else None
        rec = tp / (tp + fn) if tp + fn else None
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
        per[c] = {"tp": tp, "fp": fp, "fn": fn, "support": tp + fn, "precision": prec,
                  "recall": rec, "f1": f1}
    cls = [(t, p) for t, p in pairs if t in CLASSES]
    oth = [(t, p) for t, p in pairs if t == OTHER]
    verdicts = [(t, p) for t, p in pairs if p in CLASSES]
    f1s = [per[c]["f1"] for c in CLASSES if per[c]["support"]]
    conf = {t: collections.Counter() for t in CLASSES + [OTHER]}
    for t, p in pairs:
        conf[t][p] += 1
    return {
        "n": len(pairs), "class_items": len(cls), "other_items": len(oth),
        "per_class": per,
        "macro_f1": sum(f1s) / len(f1s) if f1s else None,
        "coverage": sum(1 for t, p in cls if p in CLASSES) / len(cls) if cls else None,
        "accuracy": sum(1 for t, p in cls if p == t) / len(cls) if cls else None,
        "class_verdicts": len(verdicts),
        "precision": (sum(1 for t, p in verdicts if t == p) / len(verdicts)
                      if verdicts else None),
        "background_fp_rate": (sum(1 for t, p in oth if p in CLASSES) / len(oth)
                               if oth else None),
        "confusion": {t: dict(v) for t, v in conf.items() if v},
    }


def evaluate(lab, args, sources):
    video = requet_video(os.path.join(args.data, "requet", "video_flows.tsv"))
    caps = captures(lab, args.split, sources)
    by_path = {cap["path"]: (cid, cap) for cid, cap in caps}
    files = [cap["path"] for cid, cap in caps]
    minconf = args.min_confidence
    per_src = {s: {"flows": [], "blocks": [], "bg": collections.Counter(),
                   "bg_proto": collections.defaultdict(collections.Counter),
                   "other_proto": collections.defaultdict(collections.Counter),
                   "reasons": {"class": collections.Counter(), "other": collections.Counter()},
                   "captures": set(), "skipped_no_block": 0,
                   "block_samples": {"class": [], "other": []}}
               for s in sources}
    t0 = time.time()
    nflows = 0
    for file, fl, blocks in classify(args.flowpic, files, args.model, args.classify_args):
        nflows += 1
        cid, cap = by_path.get(file, (None, None))
        if cap is None:
            continue
        src = cap["source"]
        S = per_src[src]
        key = flow_key(fl["proto"], fl["src"], fl["sport"], fl["dst"], fl["dport"])
        if not session_in_split(cap, key, args.split):
            continue
        label, proto = flow_label(cap, key, video)
        pred = fl["class"]
        if not fl.get("blocks"):
            S["skipped_no_block"] += 1
            continue
        S["captures"].add(cid)
        if label in CLASSES or label == OTHER:
            nb = fl["blocks"]
            dens = fl["packets"] / nb
            S["flows"].append((label, pred, dens, fl["packets"], fl.get("reason"),
                               proto, cid, bool(fl.get("early"))))
            kind = "class" if label in CLASSES else "other"
            if pred not in CLASSES:
                S["reasons"][kind][fl.get("reason", "?")] += 1
            if label == OTHER:
                S["other_proto"][proto.split(".")[0]][pred] += 1
            for b in blocks:
                # the block's verdict as the CLI gives it ('unknown' when sparse,
                # 'other' when rejected), and below --min-confidence unknown too;
                # raw: the model's argmax (top), whatever the rules say
                bp = b["class"] if (b["class"] in CLASSES and
                                    b["confidence"] >= minconf) else "unknown"
                raw = b.get("top", b["class"])
                S["blocks"].append((label, bp, b["samples"], bool(b.get("early")), raw))
                S["block_samples"][kind].append(b["samples"])
        else:
            S["bg"][pred] += 1
            S["bg_proto"][(label + ":" + proto.split(".")[0]) if proto else label][pred] += 1
    elapsed = time.time() - t0
    return per_src, elapsed, nflows, len(files)


def summarize(per_src, sources):
    out = {"sources": {}, "overall": None}
    allf, allb = [], []
    for s in sources:
        S = per_src[s]
        f = S["flows"]
        b = S["blocks"]
        allf += f
        allb += b
        out["sources"][s] = summarize_one(S, f, b)
    out["overall"] = summarize_one(None, allf, allb)
    # pooled: reasons, background, protocols
    tot = {"reasons": {"class": collections.Counter(), "other": collections.Counter()},
           "bg": collections.Counter(), "other_proto": collections.defaultdict(collections.Counter),
           "bg_proto": collections.defaultdict(collections.Counter)}
    for s in sources:
        S = per_src[s]
        for k in ("class", "other"):
            tot["reasons"][k].update(S["reasons"][k])
        tot["bg"].update(S["bg"])
        for p, c in S["other_proto"].items():
            tot["other_proto"][p].update(c)
        for p, c in S["bg_proto"].items():
            tot["bg_proto"][s + " " + p].update(c)
    o = out["overall"]
    o["unknown_reasons"] = {k: dict(v) for k, v in tot["reasons"].items()}
    o["other_by_protocol"] = {p: dict(c) for p, c in sorted(tot["other_proto"].items())}
    o["background_by_protocol"] = {p: dict(c) for p, c in sorted(tot["bg_proto"].items())}
    return out


def summarize_one(S, flows, blocks):
    r = metrics([(t, p) for t, p, *_ in flows])
    r["flows_early_class"] = sum(1 for f in flows if f[7] and f[0] in CLASSES)
    r["flows_early_other"] = sum(1 for f in flows if f[7] and f[0] == OTHER)
    r["by_density_blocks"] = {}
    r["by_density_flows"] = {}
    r["by_density_blocks_raw"] = {}
    for lo, hi, name in BINS:
        bb = [(t, p) for t, p, n, e, raw in blocks if lo <= n < hi]
        r["by_density_blocks"][name] = metrics(bb)
        r["by_density_blocks_raw"][name] = metrics(
            [(t, raw) for t, p, n, e, raw in blocks if lo <= n < hi])
        ff = [(f[0], f[1]) for f in flows if lo <= f[2] < hi]
        r["by_density_flows"][name] = metrics(ff)
    r["blocks"] = metrics([(b[0], b[1]) for b in blocks])
    r["blocks_raw"] = metrics([(b[0], b[4]) for b in blocks])
    r["blocks_early"] = sum(1 for b in blocks if b[3])
    for kind in ("class", "other"):
        ns = sorted(b[2] for b in blocks if (b[0] in CLASSES) == (kind == "class"))
        r[f"block_samples_{kind}"] = ({"n": len(ns), "median": ns[len(ns) // 2],
                                       "p10": ns[len(ns) // 10], "p90": ns[len(ns) * 9 // 10]}
                                      if ns else None)
    if S is not None:
        r["captures"] = len(S["captures"])
        r["skipped_no_block"] = S["skipped_no_block"]
        r["unknown_reasons"] = {k: dict(v) for k, v in S["reasons"].items()}
        r["background"] = dict(S["bg"])
        r["other_by_protocol"] = {p: dict(c) for p, c in sorted(S["other_proto"].items())}
        r["background_by_protocol"] = {p: dict(c) for p, c in sorted(S["bg_proto"].items())}
    return r


# ---------------------------------------------------------------- report

def pct(x):
    return "-" if x is None else f"{100 * x:.1f}"


def report(res, args, meta):
    L = []
    w = L.append
    srcs = [s for s in res["sources"] if res["sources"][s]["n"] or res["sources"][s]["background"]]
    w(f"Split `{args.split}`, model `{meta['model']}`; {meta['files']} files, "
      f"{meta['flows']} flows classified in {meta['classify_s']:.0f} s. Flows with at least one block; "
      f"block verdicts below confidence {args.min_confidence} count as unknown.\n")
    w("### Flows, per source\n")
    w("| source | captures | class flows | other flows | coverage % | precision % | "
      "background FP % | macro-F1 % | video recall % | early: class / other flows |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in srcs + ["overall"]:
        r = res["overall"] if s == "overall" else res["sources"][s]
        w(f"| {'**overall**' if s == 'overall' else s} | {r.get('captures', sum(res['sources'][x].get('captures', 0) for x in srcs))} | "
          f"{r['class_items']} | {r['other_items']} | {pct(r['coverage'])} | {pct(r['precision'])} | "
          f"{pct(r['background_fp_rate'])} | {pct(r['macro_f1'])} | "
          f"{pct(r['per_class']['video']['recall'])} | {r['flows_early_class']} / {r['flows_early_other']} |")
    w("\ncoverage: class flows given any class; precision: right class verdicts / all class "
      "verdicts (other-protocol flows included); background FP: other-protocol flows given a "
      "class.\n")
    w("### Per class, overall (flows)\n")
    w("| class | flows | TP | FP | FN | precision % | recall % | F1 % |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    for c in CLASSES:
        p = res["overall"]["per_class"][c]
        w(f"| {c} | {p['support']} | {p['tp']} | {p['fp']} | {p['fn']} | {pct(p['precision'])} | "
          f"{pct(p['recall'])} | {pct(p['f1'])} |")
    w("\n### Confusion, overall (flows; rows truth, columns verdict)\n")
    seen = set()
    for row in res["overall"]["confusion"].values():
        seen.update(row)
    cols = CLASSES + (["other"] if "other" in seen else []) + ["unknown"]
    w("| truth | " + " | ".join(cols) + " |")
    w("|---|" + "---:|" * len(cols))
    for t in CLASSES + [OTHER]:
        row = res["overall"]["confusion"].get(t)
        if row:
            w(f"| {t} | " + " | ".join(str(row.get(c, 0)) for c in cols) + " |")
    for key, allkey, title in (
            ("by_density_blocks", "blocks", "block verdicts (the CLI's block class; unknown when "
             "it is not a class or its confidence is below the threshold)"),
            ("by_density_blocks_raw", "blocks_raw", "the model's raw argmax (`top`) of every "
             "block, no rule: what the CNN itself says")):
        w(f"\n### By density: packets per 15-s block, {title}, all sources\n")
        w("| packets / block | class blocks | other blocks | coverage % | precision % | "
          "background FP % | video recall % | voip / file / chat / browsing recall % |")
        w("|---|---:|---:|---:|---:|---:|---:|---|")
        for lo, hi, name in BINS:
            r = res["overall"][key][name]
            pc = r["per_class"]
            w(f"| {name} | {r['class_items']} | {r['other_items']} | {pct(r['coverage'])} | "
              f"{pct(r['precision'])} | {pct(r['background_fp_rate'])} | "
              f"{pct(pc['video']['recall'])} | "
              f"{pct(pc['voip']['recall'])} / {pct(pc['file_transfer']['recall'])} / "
              f"{pct(pc['chat']['recall'])} / {pct(pc['browsing']['recall'])} |")
        r = res["overall"][allkey]
        w(f"| **all** | {r['class_items']} | {r['other_items']} | {pct(r['coverage'])} | "
          f"{pct(r['precision'])} | {pct(r['background_fp_rate'])} | "
          f"{pct(r['per_class']['video']['recall'])} | |")
    w("\n### By density: flows, by their mean packets per block (flow verdicts)\n")
    w("| packets / block | class flows | other flows | coverage % | precision % | "
      "background FP % | video recall % |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    for lo, hi, name in BINS:
        r = res["overall"]["by_density_flows"][name]
        w(f"| {name} | {r['class_items']} | {r['other_items']} | {pct(r['coverage'])} | "
          f"{pct(r['precision'])} | {pct(r['background_fp_rate'])} | "
          f"{pct(r['per_class']['video']['recall'])} |")
    w("\n### Block density per source (packets per block: median, 10th / 90th percentile)\n")
    w("| source | class blocks | median | p10 / p90 | other blocks | median | p10 / p90 |")
    w("|---|---:|---:|---|---:|---:|---|")
    for s in srcs:
        r = res["sources"][s]
        a, b = r["block_samples_class"], r["block_samples_other"]
        f = lambda d: (f"{d['n']} | {d['median']} | {d['p10']} / {d['p90']}" if d else "0 | - | -")
        w(f"| {s} | {f(a)} | {f(b)} |")
    w("\n### Unknown: reasons (flows; the JSON `reason` of flows whose verdict is not a class)\n")
    rs = set()
    for s in srcs:
        for k in ("class", "other"):
            rs.update(res["sources"][s]["unknown_reasons"][k])
    rs = sorted(rs)
    w("| source | " + " | ".join(f"class flows: {x}" for x in rs) + " | " +
      " | ".join(f"other flows: {x}" for x in rs) + " |")
    w("|---|" + "---:|" * (2 * len(rs)))
    for s in srcs + ["overall"]:
        u = (res["overall"] if s == "overall" else res["sources"][s])["unknown_reasons"]
        w(f"| {s} | " + " | ".join(str(u["class"].get(x, 0)) for x in rs) + " | " +
          " | ".join(str(u["other"].get(x, 0)) for x in rs) + " |")
    w("\n### Other-protocol flows: verdicts per ndpi protocol (all sources)\n")
    w("| protocol | flows | " + " | ".join(cols) + " |")
    w("|---|---:|" + "---:|" * len(cols))
    op = res["overall"]["other_by_protocol"]
    for p, c in sorted(op.items(), key=lambda x: -sum(x[1].values())):
        w(f"| {p} | {sum(c.values())} | " + " | ".join(str(c.get(x, 0)) for x in cols) + " |")
    w("\n### Unlabeled and ambiguous background (not scored): verdicts\n")
    w("requet `background`: the flows of the Requet files not in video_flows.tsv; "
      "`ambiguous:P`: ndpi protocol P that could be one of the classes; "
      "`unlabeled`: ndpi could not name it (or no ndpi flow matched).\n")
    w("| source, kind | flows | " + " | ".join(cols) + " |")
    w("|---|---:|" + "---:|" * len(cols))
    bp = res["overall"]["background_by_protocol"]
    rows = sorted(bp.items(), key=lambda x: -sum(x[1].values()))
    for p, c in rows[:30]:
        w(f"| {p} | {sum(c.values())} | " + " | ".join(str(c.get(x, 0)) for x in cols) + " |")
    if len(rows) > 30:
        rest = collections.Counter()
        for p, c in rows[30:]:
            rest.update(c)
        w(f"| ({len(rows) - 30} more) | {sum(rest.values())} | " +
          " | ".join(str(rest.get(x, 0)) for x in cols) + " |")
    w("\n### Per source, per class (flows: precision / recall / F1 %, flows)\n")
    w("| source | " + " | ".join(CLASSES) + " |")
    w("|---|" + "---|" * len(CLASSES))
    for s in srcs:
        pc = res["sources"][s]["per_class"]
        w(f"| {s} | " + " | ".join(
            (f"{pct(pc[c]['precision'])} / {pct(pc[c]['recall'])} / {pct(pc[c]['f1'])} ({pc[c]['support']})"
             if pc[c]["support"] or pc[c]["fp"] else "-") for c in CLASSES) + " |")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- training export

def export_train(lab, split, sources, out, data):
    """Write the labeled flows of a split as CSV, for a trainer:

    source,capture,group,path,proto,a_ip,a_port,b_ip,b_port,label,ndpi

    `path` is what `flowpic export` reads (the capture in ../shared/data, or the
    converted vtd-youtube samples CSV in the cache); (proto, a, b) is the flow's
    5-tuple without direction (ends sorted): join it to `flowpic export
    --format npy`'s PREFIX.index.csv (proto,src,sport,dst,dport) with
    flow_key(). label: one of the five classes or 'other'. Requet's video
    flows are listed by ports (video_flows.tsv has no addresses): a_ip and
    b_ip are '*' there, match on proto and the port pair.
    """
    video = requet_video(os.path.join(data, "requet", "video_flows.tsv"))
    n = collections.Counter()
    with open(out, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["source", "capture", "group", "path", "proto", "a_ip", "a_port", "b_ip",
                     "b_port", "label", "ndpi"])
        for cid, cap in captures(lab, split, sources):
            src = cap["source"]
            if src == "requet":
                for proto, ports in sorted(video.get(cap["name"].replace(".xz", ""), ()),
                                           key=lambda x: (x[0], sorted(x[1]))):
                    pp = sorted(ports) if len(ports) == 2 else sorted(ports) * 2
                    wr.writerow([src, cap["name"], "", cap["path"], proto, "*", pp[0], "*",
                                 pp[1], "video", ""])
                    n["video"] += 1
                continue
            if src == "vtd-youtube":
                for s, ks in sorted(cap["sessions"].items()):
                    if not in_split(split, src, s, cap["name"]):
                        continue
                    k = key_from_str(ks)
                    wr.writerow([src, s, cap["name"], cap["path"], k[0], k[1][0], k[1][1],
                                 k[2][0], k[2][1], "video", ""])
                    n["video"] += 1
                continue
            for ks, name in sorted(cap["flows"].items()):
                label = label_of(src, name)
                if label not in CLASSES and label != OTHER:
                    continue
                k = key_from_str(ks)
                wr.writerow([src, cap["name"], "", cap["path"], k[0], k[1][0], k[1][1], k[2][0],
                             k[2][1], label, name])
                n[label] += 1
    log(f"{out}: " + ", ".join(f"{k} {v}" for k, v in sorted(n.items())) + " flows")
    return n


def train_lookup(labels_csv):
    """A function (path, proto, src, sport, dst, dport) -> label or None over an
    --export-train CSV, for the rows of `flowpic export ... PREFIX.index.csv`:

        lk = train_lookup("/tmp/train-flows.csv")
        for path in paths:       # run flowpic export on each path, then
            for row in csv.DictReader(open(prefix + ".index.csv")):
                label = lk(path, row["proto"], row["src"], row["sport"], row["dst"], row["dport"])
    """
    exact, ports = {}, {}
    with open(labels_csv, newline="") as f:
        for r in csv.DictReader(f):
            if r["a_ip"] == "*":
                ports.setdefault(r["path"], {})[
                    (int(r["proto"]), frozenset((int(r["a_port"]), int(r["b_port"]))))] = r["label"]
            else:
                exact.setdefault(r["path"], {})[
                    flow_key(r["proto"], r["a_ip"], r["a_port"], r["b_ip"], r["b_port"])] = r["label"]

    def lookup(path, proto, src, sport, dst, dport):
        k = flow_key(proto, src, sport, dst, dport)
        lab = exact.get(path, {}).get(k)
        if lab is None and path in ports:
            lab = ports[path].get((k[0], frozenset((k[1][1], k[2][1]))))
        return lab
    return lookup


# ---------------------------------------------------------------- main

def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DATA, help="the shared data folder (default: %(default)s)")
    ap.add_argument("--cache", default=CACHE, help="labels cache folder (default: %(default)s)")
    ap.add_argument("--flowpic", default=FLOWPIC, help="the flowpic CLI (default: %(default)s)")
    ap.add_argument("--model", help="a model file for classify --model (default: embedded)")
    ap.add_argument("--split", choices=["train", "test", "all", "fit", "dev"], default="all",
                    help="captures of this split (split_of(); fit and dev: the two parts "
                    "of train, dev_of(); default: %(default)s)")
    ap.add_argument("--sources", default=",".join(SOURCES),
                    help="comma-separated sources (default: all: %(default)s)")
    ap.add_argument("--min-confidence", type=float, default=None,
                    help="a block verdict below this confidence counts as unknown (default: "
                    "classify's --min-confidence if given after --, else 2 / classes = 0.4)")
    ap.add_argument("--out", help="also write the markdown report to this file")
    ap.add_argument("--json", help="write the measures as JSON to this file")
    ap.add_argument("--labels-only", action="store_true", help="build the labels cache and stop")
    ap.add_argument("--export-train", metavar="CSV",
                    help="write the labeled flows of --split (five classes and other) for a "
                    "trainer, and stop (see export_train())")
    args = ap.parse_args(argv)
    args.classify_args = extra
    sources = [s for s in args.sources.split(",") if s]
    for s in sources:
        if s not in SOURCES:
            ap.error(f"unknown source {s} (known: {', '.join(SOURCES)})")
    if args.min_confidence is None:
        args.min_confidence = 0.4
        for i, a in enumerate(extra):
            if a.startswith("--min-confidence="):
                args.min_confidence = float(a.split("=", 1)[1])
            elif a == "--min-confidence" and i + 1 < len(extra):
                args.min_confidence = float(extra[i + 1])
    t0 = time.time()
    lab = build_labels(args.data, args.cache, sources)
    if args.labels_only:
        return 0
    if args.export_train:
        export_train(lab, args.split, sources, args.export_train, args.data)
        return 0
    if not os.access(args.flowpic, os.X_OK):
        raise SystemExit(f"realeval: {args.flowpic}: not found (build it first)")
    per_src, csec, nflows, nfiles = evaluate(lab, args, sources)
    res = summarize(per_src, sources)
    meta = {"model": args.model or "embedded (model/default.fpcnn)", "split": args.split,
            "files": nfiles, "flows": nflows, "classify_s": csec,
            "total_s": time.time() - t0, "classify_args": extra,
            "min_confidence": args.min_confidence, "bins": [b[2] for b in BINS],
            "sources": {s: SOURCE_DESC[s] for s in sources}}
    res["meta"] = meta
    text = report(res, args, meta)
    sys.stdout.write(text)
    if args.out:
        cmd = "model/realeval.py " + " ".join(sys.argv[1:] if argv is None else argv)
        with open(args.out, "w") as f:
            f.write("# Real-traffic evaluation\n\n")
            f.write("Generated by `" + cmd.strip() + "` (" +
                    time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + "), on the CLI "
                    f"`{os.path.relpath(args.flowpic, ROOT)}`.\n\n")
            f.write("| source | what, and the label |\n|---|---|\n")
            for s_ in sources:
                f.write(f"| {s_} | {SOURCE_DESC[s_]} |\n")
            f.write("\n## Results\n\n")
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
    log(f"done in {time.time() - t0:.0f} s (classify {csec:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
