# SPDX-License-Identifier: MIT
"""The .fpcnn model file: write and read the bytes core/model_file.c reads.

docs/model-format.md is the definition. This module writes the canonical
layout (the same bytes C's model_encode() writes for the same model) and
reads any valid file, applying the checks the C loader applies, with the same
messages (raised as ModelFileError).

Building a model: start a Builder with the input spec, add layers (shapes are
inferred and checked), then build() and to_bytes() / save(). Integer tensors
come from flowpic_model.int8ref (quantize_multiplier, quantize_model).
"""
from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"FPCNN\0\0\0"
VERSION = 1
HEADER_SIZE = 384
LAYER_SIZE = 80
ALIGN = 32
ACC_BOUND = 1 << 30
MAX_CLASSES = 256
MAX_LAYERS = 64
MAX_DIM = 65535
MAX_ELEMS = 1 << 28
MAX_FILE_SIZE = 1 << 30

DIRS = ("both", "fwd", "rev", "split")
TYPES = {1: "conv2d", 2: "maxpool", 3: "dense", 4: "relu", 5: "flatten"}
TYPE_IDS = {v: k for k, v in TYPES.items()}
RELU_FLAG = 1

# magic, version, header_size, file_size, n_classes, n_layers, res, in_channels,
# window_ns, size_max, dirs, reserved0, input_scale, reserved1, strings_off,
# strings_size, layers_off, data_off, data_size, reserved2, lut
HEADER_FMT = "<8sIIQIIIIQIB3sfIQQQQQ24s256s"
# type, flags, reserved, in c/h/w, out c/h/w, kh, kw, sh, sw, pad t/l/b/r,
# out_scale, weight/bias/mult/shift offsets
LAYER_FMT = "<BBH6I8HfQQQQ"
assert struct.calcsize(HEADER_FMT) == HEADER_SIZE
assert struct.calcsize(LAYER_FMT) == LAYER_SIZE


class ModelFileError(ValueError):
    """A model file or model refused: str() is the one-line reason."""


def f32(x: float) -> float:
    """x as the float32 the file stores."""
    return float(np.float32(x))


@dataclass
class Layer:
    type: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (0, 0)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    relu: bool = False
    out_scale: float = 1.0
    weight: np.ndarray | None = None  # int8: conv (oc, ic, kh, kw), dense (oc, k)
    bias: np.ndarray | None = None  # int32 (oc,)
    mult: np.ndarray | None = None  # int32 (oc,)
    shift: np.ndarray | None = None  # int32 (oc,)

    @property
    def has_params(self) -> bool:
        return self.type in ("conv2d", "dense")

    @property
    def k(self) -> int:
        """Inputs per output of a conv2d or dense layer."""
        c, h, w = self.in_shape
        if self.type == "conv2d":
            return c * self.kernel[0] * self.kernel[1]
        if self.type == "dense":
            return c * h * w
        return 0


@dataclass
class Model:
    name: str
    version: str
    classes: list[str]
    res: int
    direction: str = "both"
    window_ns: int = 60_000_000_000
    size_max: int = 1500
    input_scale: float = 1.0
    lut: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int8))
    layers: list[Layer] = field(default_factory=list)

    @property
    def in_channels(self) -> int:
        return 2 if self.direction == "split" else 1

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.res, self.res)


class Builder:
    """Layers in order, shapes and scales carried from one to the next."""

    def __init__(self, res: int, direction: str = "both", input_scale: float = 1.0,
                 lut=None):
        self.model = Model(name="", version="", classes=[], res=res, direction=direction,
                           input_scale=f32(input_scale))
        if lut is not None:
            self.model.lut = np.asarray(lut, np.int8).copy()
        self.shape = self.model.in_shape
        self.scale = self.model.input_scale

    def _add(self, layer: Layer) -> Layer:
        self.model.layers.append(layer)
        self.shape = layer.out_shape
        self.scale = layer.out_scale
        return layer

    def conv2d(self, weight, bias, mult, shift, stride=(1, 1), pad=(0, 0, 0, 0),
               relu=False, out_scale=1.0) -> Layer:
        weight = np.asarray(weight, np.int8)
        oc, ic, kh, kw = weight.shape
        c, h, w = self.shape
        oh = (h + pad[0] + pad[2] - kh) // stride[0] + 1
        ow = (w + pad[1] + pad[3] - kw) // stride[1] + 1
        return self._add(Layer("conv2d", self.shape, (oc, oh, ow), (kh, kw), tuple(stride),
                               tuple(pad), relu, f32(out_scale), weight,
                               **_channel_arrays(bias, mult, shift)))

    def maxpool(self, kernel, stride=None) -> Layer:
        kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        stride = kernel if stride is None else stride
        stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
        c, h, w = self.shape
        out = (c, (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1)
        return self._add(Layer("maxpool", self.shape, out, kernel, stride,
                               out_scale=self.scale))

    def relu(self) -> Layer:
        return self._add(Layer("relu", self.shape, self.shape, out_scale=self.scale))

    def flatten(self) -> Layer:
        c, h, w = self.shape
        return self._add(Layer("flatten", self.shape, (c * h * w, 1, 1), out_scale=self.scale))

    def dense(self, weight, bias, mult, shift, relu=False, out_scale=1.0) -> Layer:
        weight = np.asarray(weight, np.int8)
        weight = weight.reshape(weight.shape[0], -1)
        return self._add(Layer("dense", self.shape, (weight.shape[0], 1, 1), relu=relu,
                               out_scale=f32(out_scale), weight=weight,
                               **_channel_arrays(bias, mult, shift)))

    def build(self, name: str, version: str, classes, window_ns: int = 60_000_000_000,
              size_max: int = 1500) -> Model:
        m = self.model
        m.name, m.version, m.classes = name, version, list(classes)
        m.window_ns, m.size_max = int(window_ns), int(size_max)
        check(m)
        return m


def _channel_arrays(bias, mult, shift) -> dict:
    return {"bias": np.asarray(bias, np.int32).copy(), "mult": np.asarray(mult, np.int32).copy(),
            "shift": np.asarray(shift, np.int32).copy()}


# ---- the meaning of a model: the checks of C's model_check() ----

def _fail(msg: str):
    raise ModelFileError(msg)


def _check_out(l: Layer, expect):
    if tuple(l.out_shape) != tuple(expect):
        _fail("output %dx%dx%d, expected %dx%dx%d from its input and parameters"
              % (*l.out_shape, *expect))


def _check_window(l: Layer, pads: bool):
    (kh, kw), (sh, sw) = l.kernel, l.stride
    pt, pl, pb, pr = l.pad
    c, h, w = l.in_shape
    if not (kh and kw and sh and sw):
        _fail("kernel %dx%d, stride %dx%d: all must be at least 1" % (kh, kw, sh, sw))
    if not pads and any(l.pad):
        _fail("padding is only for conv2d")
    if pt >= kh or pb >= kh or pl >= kw or pr >= kw:
        _fail("padding %d,%d,%d,%d must be below the kernel %dx%d" % (pt, pl, pb, pr, kh, kw))
    if h + pt + pb < kh or w + pl + pr < kw:
        _fail("kernel %dx%d larger than the (padded) input %dx%d"
              % (kh, kw, h + pt + pb, w + pl + pr))
    oc = l.out_shape[0] if l.type == "conv2d" else c
    _check_out(l, (oc, (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1))


def _check_geometry(l: Layer):
    if l.type == "conv2d":
        return _check_window(l, True)
    if l.type == "maxpool":
        return _check_window(l, False)
    if any(l.kernel) or any(l.stride) or any(l.pad):
        _fail("kernel, stride and padding must be 0 for %s" % l.type)
    c, h, w = l.in_shape
    if l.type == "dense":
        _check_out(l, (l.out_shape[0], 1, 1))
    elif l.type == "relu":
        _check_out(l, l.in_shape)
    elif l.type == "flatten":
        _check_out(l, (c * h * w, 1, 1))
    else:
        _fail("unknown layer type %s" % l.type)


def _check_dims(l: Layer):
    dims = tuple(l.in_shape) + tuple(l.out_shape)
    if min(dims) <= 0:
        _fail("a dimension is 0")
    if max(dims) > MAX_DIM or math.prod(l.in_shape) > MAX_ELEMS or \
            math.prod(l.out_shape) > MAX_ELEMS:
        _fail("tensor too large (dimensions up to %d, %d elements)" % (MAX_DIM, MAX_ELEMS))
    if l.has_params and l.k * l.out_shape[0] > MAX_ELEMS:
        _fail("too many weights")


def _check_params(l: Layer, in_scale: float):
    if not (math.isfinite(l.out_scale) and l.out_scale > 0):
        _fail("output scale %s is not a positive number" % _g(l.out_scale))
    if not l.has_params:
        if l.relu:
            _fail("the ReLU flag is only for conv2d and dense")
        if f32(l.out_scale) != f32(in_scale):
            _fail("output scale %s differs from its input's %s"
                  % (_g(l.out_scale), _g(in_scale)))
        return
    oc, k = l.out_shape[0], l.k
    w = np.asarray(l.weight)
    want = (oc, l.in_shape[0], *l.kernel) if l.type == "conv2d" else (oc, k)
    if w.dtype != np.int8 or w.shape != want:
        _fail("weights are %s %s, expected int8 %s" % (w.dtype, w.shape, want))
    for a in (l.bias, l.mult, l.shift):
        if a is None or np.asarray(a).shape != (oc,):
            _fail("tensors missing")
    if k * 127 * 128 > ACC_BOUND:
        _fail("K %d inputs per output: K * 127 * 128 exceeds 2^30 (int32 accumulator bound)"
              % k)
    bad = np.flatnonzero(w.reshape(-1) == -128)
    if bad.size:
        _fail("weight %d is -128 (weights are -127 .. 127)" % bad[0])
    bound = ACC_BOUND - k * 127 * 128
    for c in range(oc):
        m, s, b = int(l.mult[c]), int(l.shift[c]), int(l.bias[c])
        if m != 0 and not (1 << 30) <= m < (1 << 31):
            _fail("channel %d: multiplier %d outside 0 or [2^30, 2^31)" % (c, m))
        if not 0 <= s <= 31:
            _fail("channel %d: shift %d outside 0 .. 31" % (c, s))
        if abs(b) > bound:
            _fail("channel %d: |bias| %d + K %d * 127 * 128 exceeds 2^30 "
                  "(int32 accumulator bound)" % (c, abs(b), k))


def _g(x: float) -> str:
    """C's %g."""
    return "%g" % x


def check(m: Model, in_channels: int | None = None):
    """Raise ModelFileError unless m is a model C accepts (messages as C's).

    in_channels: what a file said, checked against the direction mode."""
    if not 1 <= len(m.classes) <= MAX_CLASSES:
        _fail("%d classes (1 .. %d)" % (len(m.classes), MAX_CLASSES))
    if not 1 <= len(m.layers) <= MAX_LAYERS:
        _fail("%d layers (1 .. %d)" % (len(m.layers), MAX_LAYERS))
    if not 1 <= m.res <= 2048:
        _fail("input resolution %d (1 .. 2048)" % m.res)
    if m.direction not in DIRS:
        _fail("direction mode %s unknown" % m.direction)
    if in_channels is not None and in_channels != m.in_channels:
        _fail('%d input channels with direction "%s"' % (in_channels, m.direction))
    if not m.window_ns:
        _fail("window is 0")
    if not 1 <= m.size_max <= 65535:
        _fail("size axis maximum %d (1 .. 65535)" % m.size_max)
    if not (math.isfinite(m.input_scale) and m.input_scale > 0):
        _fail("input scale %s is not a positive number" % _g(m.input_scale))
    if np.asarray(m.lut).shape != (256,):
        _fail("the lookup table has 256 entries")
    if not m.name:
        _fail("model name is empty")
    for i, c in enumerate(m.classes):
        if not c:
            _fail("class %d has no name" % i)
        if c in m.classes[:i]:
            _fail('class name "%s" appears twice' % c)
    shape, scale = m.in_shape, m.input_scale
    for i, l in enumerate(m.layers):
        if tuple(l.in_shape) != tuple(shape):
            _fail("layer %d (%s): input %dx%dx%d does not match the %s %dx%dx%d"
                  % (i, l.type, *l.in_shape, "previous output" if i else "model input", *shape))
        try:
            _check_dims(l)
            _check_geometry(l)
            _check_params(l, scale)
        except ModelFileError as e:
            _fail("layer %d (%s): %s" % (i, l.type, e))
        shape, scale = l.out_shape, l.out_scale
    if math.prod(shape) != len(m.classes):
        _fail("the last layer gives %d values for %d classes" % (math.prod(shape),
                                                                 len(m.classes)))


# ---- writing ----

def _align(v: int, a: int) -> int:
    return (v + a - 1) // a * a


def _tensors(l: Layer):
    return [np.ascontiguousarray(l.weight, np.int8).tobytes(),
            np.ascontiguousarray(l.bias, "<i4").tobytes(),
            np.ascontiguousarray(l.mult, "<i4").tobytes(),
            np.ascontiguousarray(l.shift, "<i4").tobytes()]


def to_bytes(m: Model) -> bytes:
    """The canonical file: header, strings, layer table, tensors, CRC-32."""
    check(m)
    strings = b"".join(s.encode("utf-8") + b"\0" for s in [m.name, m.version, *m.classes])
    layers_off = _align(HEADER_SIZE + len(strings), 8)
    data_off = _align(layers_off + len(m.layers) * LAYER_SIZE, ALIGN)
    pos, data, offs = data_off, bytearray(), []
    for l in m.layers:
        if not l.has_params:
            offs.append((0, 0, 0, 0))
            continue
        o = []
        for t in _tensors(l):
            o.append(pos)
            data += t + bytes(_align(len(t), ALIGN) - len(t))
            pos = _align(pos + len(t), ALIGN)
        offs.append(tuple(o))
    out = bytearray(pos + 4)
    struct.pack_into(HEADER_FMT, out, 0, MAGIC, VERSION, HEADER_SIZE, pos + 4, len(m.classes),
                     len(m.layers), m.res, m.in_channels, m.window_ns, m.size_max,
                     DIRS.index(m.direction), bytes(3), m.input_scale, 0, HEADER_SIZE,
                     len(strings), layers_off, data_off, pos - data_off, bytes(24),
                     np.asarray(m.lut, np.int8).tobytes())
    out[HEADER_SIZE:HEADER_SIZE + len(strings)] = strings
    for i, (l, o) in enumerate(zip(m.layers, offs)):
        struct.pack_into(LAYER_FMT, out, layers_off + i * LAYER_SIZE, TYPE_IDS[l.type],
                         RELU_FLAG if l.relu else 0, 0, *l.in_shape, *l.out_shape, *l.kernel,
                         *l.stride, *l.pad, l.out_scale, *o)
    out[data_off:pos] = data
    struct.pack_into("<I", out, pos, zlib.crc32(bytes(out[:pos])))
    return bytes(out)


def save(m: Model, path) -> None:
    with open(path, "wb") as f:
        f.write(to_bytes(m))


# ---- reading ----

def _envelope(buf: bytes):
    n = len(buf)
    if buf[:8] != MAGIC[:min(n, 8)]:
        _fail("not a flowpic model file (bad magic)")
    if n < 12:
        _fail("truncated (%d bytes)" % n)
    (version,) = struct.unpack_from("<I", buf, 8)
    if version != VERSION:
        _fail("format version %d, this flowpic reads version %d: %s"
              % (version, VERSION, "update flowpic" if version > VERSION
                 else "re-export the model"))
    if n < HEADER_SIZE:
        _fail("truncated (%d bytes, the header alone is %d)" % (n, HEADER_SIZE))
    h = struct.unpack_from(HEADER_FMT, buf, 0)
    if h[2] != HEADER_SIZE:
        _fail("header size %d, version 1 has %d" % (h[2], HEADER_SIZE))
    if h[3] > n:
        _fail("truncated (%d of %d bytes)" % (n, h[3]))
    if h[3] < n:
        _fail("%d bytes, but the header says %d (trailing data?)" % (n, h[3]))
    if zlib.crc32(buf[:n - 4]) != struct.unpack_from("<I", buf, n - 4)[0]:
        _fail("checksum mismatch (file corrupted?)")
    return h


def _region_ok(off, size, lo, hi, align):
    return lo <= off <= hi and size <= hi - off and off % align == 0


def _header(buf: bytes, h):
    (_, _, _, _, n_classes, n_layers, _, _, _, _, dirs, r0, _, r1, s_off, s_size, l_off,
     d_off, d_size, r2, _) = h
    end = len(buf) - 4
    if dirs > 3 or any(r0) or r1 or any(r2):
        _fail("unknown values in reserved header fields")
    if not 1 <= n_classes <= MAX_CLASSES:
        _fail("%d classes (1 .. %d)" % (n_classes, MAX_CLASSES))
    if not 1 <= n_layers <= MAX_LAYERS:
        _fail("%d layers (1 .. %d)" % (n_layers, MAX_LAYERS))
    if not _region_ok(s_off, s_size, HEADER_SIZE, end, 1):
        _fail("string table at %d (+%d) is outside the file" % (s_off, s_size))
    if not _region_ok(l_off, n_layers * LAYER_SIZE, HEADER_SIZE, end, 8):
        _fail("layer table at %d is outside the file or not 8-byte aligned" % l_off)
    if not _region_ok(d_off, d_size, HEADER_SIZE, end, ALIGN):
        _fail("tensor data at %d (+%d) is outside the file or not %d-byte aligned"
              % (d_off, d_size, ALIGN))


def _strings(buf: bytes, h):
    want = 2 + h[4]
    p, end, out = h[14], h[14] + h[15], []
    for i in range(want):
        nul = buf.find(b"\0", p, end)
        if nul < 0:
            _fail("string table: %d of %d strings, or one is not terminated" % (i, want))
        try:
            out.append(buf[p:nul].decode("utf-8"))
        except UnicodeDecodeError:
            _fail("string table: string %d is not UTF-8" % i)
        p = nul + 1
    if p != end:
        _fail("string table: %d bytes after the last class name" % (end - p))
    return out


def _tensor(buf, h, i, what, off, size, dtype, shape):
    d_off, d_size = h[17], h[18]
    if not _region_ok(off, size, d_off, d_off + d_size, ALIGN):
        _fail("layer %d: %s at %d (+%d) is outside the tensor data or not %d-byte aligned"
              % (i, what, off, size, ALIGN))
    return np.frombuffer(buf, dtype, int(np.prod(shape)), off).reshape(shape).copy()


def _layer(buf: bytes, h, i: int) -> Layer:
    rec = struct.unpack_from(LAYER_FMT, buf, h[16] + i * LAYER_SIZE)
    typ, flags, reserved = rec[0:3]
    if typ not in TYPES:
        _fail("layer %d: unknown type %d" % (i, typ))
    if reserved or flags & ~RELU_FLAG:
        _fail("layer %d: unknown flags or reserved bits" % i)
    l = Layer(TYPES[typ], tuple(rec[3:6]), tuple(rec[6:9]), tuple(rec[9:11]),
              tuple(rec[11:13]), tuple(rec[13:17]), bool(flags & RELU_FLAG), rec[17])
    offs = rec[18:22]
    if not l.has_params:
        if any(offs):
            _fail("layer %d (%s) has tensor offsets" % (i, l.type))
        return l
    try:
        _check_dims(l)
    except ModelFileError as e:
        _fail("layer %d (%s): %s" % (i, l.type, e))
    oc = l.out_shape[0]
    wshape = (oc, l.in_shape[0], *l.kernel) if l.type == "conv2d" else (oc, l.k)
    l.weight = _tensor(buf, h, i, "weights", offs[0], oc * l.k, np.int8, wshape)
    l.bias = _tensor(buf, h, i, "biases", offs[1], 4 * oc, "<i4", (oc,)).astype(np.int32)
    l.mult = _tensor(buf, h, i, "multipliers", offs[2], 4 * oc, "<i4", (oc,)).astype(np.int32)
    l.shift = _tensor(buf, h, i, "shifts", offs[3], 4 * oc, "<i4", (oc,)).astype(np.int32)
    return l


def from_bytes(buf: bytes, name: str = "model") -> Model:
    """Read and check a model file; ModelFileError("<name>: <reason>") if refused."""
    buf = bytes(buf)
    try:
        if len(buf) > MAX_FILE_SIZE:
            _fail("%d bytes, larger than any model (1 GiB)" % len(buf))
        h = _envelope(buf)
        _header(buf, h)
        s = _strings(buf, h)
        m = Model(name=s[0], version=s[1], classes=s[2:], res=h[6],
                  direction=DIRS[h[10]], window_ns=h[8], size_max=h[9], input_scale=h[12],
                  lut=np.frombuffer(h[20], np.int8).copy(),
                  layers=[_layer(buf, h, i) for i in range(h[5])])
        check(m, in_channels=h[7])
    except ModelFileError as e:
        raise ModelFileError("%s: %s" % (name, e)) from None
    return m


def load(path) -> Model:
    with open(path, "rb") as f:
        return from_bytes(f.read(), str(path))
