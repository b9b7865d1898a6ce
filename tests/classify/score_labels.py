#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Compare `flowpic classify --json` verdicts with lab labels.

    flowpic classify --json data/lab-mix.pcap.xz | tests/classify/score_labels.py data/lab-mix.labels.jsonl

A flow is labeled by its session's selectors (model/lab/labkit/labels.py:
server address and port); flows of a class label (voip, video, ...) are
scored: correct, another class, or unknown. Prints one table and a total;
--json prints the numbers as one object.
"""
import collections
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../model/lab"))
from labkit.labels import label_flow  # noqa: E402


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    as_json = "--json" in sys.argv
    if len(args) != 1:
        sys.exit(__doc__.strip())
    sessions = [json.loads(l) for l in open(args[0])]
    classes = sorted({s["class"] for s in sessions})
    rows = collections.OrderedDict((c, collections.Counter()) for c in classes)
    for line in sys.stdin:
        v = json.loads(line)
        if v.get("type") != "flow":
            continue
        label = "unlabeled"
        for s in sessions:
            if v["src"] == s["client"] or v["dst"] == s["client"]:
                label = label_flow(v, s)
                break
        if label not in rows:
            continue
        r = rows[label]
        r["flows"] += 1
        r["packets"] += v["packets"]
        outcome = "correct" if v["class"] == label else "unknown" if v["class"] == "unknown" \
            else "wrong"
        r[outcome] += 1
        r[outcome + "_packets"] += v["packets"]
        r["early"] += v["early"]
    total = collections.Counter()
    for r in rows.values():
        total.update(r)
    if as_json:
        print(json.dumps({"per_class": rows, "total": total}))
        return
    print("labeled flows of the lab sessions: verdict against the label")
    print(f"{'label':<14} {'flows':>5} {'correct':>7} {'other':>5} {'unknown':>7}   "
          f"{'packets correct':>15}")
    for c, r in list(rows.items()) + [("all", total)]:
        share = r["correct_packets"] / r["packets"] if r["packets"] else 0
        print(f"{c:<14} {r['flows']:>5} {r['correct']:>7} {r['wrong']:>5} {r['unknown']:>7}   "
              f"{100 * share:>14.1f}%")


if __name__ == "__main__":
    main()
