#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""`flowpic classify` end to end on held-out lab captures.

    test_classify.py --flowpic BIN --api BIN --root SRC [--tmp DIR]

- each API (classifier_file, classifier_pcap_file, classifier_csv_file, and
  classifier_samples on every flow's own packets) gives the verdicts the CLI
  gives, byte for byte in JSON (differential);
- every block verdict's int8 logits equal the Python int8 reference
  (model/flowpic_model/int8ref.py) on the same picture written by
  `flowpic export` (so the verdicts are the model report's);
- each flow's verdict follows the documented rule from its block verdicts
  (blocks of too few packets do not vote, votes of complete blocks, 'other'
  votes, vote ratio, confidence, early, the reason), at the default minimum
  evidence and with every block voting;
- the flow fields are exactly those of `flowpic flows --json`;
- bad files, bad CSV rows, a cut capture, a truncated or corrupt --model: one
  clear line, the rest still classified, the documented exit status;
- filters, --csv, the closing summary.
"""
import argparse
import csv
import io
import json
import lzma
import os
import re
import subprocess
import sys
import tempfile

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL: " + what, file=sys.stderr)
    return cond


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def jlines(text, kind):
    """JSON lines of one kind: 'flow', 'block', 'summary' (a file's), 'classes' (the totals)."""
    out = []
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        k = d["type"]
        if k == "summary" and "file" not in d:
            k = "classes"
        if k == kind:
            out.append(d)
    return out


def flow_and_block_lines(text):
    return [l for l in text.splitlines() if l.endswith(('"type":"flow"}', '"type":"block"}'))]


def differential(a, inputs, tmp):
    """CLI (run_file + incremental API) against classifier_*_file."""
    for mode, files in inputs:
        cli = run([a.flowpic, "classify", "-q", "--json", "--blocks"] + files)
        api = run([a.api, "--blocks", mode] + files)
        check(cli.returncode == 0 and api.returncode == 0,
              f"{mode} {files}: exit {cli.returncode} / {api.returncode}: {cli.stderr}{api.stderr}")
        c, p = flow_and_block_lines(cli.stdout), flow_and_block_lines(api.stdout)
        check(len(c) > 0, f"{files}: no verdicts")
        check(c == p, f"{mode} {files}: CLI and API verdicts differ "
              f"({len(c)} / {len(p)} lines; first difference: "
              f"{next((x, y) for x, y in zip(c + [''], p + [''])) if c != p else ''})")
        print(f"differential {mode:5} {' '.join(os.path.basename(f) for f in files)}: "
              f"{len(jlines(cli.stdout, 'flow'))} flows, {len(jlines(cli.stdout, 'block'))} "
              "blocks, same")
    # neither the verdict cache nor the worker thread changes a byte
    f = inputs[0][1][0]
    plain = run([a.flowpic, "classify", "-q", "--json", "--blocks", "--cache", "0",
                 "--workers", "0", f])
    fast = run([a.flowpic, "classify", "-q", "--json", "--blocks", f])
    check(plain.returncode == 0 and plain.stdout.replace('"blocks_cached":0', "") ==
          re.sub(r'"blocks_cached":[0-9]+', "", fast.stdout),
          "--cache 0 --workers 0 gives other verdicts than the defaults")
    print(f"cache and worker thread: {os.path.basename(f)}: the same output as --cache 0 --workers 0")
    # the seed's Classifier on each flow's own packets
    for f in [inputs[0][1][0]]:
        r = run([a.api, "samples", f])
        n = len(r.stdout.splitlines())
        check(r.returncode == 0 and n > 10,
              f"samples API on {f}: exit {r.returncode}, {n} flows:\n{r.stdout}{r.stderr}")
        print(f"differential samples {os.path.basename(f)}: {n} flows, same")


def int8_reference(a, capture, tmp):
    """C block verdicts == int8ref on the pictures flowpic export writes."""
    sys.path.insert(0, os.path.join(a.root, "model"))
    import numpy as np
    from flowpic_model import int8ref, modelfile

    m = modelfile.load(os.path.join(a.root, "model/default.fpcnn"))
    prefix = os.path.join(tmp, "pics")
    win = "%.9f" % (m.window_ns / 1e9)
    r = run([a.flowpic, "export", "-q", capture, "--format", "npy", "--res", str(m.res),
             "--window", win, "--direction", m.direction, "-o", prefix])
    check(r.returncode == 0, f"export: {r.stderr}")
    pics = np.load(prefix + ".npy")
    with open(prefix + ".index.csv") as f:
        index = list(csv.DictReader(f))
    cli = run([a.flowpic, "classify", "-q", "--json", "--blocks", capture])
    blocks = {(b["flow_id"], b["block_index"]): b for b in jlines(cli.stdout, "block")}
    check(len(blocks) == len(index) == len(pics),
          f"int8ref: {len(blocks)} block verdicts, {len(index)} exported pictures")
    scale = m.layers[-1].out_scale
    bad = 0
    for row, pic in zip(index, pics):
        ref = int8ref.run(m, pic)
        b = blocks.get((int(row["flow"]), int(row["block"])))
        if b is None or list(map(int, ref)) != b["logits"]:
            bad += 1
            continue
        prob = int8ref.softmax(int8ref.logits_float(m, ref))
        cls = m.classes[int(np.argmax(ref))]
        # the model's class is "top"; "class" is it unless the block is sparse
        if cls != b["top"] or b["class"] != (cls if b["reason"] == "ok" else "unknown") or any(abs(prob[i] - b["probs"][c]) > 6e-5
                                     for i, c in enumerate(m.classes)):
            bad += 1
        if (row["complete"] == "1") == b["early"]:
            bad += 1
    check(bad == 0, f"int8ref: {bad} of {len(index)} blocks differ from the Python reference")
    print(f"int8ref: {len(index)} blocks of {os.path.basename(capture)}: logits, class and "
          "probabilities as the Python int8 reference")


def rule_verdict(bl, names, min_packets, ratio, min_conf):
    """(class, reason, early, votes, voting blocks, confidence) of a flow's blocks."""
    def votes_in(blocks):
        return [b for b in blocks if b["samples"] >= min_packets]
    voting = votes_in(b for b in bl if not b["early"]) or votes_in(bl)
    if not voting:
        return "unknown", "sparse", bool(bl) and all(b["early"] for b in bl), \
            {c: 0 for c in names}, 0, 0
    early = all(b["early"] for b in voting)
    votes = {c: sum(b["class"] == c for b in voting) for c in names}
    other = sum(b["reason"] == "other" for b in voting)
    psum = {c: sum(b["probs"][c] for b in voting) for c in names}
    order = sorted((c for c in names if c != "other"),
                   key=lambda c: (-votes[c], -psum[c], names.index(c)))
    top, second = order[0], order[1] if len(order) > 1 else None
    conf = psum[top] / len(voting)
    if 2 * other > len(voting):
        want = "other"
    elif second and votes[second] and votes[second] > ratio * votes[top]:
        want = "disagree"
    elif conf < min_conf - 1e-4:
        want = "low_confidence"
    else:
        return top, "ok", early, votes, len(voting), conf
    return "unknown", want, early, votes, len(voting), conf


def block_reason(b, min_packets, reject_prob, reject_energy):
    """The documented block reason; None when the block is too close to a
    threshold to tell from the printed 4 decimals."""
    if b["samples"] < min_packets:
        return "sparse"
    if b["top"] == "other":
        return "other"
    if abs(b["confidence"] - reject_prob) < 2e-4 or abs(b["energy"] - reject_energy) < 2e-4:
        return None
    if b["confidence"] < reject_prob or b["energy"] > reject_energy:
        return "other"
    return "ok"


def the_rule(a, capture):
    """Each flow verdict from its block verdicts, by the documented rule: at
    the default minimum evidence (20 packets), with every block voting, and
    with each rejection threshold."""
    inf = float("inf")
    for min_packets, prob, energy in ((20, 0, inf), (0, 0, inf), (0, 0.9, inf), (0, 0, -5),
                                      (5, 0.99, -9)):
        # Always explicit: a model with an 'other' class rejects below 0.6
        # unless told otherwise (checked apart below).
        args = ["--min-block-packets", str(min_packets), "--reject-prob", str(prob)]
        args += ["--reject-energy", str(energy)] if energy != inf else []
        r = run([a.flowpic, "classify", "-q", "--json", "--blocks", capture] + args)
        classes = jlines(r.stdout, "classes")[0]
        blocks, bad, n = {}, 0, 0
        flows = jlines(r.stdout, "flow")
        for b in jlines(r.stdout, "block"):
            blocks.setdefault(b["flow_id"], []).append(b)
            want = block_reason(b, min_packets, prob, energy)
            if want and b["reason"] != want:
                bad += 1
                print(f"rule {args}: block {b['flow']}/{b['index']}: {b['samples']} packets, "
                      f"reason {b['reason']}, expected {want}", file=sys.stderr)
        names = list(flows[0]["probs"])
        ratio, min_conf = 0.7, 2 / len(names) if len(names) >= 4 else 0.5
        for f in flows:
            bl = blocks.get(f["flow_id"], [])
            cls, reason, early, votes, nvoting, conf = rule_verdict(bl, names, min_packets,
                                                                    ratio, min_conf)
            n += 1
            ok = f["class"] == cls and f["reason"] == reason and f["early"] == early and \
                f["votes"] == votes and f["blocks_voting"] == nvoting and \
                f["blocks_sparse"] == sum(b["samples"] < min_packets for b in bl) and \
                abs(f["confidence"] - conf) < 5e-4
            if not ok:
                bad += 1
                print(f"rule {args}: flow {f['id']}: {f['class']} ({f['reason']}) "
                      f"early={f['early']}, expected {cls} ({reason}) early={early} "
                      f"votes={votes}", file=sys.stderr)
        check(bad == 0, f"rule {args}: {bad} of {n} verdicts do not follow the rule")
        check(classes["flows"] == n, "classes summary counts every flow")
        check(classes["blocks_sparse"] == sum(b["reason"] == "sparse"
                                              for bl in blocks.values() for b in bl) and
              classes["blocks_other"] == sum(b["reason"] == "other"
                                             for bl in blocks.values() for b in bl),
              "classes summary counts the sparse and other blocks")
        reasons = {}
        for f in flows:
            reasons[f["reason"]] = reasons.get(f["reason"], 0) + 1
        print(f"rule {' '.join(args)}: {n} flows follow the documented rule "
              f"({sum(f['early'] for f in flows)} early, reasons {reasons})")
    # The default rejection: 0.6 for a model with an 'other' class, else off.
    r = run([a.flowpic, "classify", "-q", "--json", "--blocks", capture])
    names = list(jlines(r.stdout, "flow")[0]["probs"])
    want = "0.6" if "other" in names else "0"
    r2 = run([a.flowpic, "classify", "-q", "--json", "--blocks", capture, "--reject-prob", want])
    check(r.stdout == r2.stdout, f"default rejection is --reject-prob {want} for this model")
    for bad_arg in (["--reject-prob", "2"], ["--reject-energy", "x"],
                    ["--min-block-packets", "-1"]):
        r = run([a.flowpic, "classify", "-q"] + bad_arg + [capture])
        check(r.returncode == 2, f"{bad_arg}: exit {r.returncode}")


def same_flow_fields(a, capture):
    # Blocks are counted at the model's window: flows must use the same one.
    sys.path.insert(0, os.path.join(a.root, "model"))
    from flowpic_model import modelfile
    win = "%.9f" % (modelfile.load(os.path.join(a.root, "model/default.fpcnn")).window_ns / 1e9)
    fl = jlines(run([a.flowpic, "flows", "--json", "--window", win, capture]).stdout, "flow")
    cl = jlines(run([a.flowpic, "classify", "-q", "--json", capture]).stdout, "flow")
    by_id = {f["flow_id"]: f for f in cl}
    extra = {"class", "top", "confidence", "reason", "early", "blocks_voting", "blocks_sparse",
             "votes_other", "probs", "votes"}
    ok = len(fl) == len(cl) and all(
        {k: v for k, v in by_id[f["flow_id"]].items() if k not in extra} == f for f in fl)
    check(ok, "classify --json flow fields differ from flows --json")
    check(all(set(f) - set(fl[0]) == extra for f in cl), "classify --json: the verdict fields")
    print(f"flow fields: {len(fl)} flows, the fields of `flows --json` exactly")


def bad_inputs(a, capture, tmp):
    fp = a.flowpic
    missing = os.path.join(tmp, "missing.pcap")
    r = run([fp, "classify", missing])
    check(r.returncode == 1 and missing in r.stderr and len(r.stderr.splitlines()) == 1,
          f"missing file: exit {r.returncode}, stderr {r.stderr!r}")
    garbage = os.path.join(tmp, "garbage.bin")
    with open(garbage, "wb") as f:
        f.write(bytes(range(256)) * 64)
    r = run([fp, "classify", garbage])
    check(r.returncode == 1 and "garbage.bin" in r.stderr and
          len(r.stderr.strip().splitlines()) == 1,
          f"garbage file: exit {r.returncode}, stderr {r.stderr!r}")
    # a good file with a missing one: the good one is classified, exit 1
    r = run([fp, "classify", "-q", "--json", capture, missing])
    check(r.returncode == 1 and len(jlines(r.stdout, "flow")) > 10,
          f"good + missing: exit {r.returncode}")
    # a capture cut in the middle: what was read is classified, exit 3
    raw = lzma.open(capture).read()
    cut = os.path.join(tmp, "cut.pcap")
    with open(cut, "wb") as f:
        f.write(raw[:len(raw) // 2 + 7])
    r = run([fp, "classify", "--json", cut])
    flows = jlines(r.stdout, "flow")
    summ = jlines(r.stdout, "summary")
    check(r.returncode == 3 and len(flows) > 10 and summ and summ[0]["complete"] is False
          and "cut.pcap" in r.stderr and len(r.stderr.strip().splitlines()) == 1,
          f"cut capture: exit {r.returncode}, {len(flows)} flows, stderr {r.stderr!r}")
    print(f"bad files: missing (1), garbage (1), cut capture (3, {len(flows)} flows still "
          "classified): one line each")
    # bad CSV rows: named with file:line, counted, the rest classified
    samples = os.path.join(tmp, "samples.csv")
    run([fp, "export", "-q", capture, "-o", samples])
    with open(samples) as f:
        lines = f.read().splitlines(True)
    hdr = next(i for i, l in enumerate(lines) if not l.startswith("#"))
    lines.insert(hdr + 5, "1700000000.1,17,10.0.0.1,not-a-port,10.0.0.2,53,10\n")
    lines.insert(hdr + 50, "garbage row\n")
    with open(samples, "w") as f:
        f.writelines(lines)
    r = run([fp, "classify", "--json", samples])
    summ = jlines(r.stdout, "summary")[0]
    good = jlines(run([fp, "classify", "-q", "--json", capture]).stdout, "flow")
    got = jlines(r.stdout, "flow")
    check(r.returncode == 0 and summ["skipped"]["csv_bad_line"] == 2 and
          "samples.csv:%d:" % (hdr + 6) in r.stderr and len(r.stderr.splitlines()) == 2,
          f"bad CSV rows: exit {r.returncode}, stderr {r.stderr!r}")
    check([f["class"] for f in got] == [f["class"] for f in good],
          "bad CSV rows: the other rows give the capture's verdicts")
    print(f"bad CSV rows: 2 named and counted, {len(got)} flows classified as from the capture")


def bad_models(a, capture, tmp):
    fp = a.flowpic
    src = os.path.join(a.root, "model/default.fpcnn")
    with open(src, "rb") as f:
        model = f.read()
    good = os.path.join(tmp, "copy.fpcnn")
    with open(good, "wb") as f:
        f.write(model)
    r1 = run([fp, "classify", "-q", "--json", capture])
    r2 = run([fp, "classify", "-q", "--json", "--model", good, capture])
    check(r2.returncode == 0 and flow_and_block_lines(r1.stdout) == flow_and_block_lines(r2.stdout),
          "--model with the default's file gives the embedded model's verdicts")
    for name, data in (("truncated", model[:len(model) // 3]),
                       ("corrupt", model[:200] + bytes([model[200] ^ 1]) + model[201:]),
                       ("empty", b"")):
        path = os.path.join(tmp, name + ".fpcnn")
        with open(path, "wb") as f:
            f.write(data)
        r = run([fp, "classify", "--model", path, capture])
        check(r.returncode == 1 and r.stdout == "" and len(r.stderr.splitlines()) == 1 and
              path in r.stderr, f"--model {name}: exit {r.returncode}, stderr {r.stderr!r}")
        print(f"--model {name}: refused: {r.stderr.strip()}")
    r = run([fp, "classify", "--res", "64", capture])
    check(r.returncode == 2 and "--res" in r.stderr, f"--res 64: exit {r.returncode} {r.stderr}")


def filters_and_formats(a, capture):
    fp = a.flowpic
    allf = jlines(run([fp, "classify", "-q", "--json", capture]).stdout, "flow")
    classes = {f["class"] for f in allf}
    pick = (sorted(classes - {"unknown"}) or ["unknown"])[0]
    r = run([fp, "classify", "-q", "--json", "--class", pick + ",unknown", capture])
    got = jlines(r.stdout, "flow")
    check(got and all(f["class"] in (pick, "unknown") for f in got) and
          len(got) == sum(f["class"] in (pick, "unknown") for f in allf), "--class filter")
    summ = jlines(r.stdout, "classes")[0]
    check(summ["flows"] == len(allf) and summ["shown"] == len(got),
          "summary counts every flow, and the shown ones")
    check(sum(v["flows"] for v in summ["per_class"].values()) == len(allf), "per-class sums")
    r = run([fp, "classify", "-q", "--json", "--min-packets", "1000", capture])
    got = jlines(r.stdout, "flow")
    check(got and all(f["packets"] >= 1000 for f in got) and
          len(got) == sum(f["packets"] >= 1000 for f in allf), "--min-packets filter")
    r = run([fp, "classify", "-q", "--class", "nosuch", capture])
    check(r.returncode == 2 and "nosuch" in r.stderr, "--class with an unknown name: exit 2")
    r = run([fp, "classify", "-q", "--csv", capture])
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    check(r.returncode == 0 and len(rows) == len(allf) and
          [x["class"] for x in rows] == [f["class"] for f in allf] and
          all(abs(float(x["confidence"]) - f["confidence"]) < 1e-4 for x, f in zip(rows, allf)),
          "--csv: one row per flow, as JSON")
    r = run([fp, "classify", capture])
    check(r.returncode == 0 and "# verdicts:" in r.stdout and "CLASS" in r.stdout.splitlines()[0],
          "table and summary")
    print(f"filters: --class {pick},unknown, --min-packets; --csv {len(rows)} rows; table")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowpic", required=True)
    ap.add_argument("--api", required=True)
    ap.add_argument("--root", required=True)
    a = ap.parse_args()
    mix = os.path.join(a.root, "data/lab-mix.pcap.xz")
    rel = os.path.join(a.root, "model/data/lab-v1")
    held = [json.loads(l) for l in open(os.path.join(rel, "manifest.jsonl"))]
    csvs = [os.path.join(rel, r["file"]) for r in held if r["split"] == "test_session"][:3]
    check(len(csvs) == 3, "three held-out sessions in the release")
    with tempfile.TemporaryDirectory(prefix="fpt-classify-") as tmp:
        ng = os.path.join(tmp, "lab-mix.pcapng")
        with open(ng + ".in", "wb") as f:
            f.write(lzma.open(mix).read())
        r = run(["editcap", "-F", "pcapng", ng + ".in", ng])
        check(r.returncode == 0, f"editcap: {r.stderr}")
        differential(a, [("file", [mix]), ("pcap", [ng]), ("csv", csvs),
                         ("file", [mix] + csvs[:1])], tmp)
        int8_reference(a, mix, tmp)
        the_rule(a, mix)
        same_flow_fields(a, mix)
        bad_inputs(a, mix, tmp)
        bad_models(a, mix, tmp)
        filters_and_formats(a, mix)
    if FAILS:
        print(f"{len(FAILS)} checks failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
