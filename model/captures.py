#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Training arrays from a folder of labeled captures a researcher brings.

Every capture (pcap, pcapng or samples CSV; gzip/xz too: anything flowpic
reads) goes through `flowpic export --format npy`, the only FlowPic
implementation. Its class comes from its path by the first rule that matches:

  1. the folder layout CLASS/.../file.pcap, when a folder on the way from DIR
     to the file is named after a class (voip, video, file_transfer, chat,
     browsing);
  2. else the file name, lower-cased, against the rules below (ISCX
     VPN-nonVPN style names such as vpn_skype_audio1.pcap, youtube2.pcap,
     ftps_down_1a.pcap, facebook_chat_4b.pcap), first match wins; --rules FILE
     replaces them (lines "REGEX CLASS", # comments);
  3. else the file is left out, with one line saying so.

Every TCP/UDP flow of a labeled capture takes its class, except flows on the
ports of name, time and address services (DNS 53, mDNS 5353, LLMNR 5355,
NTP 123, NetBIOS 137-138, DHCP 67-68, SSDP 1900), which are left out, as are
flows with fewer than --min-packets packets drawn (sizes under 1500).

Whole captures go to the test split (test_session) by a hash of their name
(--test-frac), so no capture lends pictures to both sides. Output, like
`model/lab/lab.py arrays`: DIR/{train,test_session}.npy + .csv
(session = the capture's path, app = its rule, profile "captures").

Examples:
  model/captures.py ~/ISCXVPN2016 --out /var/tmp/iscx32 --res 32 --window 15
  model/train.py --arrays /var/tmp/iscx32 --net lenet32 --window 15 --out runs/iscx
"""
import argparse
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from flowpic_model.nets import CLASSES  # noqa: E402

# File-name rules (ISCX VPN-nonVPN names and the like); order matters.
RULES = [
    (r"audio|voip|voice|call|sip|rtp", "voip"),
    (r"video|youtube|netflix|vimeo|stream|hls|dash", "video"),
    (r"ftp|sftp|scp|rsync|torrent|file|transfer|upload|download|_down|_up", "file_transfer"),
    (r"chat|icq|aim|irc|xmpp|jabber|messeng|whatsapp|telegram", "chat"),
    (r"brows|http|web|facebook|twitter|reddit|news", "browsing"),
]
SERVICE_PORTS = {53, 5353, 5355, 123, 137, 138, 67, 68, 1900}
CAPTURE = re.compile(r"\.(pcap|pcapng|cap|csv)(\.gz|\.xz)?$", re.I)


def log(msg):
    print(f"captures: {msg}", file=sys.stderr, flush=True)


def read_rules(path):
    rules = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.rsplit(None, 1)
            if len(parts) != 2 or parts[1] not in CLASSES:
                sys.exit(f"{path}:{n}: expected 'REGEX CLASS' with CLASS one of "
                         f"{', '.join(CLASSES)}")
            try:
                re.compile(parts[0])
            except re.error as e:
                sys.exit(f"{path}:{n}: bad regular expression: {e}")
            rules.append((parts[0], parts[1]))
    return rules


def label_of(root, path, rules):
    """(class, rule) of a capture, or (None, None)."""
    for part in os.path.relpath(os.path.dirname(path), root).split(os.sep):
        if part.lower() in CLASSES:
            return part.lower(), "folder " + part
    name = os.path.basename(path).lower()
    for rx, cls in rules:
        if re.search(rx, name):
            return cls, rx
    return None, None


def is_test(rel, frac):
    h = int.from_bytes(hashlib.sha256(rel.encode()).digest()[:8], "big")
    return h / 2.0**64 < frac


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="folder of captures (searched recursively)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--rules", help="file of 'REGEX CLASS' lines replacing the built-in rules")
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--window", type=float, default=15)
    ap.add_argument("--direction", default="both", choices=["both", "fwd", "rev", "split"])
    ap.add_argument("--min-packets", type=int, default=10)
    ap.add_argument("--test-frac", type=float, default=0.2)
    ap.add_argument("--flowpic", default=os.path.join(ROOT, "build", "cli", "flowpic"))
    args = ap.parse_args()
    if not os.path.isdir(args.dir):
        sys.exit(f"captures: {args.dir}: not a folder")
    rules = read_rules(args.rules) if args.rules else RULES
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(args.dir) for f in fs
                   if CAPTURE.search(f))
    if not files:
        sys.exit(f"captures: {args.dir}: no capture files (*.pcap, *.pcapng, *.cap, *.csv, "
                 f"optionally .gz/.xz)")
    pics, meta, skipped = {}, {}, 0
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(files):
            rel = os.path.relpath(path, args.dir)
            cls, rule = label_of(args.dir, path, rules)
            if cls is None:
                log(f"{rel}: no class from its folder or name: left out")
                skipped += 1
                continue
            prefix = os.path.join(tmp, "c")
            r = subprocess.run([args.flowpic, "export", "-q", path, "--format", "npy",
                                "--direction", args.direction, "--res", str(args.res),
                                "--window", str(args.window), "-o", prefix],
                               stderr=subprocess.PIPE, text=True)
            if r.returncode not in (0, 3) or not os.path.exists(prefix + ".npy"):
                log(f"{rel}: flowpic export failed: {r.stderr.strip()}: left out")
                skipped += 1
                continue
            split = "test_session" if is_test(rel, args.test_frac) else "train"
            arr = np.load(prefix + ".npy")
            with open(prefix + ".index.csv") as f:
                rows = list(csv.DictReader(f))
            packets = {}
            for row in rows:
                packets[row["flow"]] = packets.get(row["flow"], 0) + int(row["samples"])
            kept = 0
            for row, pic in zip(rows, arr):
                ports = {int(row["sport"]), int(row["dport"])}
                if ports & SERVICE_PORTS or packets[row["flow"]] < args.min_packets:
                    continue
                pics.setdefault(split, []).append(pic)
                meta.setdefault(split, []).append([rel, rule, "captures", cls, row["flow"],
                                                   row["block"], row["complete"],
                                                   row["samples"], 0])
                kept += 1
            log(f"[{i + 1}/{len(files)}] {rel}: {cls} ({rule}), {split}, {kept} pictures")
            os.remove(prefix + ".npy")
    if not pics:
        sys.exit("captures: no pictures: no capture had a class and flows to keep")
    for split in sorted(pics):
        np.save(os.path.join(args.out, f"{split}.npy"), np.stack(pics[split]))
        with open(os.path.join(args.out, f"{split}.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["session", "app", "profile", "class", "flow", "block", "complete",
                        "samples", "copy"])
            w.writerows(meta[split])
        log(f"{split}: {len(pics[split])} pictures")
    with open(os.path.join(args.out, "arrays.json"), "w") as f:
        json.dump({"source": os.path.abspath(args.dir), "res": args.res, "window": args.window,
                   "direction": args.direction, "files": len(files), "left_out": skipped}, f)


if __name__ == "__main__":
    main()
