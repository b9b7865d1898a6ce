# SPDX-License-Identifier: MIT
"""The int8 arithmetic of the flowpic CNN, in numpy int64: bit for bit what the
C engine (core/cnn.c with the kernels of core/cnn_ref.c and core/cnn_avx2.c) computes.

docs/model-format.md ("Arithmetic") is the definition:

  acc = bias[c] + sum(w * x)                int32, |acc| <= 2^30 by construction
  out = clamp(floor((acc * M + 2^(30 + shift)) / 2^(31 + shift)), lo, 127)
                                            M in {0} u [2^30, 2^31), shift 0 .. 31,
                                            lo = 0 with ReLU, else -128

i.e. acc * M / 2^(31 + shift) rounded to nearest, ties toward +infinity.

Also here: quantize_multiplier() (real multiplier -> (M, shift)), the input
lookup table, running a model on a picture or on cells, and a simple
post-training quantizer (quantize_model) that turns float weights (e.g. from
a PyTorch state_dict, as numpy arrays) and calibration pictures into a Model
for modelfile.save().
"""
from __future__ import annotations

import math

import numpy as np

from . import modelfile
from .modelfile import ACC_BOUND, Builder, Layer, Model

# ---- the arithmetic ----


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(M, shift) with M * 2^-(31 + shift) nearest to real, 0 < real < 1.

    M is in [2^30, 2^31) and shift in 0 .. 31. A real below 2^-32 gives
    (0, 0): with |acc| <= 2^30 such a layer outputs 0 whatever the input,
    and so does M = 0. A real of 1 or more cannot be represented: raise the
    layer's output scale (quantize_model does).
    """
    if not (math.isfinite(real) and real > 0):
        raise ValueError("multiplier %r: must be a positive number" % real)
    if real >= 1:
        raise ValueError("multiplier %r >= 1: raise the output scale" % real)
    m, e = math.frexp(real)  # real = m * 2^e, 0.5 <= m < 1, exact
    q = math.floor(m * (1 << 31) + 0.5)  # m * 2^31 is exact in a double
    if q == 1 << 31:
        q, e = 1 << 30, e + 1
    if e > 0:  # real rounded up to 1.0
        return (1 << 31) - 1, 0
    if -e > 31:
        return 0, 0
    return q, -e


def requantize(acc, mult, shift, relu: bool = False) -> np.ndarray:
    """int8 outputs of int32 accumulators; mult and shift broadcast against acc."""
    acc = np.asarray(acc, np.int64)
    if acc.size and np.abs(acc).max() > ACC_BOUND:
        raise ValueError("accumulator beyond 2^30: the model breaks the accumulator bound")
    total = 31 + np.asarray(shift, np.int64)
    v = (acc * np.asarray(mult, np.int64) + (np.int64(1) << (total - 1))) >> total
    return np.clip(v, 0 if relu else -128, 127).astype(np.int8)


def _per_channel(a, ndim: int) -> np.ndarray:
    """(oc,) -> (oc, 1, ..., 1) to broadcast over ndim - 1 more axes."""
    return np.asarray(a, np.int64).reshape((-1,) + (1,) * (ndim - 1))


def conv2d_acc(x: np.ndarray, l: Layer) -> np.ndarray:
    """int64 accumulators (oc, oh, ow) of a conv2d layer on x (ic, h, w)."""
    pt, pl, pb, pr = l.pad
    (kh, kw), (sh, sw) = l.kernel, l.stride
    xp = np.pad(np.asarray(x, np.int64), ((0, 0), (pt, pb), (pl, pr)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
    win = win[:, ::sh, ::sw]  # (ic, oh, ow, kh, kw)
    acc = np.tensordot(win, np.asarray(l.weight, np.int64), axes=([0, 3, 4], [1, 2, 3]))
    return np.moveaxis(acc, 2, 0) + _per_channel(l.bias, 3)  # (oc, oh, ow)


def conv2d_s8(x: np.ndarray, l: Layer) -> np.ndarray:
    acc = conv2d_acc(x, l)
    return requantize(acc, _per_channel(l.mult, 3), _per_channel(l.shift, 3), l.relu)


def maxpool_s8(x: np.ndarray, l: Layer) -> np.ndarray:
    (kh, kw), (sh, sw) = l.kernel, l.stride
    win = np.lib.stride_tricks.sliding_window_view(np.asarray(x, np.int8), (kh, kw),
                                                   axis=(1, 2))
    return win[:, ::sh, ::sw].max(axis=(3, 4))


def dense_acc(x: np.ndarray, l: Layer) -> np.ndarray:
    xv = np.asarray(x, np.int64).reshape(-1)
    return np.asarray(l.weight, np.int64) @ xv + np.asarray(l.bias, np.int64)


def dense_s8(x: np.ndarray, l: Layer) -> np.ndarray:
    out = requantize(dense_acc(x, l), l.mult, l.shift, l.relu)
    return out.reshape(-1, 1, 1)


def layer_s8(x: np.ndarray, l: Layer) -> np.ndarray:
    """One layer on a CHW int8 tensor."""
    if l.type == "conv2d":
        return conv2d_s8(x, l)
    if l.type == "maxpool":
        return maxpool_s8(x, l)
    if l.type == "dense":
        return dense_s8(x, l)
    if l.type == "relu":
        return np.maximum(x, 0).astype(np.int8)
    if l.type == "flatten":
        return np.asarray(x).reshape(-1, 1, 1)
    raise ValueError("unknown layer type %s" % l.type)


def input_s8(m: Model, pic: np.ndarray) -> np.ndarray:
    """The input tensor (in_channels, res, res) of a uint8 picture.

    pic: in_channels planes of res x res counts, pic[ch, y, x] (y = size bin,
    x = time bin; for "split" channel 0 is fwd, 1 is rev)."""
    pic = np.asarray(pic, np.uint8).reshape(m.in_shape)
    return np.asarray(m.lut, np.int8)[pic]


def run(m: Model, pic: np.ndarray) -> np.ndarray:
    """The int8 logits of one picture (what C's cnn_run() returns)."""
    x = input_s8(m, pic)
    for l in m.layers:
        x = layer_s8(x, l)
    return np.asarray(x, np.int8).reshape(-1)


def logits_float(m: Model, logits: np.ndarray) -> np.ndarray:
    return np.asarray(logits, np.float64) * m.layers[-1].out_scale


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(np.asarray(z, np.float64) - np.max(z))
    return e / e.sum()


def pic_from_cells(m: Model, cells) -> np.ndarray:
    """The picture C's cnn_run_sparse() sees: cells are (x, y, dir, count);
    counts of the same pixel add, saturating at 255; the direction mode
    picks cells and channels (both: all in 0; fwd / rev: those only; split:
    channel = dir)."""
    pic = np.zeros(m.in_shape, np.int64)
    for x, y, d, n in cells:
        if m.direction == "split":
            ch = d
        elif m.direction == "both" or (m.direction == "fwd") == (d == 0):
            ch = 0
        else:
            continue
        pic[ch, y, x] = min(255, pic[ch, y, x] + n)
    return pic.astype(np.uint8)


# ---- the input lookup table ----


def log_lut() -> tuple[np.ndarray, float]:
    """(lut, scale): count c -> round(127 * log1p(c) / log1p(255)); the
    activation then stands for log1p(c), scale = log1p(255) / 127."""
    c = np.arange(256, dtype=np.float64)
    lut = np.floor(127 * np.log1p(c) / math.log1p(255) + 0.5).astype(np.int8)
    return lut, math.log1p(255) / 127


# ---- post-training quantization of a float network ----


def _float_layer(x: np.ndarray, spec: dict) -> np.ndarray:
    t = spec["type"]
    if t == "conv2d":
        w = np.asarray(spec["weight"], np.float64)
        pt, pl, pb, pr = spec.get("pad", (0, 0, 0, 0))
        sh, sw = spec.get("stride", (1, 1))
        xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr)))
        win = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(1, 2))
        y = np.tensordot(win[:, ::sh, ::sw], w, axes=([0, 3, 4], [1, 2, 3]))
        y = np.moveaxis(y, 2, 0) + np.asarray(spec["bias"], np.float64)[:, None, None]
    elif t == "dense":
        y = (np.asarray(spec["weight"], np.float64) @ x.reshape(-1)
             + np.asarray(spec["bias"], np.float64)).reshape(-1, 1, 1)
    elif t == "maxpool":
        k = spec["kernel"]
        k = (k, k) if isinstance(k, int) else tuple(k)
        s = spec.get("stride", k)
        s = (s, s) if isinstance(s, int) else tuple(s)
        win = np.lib.stride_tricks.sliding_window_view(x, k, axis=(1, 2))
        y = win[:, ::s[0], ::s[1]].max(axis=(3, 4))
    elif t == "relu":
        y = np.maximum(x, 0)
    elif t == "flatten":
        y = x.reshape(-1, 1, 1)
    else:
        raise ValueError("unknown layer type %s" % t)
    if spec.get("relu"):
        y = np.maximum(y, 0)
    return y


def float_forward(specs, x: np.ndarray) -> list[np.ndarray]:
    """Every layer's float output for one float input tensor (c, h, w)."""
    outs = []
    for s in specs:
        x = _float_layer(x, s)
        outs.append(x)
    return outs


def _quant_params(spec: dict, in_scale: float, out_scale: float, k: int):
    w = np.asarray(spec["weight"], np.float64)
    oc = w.shape[0]
    wmax = np.abs(w.reshape(oc, -1)).max(axis=1)
    ws = np.where(wmax > 0, wmax / 127, 1.0)
    wq = np.clip(np.floor(w / ws.reshape((-1,) + (1,) * (w.ndim - 1)) + 0.5), -127, 127)
    bound = ACC_BOUND - k * 127 * 128
    bq = np.clip(np.floor(np.asarray(spec["bias"], np.float64) / (in_scale * ws) + 0.5),
                 -bound, bound)
    # Every channel's real multiplier below 1: raise the output scale if needed.
    out_scale = max(out_scale, float(in_scale * ws.max()) * (1 + 2 ** -20))
    out_scale = modelfile.f32(out_scale)
    while float(in_scale * ws.max()) / out_scale >= 1:
        out_scale = modelfile.f32(np.nextafter(np.float32(out_scale), np.float32(np.inf)))
    ms = [quantize_multiplier(float(in_scale * s / out_scale)) for s in ws]
    return (wq.astype(np.int8), bq.astype(np.int32), np.array([m for m, _ in ms], np.int32),
            np.array([s for _, s in ms], np.int32), out_scale)


def quantize_model(specs, calib_pics, *, res: int, direction: str = "both", lut=None,
                   input_scale: float | None = None, name: str = "model",
                   version: str = "0", classes=(), window_ns: int = 60_000_000_000,
                   size_max: int = 1500) -> Model:
    """Post-training quantization of a float network.

    specs: the layers in order, dicts with "type" and, for conv2d, "weight"
    (oc, ic, kh, kw), "bias", "stride", "pad" (top, left, bottom, right),
    "relu"; dense: "weight" (oc, k) with k in CHW flatten order, "bias",
    "relu"; maxpool: "kernel", "stride"; relu; flatten. The float network
    reads the input activation as lut[count] * input_scale (default: the
    log1p table of log_lut()). calib_pics: pictures whose activations set the
    output scales (max |value| / 127 per layer)."""
    if lut is None:
        lut, input_scale = log_lut()
    lut = np.asarray(lut, np.int8)
    input_scale = modelfile.f32(input_scale)
    peaks = [0.0] * len(specs)
    b = Builder(res, direction, input_scale, lut)
    for pic in calib_pics:
        x = input_s8(b.model, pic).astype(np.float64) * input_scale
        for i, y in enumerate(float_forward(specs, x)):
            peaks[i] = max(peaks[i], float(np.abs(y).max()))
    for s, peak in zip(specs, peaks):
        t = s["type"]
        if t in ("conv2d", "dense"):
            k = int(np.prod(np.asarray(s["weight"]).shape[1:]))
            wq, bq, mq, sq, out_scale = _quant_params(s, b.scale, max(peak, 1e-12) / 127, k)
            if t == "conv2d":
                b.conv2d(wq, bq, mq, sq, tuple(s.get("stride", (1, 1))),
                         tuple(s.get("pad", (0, 0, 0, 0))), bool(s.get("relu")), out_scale)
            else:
                b.dense(wq, bq, mq, sq, bool(s.get("relu")), out_scale)
        elif t == "maxpool":
            b.maxpool(s["kernel"], s.get("stride"))
        elif t == "relu":
            b.relu()
        elif t == "flatten":
            b.flatten()
        else:
            raise ValueError("unknown layer type %s" % t)
    n = int(np.prod(b.shape))
    classes = list(classes) or ["class%d" % i for i in range(n)]
    return b.build(name, version, classes, window_ns, size_max)
