#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/stream/run.py - agent-side CPU of the verdict stream, in one run.

Streams N synthetic verdicts (IPv4 flow, five class probabilities) through
libflowpic_stream (stream_bench: submit -> batch -> nanopb -> HTTP/2 [-> TLS])
to each receiver, waits for every acknowledgement, and reports the process's
CPU time (all threads: the caller's submits and the stream thread) per 1,000
verdicts, next to the baseline: nanopb encoding alone (no network).
Receivers: the Python gRPC server of tests/stream (python3-grpcio) in h2c and
TLS, and flowpic-collector (SQLite) in h2c and TLS when it is built.
Each row is the median of --repeat runs; the machine is shared, so read the
ratios to the baseline.  Prints one markdown table on stdout.

Usage: bench/stream/run.py [--build DIR] [--n N] [--batch B] [--repeat R]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "stream"))
import interop  # noqa: E402  (servers and certificates of the interop tests)


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if p.returncode:
        raise SystemExit("%s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return json.loads(p.stdout.strip().splitlines()[-1])


def median_run(cmd, repeat):
    rs = [run(cmd) for _ in range(repeat)]
    rs.sort(key=lambda r: r["cpu_ns"])
    return rs[len(rs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--n-python", type=int, default=30000,
                    help="verdicts to the Python server (it is slow)")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    bench = os.path.join(a.build, "bench", "stream", "stream_bench")
    collector = os.path.join(a.build, "collector", "flowpic-collector")
    if not os.path.exists(bench):
        raise SystemExit("no %s: build first (cmake --build %s --target stream_bench)"
                         % (bench, a.build))
    rows = []
    with tempfile.TemporaryDirectory(prefix="fpt-stream-bench-") as tmp:
        certs = interop.make_certs(tmp)
        rows.append(("nanopb encode only (baseline)", median_run(
            [bench, "encode", str(a.n), str(a.batch)], a.repeat)))
        for label, tls in (("Python grpcio server, h2c", None),
                           ("Python grpcio server, TLS", certs["server"])):
            srv = interop.Server(tmp, os.path.join(tmp, "py-%s.jsonl" % bool(tls)), tls=tls)
            try:
                cmd = [bench, "stream", str(a.n_python), str(a.batch), "127.0.0.1:%d" % srv.port]
                if tls:
                    cmd.append(certs["ca"])
                rows.append((label, median_run(cmd, a.repeat)))
            finally:
                srv.stop()
        if os.path.exists(collector):
            for label, extra in (("flowpic-collector (SQLite), h2c", []),
                                 ("flowpic-collector (SQLite), TLS",
                                  ["--tls-cert", certs["server"][0],
                                   "--tls-key", certs["server"][1]])):
                col = interop.Collector(collector, tmp, os.path.join(tmp, "c%d.db" % len(rows)),
                                        args=["--no-token", "-q"] + extra)
                try:
                    cmd = [bench, "stream", str(a.n), str(a.batch), "127.0.0.1:%d" % col.port]
                    if extra:
                        cmd.append(certs["ca"])
                    rows.append((label, median_run(cmd, a.repeat)))
                finally:
                    col.stop()
        else:
            print("(no %s: collector rows left out)" % collector, file=sys.stderr)
    base = rows[0][1]["cpu_ns"] / rows[0][1]["verdicts"]
    print("| receiver | verdicts | batch | wall s | verdicts/s | agent CPU ms / 1,000 verdicts "
          "| caller's submit ns / verdict | CPU vs encode only |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in rows:
        per = r["cpu_ns"] / r["verdicts"]
        print("| %s | %d | %d | %.2f | %.0f | %.3f | %s | %.1fx |" % (
            label, r["verdicts"], a.batch, r["wall_ns"] / 1e9, r["verdicts"] / (r["wall_ns"] / 1e9),
            per * 1000 / 1e6, "%.0f" % (r["submit_ns"] / r["verdicts"]) if r["submit_ns"] else "-",
            per / base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
