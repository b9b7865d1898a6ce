#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Collector benchmark: verdicts per second stored by one flowpic-collector
(one thread, so one core), from the C load generator and from Debian's
python3-grpcio, into SQLite (on disk with fsync per commit, on disk without,
and on tmpfs as the no-disk ceiling) and into a PostgreSQL server started
here.  One run, one table; the goal (100,000 verdicts/s into SQLite) is the
baseline column.  The machine is shared: compare ratios, not absolutes.

  bench/collector/run.py [BUILD_DIR]      (default build-collector, Release)
"""
import os
import subprocess
import sys
import tempfile
import time
import json
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "collector"))
import harness as h  # noqa: E402

GOAL = 100000
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read().rsplit(")", 1)[1].split()
    return (int(st[11]) + int(st[12])) / TICK


def run_one(binary, loadgen, db, client, n_batches, per_batch, extra=()):
    c = h.Collector(binary, db, *extra)
    try:
        cpu0 = cpu_s(c.p.pid)
        if client == "C loadgen":
            r = subprocess.run([loadgen, "--target", c.address, "--token", "test-token",
                                "--batches", str(n_batches), "--per-batch", str(per_batch),
                                "--run-id", str(time.time_ns())],
                               capture_output=True, text=True, timeout=600)
            if r.returncode:
                raise RuntimeError("loadgen: " + r.stderr + r.stdout)
            out = json.loads(r.stdout)
            wall, stored = out["seconds"], out["stored"]
        else:
            run = time.time_ns()
            batches = [h.make_batch(agent_id="pybench", run_id=run, sequence=i + 1,
                                    first_seq=i * per_batch + 1, n=per_batch)
                       for i in range(n_batches)]
            t0 = time.monotonic()
            acks, code, det = h.stream(c.address, batches, token="test-token", timeout=600)
            wall = time.monotonic() - t0
            if code.name != "OK":
                raise RuntimeError("python client: %s %s" % (code, det))
            stored = sum(a.stored for a in acks)
        cpu = cpu_s(c.p.pid) - cpu0
    finally:
        k = c.stop()
    n = n_batches * per_batch
    if stored != n or k["verdicts_stored"] != n:
        raise RuntimeError("stored %d of %d" % (stored, n))
    return n, wall, cpu


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-collector")
    binary = os.path.join(build, "collector", "flowpic-collector")
    loadgen = os.path.join(build, "bench", "collector", "collector_loadgen")
    for p in (binary, loadgen):
        if not os.access(p, os.X_OK):
            sys.exit("missing %s: cmake -S . -B %s -DCMAKE_BUILD_TYPE=Release && "
                     "make -C %s flowpic-collector collector_loadgen" % (p, build, build))
    disk = tempfile.mkdtemp(prefix="fpt-collector-bench-", dir="/var/tmp")
    shm = tempfile.mkdtemp(prefix="fpt-collector-bench-", dir="/dev/shm")
    pg = h.PgServer()
    rows = []
    try:
        cases = [
            ("C loadgen", "SQLite, fsync each commit", "sqlite:%s/a.db" % disk, 1000, 500, ()),
            ("C loadgen", "SQLite, sync=normal", "sqlite:%s/b.db" % disk, 1000, 500,
             ("--sqlite-sync", "normal")),
            ("C loadgen", "SQLite on tmpfs (ceiling)", "sqlite:%s/c.db" % shm, 1000, 500, ()),
            ("C loadgen", "PostgreSQL 15", pg.url, 400, 500, ()),
            ("python3-grpcio", "SQLite, fsync each commit", "sqlite:%s/d.db" % disk, 200, 500, ()),
            ("python3-grpcio", "PostgreSQL 15", pg.url, 200, 500, ()),
        ]
        for client, store, db, nb, pb, extra in cases:
            n, wall, cpu = run_one(binary, loadgen, db, client, nb, pb, extra)
            rows.append((client, store, n, wall, n / wall, cpu, n / cpu if cpu else 0))
            print("  done: %s -> %s" % (client, store), file=sys.stderr)
    finally:
        pg.stop()
        shutil.rmtree(disk, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)
    print("flowpic-collector: verdicts stored per second (batches of 500, one collector thread)")
    print("%-15s %-27s %8s %6s %10s %7s %10s %6s %6s" % (
        "client", "store", "verdicts", "wall s", "verdicts/s", "coll.s", "per core/s", "wall",
        "core"))
    for client, store, n, wall, rate, cpu, per_cpu in rows:
        print("%-15s %-27s %8d %6.2f %10.0f %7.2f %10.0f %5.2fx %5.2fx" % (
            client, store, n, wall, rate, cpu, per_cpu, rate / GOAL, per_cpu / GOAL))
    print("baseline = the goal, %d verdicts/s into SQLite on one core.  verdicts/s: stored / "
          "wall time;\nper core/s: stored / the collector's CPU time (user+sys), what one "
          "core sustains\nwhen the collector is not kept waiting (shared machine).  The last "
          "two columns: / goal." % GOAL)


if __name__ == "__main__":
    main()
