# SPDX-License-Identifier: MIT
"""Writing the int8 model file and its golden vectors, and checking both.

  save(m, path)            the .fpcnn file (modelfile), read back and checked
                           to be the same bytes
  write_golden(path, ...)  pictures and the int8 logits int8ref computes for
                           them, in the format tests/unit/cnn_golden.c reads:
                           "FPGOLD01", u32 count, u32 picture bytes,
                           u32 classes, u32 0, then per picture its uint8
                           bytes (channel, y, x) and its int8 logits
  run_c_golden(...)        the C engine on those vectors (every path must
                           give the same logits), when cnn_golden is built
"""
from __future__ import annotations

import glob
import os
import struct
import subprocess

import numpy as np

from . import int8ref, modelfile


def save(m: modelfile.Model, path: str) -> int:
    """Write the model file; read it back and check the bytes round-trip.
    Returns the file size."""
    data = modelfile.to_bytes(m)
    with open(path, "wb") as f:
        f.write(data)
    back = modelfile.load(path)
    if modelfile.to_bytes(back) != data:
        raise RuntimeError("%s: the model read back encodes to other bytes" % path)
    return len(data)


def write_golden(path: str, m: modelfile.Model, pics: np.ndarray) -> np.ndarray:
    """Write golden vectors; returns their logits [N, classes] (int8)."""
    pics = np.asarray(pics, np.uint8).reshape((len(pics),) + tuple(m.in_shape))
    n = int(np.prod(m.in_shape))
    logits = np.zeros((len(pics), len(m.classes)), np.int8)
    with open(path, "wb") as f:
        f.write(b"FPGOLD01" + struct.pack("<4I", len(pics), n, len(m.classes), 0))
        for i, pic in enumerate(pics):
            logits[i] = int8ref.run(m, pic)
            f.write(pic.tobytes())
            f.write(logits[i].tobytes())
    return logits


def read_golden(path: str):
    """(pictures [N, n] uint8, logits [N, classes] int8) of a golden file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"FPGOLD01":
        raise ValueError("%s: not a golden file" % path)
    count, n, classes, _ = struct.unpack_from("<4I", data, 8)
    rec = np.frombuffer(data, np.uint8, count * (n + classes), 24).reshape(count, n + classes)
    return rec[:, :n].copy(), rec[:, n:].view(np.int8).copy()


def find_c_golden(root: str) -> str | None:
    """A built cnn_golden driver under ROOT/build*/tests/unit, if any."""
    for p in sorted(glob.glob(os.path.join(root, "build*", "tests", "unit", "cnn_golden"))):
        if os.access(p, os.X_OK):
            return p
    return None


def run_c_golden(driver: str, model_path: str, golden_path: str) -> dict:
    r = subprocess.run([driver, model_path, golden_path], capture_output=True, text=True)
    return {"driver": driver, "returncode": r.returncode,
            "ok": r.returncode == 0 and "all logits equal" in r.stdout,
            "output": (r.stdout + r.stderr).strip()[-2000:]}
