# SPDX-License-Identifier: MIT
"""int8 quantization of a trained float net (flowpic_model.nets).

Scheme (what docs/model-format.md and int8ref.py compute):

- input: the int8 table of nets.INPUT_LUT at scale nets.INPUT_SCALE, exactly
  the float net's training input;
- weights: per output channel, symmetric, scale max|w| / 127, values -127 .. 127;
- biases: int32 at the accumulator's scale (input scale x weight scale);
- activations: int8 at one scale per layer output, calibrated on training
  pictures (post-training calibration: the largest |value| or a percentile
  of them, then optionally search_scales(), which lowers each layer's scale
  while that makes the int8 classes agree more with the float net's: FlowPic
  activations span a wide range, and a scale set by the densest picture
  leaves sparse ones a step or two), ReLU fused into conv2d / dense (outputs
  0 .. 127); max-pool and flatten keep their input's scale; the logits
  saturate at -128 / 127 like any layer;
- requantization: per channel (M, shift) from int8ref.quantize_multiplier of
  in_scale * w_scale / out_scale, which must stay below 1 (the output scale
  is raised where it would not).

QuantSim runs the same arithmetic in float with straight-through rounding,
for quantization-aware fine-tuning when post-training quantization loses
too much; build_model() then exports the fine-tuned weights at the same
activation scales.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import int8ref, modelfile
from .modelfile import ACC_BOUND
from .nets import INPUT_LUT, INPUT_SCALE, Conv, Dense, Net


def plan(net: Net) -> list:
    """(kind, module) of each exported layer, in order (dropout left out)."""
    out = []
    for m in net.layers:
        if isinstance(m, Conv):
            out.append(("conv2d", m))
        elif isinstance(m, Dense):
            out.append(("dense", m))
        elif isinstance(m, nn.MaxPool2d):
            out.append(("maxpool", m))
        elif isinstance(m, nn.Flatten):
            out.append(("flatten", m))
        elif isinstance(m, nn.Dropout):
            continue
        else:
            raise ValueError("layer %s has no int8 form" % type(m).__name__)
    return out


def _param(m):
    lin = m.conv if isinstance(m, Conv) else m.fc
    return lin.weight, lin.bias


@torch.no_grad()
def calibrate(net: Net, batches, percentile: float | None = None) -> list[float]:
    """The output scale of each conv2d / dense layer (in plan order, None for
    the others) from float inputs: max |output| / 127, or the given
    percentile of |output| / 127."""
    net.eval()
    layers = plan(net)
    seen = {i: [] for i, (k, _) in enumerate(layers) if k in ("conv2d", "dense")}
    hooks = []
    for i in seen:
        def hook(_m, _inp, out, i=i):
            a = out.detach().abs().reshape(-1)
            seen[i].append(a.max().item() if percentile is None else a.numpy().copy())
        hooks.append(layers[i][1].register_forward_hook(hook))
    try:
        for x in batches:
            net(x)
    finally:
        for h in hooks:
            h.remove()
    scales = [None] * len(layers)
    for i, vals in seen.items():
        if percentile is None:
            peak = max(vals)
        else:
            peak = float(np.percentile(np.concatenate(vals), percentile))
        scales[i] = max(peak, 1e-8) / 127
    return scales


def weight_scales(w: np.ndarray) -> np.ndarray:
    """Per output channel: max |w| / 127 (1 for an all-zero channel)."""
    wmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    return np.where(wmax > 0, wmax / 127, 1.0)


def _rq(x):
    """int8ref's rounding: to nearest, ties toward +infinity."""
    return np.floor(x + 0.5)


def output_scale(act_scale: float, in_scale: float, ws_max: float) -> float:
    """The float32 output scale actually used: the calibrated one, raised
    where a channel's multiplier in_scale * w_scale / out_scale would reach 1."""
    s = modelfile.f32(max(act_scale, in_scale * ws_max * (1 + 2 ** -20)))
    while in_scale * ws_max / s >= 1:
        s = modelfile.f32(np.nextafter(np.float32(s), np.float32(np.inf)))
    return s


def build_model(net: Net, act_scales, *, name: str, version: str, classes,
                direction: str = "both", window_ns: int = 60_000_000_000,
                size_max: int = 1500) -> modelfile.Model:
    """The int8 model (modelfile.Model) of a float net at the given
    activation scales (from calibrate())."""
    b = modelfile.Builder(net.res, direction, INPUT_SCALE, INPUT_LUT)
    for (kind, m), act in zip(plan(net), act_scales):
        if kind in ("conv2d", "dense"):
            w_t, b_t = _param(m)
            w = w_t.detach().double().numpy()
            bias = b_t.detach().double().numpy()
            in_scale = float(b.scale)
            ws = weight_scales(w)
            wq = np.clip(_rq(w / ws.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127)
            k = int(np.prod(w.shape[1:]))
            bound = ACC_BOUND - k * 127 * 128
            bq = np.clip(_rq(bias / (in_scale * ws)), -bound, bound)
            out = output_scale(act, in_scale, float(ws.max()))
            ms = [int8ref.quantize_multiplier(in_scale * s / out) for s in ws]
            mult = np.array([q for q, _ in ms], np.int32)
            shift = np.array([s for _, s in ms], np.int32)
            if kind == "conv2d":
                b.conv2d(wq.astype(np.int8), bq.astype(np.int32), mult, shift,
                         tuple(m.conv.stride), tuple(m.pad), m.relu, out)
            else:
                b.dense(wq.astype(np.int8), bq.astype(np.int32), mult, shift, m.relu, out)
        elif kind == "maxpool":
            k = m.kernel_size if isinstance(m.kernel_size, int) else tuple(m.kernel_size)
            s = m.stride if isinstance(m.stride, int) else tuple(m.stride)
            b.maxpool(k, s)
        elif kind == "flatten":
            b.flatten()
    return b.build(name, version, list(classes), window_ns, size_max)


# ---- the same arithmetic in float, for quantization-aware fine-tuning ----

def _ste_round(x):
    """Round half up forward, identity backward."""
    return x + (torch.floor(x + 0.5) - x).detach()


class QuantSim(nn.Module):
    """The int8 model's arithmetic in float, with straight-through rounding,
    around a float net's own parameters (training it trains the net).
    Activation scales stay fixed (from calibrate()); weight scales follow
    the weights."""

    def __init__(self, net: Net, act_scales, quant_layers: int | None = None):
        super().__init__()
        self.net = net
        self.act_scales = list(act_scales)
        # only the first quant_layers layers (plan order) in int8, the rest in
        # float (None: all), for the scale search
        self.quant_layers = quant_layers

    def forward(self, x):
        s_in = float(np.float32(INPUT_SCALE))
        i = 0
        for m in self.net.layers:
            if isinstance(m, nn.Dropout):
                x = m(x)
                continue
            if self.quant_layers is not None and i >= self.quant_layers:
                x = m(x)
            elif isinstance(m, (Conv, Dense)):
                w, b = _param(m)
                ws = w.detach().abs().reshape(w.shape[0], -1).amax(dim=1).clamp_min(1e-12) / 127
                wshape = (-1,) + (1,) * (w.dim() - 1)
                wq = torch.clamp(_ste_round(w / ws.reshape(wshape)), -127, 127) * ws.reshape(wshape)
                step = s_in * ws
                bq = _ste_round(b / step) * step
                if isinstance(m, Conv):
                    if any(m.pad):
                        t, l, bt, r = m.pad
                        x = F.pad(x, (l, r, t, bt))
                    y = F.conv2d(x, wq, bq, stride=m.conv.stride)
                else:
                    y = F.linear(x, wq, bq)
                s_out = output_scale(self.act_scales[i], s_in, float(ws.max()))
                lo = 0.0 if m.relu else -128.0
                x = torch.clamp(_ste_round(y / s_out), lo, 127.0) * s_out
                s_in = s_out
            else:
                x = m(x)
            i += 1
        return x


@torch.no_grad()
def search_scales(net: Net, batches, act_scales, steps: int = 16, log=None,
                  tol: float = 0.0) -> list:
    """Activation scales chosen layer by layer, first to last, on calibration
    inputs: for each conv2d / dense output, the scale among act_scale *
    2^(-k/2), k = 0 .. steps - 1 (the calibrated scale and smaller ones, which
    clip the largest values), whose int8 arithmetic (that layer and the ones
    before it in int8, the rest in float) agrees most often with the float
    net's class, ties to the smaller mean squared logit error.  With tol > 0,
    the largest scale whose agreement is within tol of the best is taken
    instead: less clipping of the densest pictures (held-out network
    conditions bring denser ones than the calibration pictures) for a
    little resolution of the sparse ones.

    Why: a FlowPic's activations span a wide range (a block of a few packets
    against one of thousands), and a scale set by the largest value leaves
    sparse pictures a step or two of resolution."""
    net.eval()
    x = torch.cat(list(batches))
    ref = net(x)
    ref_cls = ref.argmax(1)
    scales = list(act_scales)
    for i, (kind, _) in enumerate(plan(net)):
        if kind not in ("conv2d", "dense"):
            continue
        best, tried = None, []
        for k in range(steps):
            trial = list(scales)
            trial[i] = act_scales[i] * 2 ** (-k / 2)
            out = QuantSim(net, trial, quant_layers=i + 1)(x)
            agree = (out.argmax(1) == ref_cls).float().mean().item()
            mse = ((out - ref) ** 2).mean().item()
            tried.append((agree, mse, trial[i], k))
            if best is None or (agree, -mse) > (best[0], -best[1]):
                best = (agree, mse, trial[i], k)
        if tol > 0:
            best = next(t for t in tried if t[0] >= best[0] - tol)  # k ascending: largest first
        scales[i] = best[2]
        if log:
            log("int8 scale search: layer %d (%s): max/%.3g, agreement %.1f%%"
                % (i, kind, 2 ** (best[3] / 2), 100 * best[0]))
    return scales


# ---- running the int8 model (int8ref, the engine's exact arithmetic) ----

def int8_logits(m: modelfile.Model, pics: np.ndarray) -> np.ndarray:
    """int8 logits [N, classes] of uint8 pictures [N, C, R, R], by int8ref."""
    out = np.zeros((len(pics), len(m.classes)), np.int8)
    for i, p in enumerate(pics):
        out[i] = int8ref.run(m, p)
    return out
