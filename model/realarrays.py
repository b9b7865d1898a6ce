#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Training arrays from real captures, labeled by model/realeval.py.

Reads a labeled-flow CSV written by `model/realeval.py --split S --export-train
CSV` (five classes and "other"), runs `flowpic export --format npy` (the only
FlowPic implementation) on every capture it names, joins the index rows to the
labels by the direction-free 5-tuple (realeval.train_lookup) and writes the
labeled pictures as lab-style arrays train.py reads with --extra:

  DIR/NAME.npy   uint8 [N, 2, R, R] (--direction split) or [N, R, R]
  DIR/NAME.csv   session,app,profile,class,flow,block,complete,samples,copy,ndpi
                 (session: source/capture, or source/session for vtd-youtube;
                 app: the source; profile: "real"; copy > 0: augmented copy)
  DIR/NAME.json  the options

Copy 0 is the plain export (with --hop); each --aug DROP adds, for flows whose
label is in --aug-labels, one copy exported with --aug-drop DROP (each packet
left out with that probability: DROP 0.95 keeps 5 % of the packets),
--aug-time-scale and --aug-time-shift (block boundaries elsewhere, i.e.
truncated flows), seed k for the k-th copy.

Examples:
  model/realeval.py --split fit --export-train /var/tmp/fit.csv
  model/realarrays.py /var/tmp/fit.csv --out /var/tmp/real32 --name train --hop 5 \\
      --aug 0.5 0.8 0.95 --skip-sources requet
  model/realeval.py --split dev --export-train /var/tmp/dev.csv
  model/realarrays.py /var/tmp/dev.csv --out /var/tmp/real32 --name dev --skip-sources requet
"""
import argparse
import collections
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import realeval  # noqa: E402


def log(msg):
    print(f"realarrays: {msg}", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("labels", help="realeval.py --export-train CSV")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="train", help="arrays name (default %(default)s)")
    ap.add_argument("--flowpic", default=os.path.join(ROOT, "build", "cli", "flowpic"))
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--window", type=float, default=15)
    ap.add_argument("--direction", default="split", choices=["both", "fwd", "rev", "split"])
    ap.add_argument("--hop", type=float, help="block hop of the plain copy (overlapping blocks)")
    ap.add_argument("--aug", type=float, nargs="*", default=[],
                    help="one augmented copy per drop probability given")
    ap.add_argument("--aug-labels", default="voip,video,file_transfer,chat,browsing",
                    help="labels that get the augmented copies (default: the five classes)")
    ap.add_argument("--aug-time-scale", default="0.5:1.5")
    ap.add_argument("--skip-sources", default="", help="comma-separated sources to leave out")
    ap.add_argument("--max-per-flow", type=int, default=0,
                    help="at most this many pictures of one flow per copy (0: all)")
    args = ap.parse_args()

    skip = set(filter(None, args.skip_sources.split(",")))
    rows = [r for r in csv.DictReader(open(args.labels, newline=""))
            if r["source"] not in skip]
    lookup = realeval.train_lookup(args.labels)
    # session id per (path, flow key): the capture, or the vtd-youtube session
    sess = {}
    by_path = collections.OrderedDict()
    for r in rows:
        by_path.setdefault(r["path"], r["source"])
        if r["a_ip"] != "*":
            k = realeval.flow_key(r["proto"], r["a_ip"], r["a_port"], r["b_ip"], r["b_port"])
            sess[(r["path"], k)] = (r["source"] + "/" + r["capture"], r["ndpi"])
    aug_labels = set(args.aug_labels.split(","))
    common = ["--format", "npy", "--res", str(args.res), "--window", str(args.window),
              "--direction", args.direction]
    copies = [(0, ["--hop", str(args.hop)] if args.hop else [])]
    for k, drop in enumerate(args.aug, 1):
        copies.append((k, ["--aug-drop", str(drop), "--aug-time-scale", args.aug_time_scale,
                           "--aug-time-shift", str(args.window), "--aug-seed", str(k)]))
    pics, meta = [], []
    n = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "p")
        for i, (path, src) in enumerate(by_path.items()):
            for copy, extra in copies:
                for ext in (".npy", ".index.csv"):
                    if os.path.exists(prefix + ext):
                        os.unlink(prefix + ext)
                p = subprocess.run([args.flowpic, "export", "-q", path, "-o", prefix] + common
                                   + extra, stderr=subprocess.PIPE, text=True)
                if p.returncode not in (0, 3) or not os.path.exists(prefix + ".npy"):
                    log(f"{path}: export exit {p.returncode} {p.stderr.strip()[:200]}")
                    break
                arr = np.load(prefix + ".npy")
                if arr.ndim == 3 and args.direction == "split":
                    arr = arr.reshape(len(arr), 2, args.res, args.res)
                with open(prefix + ".index.csv", newline="") as f:
                    index = list(csv.DictReader(f))
                per_flow = collections.Counter()
                for row, pic in zip(index, arr):
                    lab = lookup(path, row["proto"], row["src"], row["sport"], row["dst"],
                                 row["dport"])
                    if lab is None or (copy and lab not in aug_labels):
                        continue
                    if args.max_per_flow and per_flow[row["flow"]] >= args.max_per_flow:
                        continue
                    per_flow[row["flow"]] += 1
                    k = realeval.flow_key(row["proto"], row["src"], row["sport"], row["dst"],
                                          row["dport"])
                    session, ndpi = sess.get((path, k), (src + "/" + os.path.basename(path),
                                                         ""))
                    pics.append(pic)
                    meta.append([session, src, "real", lab, row["flow"], row["block"],
                                 row["complete"], row["samples"], copy, ndpi])
                    n[(lab, copy)] += 1
            if (i + 1) % 200 == 0:
                log(f"[{i + 1}/{len(by_path)}] {len(pics)} pictures")
    os.makedirs(args.out, exist_ok=True)
    shape = (0, 2, args.res, args.res) if args.direction == "split" else (0, args.res, args.res)
    np.save(os.path.join(args.out, args.name + ".npy"),
            np.stack(pics) if pics else np.zeros(shape, np.uint8))
    with open(os.path.join(args.out, args.name + ".csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["session", "app", "profile", "class", "flow", "block", "complete", "samples",
                    "copy", "ndpi"])
        w.writerows(meta)
    with open(os.path.join(args.out, args.name + ".json"), "w") as f:
        json.dump({"labels": os.path.abspath(args.labels), "res": args.res,
                   "window": args.window, "direction": args.direction, "hop": args.hop,
                   "aug": args.aug, "aug_labels": sorted(aug_labels),
                   "skip_sources": sorted(skip), "files": len(by_path),
                   "pictures": {f"{l}/copy{c}": v for (l, c), v in sorted(n.items())}},
                  f, indent=1)
    log(f"{len(pics)} pictures from {len(by_path)} files: " +
        ", ".join(f"{l}/copy{c} {v}" for (l, c), v in sorted(n.items())))


if __name__ == "__main__":
    main()
