#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""FlowPics of the Requet YouTube captures, labeled for evaluation.

Every capture goes through `flowpic export --format npy` (the only FlowPic
implementation); each picture is labeled "video" when its flow is one of the
capture's video flows in video_flows.tsv (same protocol, same unordered port
pair), else "background" (DNS, ads, analytics, ...: unlabeled, used to count
false positives).

Output, like `model/lab/lab.py arrays`:
  DIR/requet.npy    uint8 [N, RES, RES] ([N, 2, RES, RES] with --direction split)
  DIR/requet.csv    pcap,flow,block,complete,samples,label
  DIR/requet.json   the options and the files, for train.py to check

Examples:
  model/requet.py --out /var/tmp/requet32 --limit 5
  model/requet.py --out /var/tmp/requet64 --res 64 --window 60 --direction split
"""
import argparse
import csv
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "requet"))
PROTO = {"6": 6, "17": 17, "tcp": 6, "udp": 17}


def log(msg):
    print(f"requet: {msg}", file=sys.stderr, flush=True)


def video_flows(tsv):
    """{pcap name (without .xz): {(proto, frozenset(ports))}}."""
    out = {}
    with open(tsv, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            key = (PROTO[row["proto"]], frozenset((int(row["port_a"]), int(row["port_b"]))))
            out.setdefault(row["pcap"], set()).add(key)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--data", default=DATA, help="folder of *.pcap.xz and video_flows.tsv "
                    "(default: %(default)s)")
    ap.add_argument("--files", nargs="*", help="these captures instead of all in --data")
    ap.add_argument("--limit", type=int, help="only the first N captures (sorted by name)")
    ap.add_argument("--flowpic", default=os.path.join(ROOT, "build", "cli", "flowpic"))
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--window", type=float, default=60)
    ap.add_argument("--hop", type=float)
    ap.add_argument("--direction", default="both", choices=["both", "fwd", "rev", "split"])
    ap.add_argument("--min-samples", type=int, default=1)
    ap.add_argument("--complete-only", action="store_true")
    args = ap.parse_args()
    if not os.access(args.flowpic, os.X_OK):
        sys.exit(f"requet: no flowpic at {args.flowpic}: build it (scripts/build.sh) or "
                 "give --flowpic")
    videos = video_flows(os.path.join(args.data, "video_flows.tsv"))
    files = sorted(args.files or glob.glob(os.path.join(args.data, "*.pcap*")))
    if args.limit:
        files = files[:args.limit]
    if not files:
        sys.exit(f"requet: no captures in {args.data}")
    opts = ["--res", str(args.res), "--window", str(args.window), "--direction", args.direction,
            "--min-samples", str(args.min_samples)]
    opts += ["--hop", str(args.hop)] if args.hop else []
    opts += ["--complete-only"] if args.complete_only else []
    os.makedirs(args.out, exist_ok=True)
    pics, rows, counts = [], [], {"video": 0, "background": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(files):
            name = os.path.basename(path)
            pcap = name[:-3] if name.endswith(".xz") else name
            if pcap not in videos:
                log(f"{name}: no video flow listed in video_flows.tsv; all its blocks are "
                    "background")
            prefix = os.path.join(tmp, "p")
            subprocess.run([args.flowpic, "export", "-q", path, "--format", "npy", "-o", prefix]
                           + opts, check=True)
            arr = np.load(prefix + ".npy")
            with open(prefix + ".index.csv", newline="") as f:
                index = list(csv.DictReader(f))
            assert len(index) == len(arr)
            want = videos.get(pcap, set())
            for row, pic in zip(index, arr):
                key = (int(row["proto"]), frozenset((int(row["sport"]), int(row["dport"]))))
                label = "video" if key in want else "background"
                counts[label] += 1
                pics.append(pic)
                rows.append([pcap, row["flow"], row["block"], row["complete"], row["samples"],
                             label])
            log(f"[{i + 1}/{len(files)}] {name}: {len(arr)} pictures")
    shape = (0, 2, args.res, args.res) if args.direction == "split" else (0, args.res, args.res)
    np.save(os.path.join(args.out, "requet.npy"),
            np.stack(pics) if pics else np.zeros(shape, np.uint8))
    with open(os.path.join(args.out, "requet.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["pcap", "flow", "block", "complete", "samples", "label"])
        w.writerows(rows)
    with open(os.path.join(args.out, "requet.json"), "w") as f:
        json.dump({"res": args.res, "window": args.window, "hop": args.hop,
                   "direction": args.direction, "min_samples": args.min_samples,
                   "complete_only": args.complete_only,
                   "files": [os.path.basename(p) for p in files], "pictures": counts},
                  f, indent=1)
    log(f"{len(rows)} pictures: {counts['video']} video, {counts['background']} background "
        f"-> {args.out}/requet.npy")


if __name__ == "__main__":
    main()
