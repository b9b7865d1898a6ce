#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A fast end-to-end test of model/train.py (well under a minute on one thread).

A tiny synthetic dataset made THROUGH flowpic: one samples CSV per session,
five classes with distinct packet patterns (voip: steady small packets;
video: periodic bursts of full packets; file_transfer: a steady stream of
full packets; chat: a few small messages; browsing: a few bursts of mixed
sizes), exported with `flowpic export --format npy --window 2` into the
layout of `lab.py arrays` (train, test_session, test_profile). train.py
then trains lenet32 for a few epochs; the test checks held-out accuracy well
above chance, the baseline ran, and the int8 side: the model file reads back
to the same bytes, its int8ref logits are close to the float logits and agree
on the class, and golden.bin holds int8ref's logits.

Run: /usr/bin/python3 model/tests/test_train_small.py [--flowpic build/cli/flowpic]
(exit 77 when flowpic is not built: CTest's SKIP_RETURN_CODE)
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

MODEL = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(MODEL)
sys.path.insert(0, MODEL)
FLOWPIC = os.path.join(ROOT, "build", "cli", "flowpic")

CLASSES = ("voip", "video", "file_transfer", "chat", "browsing")
SECONDS = 16  # per flow; with --window 2: 8 blocks per flow
T0 = 1_700_000_000.0


def flow_packets(cls: str, rng: np.random.Generator):
    """(time offset s, size, forward) of one flow of class cls."""
    out = []
    if cls == "voip":
        period = rng.uniform(0.018, 0.03)
        size = int(rng.integers(90, 200))
        for t in np.arange(0, SECONDS, period):
            out.append((t, size + int(rng.integers(-4, 5)), True))
            out.append((t + period / 2, size + int(rng.integers(-4, 5)), False))
    elif cls == "video":
        gap = rng.uniform(0.4, 0.9)
        for t0 in np.arange(0, SECONDS, gap):
            n = int(rng.integers(15, 40))
            out.append((t0, int(rng.integers(300, 600)), True))
            for t in t0 + 0.01 + np.sort(rng.uniform(0, 0.08, n)):
                out.append((t, 1400, False))
                out.append((t + 0.001, 0, True))
    elif cls == "file_transfer":
        rate = rng.uniform(120, 250)
        for t in np.sort(rng.uniform(0, SECONDS, int(rate * SECONDS))):
            out.append((t, 1448, False))
            if rng.random() < 0.5:
                out.append((t + 0.0005, 0, True))
    elif cls == "chat":
        for t in np.sort(rng.uniform(0, SECONDS, int(rng.integers(4, 12) * SECONDS / 2))):
            out.append((t, int(rng.integers(40, 400)), bool(rng.random() < 0.5)))
    elif cls == "browsing":
        for t0 in np.sort(rng.uniform(0, SECONDS, int(rng.integers(2, 5) * SECONDS / 2))):
            for t in t0 + np.sort(rng.uniform(0, 0.3, int(rng.integers(10, 40)))):
                out.append((t, int(rng.integers(0, 1449)), bool(rng.random() < 0.3)))
    return out


def write_session(path: str, cls: str, n_flows: int, rng: np.random.Generator):
    """A samples CSV (docs/csv.md) of n_flows flows of class cls."""
    rows = []
    for f in range(n_flows):
        client, sport = "10.0.0.1", 40000 + f
        for t, size, fwd in flow_packets(cls, rng):
            if fwd:
                rows.append((T0 + t, client, sport, "10.0.0.2", 443, size))
            else:
                rows.append((T0 + t, "10.0.0.2", 443, client, sport, size))
    rows.sort()
    with open(path, "w") as f:
        f.write("time,proto,src,sport,dst,dport,size\n")
        f.writelines("%.6f,6,%s,%d,%s,%d,%d\n" % r for r in rows)


def make_arrays(flowpic: str, tmp: str, seed: int = 7) -> str:
    """Lab-style arrays of synthetic sessions, through flowpic export."""
    rng = np.random.default_rng(seed)
    out = os.path.join(tmp, "arrays")
    os.makedirs(out)
    plan = [("train", 4), ("test_session", 1), ("test_profile", 1)]
    pics, meta = {}, {}
    for cls in CLASSES:
        n = 0
        for split, sessions in plan:
            for _ in range(sessions):
                sid = "%s-syn-%04d" % (cls, n)
                n += 1
                csv_path = os.path.join(tmp, sid + ".csv")
                write_session(csv_path, cls, 3, rng)
                prefix = os.path.join(tmp, sid)
                subprocess.run([flowpic, "export", "-q", csv_path, "--format", "npy",
                                "--res", "32", "--window", "2", "-o", prefix], check=True)
                arr = np.load(prefix + ".npy")
                with open(prefix + ".index.csv") as f:
                    index = list(csv.DictReader(f))
                pics.setdefault(split, []).extend(arr)
                meta.setdefault(split, []).extend(
                    [sid, "syn-" + cls, "p0" if split != "test_profile" else "p1", cls,
                     r["flow"], r["block"], r["complete"], r["samples"]] for r in index)
    for split in pics:
        np.save(os.path.join(out, split + ".npy"), np.stack(pics[split]))
        with open(os.path.join(out, split + ".csv"), "w") as f:
            f.write("session,app,profile,class,flow,block,complete,samples\n")
            for m in meta[split]:
                f.write(",".join(map(str, m)) + "\n")
    return out


class TestTrainSmall(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.arrays = make_arrays(FLOWPIC, cls.tmp.name)
        cls.run_dir = os.path.join(cls.tmp.name, "run")
        env = dict(os.environ, OMP_NUM_THREADS="1")
        r = subprocess.run([sys.executable, os.path.join(MODEL, "train.py"),
                            "--arrays", cls.arrays, "--net", "lenet32", "--epochs", "4",
                            "--window", "2", "--epoch-size", "2000", "--batch", "32",
                            "--baseline-iter", "15", "--golden", "16",
                            "--calib-pics", "200", "--qat-epochs", "1", "--threads", "1",
                            "--out", cls.run_dir], capture_output=True, text=True, env=env)
        cls.log = r.stderr
        if r.returncode:
            raise AssertionError("train.py failed:\n" + r.stderr[-3000:])
        with open(os.path.join(cls.run_dir, "metrics.json")) as f:
            cls.metrics = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_outputs(self):
        for name in ("out.log", "model.pt", "acc.png", "f1.png", "loss.png", "metrics.json",
                     "cm_test_session.png", "cm_test_profile.png", "model.fpcnn",
                     "golden.bin", "cm_test_session_int8.png"):
            self.assertTrue(os.path.getsize(os.path.join(self.run_dir, name)) > 0, name)
        self.assertEqual(len(self.metrics["history"]), 4)

    def test_accuracy_above_chance(self):
        for split in ("test_session", "test_profile"):
            r = self.metrics["fp32"][split]
            self.assertGreater(r["accuracy"], 0.6, "%s: %s" % (split, self.log[-2000:]))
            self.assertGreater(r["per_flow"]["accuracy"], 0.6)
            self.assertIn(split, self.metrics["baseline"])
            self.assertEqual(len(r["confusion"]), len(CLASSES))

    def test_int8_close_to_fp32(self):
        import torch

        from flowpic_model import int8ref, modelfile, nets
        torch.set_num_threads(1)
        path = os.path.join(self.run_dir, "model.fpcnn")
        m = modelfile.load(path)
        with open(path, "rb") as f:
            self.assertEqual(modelfile.to_bytes(m), f.read())
        self.assertEqual(m.classes, list(CLASSES))
        self.assertEqual(m.window_ns, 2_000_000_000)
        ckpt = torch.load(os.path.join(self.run_dir, "model.pt"))
        net = nets.build("lenet32")
        net.load_state_dict(ckpt["state_dict"])
        net.eval()
        pics = np.load(os.path.join(self.arrays, "test_session.npy"))[:, None]
        with torch.no_grad():
            f = net(nets.to_input(torch.from_numpy(pics))).numpy()
        qi = np.stack([int8ref.run(m, p) for p in pics]).astype(np.float64)
        q = qi * m.layers[-1].out_scale
        # Logits may saturate at the int8 ends (the scale search trades range for
        # resolution); where they do not, they are close to the float ones.
        inside = (qi > -128) & (qi < 127)
        self.assertGreater(inside.mean(), 0.5)
        spread = np.abs(f[inside]).max()
        self.assertLess(np.median(np.abs(q - f)[inside]), 0.05 * spread)
        self.assertGreater((q.argmax(1) == f.argmax(1)).mean(), 0.9)
        for split in ("test_session", "test_profile"):
            self.assertGreater(self.metrics["int8"][split]["accuracy"], 0.6)

    def test_golden(self):
        from flowpic_model import export, int8ref, modelfile
        m = modelfile.load(os.path.join(self.run_dir, "model.fpcnn"))
        pics, logits = export.read_golden(os.path.join(self.run_dir, "golden.bin"))
        self.assertEqual(len(pics), 16)
        for p, l in zip(pics, logits):
            np.testing.assert_array_equal(int8ref.run(m, p), l)


def main():
    global FLOWPIC
    args = sys.argv[1:]
    if "--flowpic" in args:
        i = args.index("--flowpic")
        FLOWPIC = os.path.abspath(args[i + 1])
        del args[i:i + 2]
    if not os.access(FLOWPIC, os.X_OK):
        print("test_train_small: no flowpic at %s (build it first); skipped" % FLOWPIC)
        sys.exit(77)
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        print("test_train_small: %s (python3-torch, python3-sklearn, python3-matplotlib); "
              "skipped" % e)
        sys.exit(77)
    unittest.main(argv=[sys.argv[0]] + args, verbosity=2)


if __name__ == "__main__":
    main()
