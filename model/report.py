#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Write the accuracy report (markdown) from model/train.py run folders.

  model/report.py --out docs/model-accuracy.md --img docs/img/model \\
      NAME=RUNDIR [NAME=RUNDIR ...]

Every number comes from each run's metrics.json; the confusion-matrix images
of each run are copied to --img/NAME/. The first run is the one described in
detail (the default model); the others get the summary rows and their own
per-class tables.
"""
import argparse
import json
import os
import shutil

SETS = (("test_profile", "held-out network profiles"),
        ("test_session", "held-out sessions"),
        ("validation", "validation (training sessions set aside; picks the epoch)"))
KINDS = (("fp32", "fp32"), ("int8", "int8"), ("baseline", "baseline (HGB)"))


def pct(v):
    return "-" if v is None else "%.1f" % (100 * v)


def load(path):
    with open(os.path.join(path, "metrics.json")) as f:
        return json.load(f)


def describe_run(name, m):
    a = m["args"]
    train = m["data"]["train"]
    return ("`%s`: %s, %d parameters, %.2f M multiply-adds, window %s s, direction %s, %d "
            "training pictures; trained with `%s`" % (
                name, m["net"], m["params"], m["macs"] / 1e6, a["window"], a["direction"],
                train["pictures"], "train.py " + " ".join(
                    "--%s %s" % (k.replace("_", "-"), v) for k, v in sorted(a.items())
                    if v not in (None, False, 0, 0.0) and k in (
                        "net", "epochs", "window", "direction", "requet_train", "quantize",
                        "calib_tol", "seed"))))


def summary_table(runs):
    out = ["| run | set | fp32 macro-F1 | int8 macro-F1 | baseline macro-F1 | "
           "int8 accuracy | int8 per-flow accuracy |", "|---|---|---|---|---|---|---|"]
    for name, m in runs:
        for key, _ in SETS[:2]:
            if key not in m["fp32"]:
                continue
            r = {k: m[k].get(key) for k, _ in KINDS}
            i8 = r["int8"] or {}
            out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                name, key, pct(r["fp32"]["macro_f1"]),
                pct(i8.get("macro_f1")), pct((r["baseline"] or {}).get("macro_f1")),
                pct(i8.get("accuracy")), pct((i8.get("per_flow") or {}).get("accuracy"))))
    return out


def requet_table(runs):
    out = ["| run | Requet captures held out | engine | video recall (blocks) | "
           "video recall (flows) | background blocks called video | background flows "
           "called video |", "|---|---|---|---|---|---|---|"]
    for name, m in runs:
        if "requet" not in m["fp32"]:
            continue
        n = max(v["sessions"] for v in m["data"]["requet"]["per_class"].values())
        held = ("%d (none trained on)" % n if not m["args"].get("requet_train") else
                "%d: those not matching `%s`" % (n, m["args"]["requet_train"]))
        for k, label in KINDS:
            r = m[k].get("requet")
            if r:
                out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                    name, held, label, pct(r["video_recall"]), pct(r["video_flow_recall"]),
                    pct(r["background_as_video"]), pct(r["background_flows_as_video"])))
    return out


def per_class(m, key):
    classes = m["fp32"][key]["classes"]
    out = ["| class | support | " + " | ".join(
        "%s P / R / F1" % label for k, label in KINDS if key in m[k]) + " |",
        "|---|---|" + "---|" * sum(key in m[k] for k, _ in KINDS)]
    for c in classes:
        cells = []
        for k, _ in KINDS:
            if key not in m[k]:
                continue
            pc = m[k][key]["per_class"][c]
            cells.append("%s / %s / %s" % (pct(pc["precision"]), pct(pc["recall"]),
                                           pct(pc["f1"])))
        out.append("| %s | %d | %s |" % (c, m["fp32"][key]["per_class"][c]["support"],
                                         " | ".join(cells)))
    return out


def confusion(m, key, kind):
    r = m[kind][key]
    classes = r["classes"]
    out = ["| true \\ predicted | " + " | ".join(classes) + " |",
           "|---|" + "---|" * len(classes)]
    for c, row in zip(classes, r["confusion"]):
        out.append("| %s | %s |" % (c, " | ".join(str(v) for v in row)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="NAME=RUNDIR")
    ap.add_argument("--out", required=True)
    ap.add_argument("--img", required=True, help="folder for the confusion-matrix images")
    ap.add_argument("--title", default="Model accuracy")
    args = ap.parse_args()
    runs, dirs = [], {}
    for spec in args.runs:
        name, _, path = spec.partition("=")
        runs.append((name, load(path)))
        dirs[name] = path
    rel_img = os.path.relpath(args.img, os.path.dirname(os.path.abspath(args.out)))
    lines = ["# " + args.title, "",
             "Generated by `model/report.py` from the runs' `metrics.json`; do not edit by hand.",
             "Every number is on data the model never trained on unless the set is called "
             "validation.", "", "## Runs", ""]
    lines += ["- " + describe_run(n, m) for n, m in runs]
    lines += ["", "## Held-out lab sets (blocks)", ""] + summary_table(runs)
    lines += ["", "## Real captures: Requet (YouTube, labeled video flows and background)", ""]
    lines += requet_table(runs)
    for name, m in runs:
        lines += ["", "## %s" % name, ""]
        q = m.get("quantization") or {}
        if q:
            lines += ["int8: %s." % ", ".join("%s %s" % (k, v) for k, v in sorted(q.items())
                                               if not isinstance(v, (list, dict))), ""]
        for key, title in SETS:
            if key not in m["fp32"]:
                continue
            lines += ["### %s: %s" % (key, title), ""] + per_class(m, key)
            if key != "validation" and key in m["int8"]:
                lines += ["", "int8 confusion (blocks):", ""] + confusion(m, key, "int8")
            lines += [""]
        os.makedirs(os.path.join(args.img, name), exist_ok=True)
        pngs = sorted(f for f in os.listdir(dirs[name]) if f.endswith(".png"))
        for f in pngs:
            shutil.copy(os.path.join(dirs[name], f), os.path.join(args.img, name, f))
        lines += ["Images: " + ", ".join("[%s](%s/%s/%s)" % (f[:-4], rel_img, name, f)
                                         for f in pngs), ""]
    with open(args.out, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")


if __name__ == "__main__":
    main()
