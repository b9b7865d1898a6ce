# SPDX-License-Identifier: MIT
"""The float networks that model/train.py trains, and the input transform.

Every net is a plain sequence of the layers the C engine runs (conv2d with
optional padding and fused ReLU, max-pool, flatten, dense with optional fused
ReLU); dropout may sit between them for training and is the identity at
inference, so it is not exported. Nets output logits (no softmax): train with
torch.nn.CrossEntropyLoss.

Input transform: a fixed 256-entry table from a cell's count (0 .. 255, the
exporter's uint8) to the input value, INPUT_LUT[c] * INPUT_SCALE with

    INPUT_LUT[c] = round(127 * log1p(c) / log1p(255))    int8, 0 .. 127
    INPUT_SCALE  = 1 / 127                                 value 0 .. 1

Training feeds the net exactly these values, and the model file carries the
same int8 table and scale, so the int8 engine's input is the training input
bit for bit (no quantization error at the input).

Nets (name: input, layers; parameters for 5 classes and one input channel):

  flowpic1500  1500 x 1500, the FlowPic paper's net (talshapira/FlowPic, Keras,
               padding "same"): conv 10@10x10/5 (pad 2,2,3,3) + ReLU -> max-pool 2
               -> conv 20@10x10/5 (pad 2,2,3,3) + ReLU -> max-pool 2 -> dense 64
               + ReLU -> dense 5: 309,419 parameters, 108.3 M multiply-adds
  lenet32      32 x 32, LeNet-5 as in mini-FlowPic: conv 6@5x5 + ReLU -> max-pool 2
               -> conv 16@5x5 + ReLU -> max-pool 2 -> dense 120 + ReLU -> dense 84
               + ReLU -> dense 5: 61,281 parameters, 0.42 M multiply-adds
  lenet64      64 x 64, LeNet-style with a third conv so the dense part stays
               LeNet-sized: conv 6@5x5 -> pool 2 -> conv 16@5x5 -> pool 2 -> conv
               32@4x4 -> pool 2 -> dense 120 -> 84 -> 5 (ReLU after each but the
               last): 117,505 parameters, 3.09 M multiply-adds
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CLASSES = ("voip", "video", "file_transfer", "chat", "browsing")


def input_lut() -> tuple[np.ndarray, float]:
    """(lut, scale): the int8 table of counts and the value of one step."""
    c = np.arange(256, dtype=np.float64)
    lut = np.floor(127 * np.log1p(c) / math.log1p(255) + 0.5).astype(np.int8)
    return lut, 1.0 / 127


INPUT_LUT, INPUT_SCALE = input_lut()
# float32 value of each count, as training sees it
INPUT_VALUES = torch.tensor(INPUT_LUT.astype(np.float32) * np.float32(INPUT_SCALE))


def to_input(pics: torch.Tensor) -> torch.Tensor:
    """uint8 pictures [N, C, R, R] -> float inputs through the table."""
    return INPUT_VALUES[pics.long()]


class Conv(nn.Module):
    """conv2d with explicit (top, left, bottom, right) zero padding and an
    optional fused ReLU: one conv2d layer of the model file."""

    def __init__(self, cin, cout, k, stride=1, pad=(0, 0, 0, 0), relu=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride)
        self.pad = tuple(pad)
        self.relu = relu

    def forward(self, x):
        if any(self.pad):
            t, l, b, r = self.pad
            x = F.pad(x, (l, r, t, b))
        x = self.conv(x)
        return F.relu(x) if self.relu else x


class Dense(nn.Module):
    """A dense layer with an optional fused ReLU."""

    def __init__(self, cin, cout, relu=True):
        super().__init__()
        self.fc = nn.Linear(cin, cout)
        self.relu = relu

    def forward(self, x):
        x = self.fc(x)
        return F.relu(x) if self.relu else x


class Net(nn.Module):
    """A sequence of Conv, nn.MaxPool2d, nn.Flatten, Dense (and nn.Dropout)."""

    def __init__(self, name: str, res: int, in_channels: int, layers):
        super().__init__()
        self.name, self.res, self.in_channels = name, res, in_channels
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


def _same(size: int, k: int, s: int) -> tuple[int, int]:
    """Keras "same" padding (before, after) along one axis."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def flowpic1500(in_channels=1, n_classes=5, dropout=True) -> Net:
    a, b = _same(1500, 10, 5)  # 2, 3 -> 300 x 300
    c, d = _same(150, 10, 5)  # 2, 3 -> 30 x 30
    layers = [Conv(in_channels, 10, 10, 5, (a, a, b, b)), nn.MaxPool2d(2),
              Conv(10, 20, 10, 5, (c, c, d, d))]
    layers += [nn.Dropout(0.25)] if dropout else []
    layers += [nn.MaxPool2d(2), nn.Flatten(), Dense(20 * 15 * 15, 64)]
    layers += [nn.Dropout(0.5)] if dropout else []
    layers += [Dense(64, n_classes, relu=False)]
    return Net("flowpic1500", 1500, in_channels, layers)


def lenet32(in_channels=1, n_classes=5, dropout=False) -> Net:
    layers = [Conv(in_channels, 6, 5), nn.MaxPool2d(2), Conv(6, 16, 5), nn.MaxPool2d(2),
              nn.Flatten(), Dense(16 * 5 * 5, 120)]
    layers += [nn.Dropout(0.3)] if dropout else []
    layers += [Dense(120, 84), Dense(84, n_classes, relu=False)]
    return Net("lenet32", 32, in_channels, layers)


def lenet64(in_channels=1, n_classes=5, dropout=False) -> Net:
    layers = [Conv(in_channels, 6, 5), nn.MaxPool2d(2),  # 60 -> 30
              Conv(6, 16, 5), nn.MaxPool2d(2),  # 26 -> 13
              Conv(16, 32, 4), nn.MaxPool2d(2),  # 10 -> 5
              nn.Flatten(), Dense(32 * 5 * 5, 120)]
    layers += [nn.Dropout(0.3)] if dropout else []
    layers += [Dense(120, 84), Dense(84, n_classes, relu=False)]
    return Net("lenet64", 64, in_channels, layers)


NETS = {"flowpic1500": flowpic1500, "lenet32": lenet32, "lenet64": lenet64}


def build(name: str, in_channels: int = 1, n_classes: int = 5, dropout=None) -> Net:
    if name not in NETS:
        raise ValueError("no net %s (nets: %s)" % (name, ", ".join(NETS)))
    kw = {} if dropout is None else {"dropout": dropout}
    return NETS[name](in_channels, n_classes, **kw)


def param_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def cost(net: Net) -> dict:
    """Parameters, multiply-adds per picture and each layer's output shape,
    worked out layer by layer (no forward pass: the 1500 net is large)."""
    c, h, w = net.in_channels, net.res, net.res
    macs, shapes = 0, []
    for m in net.layers:
        if isinstance(m, Conv):
            t, l, b, r = m.pad
            (kh, kw), (sh, sw) = m.conv.kernel_size, m.conv.stride
            h, w = (h + t + b - kh) // sh + 1, (w + l + r - kw) // sw + 1
            c = m.conv.out_channels
            macs += c * h * w * m.conv.in_channels * kh * kw
        elif isinstance(m, nn.MaxPool2d):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            s = m.stride if isinstance(m.stride, int) else m.stride[0]
            h, w = (h - k) // s + 1, (w - k) // s + 1
        elif isinstance(m, nn.Flatten):
            c, h, w = c * h * w, 1, 1
        elif isinstance(m, Dense):
            macs += m.fc.in_features * m.fc.out_features
            c, h, w = m.fc.out_features, 1, 1
        else:
            continue
        shapes.append((type(m).__name__, (c, h, w)))
    return {"params": param_count(net), "macs": macs, "shapes": shapes}
