#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Train a FlowPic CNN on lab arrays; evaluate it in fp32 and int8, beside a
tree baseline on the same pictures, on held-out sessions, held-out network
profiles and real YouTube captures (Requet).

  train.py --arrays DIR [--requet DIR] --net lenet32 --epochs N --out RUNDIR

DIR holds `model/lab/lab.py arrays` output ({train,test_session,test_profile}
.npy/.csv); --requet DIR holds `model/requet.py` output. Training uses split
"train" only, with class-balanced sampling; a validation set is carved from
whole training sessions (never from the held-out splits) and picks the best
epoch. Then:

  - fp32 metrics on test_session, test_profile (and validation): per-class
    precision / recall / F1, macro-F1, accuracy, confusion matrix, and the
    per-flow majority-vote accuracy; on Requet, video recall on the labeled
    video flows and the fraction of background blocks predicted as video;
  - baseline: scikit-learn HistGradientBoostingClassifier on the flattened
    input-transformed pictures, the same sets, the same metrics;
  - int8: per-channel int8 weights, int8 activations calibrated on training
    pictures; if that loses more than --qat-threshold of validation macro-F1,
    quantization-aware fine-tuning (--qat-epochs); the int8 model is
    evaluated with int8ref (the C engine's exact arithmetic), written as
    model.fpcnn, with golden vectors (golden.bin) for the C parity test.

RUNDIR gets: out.log, model.pt, model.fpcnn, golden.bin, acc.png, f1.png,
loss.png, cm_<set>.png (fp32; cm_<set>_int8.png too) and metrics.json.

Run it gently on a shared machine:
  nice -n 19 model/train.py --arrays /var/tmp/arrays32 --requet /var/tmp/requet32 \\
      --net lenet32 --epochs 20 --out runs/lenet32
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # sklearn's OpenMP; before any import
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from flowpic_model import data, metrics, nets  # noqa: E402
from flowpic_model.nets import CLASSES, to_input  # noqa: E402


class Log:
    """Lines to stderr and to RUNDIR/out.log."""

    def __init__(self, path):
        self.f = open(path, "w")
        self.t0 = time.monotonic()

    def __call__(self, msg):
        line = "[%6.1fs] %s" % (time.monotonic() - self.t0, msg)
        print(line, file=sys.stderr, flush=True)
        self.f.write(line + "\n")
        self.f.flush()


@torch.no_grad()
def predict(net, pics, batch=512):
    """Float logits [N, classes] of uint8 pictures [N, C, R, R]."""
    net.eval()
    out = [net(to_input(torch.from_numpy(pics[i:i + batch]))).numpy()
           for i in range(0, len(pics), batch)]
    return np.concatenate(out) if out else np.zeros((0, len(CLASSES)), np.float32)


def evaluate(logits, s, classes=None):
    """Block and flow metrics of logits on a held-out split."""
    classes = CLASSES if classes is None else classes
    pred = np.argmax(logits, axis=1)
    if s.name == "requet":
        complete = [m["complete"] == "1" for m in s.meta]
        return metrics.requet_report(s.flow_keys(), s.y, pred, classes, logits, complete)
    r = metrics.report(s.y, pred, classes)
    r["per_flow"] = metrics.flow_vote(s.flow_keys(), s.y, pred, classes, logits)
    return r


def summary(r):
    if "video_recall" in r:
        def pct(v):
            return "n/a" if v is None else "%.1f%%" % (100 * v)
        return ("video recall %s (flows %s), background as video %s (flows %s)"
                % (pct(r["video_recall"]), pct(r["video_flow_recall"]),
                   pct(r["background_as_video"]), pct(r["background_flows_as_video"])))
    return ("acc %.1f%% macro-F1 %.1f%% flow-acc %.1f%% (%d blocks, %d flows)"
            % (100 * r["accuracy"], 100 * r["macro_f1"], 100 * r["per_flow"]["accuracy"],
               r["blocks"], r["per_flow"]["flows"]))


def one_way_copies(x, y, frac, other, gen):
    """Captures of one direction only: a fraction frac of the class pictures
    (label not `other`) of a batch of split pictures [B, 2, R, R] (channel 0
    initiator -> responder, channel 1 the reverse) replaced, half and half, by
    (ch0, 0), only the initiator's packets captured, or (ch1, 0), only the
    responder's (which then is the initiator). Transforms the exporter's
    pictures; draws nothing new."""
    pick = (torch.rand(len(y), generator=gen) < frac) & (y != other)
    if not bool(pick.any()):
        return x
    x = x.clone()
    rev = pick & (torch.rand(len(y), generator=gen) < 0.5)
    x[rev, 0] = x[rev, 1]
    x[pick, 1] = 0
    return x


def swapped_copies(x, frac, gen):
    """Captures that began mid-flow: a fraction frac of a batch of split
    pictures [B, 2, R, R], any label, with the two channels exchanged, as
    when the first packet seen was the responder's and the flow table took
    it for the initiator (without the handshake nothing else tells them)."""
    pick = torch.rand(len(x), generator=gen) < frac
    if not bool(pick.any()):
        return x
    x = x.clone()
    x[pick] = x[pick].flip(1)
    return x


def train_epochs(model, params, train, args, log, epochs, lr, val=None, tag="train",
                 history=None):
    """Class-balanced minibatch training; returns the state of the best
    validation epoch (macro-F1), or of the last one without validation."""
    opt = torch.optim.Adam(params, lr=lr, weight_decay=args.weight_decay)
    lossf = nn.CrossEntropyLoss()
    x_all, y_all = torch.from_numpy(train.pics), torch.from_numpy(train.y)
    w = data.balanced_weights(train.y, len(CLASSES))
    oth = CLASSES.index("other") if "other" in CLASSES else -1
    if oth >= 0 and args.other_weight != 1.0:
        w = np.where(train.y == oth, w * args.other_weight, w)
    weights = torch.from_numpy(w)
    gen = torch.Generator().manual_seed(args.seed)
    one_way = args.one_way_frac if x_all.dim() == 4 and x_all.shape[1] == 2 else 0.0
    swap = args.swap_frac if x_all.dim() == 4 and x_all.shape[1] == 2 else 0.0
    size = args.epoch_size or len(train)
    best, best_f1 = copy.deepcopy(model.state_dict()), -1.0
    for epoch in range(1, epochs + 1):
        t0 = time.monotonic()
        model.train()
        order = torch.tensor(list(torch.utils.data.WeightedRandomSampler(
            weights, size, replacement=True, generator=gen)))
        tot_loss, preds, ys = 0.0, [], []
        for i in range(0, size, args.batch):
            idx = order[i:i + args.batch]
            xr, yb = x_all[idx], y_all[idx]
            if one_way > 0:
                xr = one_way_copies(xr, yb, one_way, oth, gen)
            if swap > 0:
                xr = swapped_copies(xr, swap, gen)
            xb = to_input(xr)
            logits = model(xb)
            loss = lossf(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot_loss += loss.item() * len(idx)
            preds.append(logits.argmax(1).numpy())
            ys.append(yb.numpy())
        tr = metrics.report(np.concatenate(ys), np.concatenate(preds), CLASSES)
        h = {"epoch": epoch, "train_loss": tot_loss / size, "train_acc": tr["accuracy"],
             "train_f1": tr["macro_f1"], "seconds": time.monotonic() - t0}
        msg = "%s epoch %d/%d: loss %.4f acc %.1f%% F1 %.1f%%" % (
            tag, epoch, epochs, h["train_loss"], 100 * h["train_acc"], 100 * h["train_f1"])
        if val is not None and len(val):
            with torch.no_grad():
                model.eval()
                vl = np.concatenate([model(to_input(torch.from_numpy(val.pics[j:j + 512])))
                                     .numpy() for j in range(0, len(val), 512)])
            vr = metrics.report(val.y, vl.argmax(1), CLASSES)
            h.update(val_loss=float(lossf(torch.from_numpy(vl), torch.from_numpy(val.y))),
                     val_acc=vr["accuracy"], val_f1=vr["macro_f1"])
            msg += " | val loss %.4f acc %.1f%% F1 %.1f%%" % (
                h["val_loss"], 100 * h["val_acc"], 100 * h["val_f1"])
            if vr["macro_f1"] > best_f1:
                best_f1, best = vr["macro_f1"], copy.deepcopy(model.state_dict())
                h["best"] = True
        else:
            best = copy.deepcopy(model.state_dict())
        log(msg + " (%.1fs)" % h["seconds"])
        if history is not None:
            history.append(h)
    return best


def baseline(train, sets, args, log):
    """HistGradientBoosting on the flattened input-transformed pictures."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    def feats(s):
        return to_input(torch.from_numpy(s.pics)).reshape(len(s), -1).numpy()

    idx = np.arange(len(train))
    if args.baseline_max and len(train) > args.baseline_max:
        idx = data.balanced_subset(train.y, args.baseline_max // len(CLASSES), args.seed)
    t0 = time.monotonic()
    clf = HistGradientBoostingClassifier(max_iter=args.baseline_iter, class_weight="balanced",
                                         early_stopping=False, random_state=args.seed)
    clf.fit(feats(train.subset(idx)), train.y[idx])
    log("baseline: HistGradientBoosting, %d iterations, %d training pictures, %.1fs"
        % (args.baseline_iter, len(idx), time.monotonic() - t0))
    out = {}
    for name, s in sets.items():
        # decision scores in class-index order (classes absent from training: -inf)
        proba = np.full((len(s), len(CLASSES)), -np.inf)
        if len(s):
            proba[:, clf.classes_] = clf.predict_proba(feats(s))
        out[name] = evaluate(proba, s)
        log("baseline %-13s %s" % (name, summary(out[name])))
    return out, {"model": "HistGradientBoostingClassifier", "max_iter": args.baseline_iter,
                 "class_weight": "balanced", "train_pictures": int(len(idx))}


def quantize_and_export(net, train, val, sets, args, log):
    """PTQ (+ QAT when needed), int8ref evaluation, model file, golden vectors."""
    from flowpic_model import export, quantize

    calib_idx = data.balanced_subset(train.y, max(1, args.calib_pics // len(CLASSES)),
                                     args.seed + 1)
    calib = [to_input(torch.from_numpy(train.pics[calib_idx[i:i + 256]]))
             for i in range(0, len(calib_idx), 256)]
    pct = None if args.calib in ("max", "search") else float(args.calib)
    window_ns = int(round(args.window * 1e9))
    meta = dict(name=args.name or "flowpic-" + args.net, version=args.version,
                classes=CLASSES, direction=args.direction, window_ns=window_ns)
    scales = quantize.calibrate(net, calib, pct)
    if args.calib == "search":
        scales = quantize.search_scales(net, calib, scales, log=log, tol=args.calib_tol)
    m = quantize.build_model(net, scales, **meta)
    # The decision set: validation (from training sessions), else the calibration pictures.
    dec = val if val is not None and len(val) else train.subset(calib_idx, "calibration")
    ref = metrics.report(dec.y, predict(net, dec.pics).argmax(1), CLASSES)["macro_f1"]
    got = metrics.report(dec.y, quantize.int8_logits(m, dec.pics).argmax(1), CLASSES)["macro_f1"]
    info = {"calibration": {"pictures": int(len(calib_idx)), "method": args.calib},
            "decision_set": dec.name, "ptq": {"fp32_macro_f1": ref, "int8_macro_f1": got},
            "qat": None}
    log("int8 PTQ on %s: macro-F1 fp32 %.2f%% int8 %.2f%%" % (dec.name, 100 * ref, 100 * got))
    if args.quantize == "qat" or (args.quantize == "auto" and ref - got > args.qat_threshold):
        qnet = copy.deepcopy(net)
        sim = quantize.QuantSim(qnet, scales)
        best = train_epochs(sim, qnet.parameters(), train, args, log, args.qat_epochs,
                            args.qat_lr, val, tag="qat")
        sim.load_state_dict(best)
        m2 = quantize.build_model(qnet, scales, **meta)
        got2 = metrics.report(dec.y, quantize.int8_logits(m2, dec.pics).argmax(1),
                              CLASSES)["macro_f1"]
        # auto keeps the fine-tuned model only if it is better on the decision set
        kept = args.quantize == "qat" or got2 > got
        info["qat"] = {"epochs": args.qat_epochs, "lr": args.qat_lr, "int8_macro_f1": got2,
                       "kept": kept}
        log("int8 after QAT on %s: macro-F1 %.2f%% (%s)" % (
            dec.name, 100 * got2, "kept" if kept else "PTQ kept: QAT did not help"))
        if kept:
            m = m2
            torch.save({"state_dict": qnet.state_dict(), "act_scales": scales},
                       os.path.join(args.out, "model_qat.pt"))
    path = os.path.join(args.out, "model.fpcnn")
    info["model_file"] = {"path": "model.fpcnn", "bytes": export.save(m, path),
                          "name": m.name, "version": m.version,
                          "out_scales": [l.out_scale for l in m.layers]}
    results, golden = {}, []
    rng = np.random.default_rng(args.seed)
    per_set = max(1, args.golden // max(1, len(sets)))
    for name, s in sets.items():
        if args.int8_max and len(s) > args.int8_max:
            s = s.subset(np.sort(rng.choice(len(s), args.int8_max, replace=False)))
        q = quantize.int8_logits(m, s.pics)
        results[name] = r = evaluate(q.astype(np.float64), s)
        f = predict(net, s.pics)
        r["pictures_evaluated"] = len(s)
        r["agreement_with_fp32"] = float((q.argmax(1) == f.argmax(1)).mean()) if len(s) else None
        ref = evaluate(f, s)  # fp32 on the same pictures
        for k in ("macro_f1", "video_recall", "background_as_video"):
            if r.get(k) is not None and ref.get(k) is not None:
                r[k + "_minus_fp32"] = r[k] - ref[k]
        log("int8     %-13s %s; agrees with fp32 on %.1f%%"
            % (name, summary(r), 100 * (r["agreement_with_fp32"] or 0)))
        golden.append(s.pics[rng.choice(len(s), min(len(s), per_set), replace=False)])
    golden.append(train.pics[calib_idx[:max(0, args.golden - sum(map(len, golden)))]])
    gpics = np.concatenate(golden)
    gpath = os.path.join(args.out, "golden.bin")
    export.write_golden(gpath, m, gpics)
    info["golden"] = {"path": "golden.bin", "pictures": int(len(gpics))}
    driver = args.c_golden or export.find_c_golden(ROOT)
    if driver:
        info["c_golden"] = export.run_c_golden(driver, path, gpath)
        log("C engine on golden.bin (%s): %s" % (driver, "all logits equal"
                                                 if info["c_golden"]["ok"] else "FAILED: "
                                                 + info["c_golden"]["output"][-300:]))
    return results, info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arrays", required=True, help="lab arrays folder (lab.py arrays)")
    ap.add_argument("--requet", help="Requet arrays folder (model/requet.py)")
    ap.add_argument("--requet-train", metavar="REGEX",
                    help="Requet captures whose name matches REGEX lend their labeled video "
                    "pictures to training (class video); only the other captures are "
                    "evaluated (default: none trained on, all held out)")
    ap.add_argument("--extra", nargs="*", default=[], metavar="DIR",
                    help="more labeled arrays in the lab format (model/realarrays.py, or "
                    "another lab.py arrays folder): DIR/train.npy/.csv join the training "
                    "pictures; DIR/dev.npy/.csv, when present, is evaluated as <DIR>_dev")
    ap.add_argument("--other", action="store_true",
                    help="a sixth class 'other' (none of the five: background protocols, "
                    "control flows); without it, pictures labeled other are left out")
    ap.add_argument("--out", required=True, help="run folder")
    ap.add_argument("--net", default="lenet32", choices=sorted(nets.NETS))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--dropout", action="store_true", help="dropout before the first dense "
                    "layers (the flowpic1500 net always has the paper's)")
    ap.add_argument("--one-way-frac", type=float, default=0.0, metavar="F",
                    help="split pictures: this fraction of the class pictures drawn for "
                    "training (never 'other', never validation or held-out sets) replaced by "
                    "a one-direction capture of them, half (ch0, 0), half (ch1 moved to "
                    "ch0, 0) (default 0: none)")
    ap.add_argument("--swap-frac", type=float, default=0.0, metavar="F",
                    help="split pictures: this fraction of the pictures drawn for training "
                    "(any class) with their two channels exchanged, as a capture that began "
                    "mid-flow and took the responder for the initiator (default 0: none); "
                    "the run also reports validation_swapped, every validation picture so")
    ap.add_argument("--other-weight", type=float, default=1.0, metavar="W",
                    help="with --other: draw 'other' pictures W times as often as the "
                    "class-balanced sampler would (default 1)")
    ap.add_argument("--epoch-size", type=int, help="pictures drawn per epoch (default: as many "
                    "as the training set has)")
    ap.add_argument("--val-frac", type=float, default=0.15,
                    help="fraction of each class's training sessions held for validation")
    ap.add_argument("--min-samples", type=int, default=1,
                    help="only blocks with at least this many packets (all sets)")
    ap.add_argument("--train-min-samples", type=int, default=0,
                    help="train (and validate) only on blocks with at least this many packets; "
                    "held-out sets keep every block and are also evaluated on these blocks "
                    "alone as <set>_geN (the blocks that vote with --min-block-packets N)")
    ap.add_argument("--complete-only", action="store_true", help="only complete blocks (all sets)")
    ap.add_argument("--direction", choices=["both", "fwd", "rev", "split"],
                    help="what the arrays hold (default: split for 2-channel arrays, else both)")
    ap.add_argument("--window", type=float, default=60, help="the arrays' window in seconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--baseline", choices=["hgb", "none"], default="hgb")
    ap.add_argument("--baseline-iter", type=int, default=100)
    ap.add_argument("--baseline-max", type=int, default=20000,
                    help="at most this many (class-balanced) training pictures for the baseline")
    ap.add_argument("--quantize", choices=["auto", "ptq", "qat", "none"], default="auto",
                    help="auto: PTQ, then QAT if PTQ loses more than --qat-threshold")
    ap.add_argument("--calib", default="search", help="activation calibration: search "
                    "(from the largest value down, per layer, the scale whose int8 result "
                    "agrees most with fp32 on the calibration pictures), max, or a percentile "
                    "of |activation| such as 99.99")
    ap.add_argument("--calib-pics", type=int, default=1000)
    ap.add_argument("--calib-tol", type=float, default=0.0,
                    help="with --calib search: take the largest scale whose agreement is "
                    "within this of the best (e.g. 0.005: less clipping of dense pictures)")
    ap.add_argument("--qat-threshold", type=float, default=0.01)
    ap.add_argument("--qat-epochs", type=int, default=3)
    ap.add_argument("--qat-lr", type=float, default=1e-4)
    ap.add_argument("--int8-max", type=int, default=0,
                    help="int8-evaluate at most this many pictures per set (0: all)")
    ap.add_argument("--golden", type=int, default=64, help="golden vectors to write")
    ap.add_argument("--c-golden", help="cnn_golden driver (default: build*/tests/unit/cnn_golden)")
    ap.add_argument("--name", help="model name in the file (default flowpic-NET)")
    ap.add_argument("--version", default=time.strftime("%Y%m%d-%H%M%S"))
    args = ap.parse_args()
    for flag in ("one_way_frac", "swap_frac"):
        if not 0.0 <= getattr(args, flag) <= 1.0:
            ap.error("--%s %g: give a fraction from 0 to 1" % (flag.replace("_", "-"),
                                                                 getattr(args, flag)))
    global CLASSES
    if args.other:
        CLASSES = tuple(CLASSES) + ("other",)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    log = Log(os.path.join(args.out, "out.log"))
    log("train.py " + " ".join(sys.argv[1:]))
    t_start = time.monotonic()

    load = dict(min_samples=args.min_samples, complete_only=args.complete_only,
                classes=CLASSES, drop_unknown=True)
    full = data.load_split(args.arrays, "train", **load)
    if full is None or not len(full):
        sys.exit("train.py: no training pictures in %s/train.npy" % args.arrays)
    held = {n: s for n in ("test_session", "test_profile")
            if (s := data.load_split(args.arrays, n, **load)) is not None}
    if args.other:
        # the lab's held-out sets stay the five classes' flows (comparable with
        # 5-class models); their 'other' flows (control) are a set of their own
        oth = CLASSES.index("other")
        parts = []
        for n in list(held):
            s = held[n]
            o = s.subset(np.flatnonzero(s.y == oth), "lab_other")
            if len(o):
                parts.append(o)
            held[n] = s.subset(np.flatnonzero(s.y != oth))
        if parts:
            lab_other = parts[0]
            for o in parts[1:]:
                lab_other = data.concat(lab_other, o)
            held["lab_other"] = lab_other
    for d in args.extra:
        ex = data.load_split(d, "train", **load)
        if ex is not None and len(ex):
            if ex.pics.shape[1:] != full.pics.shape[1:]:
                sys.exit("train.py: %s: pictures %s, the lab's %s" % (
                    d, ex.pics.shape[1:], full.pics.shape[1:]))
            full = data.concat(full, ex)
        dv = data.load_split(d, "dev", **load)
        if dv is not None and len(dv):
            dv.name = os.path.basename(os.path.normpath(d)) + "_dev"
            held[dv.name] = dv
    if args.requet:
        rq = data.load_requet(args.requet, classes=CLASSES, min_samples=args.min_samples,
                              complete_only=args.complete_only)
        with open(os.path.join(args.requet, "requet.json")) as f:
            rmeta = json.load(f)
        if rmeta["window"] != args.window or (rmeta["direction"] == "split") != \
                (full.channels == 2) or rmeta["res"] != full.res:
            sys.exit("train.py: Requet arrays (res %s, window %s, direction %s) differ from the "
                     "lab arrays (res %d, window %s, %d channels)" % (
                         rmeta["res"], rmeta["window"], rmeta["direction"], full.res,
                         args.window, full.channels))
        if args.requet_train:
            rq_train, rq = data.split_requet(rq, args.requet_train)
            if not len(rq_train) or not len(rq):
                sys.exit("train.py: --requet-train %r leaves %d captures' pictures to train on "
                         "and %d to evaluate: both must be non-empty"
                         % (args.requet_train, len(rq_train), len(rq)))
            full = data.concat(full, rq_train)
        held["requet"] = rq
    args.direction = args.direction or ("split" if full.channels == 2 else "both")
    if (args.direction == "split") != (full.channels == 2):
        sys.exit("train.py: --direction %s but the arrays have %d channel(s)"
                 % (args.direction, full.channels))
    net = nets.build(args.net, full.channels, len(CLASSES),
                     dropout=None if args.net == "flowpic1500" else args.dropout)
    if net.res != full.res:
        sys.exit("train.py: %s takes %dx%d pictures, the arrays are %dx%d (lab.py arrays "
                 "--res %d)" % (args.net, net.res, net.res, full.res, full.res, net.res))
    if args.train_min_samples:
        n = args.train_min_samples
        full = full.subset([i for i, m in enumerate(full.meta) if int(m["samples"]) >= n])
        for name, s in list(held.items()):
            if name == "requet":     # its report is by video recall, not per class
                continue
            held[name + "_ge%d" % n] = s.subset(
                [i for i, m in enumerate(s.meta) if int(m["samples"]) >= n], name + "_ge%d" % n)
    tr_idx, va_idx = data.carve_validation(full, args.val_frac, args.seed)
    train, val = full.subset(tr_idx, "train"), full.subset(va_idx, "validation")
    cost = nets.cost(net)
    log("%s: %d parameters, %.2f M multiply-adds per picture, %d input channel(s)"
        % (args.net, cost["params"], cost["macs"] / 1e6, full.channels))
    for s in [train, val] + list(held.values()):
        d = data.describe(s, CLASSES)
        log("%-13s %6d pictures  %s" % (s.name, d["pictures"], ", ".join(
            "%s %d/%d/%d" % (k, v["pictures"], v["flows"], v["sessions"])
            for k, v in d["per_class"].items())))
    log("(per class: pictures/flows/sessions)")

    history = []
    best = train_epochs(net, net.parameters(), train, args, log, args.epochs, args.lr, val,
                        history=history)
    net.load_state_dict(best)
    torch.save({"net": args.net, "in_channels": full.channels, "res": net.res,
                "classes": list(CLASSES), "direction": args.direction, "window": args.window,
                "input_lut": nets.INPUT_LUT.tolist(), "input_scale": nets.INPUT_SCALE,
                "state_dict": net.state_dict()}, os.path.join(args.out, "model.pt"))
    for key, title in (("acc", "accuracy"), ("f1", "macro-F1"), ("loss", "loss")):
        metrics.plot_curves(history, key, os.path.join(args.out, key + ".png"),
                            "%s per epoch (%s)" % (title, args.net))

    sets = ({"validation": val} if len(val) else {}) | held
    if len(val) and val.channels == 2:
        # Mid-flow captures: every validation picture with its directions exchanged.
        sets["validation_swapped"] = data.Split("validation_swapped", val.pics[:, ::-1].copy(),
                                                val.y, val.meta)

    fp32 = {}
    for name, s in sets.items():
        fp32[name] = evaluate(predict(net, s.pics), s)
        log("fp32     %-13s %s" % (name, summary(fp32[name])))

    base, base_info = ({}, None)
    if args.baseline == "hgb":
        base, base_info = baseline(train, sets, args, log)

    int8, qinfo = ({}, None)
    if args.quantize != "none":
        int8, qinfo = quantize_and_export(net, train, val, sets, args, log)

    for name, s in sets.items():
        for tag, res in (("", fp32), ("_int8", int8), ("_baseline", base)):
            if name not in res:
                continue
            r = res[name]
            if name == "requet":
                cm = [[r["video_predicted"][c] for c in CLASSES],
                      [r["background_predicted"][c] for c in CLASSES]]
                rows = ["video", "background"]
            else:
                cm, rows = r["confusion"], list(CLASSES)
            metrics.plot_confusion(cm, rows, CLASSES,
                                   os.path.join(args.out, "cm_%s%s.png" % (name, tag)),
                                   "%s %s" % (name, {"": "fp32", "_int8": "int8",
                                                     "_baseline": "baseline"}[tag]))

    out = {"net": args.net, "params": cost["params"], "macs": cost["macs"],
           "args": {k: v for k, v in vars(args).items()},
           "data": {s.name: data.describe(s, CLASSES) for s in [train, val] + list(held.values())},
           "history": history, "fp32": fp32, "int8": int8, "baseline": base,
           "baseline_info": base_info, "quantization": qinfo,
           "seconds": time.monotonic() - t_start}
    if int8:
        out["int8_within_1pt"] = all(abs(r.get("macro_f1_minus_fp32", 0)) <= 0.01
                                     for r in int8.values())
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(out, f, indent=1)
    log("wrote %s (%.0fs)" % (os.path.join(args.out, "metrics.json"), out["seconds"]))


if __name__ == "__main__":
    main()
