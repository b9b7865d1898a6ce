#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Inference speed in one run: microseconds per FlowPic and FlowPics per
second on one thread, for the C int8 engine (reference and AVX2 paths) and
for PyTorch fp32 and PyTorch quantized (FX graph mode, static int8, fbgemm),
on the same pictures: the golden vectors of a training run (real held-out
pictures), one picture at a time as the agent classifies them. Times are
the measuring thread's CPU time (best of 5 passes), so other work on a
shared machine does not inflate them.

  bench/inference.py RUNDIR [RUNDIR...] [--c-bench build/tests/unit/cnn_golden]

RUNDIR is a model/train.py output folder (model.pt, model.fpcnn, golden.bin).
The table's last column is the speed-up of each row over PyTorch fp32.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "model"))

from flowpic_model import export, nets  # noqa: E402


def best_us(fn, pics, min_seconds=1.0, reps=5):
    """Best of reps passes over pics (at least min_seconds in all), in us of
    this thread's CPU time per picture: a shared machine's other work does
    not count (the C side measures the same way)."""
    best = float("inf")
    t_end = time.monotonic() + min_seconds
    for rep in range(reps):
        t0 = time.thread_time()
        for p in pics:
            fn(p)
        best = min(best, (time.thread_time() - t0) / len(pics) * 1e6)
        if rep >= 1 and time.monotonic() > t_end:
            break
    return best


def torch_rows(run, pics):
    ck = torch.load(os.path.join(run, "model.pt"))
    # dropout=None: each net's own default, as train.py builds it (identity in eval()).
    net = nets.build(ck["net"], ck["in_channels"], len(ck["classes"]), dropout=None)
    net.load_state_dict(ck["state_dict"])
    net.eval()
    x = [nets.to_input(torch.from_numpy(p).reshape(1, ck["in_channels"], net.res, net.res))
         for p in pics]
    rows = []
    with torch.no_grad():
        rows.append(("PyTorch fp32", "", best_us(net, x)))
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
        q = prepare_fx(net, get_default_qconfig_mapping("fbgemm"), (x[0],))
        for xi in x:
            q(xi)
        q = convert_fx(q)
        rows.append(("PyTorch quantized", "fbgemm", best_us(q, x)))
    return ck["net"], rows


def c_rows(c_bench, run, runs):
    out = subprocess.run([c_bench, "--bench", os.path.join(run, "model.fpcnn"),
                          os.path.join(run, "golden.bin"), str(runs)],
                         check=True, capture_output=True, text=True).stdout
    rows, header = [], out.splitlines()[0]
    for line in out.splitlines()[1:]:
        m = re.match(r"(.+?)\s+(ref|avx2)\s+([\d.]+) us/picture", line)
        if m:
            rows.append(("C int8 " + m.group(2), m.group(1).strip(), float(m.group(3))))
    return header, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="model/train.py run folders")
    ap.add_argument("--c-bench", help="cnn_golden (default: build*/tests/unit/cnn_golden)")
    ap.add_argument("--c-runs", type=int, default=2000, help="pictures per C timing pass")
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", module="torch.ao.quantization")
    c_bench = args.c_bench or next(iter(sorted(glob.glob(
        os.path.join(ROOT, "build*", "tests", "unit", "cnn_golden")))), None)
    if not c_bench:
        sys.exit("inference.py: no cnn_golden: build first (scripts/build.sh) or --c-bench")
    print("%-12s %-18s %-28s %12s %12s %9s" % ("model", "engine", "variant", "us/picture",
                                              "pictures/s", "vs fp32"))
    for run in args.runs:
        pics, _ = export.read_golden(os.path.join(run, "golden.bin"))
        name, rows = torch_rows(run, pics)
        header, crows = c_rows(c_bench, run, args.c_runs)
        fp32 = rows[0][2]
        for engine, variant, us in rows + crows:
            print("%-12s %-18s %-28s %12.1f %12.0f %8.1fx" % (name, engine, variant, us,
                                                            1e6 / us, fp32 / us))
        print("%-12s (%s)" % ("", header))


if __name__ == "__main__":
    main()
