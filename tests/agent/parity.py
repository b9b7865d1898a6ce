#!/usr/bin/python3
"""Compare what the live agent drew with what `flowpic` draws from tcpdump's
capture of the same traffic (tests/agent/test_agent_parity.sh).

DIR holds: verdicts (the agent's JSON lines), agent.err (its counters line at
exit), samples.csv (the agent's --samples-out: every packet its flow table
took) and cap.pcap (tcpdump on the same interface).

Checks, per flow (keyed by its session, initiator first):
  1. the agent's samples are what it classified: `flowpic classify` on
     samples.csv gives the agent's block logits exactly;
  2. the same flows with the same initiator as the capture;
  3. the same packet, IP byte and payload totals per direction;
  4. every block's picture cell for cell; packets in another time bin than
     the capture's (a timestamp offset across a bin edge) are counted and
     must stay below 0.1 % of the samples;
  5. the same class for every complete block;
  6. nothing reordered in the flow table, nothing late in the merge.
It prints the table of the issue (reordered, initiators, block 0, verdicts)
and the offset between the agent's and tcpdump's timestamps.

Exit 0 when every check holds (with --expect-differences: when one fails).
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

RES, WINDOW = 32, 15


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode not in (0, 3):
        sys.exit("parity: %s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr[-500:]))
    return r.stdout


def verdict_lines(text):
    flows, blocks = {}, {}
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        o = json.loads(line)
        if o["type"] == "block":
            blocks[(o["flow_id"], o["block_index"])] = o
        elif o["type"] == "flow":
            flows[o["flow_id"]] = o
    by_key = {}
    for fid, f in flows.items():
        key = (f["proto"], f["src"], f["sport"], f["dst"], f["dport"])
        f["_blocks"] = {i: b for (bf, i), b in blocks.items() if bf == fid}
        by_key[key] = f
    return by_key


def pictures(flowpic, path, tmp, tag):
    """(session, block) -> {(channel, y, x): packets}, counts not saturated."""
    prefix = os.path.join(tmp, tag)
    run([flowpic, "export", "-q", path, "--format", "sparse", "--res", str(RES), "--window",
         str(WINDOW), "--direction", "split", "-o", prefix])
    cells = np.load(prefix + ".cells.npy")
    keys = {}
    nsamples = 0
    with open(prefix + ".index.csv") as f:
        for row in csv.DictReader(f):
            key = (row["proto"], row["src"], int(row["sport"]), row["dst"], int(row["dport"]))
            keys[int(row["pic"])] = (key, int(row["block"]))
            nsamples += int(row["samples"])
    out = {k: {} for k in keys.values()}
    out["_samples"] = nsamples
    for pic, ch, y, x, n in cells.tolist():
        pc = out[keys[pic]]
        pc[(ch, y, x)] = pc.get((ch, y, x), 0) + n
    return out


def norm_key(k):
    proto = {"6": "tcp", "17": "udp"}.get(str(k[0]), str(k[0]))
    return (proto,) + tuple(k[1:])


def samples(path):
    """Per directional 5-tuple: packet times (ns) in file order."""
    out = {}
    with open(path) as f:
        rows = (r for r in f if not r.startswith("#"))
        for r in csv.DictReader(rows):
            s, ns = r["time"].split(".")
            t = int(s) * 10**9 + int(ns.ljust(9, "0"))
            out.setdefault((r["proto"], r["src"], r["sport"], r["dst"], r["dport"]), []).append(t)
    return out


def counters(path):
    c = {}
    with open(path) as f:
        for line in f:
            if line.startswith('{"counters"'):
                c = json.loads(line)["counters"]
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowpic", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--name", default="")
    ap.add_argument("--expect-differences", action="store_true")
    a = ap.parse_args()
    d = a.dir
    problems = []

    def check(cond, what):
        if not cond:
            problems.append(what)
        return cond

    agent = verdict_lines(open(os.path.join(d, "verdicts")).read())
    cap = verdict_lines(run([a.flowpic, "classify", "--json", "--blocks", "-q",
                             os.path.join(d, "cap.pcap")]))
    replay = verdict_lines(run([a.flowpic, "classify", "--json", "--blocks", "-q",
                                os.path.join(d, "samples.csv")]))

    # 1. The samples file is the agent's own input.
    same = all(k in replay and {i: b["logits"] for i, b in f["_blocks"].items()} ==
               {i: b["logits"] for i, b in replay[k]["_blocks"].items()}
               for k, f in agent.items()) and len(replay) == len(agent)
    check(same, "the agent's samples do not reproduce its own block verdicts")

    # 2-3, 5-6: flows, initiators, totals, complete blocks' classes.
    swapped = missing = 0
    for k, f in agent.items():
        rk = (k[0], k[3], k[4], k[1], k[2])
        if k not in cap:
            if rk in cap:
                swapped += 1
                check(False, "%s: initiator swapped" % (k,))
            else:
                missing += 1
                check(False, "%s: not in the capture" % (k,))
            continue
        c = cap[k]
        for field in ("packets_fwd", "packets_rev", "bytes_fwd", "bytes_rev", "payload_bytes"):
            check(f[field] == c[field], "%s: %s %s live, %s capture" % (k, field, f[field],
                                                                       c[field]))
        for i, b in f["_blocks"].items():
            cb = c["_blocks"].get(i)
            if cb is None:
                check(False, "%s block %d: not in the capture" % (k, i))
            elif not b["early"] and not cb["early"]:
                check(b["class"] == cb["class"], "%s block %d: %s live, %s capture" %
                      (k, i, b["class"], cb["class"]))
        check(f.get("reordered", 0) == 0, "%s: %s packets reordered" % (k, f.get("reordered")))
    check(all(k in agent or (k[0], k[3], k[4], k[1], k[2]) in agent for k in cap),
          "flows in the capture the agent did not report")
    cnt = counters(os.path.join(d, "agent.err"))
    late = cnt.get("capture_merge_late", 0)
    check(late == 0, "%d packets late in the merge" % late)
    for name in ("capture_lost_total",):
        check(cnt.get(name, 0) == 0, "%s = %s" % (name, cnt.get(name)))

    # 4. Pictures cell for cell.
    with tempfile.TemporaryDirectory() as tmp:
        pa = pictures(a.flowpic, os.path.join(d, "samples.csv"), tmp, "live")
        pc = pictures(a.flowpic, os.path.join(d, "cap.pcap"), tmp, "cap")
    moved = 0
    total = pc.pop("_samples")
    pa.pop("_samples")
    for key in set(pa) | set(pc):
        x = pa.get(key)
        y = pc.get(key)
        if x is None or y is None:
            check(False, "block %s only in the %s" % (key, "capture" if x is None else "agent"))
            continue
        diff = sum(abs(x.get(c, 0) - y.get(c, 0)) for c in set(x) | set(y))
        if diff:
            moved += (diff + 1) // 2
    frac = moved / total if total else 0.0
    check(frac < 0.001, "%d of %d samples (%.3f %%) in another cell" % (moved, total, 100 * frac))

    # Timestamps: the agent's against tcpdump's, packet by packet.
    sa = samples(os.path.join(d, "samples.csv"))
    with tempfile.TemporaryDirectory() as tmp:
        run([a.flowpic, "export", "-q", os.path.join(d, "cap.pcap"), "-o",
             os.path.join(tmp, "cap.csv")])
        sc = samples(os.path.join(tmp, "cap.csv"))
    offs = []
    for k, ts in sa.items():
        if k in sc and len(sc[k]) == len(ts):
            offs.extend(t - u for t, u in zip(ts, sc[k]))
    tot_pkts = sum(len(v) for v in sa.values())
    reordered = sum(f.get("reordered", 0) for f in agent.values())

    # The table, measured.
    print("%s: %d flows, %d packets live (%d in the capture)" %
          (a.name, len(agent), tot_pkts, sum(len(v) for v in sc.values())))
    print("  reordered: %d (%.2f %%), merge late: %d, merge held max: %s" %
          (reordered, 100.0 * reordered / max(tot_pkts, 1), late,
           cnt.get("capture_merge_held_max", "-")))
    for k, f in sorted(agent.items(), key=lambda kv: -kv[1]["packets"])[:4]:
        c = cap.get(k)
        b0 = f["_blocks"].get(0, {})
        cb0 = c["_blocks"].get(0, {}) if c else {}
        print("  %s %s:%s -> %s:%s  live %s / capture %s; block 0 %s %s / %s %s" %
              (k[0], k[1], k[2], k[3], k[4], f.get("class"), c.get("class") if c else "-",
               b0.get("class"), b0.get("logits"), cb0.get("class"), cb0.get("logits")))
    print("  initiator swapped: %d, flows missing: %d" % (swapped, missing))
    print("  pictures: %d of %d samples in another cell (%.4f %%)" %
          (moved, total, 100 * frac))
    if offs:
        o = np.array(offs) / 1000.0
        print("  agent - tcpdump timestamp: median %.1f us, p1 %.1f, p99 %.1f, max |%.1f| us "
              "(%d packets)" % (np.median(o), np.percentile(o, 1), np.percentile(o, 99),
                                np.abs(o).max(), len(o)))
    for p in problems[:15]:
        print("  difference: " + p)
    if len(problems) > 15:
        print("  ... %d differences in all" % len(problems))
    if a.expect_differences:
        return 0 if problems else 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
