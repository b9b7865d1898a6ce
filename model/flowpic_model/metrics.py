# SPDX-License-Identifier: MIT
"""Per-block and per-flow metrics, and the run's plots.

report():        accuracy, per-class precision / recall / F1 / support,
                 macro-F1 (over the classes present in the truth) and the
                 confusion matrix (rows: truth, columns: prediction)
flow_vote():     each flow's majority vote over its blocks (ties go to the
                 larger summed score) against its class
requet_report(): video recall on labeled video flows, and the fraction of
                 background blocks predicted as video
"""
from __future__ import annotations

import collections

import numpy as np


def confusion(y_true, y_pred, n: int) -> np.ndarray:
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def report(y_true, y_pred, classes) -> dict:
    n = len(classes)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    cm = confusion(y_true, y_pred, n)
    per, f1s = {}, []
    for i, c in enumerate(classes):
        tp = int(cm[i, i])
        support, predicted = int(cm[i].sum()), int(cm[:, i].sum())
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per[c] = {"precision": p, "recall": r, "f1": f1, "support": support,
                  "predicted": predicted}
        if support:
            f1s.append(f1)
    return {"blocks": int(len(y_true)),
            "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
            "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
            "per_class": per, "confusion": cm.tolist(), "classes": list(classes)}


def _votes(keys, y_pred, scores):
    """{flow key: (majority class, blocks)}."""
    by = collections.defaultdict(list)
    for i, k in enumerate(keys):
        by[k].append(i)
    out = {}
    for k, idx in by.items():
        counts = collections.Counter(int(y_pred[i]) for i in idx)
        top = max(counts.values())
        tied = [c for c, v in counts.items() if v == top]
        if len(tied) > 1 and scores is not None:
            tot = np.asarray(scores)[idx].sum(axis=0)
            tied.sort(key=lambda c: -tot[c])
        else:
            tied.sort()
        out[k] = (tied[0], len(idx))
    return out


def flow_vote(keys, y_true, y_pred, classes, scores=None) -> dict:
    """Majority vote per flow: accuracy, macro-F1 and confusion over flows."""
    votes = _votes(keys, y_pred, scores)
    truth = {}
    for k, t in zip(keys, np.asarray(y_true).tolist()):
        truth[k] = t
    ks = sorted(votes, key=str)
    r = report([truth[k] for k in ks], [votes[k][0] for k in ks], classes)
    r["flows"] = r.pop("blocks")
    return r


def requet_report(keys, y, y_pred, classes, scores=None, complete=None) -> dict:
    """y: the video class index for labeled video blocks, -1 for background."""
    video = list(classes).index("video")
    y, y_pred = np.asarray(y), np.asarray(y_pred)
    is_video = y == video
    out = {}
    for name, mask in (("video", is_video), ("background", ~is_video)):
        pred = y_pred[mask]
        out[name + "_blocks"] = int(mask.sum())
        out[name + "_predicted"] = {c: int((pred == i).sum()) for i, c in enumerate(classes)}
    nv, nb = out["video_blocks"], out["background_blocks"]
    out["video_recall"] = float((y_pred[is_video] == video).mean()) if nv else None
    out["background_as_video"] = float((y_pred[~is_video] == video).mean()) if nb else None
    if complete is not None:
        m = is_video & np.asarray(complete, bool)
        out["video_recall_complete_blocks"] = float((y_pred[m] == video).mean()) if m.any() \
            else None
    votes = _votes(keys, y_pred, scores)
    vflows = {k for k, t in zip(keys, y.tolist()) if t == video}
    bflows = set(votes) - vflows
    out["video_flows"] = len(vflows)
    out["video_flow_recall"] = (sum(votes[k][0] == video for k in vflows) / len(vflows)
                                if vflows else None)
    out["background_flows"] = len(bflows)
    out["background_flows_as_video"] = (sum(votes[k][0] == video for k in bflows) / len(bflows)
                                        if bflows else None)
    return out


# ---- plots ----

def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_curves(history: list, key: str, path: str, title: str):
    """One value per epoch, train and validation, e.g. key "acc"."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    ep = [h["epoch"] for h in history]
    for part in ("train", "val"):
        vals = [h.get(f"{part}_{key}") for h in history]
        if any(v is not None for v in vals):
            ax.plot(ep, vals, marker="o", ms=3, label=part)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_confusion(cm, rows, cols, path: str, title: str):
    """Counts, and each row normalized to 1 as the colour."""
    plt = _plt()
    cm = np.asarray(cm, np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 2, 0.9 * len(rows) + 1.8), dpi=100)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, "%d\n%.0f%%" % (cm[i, j], 100 * norm[i, j]), ha="center",
                    va="center", fontsize=8, color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
