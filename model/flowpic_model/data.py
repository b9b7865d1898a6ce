# SPDX-License-Identifier: MIT
"""Training arrays: loading, the validation carve-out, class-balanced sampling.

The pictures come only from `flowpic export --format npy` (through
`model/lab/lab.py arrays` or `model/requet.py`); this module never draws one.

  lab arrays:    DIR/{train,test_session,test_profile}.npy, uint8 [N, R, R]
                 (or [N, 2, R, R] for --direction split), and DIR/{split}.csv
                 (session,app,profile,class,flow,block,complete,samples[,copy]:
                 copy > 0 marks augmented copies of the train split)
  requet arrays: DIR/requet.npy and DIR/requet.csv
                 (pcap,flow,block,complete,samples,label), label video or
                 background
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field

import numpy as np

from .nets import CLASSES

SPLITS = ("train", "test_session", "test_profile")


@dataclass
class Split:
    """Pictures [N, C, R, R] uint8, labels [N] (class index, -1 for none),
    and each picture's index row."""
    name: str
    pics: np.ndarray
    y: np.ndarray
    meta: list = field(default_factory=list)

    def __len__(self):
        return len(self.y)

    def subset(self, idx, name=None) -> "Split":
        idx = np.asarray(idx, np.int64)
        return Split(name or self.name, self.pics[idx], self.y[idx], [self.meta[i] for i in idx])

    def flow_keys(self) -> list:
        """The flow each picture belongs to (session or pcap, flow ID)."""
        return [(m.get("session") or m.get("pcap"), m["flow"]) for m in self.meta]

    @property
    def channels(self) -> int:
        return self.pics.shape[1]

    @property
    def res(self) -> int:
        return self.pics.shape[-1]


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _pics(path) -> np.ndarray:
    a = np.load(path)
    if a.dtype != np.uint8 or a.ndim not in (3, 4):
        raise ValueError("%s: expected uint8 [N, R, R] or [N, 2, R, R], got %s %s"
                         % (path, a.dtype, a.shape))
    return a[:, None] if a.ndim == 3 else a


def _filter(s: Split, min_samples: int, complete_only: bool) -> Split:
    keep = [i for i, m in enumerate(s.meta)
            if int(m["samples"]) >= min_samples and (not complete_only or m["complete"] == "1")]
    return s if len(keep) == len(s) else s.subset(keep)


def load_split(dirname: str, split: str, classes=CLASSES, min_samples=1,
               complete_only=False, drop_unknown=False) -> Split | None:
    """One split of lab arrays, or None when DIR has no such split.
    drop_unknown: rows of a class not in classes (e.g. 'other' for a
    five-class model) are left out instead of being an error."""
    npy = os.path.join(dirname, split + ".npy")
    if not os.path.exists(npy):
        return None
    pics, meta = _pics(npy), _read_csv(os.path.join(dirname, split + ".csv"))
    if len(meta) != len(pics):
        raise ValueError("%s: %d pictures but %d index rows" % (npy, len(pics), len(meta)))
    index = {c: i for i, c in enumerate(classes)}
    bad = sorted({m["class"] for m in meta} - set(index))
    if bad and drop_unknown:
        keep = [i for i, m in enumerate(meta) if m["class"] in index]
        pics, meta = pics[keep], [meta[i] for i in keep]
    elif bad:
        raise ValueError("%s: classes %s not among %s" % (npy, bad, list(classes)))
    y = np.array([index[m["class"]] for m in meta], np.int64)
    return _filter(Split(split, pics, y, meta), min_samples, complete_only)


def load_requet(dirname: str, classes=CLASSES, min_samples=1, complete_only=False) -> Split:
    """Requet arrays: y is the video class for labeled video flows, -1 for
    background."""
    pics = _pics(os.path.join(dirname, "requet.npy"))
    meta = _read_csv(os.path.join(dirname, "requet.csv"))
    if len(meta) != len(pics):
        raise ValueError("%s: %d pictures but %d index rows" % (dirname, len(pics), len(meta)))
    video = list(classes).index("video")
    y = np.array([video if m["label"] == "video" else -1 for m in meta], np.int64)
    return _filter(Split("requet", pics, y, meta), min_samples, complete_only)


def split_requet(rq: Split, pattern: str) -> tuple[Split, Split]:
    """(training part, held-out part) of Requet arrays: captures whose name
    matches the regular expression pattern give their video pictures to
    training, as lab-like rows (session = the capture, class video); the
    held-out part keeps only the other captures, video and background."""
    import re
    rx = re.compile(pattern)
    is_train = np.array([bool(rx.search(m["pcap"])) for m in rq.meta], bool)
    train_idx = np.flatnonzero(is_train & (rq.y >= 0))
    part = rq.subset(train_idx, "requet_train")
    part.meta = [{"session": m["pcap"], "app": "requet-youtube", "profile": "requet",
                  "class": "video", "flow": m["flow"], "block": m["block"],
                  "complete": m["complete"], "samples": m["samples"], "copy": 0}
                 for m in part.meta]
    return part, rq.subset(np.flatnonzero(~is_train))


def concat(a: Split, b: Split) -> Split:
    """a's pictures then b's (same resolution and channels), named as a."""
    if a.pics.shape[1:] != b.pics.shape[1:]:
        raise ValueError("cannot join pictures of shapes %s and %s"
                         % (a.pics.shape[1:], b.pics.shape[1:]))
    return Split(a.name, np.concatenate([a.pics, b.pics]), np.concatenate([a.y, b.y]),
                 a.meta + b.meta)


def carve_validation(s: Split, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): about frac of each class's
    sessions go to validation, whole sessions only, and every class keeps at
    least one training session (a class with a single session gives none)."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list] = {}
    session_of = [m["session"] for m in s.meta]
    for sess, c in sorted(set(zip(session_of, s.y.tolist()))):
        by_class.setdefault(c, []).append(sess)
    val_sessions = set()
    for c, sessions in sorted(by_class.items()):
        sessions = sorted(set(sessions))
        n = min(len(sessions) - 1, max(1, round(frac * len(sessions)))) if frac > 0 else 0
        if n > 0:
            val_sessions.update(rng.choice(sessions, n, replace=False).tolist())
    is_val = np.array([x in val_sessions for x in session_of], bool)
    # Validation keeps only plain pictures (copy 0): it picks the epoch, so it
    # must look like the held-out sets; augmented copies of its sessions are
    # left out of both.
    plain = np.array([int(m.get("copy", 0)) == 0 for m in s.meta], bool)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val & plain)


def balanced_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """A sampling weight per picture so that every class present is drawn
    equally often (WeightedRandomSampler's weights)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = 1.0 / np.maximum(counts, 1)
    return w[y]


def balanced_subset(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Up to per_class pictures of each class (calibration, baselines)."""
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        out.append(rng.choice(idx, min(per_class, len(idx)), replace=False))
    return np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)


def describe(s: Split, classes=CLASSES) -> dict:
    """Pictures, flows and sessions per class (or per Requet label)."""
    out = {"pictures": len(s)}
    keys = s.flow_keys()
    per = {}
    for i, c in enumerate(s.y.tolist()):
        name = classes[c] if c >= 0 else "background"
        d = per.setdefault(name, {"pictures": 0, "flows": set(), "sessions": set()})
        d["pictures"] += 1
        d["flows"].add(keys[i])
        d["sessions"].add(keys[i][0])
    out["per_class"] = {k: {"pictures": v["pictures"], "flows": len(v["flows"]),
                            "sessions": len(v["sessions"])} for k, v in sorted(per.items())}
    return out
