#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Tests of flowpic_model: the int8 arithmetic against its exact definition
(Python integers and fractions), the kernels against plain loops, the model
file (round trip, refusals with C's messages), the quantizer, and, with
--driver PATH (tests/unit/cnn_golden), golden vectors: Python writes random
models and their expected int8 logits, the C engine must reproduce every one
on every path, and C's re-encoding of each model must be Python's bytes.

Run: /usr/bin/python3 model/tests/test_int8ref.py [--driver build/tests/unit/cnn_golden]
"""
from __future__ import annotations

import math
import os
import random
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib
from fractions import Fraction

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from flowpic_model import int8ref, modelfile  # noqa: E402
from flowpic_model.modelfile import ACC_BOUND, Builder, ModelFileError  # noqa: E402

DRIVER = None


# ---- random models in the integer domain ----

def rand_channels(rng: np.random.Generator, oc: int, k: int, extreme: bool):
    """bias, mult, shift for outputs of roughly +-40."""
    mult, shift = [], []
    for _ in range(oc):
        if extreme and rng.random() < 0.15:
            mult.append(0 if rng.random() < 0.1 else int(rng.integers(1 << 30, 1 << 31)))
            shift.append(int(rng.integers(0, 32)))
            continue
        m, s = int8ref.quantize_multiplier(1 / (60 * math.sqrt(k) * rng.uniform(0.4, 2.5)))
        mult.append(m)
        shift.append(s)
    bound = ACC_BOUND - k * 127 * 128
    spread = int(1500 * (math.isqrt(k) + 1))
    bias = rng.integers(-spread, spread + 1, oc)
    if extreme:
        edge = rng.random(oc) < 0.2
        bias[edge] = np.where(rng.random(int(edge.sum())) < 0.5, bound, -bound)
    return bias, mult, shift


def rand_weights(rng, shape, extreme: bool):
    w = rng.integers(-127, 128, shape)
    if extreme:
        edge = rng.random(shape) < 0.25
        w[edge] = np.where(rng.random(int(edge.sum())) < 0.5, 127, -127)
    return w.astype(np.int8)


def add_conv(b: Builder, rng, oc, kh, kw, sh, sw, pad, relu, extreme=False):
    ic = b.shape[0]
    b.conv2d(rand_weights(rng, (oc, ic, kh, kw), extreme),
             *rand_channels(rng, oc, ic * kh * kw, extreme), stride=(sh, sw), pad=pad,
             relu=relu, out_scale=0.125)


def add_dense(b: Builder, rng, out, relu, extreme=False):
    k = int(np.prod(b.shape))
    b.dense(rand_weights(rng, (out, k), extreme), *rand_channels(rng, out, k, extreme),
            relu=relu, out_scale=0.25)


def random_model(rng: np.random.Generator) -> modelfile.Model:
    res = int(rng.integers(1, 41))
    direction = modelfile.DIRS[int(rng.integers(0, 4))]
    lut = rng.integers(-128, 128, 256).astype(np.int8)
    if rng.random() < 0.8:
        lut[0] = 0
    extreme = rng.random() < 0.33
    b = Builder(res, direction, 1 / 16, lut)
    for _ in range(int(rng.integers(0, 4))):
        _, h, w = b.shape
        kh = int(rng.integers(1, min(6, h) + 1))
        kw = kh if rng.random() < 0.66 else int(rng.integers(1, min(6, w) + 1))
        kw = min(kw, w)
        pad = tuple(int(rng.integers(0, k)) if rng.random() < 0.5 else 0
                    for k in (kh, kw, kh, kw))
        add_conv(b, rng, int(rng.integers(1, 22)), kh, kw, int(rng.integers(1, 4)),
                 int(rng.integers(1, 4)), pad, bool(rng.random() < 0.5), extreme)
        _, h, w = b.shape
        if rng.random() < 0.5 and h >= 2 and w >= 2:
            b.maxpool((int(rng.integers(1, min(3, h) + 1)), int(rng.integers(1, min(3, w) + 1))),
                      (int(rng.integers(1, 4)), int(rng.integers(1, 4))))
        if rng.random() < 0.25:
            b.relu()
    if rng.random() < 0.5:
        b.flatten()
    for _ in range(int(rng.integers(0, 3))):
        add_dense(b, rng, int(rng.integers(1, 41)), bool(rng.random() < 0.5), extreme)
    n = int(rng.integers(2, 9))
    add_dense(b, rng, n, False, extreme)
    return b.build("random", "1", ["c%d" % i for i in range(n)])


def lenet5(rng, res=32, direction="both") -> modelfile.Model:
    """LeNet-5 as mini-FlowPic uses it (ANCHORS.md)."""
    lut, scale = int8ref.log_lut()
    b = Builder(res, direction, scale, lut)
    add_conv(b, rng, 6, 5, 5, 1, 1, (0, 0, 0, 0), True)
    b.maxpool(2)
    add_conv(b, rng, 16, 5, 5, 1, 1, (0, 0, 0, 0), True)
    b.maxpool(2)
    b.flatten()
    add_dense(b, rng, 120, True)
    add_dense(b, rng, 84, True)
    add_dense(b, rng, 5, False)
    return b.build("lenet5-%d" % res, "golden", CLASSES, 15_000_000_000)


def flowpic_net(rng, res=1500) -> modelfile.Model:
    """The FlowPic paper's net (ANCHORS.md): conv 10@10x10/5, pool 2,
    conv 20@10x10/5, pool 2, dense 64, 5 classes."""
    lut, scale = int8ref.log_lut()
    b = Builder(res, "both", scale, lut)
    add_conv(b, rng, 10, 10, 10, 5, 5, (0, 0, 0, 0), True)
    b.maxpool(2)
    add_conv(b, rng, 20, 10, 10, 5, 5, (0, 0, 0, 0), True)
    b.maxpool(2)
    b.flatten()
    add_dense(b, rng, 64, True)
    add_dense(b, rng, 5, False)
    return b.build("flowpic-%d" % res, "golden", CLASSES)


CLASSES = ["voip", "video", "file_transfer", "chat", "browsing"]


def random_pics(rng, m: modelfile.Model, count: int, cells: int | None = None):
    n = int(np.prod(m.in_shape))
    pics = []
    for i in range(count):
        pic = np.zeros(n, np.uint8)
        if cells is not None:
            idx = rng.integers(0, n, cells)
        else:
            density = [0.0, 0.01, 0.1, 0.5, 1.0][i % 5]
            idx = np.flatnonzero(rng.random(n) < density)
        small = rng.random(idx.size) < 0.75
        pic[idx] = np.where(small, rng.integers(1, 9, idx.size), rng.integers(1, 256, idx.size))
        pics.append(pic.reshape(m.in_shape))
    return pics


# ---- the arithmetic ----

def requant_exact(acc: int, mult: int, shift: int, lo: int) -> int:
    """The definition in exact rationals: acc * M / 2^(31+shift), ties up."""
    v = math.floor(Fraction(acc * mult, 1 << (31 + shift)) + Fraction(1, 2))
    return max(lo, min(127, v))


class TestArithmetic(unittest.TestCase):
    def test_quantize_multiplier(self):
        rng = random.Random(1)
        for _ in range(20000):
            real = 2.0 ** rng.uniform(-32, 0) * rng.uniform(0.5, 1)
            if real >= 1 or real < 2.0 ** -32:
                continue
            m, s = int8ref.quantize_multiplier(real)
            self.assertTrue((1 << 30) <= m < (1 << 31) and 0 <= s <= 31, (real, m, s))
            err = abs(Fraction(m, 1 << (31 + s)) - Fraction(real))
            self.assertLessEqual(err, Fraction(1, 1 << (32 + s)), real)
        self.assertEqual(int8ref.quantize_multiplier(0.5), (1 << 30, 0))
        self.assertEqual(int8ref.quantize_multiplier(0.25), (1 << 30, 1))
        self.assertEqual(int8ref.quantize_multiplier(1 - 2 ** -40), ((1 << 31) - 1, 0))
        self.assertEqual(int8ref.quantize_multiplier(2 ** -33), (0, 0))
        for bad in (0.0, -0.5, 1.0, 3.0, float("nan"), float("inf")):
            with self.assertRaises(ValueError):
                int8ref.quantize_multiplier(bad)

    def test_requantize_is_the_definition(self):
        rng = np.random.default_rng(2)
        acc = rng.integers(-ACC_BOUND, ACC_BOUND + 1, 4000)
        acc[:40] = [ACC_BOUND, -ACC_BOUND, 0, 1, -1] * 8
        mult = rng.integers(1 << 30, 1 << 31, 4000)
        mult[::7] = 0
        mult[1::7] = (1 << 31) - 1
        shift = rng.integers(0, 32, 4000)
        # scale the accumulators so the outputs are mostly not saturated
        small = rng.random(4000) < 0.7
        acc[small] = acc[small] >> (30 - np.minimum(shift[small], 30))
        for relu in (False, True):
            got = int8ref.requantize(acc, mult, shift, relu)
            for a, m, s, g in zip(acc, mult, shift, got):
                self.assertEqual(int(g), requant_exact(int(a), int(m), int(s), 0 if relu else -128))

    def test_requantize_edges(self):
        cases = [(3, 1 << 30, 0, 2), (-3, 1 << 30, 0, -1), (5, 1 << 30, 0, 3),
                 (-5, 1 << 30, 0, -2), (-6, 1 << 30, 0, -3), (1000, 1 << 30, 0, 127),
                 (-1000, 1 << 30, 0, -128), (12695, 1 << 30, 6, 99), (64, 1 << 30, 6, 1),
                 (63, 1 << 30, 6, 0), (-64, 1 << 30, 6, 0), (-65, 1 << 30, 6, -1),
                 (1 << 30, (1 << 31) - 1, 31, 0), (1 << 30, (1 << 31) - 1, 23, 127),
                 (-(1 << 30), (1 << 31) - 1, 24, -64), (-(1 << 30), 1 << 30, 22, -128)]
        for acc, m, s, want in cases:
            self.assertEqual(int(int8ref.requantize(acc, m, s)), want, (acc, m, s))
        self.assertEqual(int(int8ref.requantize(-7, 1 << 30, 0, relu=True)), 0)
        with self.assertRaises(ValueError):
            int8ref.requantize(ACC_BOUND + 1, 1 << 30, 0)


# ---- the kernels against plain loops ----

def conv_loops(x, l):
    ic, h, w = x.shape
    oc, oh, ow = l.out_shape
    (kh, kw), (sh, sw), (pt, pl, _, _) = l.kernel, l.stride, l.pad
    acc = np.zeros((oc, oh, ow), np.int64)
    for o in range(oc):
        for y in range(oh):
            for xx in range(ow):
                a = int(l.bias[o])
                for c in range(ic):
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix = y * sh + ky - pt, xx * sw + kx - pl
                            if 0 <= iy < h and 0 <= ix < w:
                                a += int(l.weight[o, c, ky, kx]) * int(x[c, iy, ix])
                acc[o, y, xx] = a
    return acc


class TestKernels(unittest.TestCase):
    def test_conv_against_loops(self):
        rng = np.random.default_rng(3)
        for _ in range(40):
            res = int(rng.integers(3, 12))
            b = Builder(res, "split" if rng.random() < 0.5 else "both")
            kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            pad = tuple(int(rng.integers(0, k)) for k in (kh, kw, kh, kw))
            add_conv(b, rng, int(rng.integers(1, 5)), kh, kw, int(rng.integers(1, 3)),
                     int(rng.integers(1, 3)), pad, False)
            l = b.model.layers[0]
            x = rng.integers(-128, 128, b.model.in_shape).astype(np.int8)
            np.testing.assert_array_equal(int8ref.conv2d_acc(x, l), conv_loops(x, l))

    def test_conv_hand(self):
        # the same network as tests/unit/test_cnn.c test_conv_hand
        b = Builder(4, lut=np.minimum(np.arange(256), 127))
        b.conv2d(np.array([1, 2, 3, 4]).reshape(1, 1, 2, 2), [0], [1 << 30], [0])
        m = b.build("hand", "0", ["c%d" % i for i in range(9)])
        pic = np.arange(1, 17).reshape(1, 4, 4)
        self.assertEqual(list(int8ref.run(m, pic)), [22, 27, 32, 42, 47, 52, 62, 67, 72])

    def test_conv_pad_stride_hand(self):
        b = Builder(4, lut=np.minimum(np.arange(256), 127))
        b.conv2d(np.ones((1, 1, 3, 3)), [0], [1 << 30], [0], stride=(2, 2), pad=(1, 1, 1, 1))
        m = b.build("hand", "0", ["a", "b", "c", "d"])
        self.assertEqual(list(int8ref.run(m, np.arange(1, 17))), [7, 15, 29, 50])

    def test_pool_and_dense(self):
        rng = np.random.default_rng(4)
        x = rng.integers(-128, 128, (3, 7, 9)).astype(np.int8)
        b = Builder(7)
        b.shape = (3, 7, 9)
        l = b.maxpool((2, 3), (2, 2))
        want = np.array([[[x[c, 2 * y:2 * y + 2, 2 * z:2 * z + 3].max() for z in range(4)]
                          for y in range(3)] for c in range(3)])
        np.testing.assert_array_equal(int8ref.maxpool_s8(x, l), want)
        pooled = int8ref.maxpool_s8(x, l)
        add_dense(b, rng, 7, False)
        d = b.model.layers[-1]
        acc = int8ref.dense_acc(pooled, d)
        for o in range(7):
            want = int(d.bias[o]) + sum(int(a) * int(w)
                                        for a, w in zip(pooled.reshape(-1), d.weight[o]))
            self.assertEqual(int(acc[o]), want)

    def test_cells(self):
        b = Builder(2, "fwd")
        b.relu()
        m = b.build("cells", "0", ["a", "b", "c", "d"])
        pic = int8ref.pic_from_cells(m, [(0, 0, 0, 200), (0, 0, 0, 100), (1, 0, 1, 5),
                                         (1, 1, 0, 3), (1, 1, 0, 4)])
        np.testing.assert_array_equal(pic.reshape(-1), [255, 0, 0, 7])


# ---- the file ----

class TestModelFile(unittest.TestCase):
    def setUp(self):
        self.m = lenet5(np.random.default_rng(5), 32, "split")
        self.buf = modelfile.to_bytes(self.m)

    def refused(self, buf, prefix):
        with self.assertRaises(ModelFileError) as e:
            modelfile.from_bytes(buf, "model.fpcnn")
        self.assertTrue(str(e.exception).startswith("model.fpcnn: " + prefix),
                        str(e.exception))

    def patched(self, off, data, prefix):
        buf = bytearray(self.buf)
        buf[off:off + len(data)] = data
        struct.pack_into("<I", buf, len(buf) - 4, zlib.crc32(bytes(buf[:-4])))
        self.refused(bytes(buf), prefix)

    def test_round_trip(self):
        m2 = modelfile.from_bytes(self.buf)
        self.assertEqual(modelfile.to_bytes(m2), self.buf)
        self.assertEqual(m2.classes, CLASSES)
        self.assertEqual((m2.res, m2.direction, m2.window_ns), (32, "split", 15_000_000_000))
        for a, b in zip(self.m.layers, m2.layers):
            self.assertEqual((a.type, a.in_shape, a.out_shape, a.out_scale),
                             (b.type, b.in_shape, b.out_shape, b.out_scale))
            if a.has_params:
                np.testing.assert_array_equal(a.weight, b.weight)
                np.testing.assert_array_equal(a.mult, b.mult)
        self.assertEqual(len(self.buf) % 4, 0)

    def test_refusals(self):
        for n in range(0, len(self.buf), 97):
            self.refused(self.buf[:n], "truncated")
        self.refused(self.buf + b"\0", "%d bytes, but the header says" % (len(self.buf) + 1))
        self.refused(b"GIF89a" + self.buf[6:], "not a flowpic model file (bad magic)")
        for i in range(24, len(self.buf), 101):
            buf = bytearray(self.buf)
            buf[i] ^= 0x10
            self.refused(bytes(buf), "checksum mismatch (file corrupted?)")
        self.patched(8, struct.pack("<I", 3),
                     "format version 3, this flowpic reads version 1: update flowpic")
        lo = struct.unpack_from("<Q", self.buf, 80)[0]
        self.patched(lo + 48, struct.pack("<Q", len(self.buf) + 64), "layer 0: weights at")
        self.patched(lo + LAYER + 4, struct.pack("<I", 7),
                     "layer 1 (maxpool): input 7x28x28 does not match the previous output "
                     "6x28x28")
        self.patched(36, struct.pack("<I", 1), '1 input channels with direction "split"')

    def test_builder_refuses(self):
        b = Builder(8)
        b.conv2d(np.ones((2, 1, 3, 3)), [0, 0], [1 << 30, 5], [0, 0])
        with self.assertRaisesRegex(ModelFileError, r"layer 0 \(conv2d\): channel 1: multiplier 5"):
            b.build("x", "0", ["c%d" % i for i in range(72)])
        b = Builder(8)
        b.dense(np.ones((2, 64)), [0, 0], [1 << 30] * 2, [0, 0])
        with self.assertRaisesRegex(ModelFileError, "the last layer gives 2 values for 3 classes"):
            b.build("x", "0", ["a", "b", "c"])


LAYER = modelfile.LAYER_SIZE


# ---- quantizing a float network ----

class TestQuantize(unittest.TestCase):
    def test_float_lenet(self):
        rng = np.random.default_rng(6)

        def he(*shape):
            return rng.normal(0, math.sqrt(2 / np.prod(shape[1:])), shape)
        specs = [
            {"type": "conv2d", "weight": he(6, 1, 5, 5), "bias": rng.normal(0, .1, 6),
             "relu": True},
            {"type": "maxpool", "kernel": 2},
            {"type": "conv2d", "weight": he(16, 6, 5, 5), "bias": rng.normal(0, .1, 16),
             "relu": True},
            {"type": "maxpool", "kernel": 2},
            {"type": "flatten"},
            {"type": "dense", "weight": he(120, 400), "bias": rng.normal(0, .1, 120),
             "relu": True},
            {"type": "dense", "weight": he(84, 120), "bias": rng.normal(0, .1, 84),
             "relu": True},
            {"type": "dense", "weight": he(5, 84), "bias": rng.normal(0, .1, 5)},
        ]
        probe = Builder(32)
        pics = random_pics(rng, probe.model, 40)
        m = int8ref.quantize_model(specs, pics[:20], res=32, name="q", classes=CLASSES)
        modelfile.from_bytes(modelfile.to_bytes(m))
        lut, scale = int8ref.log_lut()
        agree = 0
        for pic in pics[20:]:
            x = lut[pic].astype(np.float64) * np.float32(scale)
            f = int8ref.float_forward(specs, x)[-1].reshape(-1)
            q = int8ref.logits_float(m, int8ref.run(m, pic))
            if np.abs(f).max() > 0:
                self.assertLess(np.abs(q - f).max(), 0.15 * np.abs(f).max() + 0.1)
            agree += int(np.argmax(f) == np.argmax(q))
        self.assertGreaterEqual(agree, 15)


# ---- golden vectors through C ----

def write_golden(path, m, pics):
    n = int(np.prod(m.in_shape))
    with open(path, "wb") as f:
        f.write(b"FPGOLD01" + struct.pack("<4I", len(pics), n, len(m.classes), 0))
        for pic in pics:
            f.write(np.asarray(pic, np.uint8).tobytes())
            f.write(int8ref.run(m, pic).astype(np.int8).tobytes())


class TestGolden(unittest.TestCase):
    def setUp(self):
        if not os.environ.get("CNN_GOLDEN_DRIVER"):
            self.skipTest("no --driver given")

    def check(self, m, pics, tag):
        driver = os.environ["CNN_GOLDEN_DRIVER"]
        with tempfile.TemporaryDirectory() as d:
            mp, gp, rp = (os.path.join(d, n) for n in ("m.fpcnn", "g.bin", "r.fpcnn"))
            modelfile.save(m, mp)
            write_golden(gp, m, pics)
            r = subprocess.run([driver, mp, gp], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, "%s: %s%s" % (tag, r.stdout, r.stderr))
            self.assertIn("all logits equal", r.stdout)
            r = subprocess.run([driver, "--reencode", mp, rp], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(mp, "rb") as a, open(rp, "rb") as b:
                self.assertEqual(a.read(), b.read(), "%s: C re-encodes other bytes" % tag)

    def test_random_models(self):
        rng = np.random.default_rng(7)
        for i in range(60):
            m = random_model(rng)
            self.check(m, random_pics(rng, m, 5), "random model %d" % i)

    def test_lenet5(self):
        rng = np.random.default_rng(8)
        for direction in ("both", "split", "rev"):
            m = lenet5(rng, 32, direction)
            self.check(m, random_pics(rng, m, 10), "lenet5 " + direction)

    def test_flowpic_small(self):
        rng = np.random.default_rng(9)
        m = flowpic_net(rng, 300)
        self.check(m, random_pics(rng, m, 4, cells=500), "flowpic 300")

    def test_flowpic_full(self):
        rng = np.random.default_rng(10)
        m = flowpic_net(rng, 1500)
        self.check(m, random_pics(rng, m, 1, cells=3000), "flowpic 1500")

    def test_quantized_float(self):
        rng = np.random.default_rng(11)
        specs = [
            {"type": "conv2d", "weight": rng.normal(0, .2, (4, 2, 3, 3)),
             "bias": rng.normal(0, .1, 4), "pad": (1, 1, 1, 1), "relu": True},
            {"type": "maxpool", "kernel": 2},
            {"type": "flatten"},
            {"type": "dense", "weight": rng.normal(0, .1, (3, 4 * 8 * 8)),
             "bias": rng.normal(0, .1, 3)},
        ]
        probe = Builder(16, "split")
        pics = random_pics(rng, probe.model, 10)
        m = int8ref.quantize_model(specs, pics, res=16, direction="split", name="qf",
                                   classes=["voip", "video", "chat"])
        self.check(m, pics, "quantized float")


def main():
    args = sys.argv[1:]
    if "--driver" in args:
        i = args.index("--driver")
        os.environ["CNN_GOLDEN_DRIVER"] = os.path.abspath(args[i + 1])
        del args[i:i + 2]
    unittest.main(argv=[sys.argv[0]] + args, verbosity=2)


if __name__ == "__main__":
    main()
