#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Robustness test: every trace under robustness/ through `flowpic flows --json`.

The 2316 traces of the Zeek and Suricata test suites (many link types,
VLAN, tunnels, fragments, pcapng, gzip, truncated and malformed files) plus
a few inputs made here (empty, junk, header only, cut short, missing file,
a directory).  Build flowpic with -DFLOWPIC_SANITIZE=ON: then every run is
also checked by AddressSanitizer (leaks included) and UBSan.

For each input:
  - no signal, no sanitizer report on stderr, exit status 0, 1 or 3;
  - exit 1 (unreadable): one line on stderr, no summary on stdout;
  - exit 0 / 3: every stdout line is JSON, the summary is the last line,
    complete is true exactly for exit 0 and "error" is there exactly when it
    is false, records == in_flows + skipped_total, skipped_total == the sum
    of the skipped reasons, tcp + udp == in_flows + flow_table_full, and the
    flows printed add up to the summary (count, packets: records, less the
    TSO/GRO records split, plus their segments; blocks, oversize);
  - records == the packet count of `capinfos -c` (Wireshark's reader, not
    libpcap).  A file capinfos reads cleanly must be read whole (exit 0); a
    file capinfos finds damaged must be reported partial (exit 3) with the
    records capinfos got before the damage.  Known, explained differences
    are listed in KNOWN below.

Runs the files with --jobs workers (default 2); prints a table by exit status
and by skip reason, then `N passed, M failed`; exits 1 on any failure.
    /usr/bin/python3 tests/robustness/robustness.py --flowpic build/cli/flowpic \
        --data ../shared/data [--only NAME] [--jobs 2]
"""

import argparse
import collections
import concurrent.futures
import gzip
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

EXPECTED_FILES = 2316       # zeek 804 + suricata 1512 (data/README.md)
TIMEOUT = 120               # seconds for one file under ASan

SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
SAN_PATTERNS = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                          r"SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer|"
                          r"ERROR: UndefinedBehaviorSanitizer")

# Files whose outcome differs from capinfos for a reason that is not a
# flowpic bug.  Keyed by path under robustness/: (expected exit, records or
# None for "capinfos count", reason).  A listed file that behaves like the
# rule again is reported as a note, so the list does not rot silently.
KNOWN = {
    # pcapng with several interfaces whose snap lengths differ: libpcap's
    # pcapng reader refuses the file at its second interface block, before
    # any packet ("an interface has a snapshot length 8192 different from
    # the snapshot length of the first interface"); Wireshark reads it.
    "zeek/ldap_gap-data-missing.pcapng": (1, 0, "libpcap: pcapng interfaces with different "
                                          "snap lengths"),
    "zeek/ldap_modify-request.pcapng": (1, 0, "libpcap: pcapng interfaces with different "
                                        "snap lengths"),
    # Fuzzed pcap: record 1 claims 188 bytes where the next record header
    # starts after 124, so record 2's header is garbage (caplen 1409179648).
    # libpcap stops there after 1 record; Wireshark's reader guesses another
    # pcap variant from the first records and gets 2 before giving up.
    "suricata/tests_bug-6875-01_fuzz.pcap": (3, 1, "Wireshark guesses a pcap variant; "
                                             "libpcap reads 1 record, capinfos 2"),
}


def capinfos_count(path):
    """(packets, clean): Wireshark's record count and whether it read the
    whole file without an error.  packets None when capinfos read nothing."""
    r = subprocess.run(["capinfos", "-T", "-r", "-c", "-M", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, errors="replace")
    n = None
    for ln in r.stdout.splitlines():
        parts = ln.rsplit("\t", 1)
        if len(parts) == 2 and parts[1].strip().isdigit():
            n = int(parts[1])
    m = re.search(r"error occurred after reading (\d+) packets", r.stderr)
    if m:
        n = int(m.group(1))
    return n, r.returncode == 0 and n is not None


def check_output(rc, out, err):
    """The rules every run must keep.  Returns (problems, summary or None)."""
    probs = []
    if SAN_PATTERNS.search(err):
        first = next((ln for ln in err.splitlines() if SAN_PATTERNS.search(ln)), "")
        probs.append("sanitizer report: %s" % first.strip()[:200])
    if rc < 0:
        probs.append("killed by signal %d" % -rc)
        return probs, None
    if rc not in (0, 1, 3):
        probs.append("exit status %d (want 0, 1 or 3)" % rc)
        return probs, None
    if rc == 1:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        if len(lines) != 1:
            probs.append("exit 1 with %d lines on stderr (want one)" % len(lines))
        if '"type":"summary"' in out:
            probs.append("exit 1 but a summary was printed")
        return probs, None
    flows, summary = [], None
    lines = out.splitlines()
    for i, ln in enumerate(lines):
        try:
            o = json.loads(ln)
        except ValueError:
            probs.append("line %d is not JSON: %r" % (i + 1, ln[:80]))
            continue
        if o.get("type") == "summary":
            if summary is not None or i != len(lines) - 1:
                probs.append("summary not the last line, or twice")
            summary = o
        else:
            flows.append(o)
    if summary is None:
        probs.append("exit %d and no summary" % rc)
        return probs, None
    s = summary
    sk = s.get("skipped", {})
    if s["complete"] != (rc == 0):
        probs.append("exit %d with complete=%s" % (rc, s["complete"]))
    if ("error" in s) == s["complete"]:
        probs.append("error field %s with complete=%s" % ("present" if "error" in s else
                                                          "missing", s["complete"]))
    if s["records"] != s["in_flows"] + s["skipped_total"]:
        probs.append("records %d != in_flows %d + skipped_total %d"
                     % (s["records"], s["in_flows"], s["skipped_total"]))
    if s["skipped_total"] != sum(sk.values()):
        probs.append("skipped_total %d != sum of reasons %d" % (s["skipped_total"],
                                                                 sum(sk.values())))
    if s["tcp"] + s["udp"] != s["in_flows"] + sk.get("flow_table_full", 0):
        probs.append("tcp %d + udp %d != in_flows %d + flow_table_full %d"
                     % (s["tcp"], s["udp"], s["in_flows"], sk.get("flow_table_full", 0)))
    totals = {
        "flows": (len(flows), s["flows"]),
        # TSO/GRO records count as the wire segments they were (docs/flowpic.md).
        "packets in flows": (sum(f["packets"] for f in flows),
                             s["in_flows"] - s["super_packets"] + s["super_segments"]),
        "blocks": (sum(f["blocks"] for f in flows), s["blocks"]),
        "oversize": (sum(f["oversize"] for f in flows), s["oversize"]),
    }
    for what, (a, b) in totals.items():
        if a != b:
            probs.append("%s: flows printed add up to %d, summary says %d" % (what, a, b))
    for f in flows:
        if f["packets"] != f["packets_fwd"] + f["packets_rev"] or \
           f["bytes"] != f["bytes_fwd"] + f["bytes_rev"] or f["proto"] not in ("tcp", "udp"):
            probs.append("flow %s: inconsistent fields" % f.get("flow_id"))
            break
    return probs, summary


def run_one(flowpic, path, env):
    t0 = time.time()
    try:
        r = subprocess.run([flowpic, "flows", "--json", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, timeout=TIMEOUT)
        rc, out, err = r.returncode, r.stdout.decode("utf-8", "replace"), \
            r.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return None, "", "", time.time() - t0
    # abort_on_error makes ASan end with SIGABRT: rc is then -6.
    return rc, out, err, time.time() - t0


def check_file(flowpic, data, rel, env):
    """Run one trace; returns a result dict."""
    path = os.path.join(data, rel)
    rc, out, err, secs = run_one(flowpic, path, env)
    res = {"rel": rel, "rc": rc, "secs": secs, "probs": [], "notes": [], "summary": None}
    if rc is None:
        res["probs"].append("no answer within %d s" % TIMEOUT)
        return res
    probs, summary = check_output(rc, out, err)
    res["probs"] += probs
    res["summary"] = summary
    if probs:
        res["stderr"] = err[-3000:]
    if rc < 0 or rc not in (0, 1, 3):
        return res

    # Record count against Wireshark's reader.
    count, clean = capinfos_count(path)
    records = summary["records"] if summary else 0
    res["capinfos"] = count
    known = KNOWN.get(rel)
    if known:
        want_rc, want_records, why = known
        if rc == want_rc and (want_records is None or records == want_records):
            res["notes"].append("known: %s" % why)
            return res
        res["notes"].append("KNOWN entry no longer matches (exit %d, %d records): %s"
                            % (rc, records, why))
    if clean:
        if rc != 0:
            res["probs"].append("capinfos reads all %d records cleanly, flowpic exit %d%s"
                                % (count, rc, (" (%d records, error: %s)" %
                                               (records, summary.get("error"))) if summary
                                   else ": " + err.strip()[:200]))
        elif records != count:
            res["probs"].append("records %d, capinfos %d" % (records, count))
    elif count is None:
        # Not a capture for Wireshark either: flowpic must call it unreadable,
        # or read it in part.
        if rc == 0:
            res["probs"].append("capinfos cannot read it, flowpic says complete (%d records)"
                                % records)
    else:
        if rc == 0:
            res["probs"].append("capinfos finds it damaged after %d records, flowpic says "
                                "complete with %d" % (count, records))
        elif records != count:
            res["probs"].append("damaged file: records %d, capinfos %d before the damage"
                                % (records, count))
    return res


def make_synthetic(tmp, data):
    """Inputs made here, with the exit status the spec asks for."""
    cases = []

    def add(name, content, want, why):
        p = os.path.join(tmp, name)
        if content is not None:
            with open(p, "wb") as fh:
                fh.write(content)
        cases.append((p, want, why))

    sample = os.path.join(data, "robustness", "zeek", "http-vlan-0.pcap")
    with open(sample, "rb") as fh:
        cap = fh.read()
    add("empty.pcap", b"", 1, "empty file")
    add("junk.bin", bytes(range(7, 250, 3)) * 3, 1, "not a capture")
    add("text.csv", b"hello,world\n1,2\n", 1, "CSV without the flowpic header")
    add("header-only.pcap", cap[:24], 0, "pcap header, no records")
    add("cut-record.pcap", cap[:24 + 16 + 30], 1, "cut inside the first record: nothing read")
    add("cut-second.pcap", cap[:len(cap) - 7], 3, "cut inside the last record")
    add("whole.pcap.gz", gzip.compress(cap), 0, "gzip of a whole capture")
    add("cut.pcap.gz", gzip.compress(cap)[:-40], 3, "gzip stream cut short")
    add("whole.pcap.xz", lzma.compress(cap), 0, "xz of a whole capture")
    add("cut.pcap.xz", lzma.compress(cap)[:-30], 3, "xz stream cut short")
    add("junk.gz", gzip.compress(b"no capture in here" * 40), 1, "gzip of junk")
    add("missing.pcap", None, 1, "no such file")
    os.mkdir(os.path.join(tmp, "adir"))
    cases.append((os.path.join(tmp, "adir"), 1, "a directory"))
    return cases


def check_synthetic(flowpic, case, env):
    path, want, why = case
    rc, out, err, secs = run_one(flowpic, path, env)
    res = {"rel": "synthetic/" + os.path.basename(path), "rc": rc, "secs": secs, "probs": [],
           "notes": [why], "summary": None}
    if rc is None:
        res["probs"].append("no answer within %d s" % TIMEOUT)
        return res
    probs, summary = check_output(rc, out, err)
    res["probs"] += probs
    res["summary"] = summary
    if rc != want:
        res["probs"].append("%s: exit %d, want %d (%s)" % (why, rc, want, err.strip()[:160]))
    return res


def is_sanitized(binary):
    with open(binary, "rb") as fh:
        return b"__asan_init" in fh.read()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flowpic", required=True)
    ap.add_argument("--data", required=True, help="the shared data directory")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", action="append", help="only files whose path contains this")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    flowpic = os.path.abspath(args.flowpic)
    data = os.path.abspath(args.data)
    root = os.path.join(data, "robustness")

    if not os.path.isdir(root):
        print("FAIL: robustness traces %s not found (set FLOWPIC_DATA_DIR when configuring)"
              % root)
        print("0 passed, 1 failed")
        return 1
    for tool, what in ((flowpic, "flowpic binary"), (shutil.which("capinfos"), "capinfos")):
        if not tool or not os.access(tool, os.X_OK):
            print("FAIL: %s not found" % what)
            print("0 passed, 1 failed")
            return 1
    env = dict(os.environ, **SAN_ENV)
    if not is_sanitized(flowpic):
        print("note: %s is not built with -DFLOWPIC_SANITIZE=ON: crashes and exit codes are "
              "checked, memory errors only when they crash" % flowpic)

    files = sorted(os.path.relpath(os.path.join(d, f), root)
                   for d, _, fs in os.walk(root) for f in fs)
    if args.only:
        files = [f for f in files if any(o in f for o in args.only)]
    elif len(files) != EXPECTED_FILES:
        print("note: %d traces found, data/README.md says %d" % (len(files), EXPECTED_FILES))
    if not files:
        print("FAIL: no traces under %s" % root)
        print("0 passed, 1 failed")
        return 1

    t0 = time.time()
    results = []
    tmp = tempfile.mkdtemp(prefix="flowpic-robust-")
    try:
        synth = [] if args.only else make_synthetic(tmp, data)
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futs = [pool.submit(check_file, flowpic, root, rel, env) for rel in files]
            futs += [pool.submit(check_synthetic, flowpic, c, env) for c in synth]
            for fut in concurrent.futures.as_completed(futs):
                r = fut.result()
                results.append(r)
                if r["probs"]:
                    print("FAIL %s (exit %s)" % (r["rel"], r["rc"]))
                    for pr in r["probs"]:
                        print("     %s" % pr)
                    if r.get("stderr"):
                        for ln in r["stderr"].splitlines()[:25]:
                            print("     | %s" % ln)
                elif args.verbose or any(n.startswith("KNOWN") for n in r["notes"]):
                    print("ok   %s (exit %s) %s" % (r["rel"], r["rc"], "; ".join(r["notes"])))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    results.sort(key=lambda r: r["rel"])
    passed = sum(1 for r in results if not r["probs"])
    failed = len(results) - passed

    by_rc = collections.Counter()
    by_rc_fail = collections.Counter()
    reasons = collections.Counter()
    totals = collections.Counter()
    for r in results:
        key = "timeout" if r["rc"] is None else "signal %d" % -r["rc"] if r["rc"] < 0 \
            else "exit %d" % r["rc"]
        by_rc[key] += 1
        if r["probs"]:
            by_rc_fail[key] += 1
        s = r["summary"]
        if s:
            for k, v in s["skipped"].items():
                reasons[k] += v
            for k in ("records", "in_flows", "tcp", "udp", "flows", "blocks", "samples"):
                totals[k] += s[k]

    print()
    print("%-12s %7s %7s" % ("outcome", "inputs", "failed"))
    for k in sorted(by_rc):
        print("%-12s %7d %7d" % (k, by_rc[k], by_rc_fail[k]))
    print()
    print("%-20s %10s" % ("records", "count"))
    print("%-20s %10d" % ("read", totals["records"]))
    print("%-20s %10d  (tcp %d, udp %d; %d flows, %d blocks)" %
          ("in flows", totals["in_flows"], totals["tcp"], totals["udp"], totals["flows"],
           totals["blocks"]))
    for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print("  skipped %-12s %9d" % (k, v))
    known = [r for r in results if any(n.startswith("known") for n in r["notes"])]
    for r in known:
        print("known difference: %s: %s" % (r["rel"], r["notes"][0][7:]))
    slow = max(results, key=lambda r: r["secs"])
    print("%d inputs (%d traces, %d made here) in %.0f s with %d workers; slowest %s %.1f s"
          % (len(results), len(files), len(results) - len(files), time.time() - t0, args.jobs,
             slow["rel"], slow["secs"]))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
