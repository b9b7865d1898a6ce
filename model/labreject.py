#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Lab held-out macro-F1 of an int8 model file under the classify rules.

Blocks of fewer than --min-block-packets packets do not vote (left out);
a block whose top probability (softmax of the int8 logits x the last
layer's output scale, as core/classify.c) is below --reject-prob, or whose
top class is 'other', counts as a miss of its class. Per set: blocks kept,
macro-F1 over the five classes (per-class recall includes the misses).

  model/labreject.py runs/x/model.fpcnn /var/tmp/arrays --min-block-packets 20 \\
      --reject-prob 0.6
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from flowpic_model import data, metrics, modelfile, quantize  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("arrays")
    ap.add_argument("--sets", default="test_session,test_profile")
    ap.add_argument("--min-block-packets", type=int, nargs="*", default=[0, 20])
    ap.add_argument("--reject-prob", type=float, nargs="*", default=[0.0, 0.6])
    args = ap.parse_args()
    m = modelfile.load(args.model)
    classes = list(m.classes)
    five = [c for c in classes if c != "other"]
    scale = m.layers[-1].out_scale
    for name in args.sets.split(","):
        s = data.load_split(args.arrays, name, classes=classes, drop_unknown=True)
        if "other" in classes:
            s = s.subset(np.flatnonzero(s.y != classes.index("other")))
        q = quantize.int8_logits(m, s.pics).astype(np.float64) * scale
        p = np.exp(q - q.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        top = p.argmax(1)
        n = np.array([int(x["samples"]) for x in s.meta])
        for mb in args.min_block_packets:
            for rp in args.reject_prob:
                keep = n >= mb
                pred = np.where(p.max(1) < rp, len(classes), top)[keep]   # rejected: a miss
                r = metrics.report(s.y[keep], pred, classes + ["rejected"])
                f1 = np.mean([r["per_class"][c]["f1"] for c in five
                              if r["per_class"][c]["support"]])
                rej = float(np.mean((pred == len(classes)) |
                                    (pred == classes.index("other") if "other" in classes
                                     else False)))
                print("%-13s N=%-3d reject-prob %.2f: %4d blocks, macro-F1 %.1f%%, "
                      "accuracy %.1f%%, other or rejected %.1f%%"
                      % (name, mb, rp, keep.sum(), 100 * f1, 100 * r["accuracy"], 100 * rej))


if __name__ == "__main__":
    main()
