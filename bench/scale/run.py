#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Fleet scale benchmark (issue 16, docs/scale.md): simulated agents
(bench/collector/fleetgen.c: each agent its own TLS connection and
Collector.Stream call, 100 flows, one verdict per flow per 15 s block, a
batch a second with the agent's 56 counters) against 1, 2 or 4
flowpic-collector processes on one PostgreSQL 15 (started here, as the tests
do), optionally publishing to NATS JetStream (one node, or three replicating
the stream 3 times).  Every run is bounded: ramp (connections opened at
--ramp per second), warm-up, a measured window of --duration seconds, a drain.

Per run: verdicts/s offered and acknowledged (= stored: the collector acks
after the commit, and after JetStream's ack with --nats), submit-to-ack p50
and p99, submit-to-published p99 (a NATS subscriber in the generator), CPU
in cores over the window per process kind (collectors, PostgreSQL summed over
its processes, NATS, the generator, the whole machine), collector RSS.  Then
memory per TLS connection: one collector's RSS with N idle connections (the
call open, nothing sent) minus its RSS before, over N.

  bench/scale/run.py [--build DIR] [--quick] [--agents 100,1000,10000]
                     [--collectors 1,2,4] [--nats none,1,3] [--duration S]
                     [--json FILE]

--quick: 100 and 1,000 agents, 1 and 2 collectors, a 1-node bus at 1,000,
idle memory at 1,000, 8 s windows (under 2 minutes).  Build first:
  cmake -S . -B build-scale -DCMAKE_BUILD_TYPE=Release
  make -C build-scale flowpic-collector collector_fleetgen collector_pg_write
"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "collector"))
import harness as h  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
TOKEN = "scale-bench-token"


def say(msg):
    print("# " + msg, file=sys.stderr, flush=True)


# ---- /proc ----

def proc_stat(pid):
    """(utime+stime, cutime+cstime, ppid) in seconds, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return ((int(st[11]) + int(st[12])) / TICK, (int(st[13]) + int(st[14])) / TICK, int(st[1]))


def cpu_s(pid):
    st = proc_stat(pid)
    return st[0] if st else 0.0


def tree_cpu_s(root):
    """A process and its children, live ones and those it reaped (cutime):
    PostgreSQL's postmaster and its backends, checkpointer, WAL writer."""
    st = proc_stat(root)
    if not st:
        return 0.0
    total = st[0] + st[1]
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != root:
            c = proc_stat(int(d))
            if c and c[2] == root:
                total += c[0]
    return total


def rss_kb(pid, field="VmRSS"):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def host_busy_s():
    """All CPUs' non-idle time so far, in seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / TICK


# ---- servers ----

def pg_postmaster(pg):
    with open(os.path.join(pg.data, "postmaster.pid")) as f:
        return int(f.readline())


def wait_port(port, deadline=20):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing listens on 127.0.0.1:%d" % port)


class Nats:
    """JetStream on loopback: one node, or three in a cluster (as the
    collector.jetstream test runs them), each with its own store directory."""

    def __init__(self, d, nodes):
        self.d = d
        self.ports = [h.free_port() for _ in range(nodes)]
        cports = [h.free_port() for _ in range(nodes)]
        self.p = []
        self.urls = ",".join("nats://127.0.0.1:%d" % p for p in self.ports)
        for i in range(nodes):
            cmd = ["nats-server", "-js", "-sd", os.path.join(d, "n%d" % i), "-a", "127.0.0.1",
                   "-p", str(self.ports[i]), "-n", "n%d" % i]
            if nodes > 1:
                routes = ",".join("nats://127.0.0.1:%d" % p for j, p in enumerate(cports)
                                  if j != i)
                cmd += ["--cluster_name", "fpscale", "--cluster",
                        "nats://127.0.0.1:%d" % cports[i], "--routes", routes]
            log = open(os.path.join(d, "n%d.log" % i), "a")
            self.p.append(subprocess.Popen(cmd, stdout=log, stderr=log))
        for p in self.ports:
            wait_port(p)

    def pids(self):
        return [p.pid for p in self.p]

    def stop(self):
        for p in self.p:
            if p.poll() is None:
                p.terminate()
        for p in self.p:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start_collectors(binary, n, pg, pki, nats=None, replicas=1):
    tls = {"cert": pki["server"] + ".pem", "key": pki["server"] + ".key"}
    extra = ["--max-connections", "100000", "--max-per-source", "100000", "-q"]
    out = []
    for _ in range(n):
        if nats:
            end = time.time() + 30
            while True:  # JetStream elects its leaders first
                try:
                    c = h.Collector(binary, pg.url, *extra, "--nats", nats.urls,
                                    "--nats-replicas", str(replicas), token=TOKEN, tls=tls)
                    break
                except RuntimeError:
                    if time.time() > end:
                        raise
                    time.sleep(0.5)
        else:
            c = h.Collector(binary, pg.url, *extra, token=TOKEN, tls=tls)
        out.append(c)
    return out


def stop_collector(c):
    """SIGTERM; its exit counters (the line's "counters" object, or the line
    itself from a collector before that format)."""
    c.p.send_signal(signal.SIGTERM)
    out, _ = c.p.communicate(timeout=60)
    c.err.close()
    lines = [x for x in out.splitlines() if x.strip()]
    if c.p.returncode != 0 or not lines:
        raise RuntimeError("collector exit %d: %s" % (c.p.returncode, c.stderr()[-1000:]))
    d = json.loads(lines[-1])
    return d.get("counters", d)


# ---- one run ----

def snapshot(colls, pm, nats, gen_pid):
    return {
        "t": time.monotonic(),
        "coll": sum(cpu_s(c.p.pid) for c in colls),
        "pg": tree_cpu_s(pm),
        "nats": sum(cpu_s(p) for p in nats.pids()) if nats else 0.0,
        "gen": cpu_s(gen_pid),
        "host": host_busy_s(),
    }


def run_fleet(fleetgen, colls, pm, nats, pki, agents, args, rate_mult=1.0, duration=None,
              warmup=None, counters=56, every_ms=0):
    """fleetgen against the collectors; its summary plus CPU over the window."""
    duration = duration or args.duration
    warmup = args.warmup if warmup is None else warmup
    cmd = [fleetgen, "--targets", ",".join(c.address for c in colls),
           "--ca", pki["ca"] + ".pem", "--server-name", "localhost", "--token", TOKEN,
           "--agents", str(agents), "--duration", str(duration), "--warmup", str(warmup),
           "--ramp", str(args.ramp), "--rate-mult", str(rate_mult), "--drain", "15",
           "--counters", str(counters)]
    if every_ms:
        cmd += ["--counters-every", str(every_ms)]
    if nats:
        cmd += ["--nats", nats.urls]
    errf = tempfile.TemporaryFile(mode="w+")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, text=True)
    limit = agents / args.ramp + warmup + duration + 60
    timer = threading.Timer(limit, p.kill)
    timer.start()
    snaps, summary, rss = {}, None, {}
    try:
        for line in p.stdout:
            ev = json.loads(line)
            if ev.get("event") == "window_start":
                snaps["start"] = snapshot(colls, pm, nats, p.pid)
                rss["live"] = ev["live"]
                rss["window_start"] = [rss_kb(c.p.pid) for c in colls]
            elif ev.get("event") == "window_end":
                snaps["end"] = snapshot(colls, pm, nats, p.pid)
                rss["window_end"] = [rss_kb(c.p.pid) for c in colls]
                with open("/proc/loadavg") as f:
                    rss["load1"] = float(f.read().split()[0])
            elif ev.get("type") == "summary":
                summary = ev
        p.wait()
    finally:
        timer.cancel()
    errf.seek(0)
    err = errf.read()
    if summary is None or "start" not in snaps or "end" not in snaps:
        raise RuntimeError("fleetgen (exit %s) gave no summary: %s" % (p.returncode, err[-2000:]))
    a, b = snaps["start"], snaps["end"]
    wall = b["t"] - a["t"]
    cores = {k: (b[k] - a[k]) / wall for k in ("coll", "pg", "nats", "gen", "host")}
    return summary, cores, rss


def scenario(binary, fleetgen, pg, pki, agents, ncoll, bus, args, tmp, mult=1.0, counters=56,
             every_ms=0):
    nats = None
    if bus:
        nd = tempfile.mkdtemp(prefix="nats-", dir=tmp)
        nats = Nats(nd, bus)
    colls = []
    try:
        colls = start_collectors(binary, ncoll, pg, pki, nats, replicas=3 if bus == 3 else 1)
        rss0 = [rss_kb(c.p.pid) for c in colls]
        s, cores, rss = run_fleet(fleetgen, colls, pg_postmaster(pg), nats, pki, agents, args,
                                  rate_mult=mult, counters=counters, every_ms=every_ms)
        hwm = [rss_kb(c.p.pid, "VmHWM") for c in colls]
    finally:
        exits = []
        for c in colls:
            try:
                exits.append(stop_collector(c))
            except Exception as e:  # noqa: BLE001 - report, go on
                say("collector stop: %s" % e)
        if nats:
            nats.stop()
            shutil.rmtree(nats.d, ignore_errors=True)
    pg.psql("TRUNCATE verdicts, agent_counters")
    return {
        "agents": agents, "collectors": ncoll, "bus": bus, "mult": mult, "counters": counters,
        "counters_every_ms": every_ms, "collector": binary,
        "summary": s, "cores": cores,
        "rss0_kb": rss0, "rss_kb": rss.get("window_end"), "hwm_kb": hwm,
        "load1": rss.get("load1"),
        "coll_errors": {k: v for c in exits for k, v in c.items()
                        if k.startswith("err_") and v},
        "coll_store": {k: sum(c.get(k, 0) for c in exits)
                       for k in ("commits", "store_thread_ms", "store_paused",
                                 "connections_accepted")},
    }


def idle_memory(binary, fleetgen, pg, pki, n, args):
    """One collector's RSS per idle TLS connection (the call open)."""
    (c,) = start_collectors(binary, 1, pg, pki)
    try:
        time.sleep(1)
        rss0 = rss_kb(c.p.pid)
        s, cores, rss = run_fleet(fleetgen, [c], pg_postmaster(pg), None, pki, n, args,
                                  rate_mult=0, duration=3, warmup=2)
        held = rss["window_start"][0]
    finally:
        stop_collector(c)
    live = rss["live"]  # connected when the window opened
    return {"connections": n, "rss0_kb": rss0, "rss_kb": held, "connects": s["connects"],
            "per_conn_kb": (held - rss0) / max(live, 1), "ramp_s": s["ramp_s"],
            "failures": s["connect_failures"] + s["tls_failures"] + s["call_failures"],
            "live": live}


# ---- the table ----

def print_table(rows, mem):
    print("flowpic-collector fleet scale: TLS agents (100 flows, 1 verdict/flow/15 s, a batch/s "
          "with 56 counters), PostgreSQL 15")
    hdr = ("agents", "coll", "bus", "rate", "ctrs", "offered/s", "stored/s", "p50 ms", "p99 ms", "pub p99",
           "coll cores", "pg cores", "nats cores", "gen cores", "host", "load", "coll RSS MiB",
           "unacked", "reconn", "build")
    print("%7s %4s %4s %5s %7s %9s %9s %8s %8s %8s %10s %8s %10s %9s %5s %5s %12s %8s %7s %s" % hdr)
    for r in rows:
        s, c = r["summary"], r["cores"]
        pub = "%.0f" % s["pub_p99_ms"] if "pub_p99_ms" in s else "-"
        bus = {0: "-", 1: "R1", 3: "R3"}[r["bus"]]
        rss = max(r["rss_kb"] or [0]) / 1024
        ctrs = "%d" % r["counters"]
        if r.get("counters_every_ms"):
            ctrs += "/%gs" % (r["counters_every_ms"] / 1000)
        build = os.path.basename(os.path.dirname(os.path.dirname(r.get("collector", "?/?/x"))))
        print("%7d %4d %4s %5s %7s %9.0f %9.0f %8.1f %8.1f %8s %10.2f %8.2f %10.2f %9.2f %5.2f %5.1f %12.0f %8d %7d %s"
              % (r["agents"], r["collectors"], bus, "x%g" % r["mult"], ctrs,
                 s["offered_per_s"], s["acked_per_s"],
                 s["ack_p50_ms"], s["ack_p99_ms"], pub, c["coll"], c["pg"], c["nats"],
                 c["gen"], c["host"], r.get("load1") or 0, rss, s["verdicts_unacked"] + s["batches_queue_full"],
                 s["connects"] - s["agents"], build))
    print("offered/s, stored/s: verdicts per second over the window (stored = acknowledged "
          "after the commit);\nrate: x the host's 6.7 verdicts/s; ctrs: counters per batch "
          "(/10s: only every 10 s, as the agent sends them);\n"
          "p50/p99: submit-to-ack of each batch (the agent's cut delay, <= 1 s, comes before);\npub p99: submit to a subscriber's receipt of each verdict; "
          "cores: CPU seconds / window\n(host: the whole machine, 2 cores, other jobs included; load: its 1-min load average); coll RSS: the "
          "largest collector at the window's end;\nunacked: verdicts of the window never "
          "acknowledged + batches an agent's full queue would spool;\nreconn: connections made "
          "beyond one per agent (closed ones reconnected, e.g. by --handshake-timeout);\n"
          "build: the collector binary's build directory.")
    for m in mem:
        print("idle TLS connections: %d of %d agents connected to one collector (%d connects, "
              "%d failures), RSS %.0f -> %.0f MiB: %.1f KiB per connection"
              % (m["live"], m["connections"], m["connects"], m["failures"],
                 m["rss0_kb"] / 1024, m["rss_kb"] / 1024, m["per_conn_kb"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-scale"))
    ap.add_argument("--collector", action="append",
                    help="flowpic-collector binary (default: the --build one); given twice "
                    "or more, every run is made with each in turn (before/after)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--agents", default="100,1000,10000")
    ap.add_argument("--collectors", default="1,2,4")
    ap.add_argument("--nats", default="none", help="none, or bus sizes: 1 and/or 3 nodes "
                    "(runs at each --agents with 1 collector)")
    ap.add_argument("--nats-agents", default=None, help="agent counts for the bus runs")
    ap.add_argument("--memory", default="10000", help="idle connection counts (0: skip)")
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--ramp", type=int, default=400)
    ap.add_argument("--also", default="",
                    help="more runs: AGENTS:COLLECTORS:RATE_MULT:COUNTERS[:EVERY_MS][,...], "
                    "e.g. 10000:1:0.1:56 (a tenth of the rate), 1000:1:1:0 (no counters) or "
                    "10000:1:1:56:10000 (counters every 10 s, as the agent sends them)")
    ap.add_argument("--pg-tune", action="store_true",
                    help="PostgreSQL with shared_buffers 1GB, max_wal_size 8GB, "
                    "checkpoint_timeout 15min (default: as initdb makes it, as the tests run)")
    ap.add_argument("--json", help="append each run's record as a JSON line here")
    args = ap.parse_args()
    if args.quick:
        args.agents, args.collectors, args.nats, args.memory = "100,1000", "1,2", "1", "1000"
        args.duration, args.warmup = 8, 2
        args.nats_agents = "1000"
    binaries = args.collector or [os.path.join(args.build, "collector", "flowpic-collector")]
    binary = binaries[0]
    fleetgen = os.path.join(args.build, "bench", "collector", "collector_fleetgen")
    for p in binaries + [fleetgen]:
        if not os.access(p, os.X_OK):
            sys.exit("missing %s (see --help for the build)" % p)
    if args.nats != "none" and not shutil.which("nats-server"):
        sys.exit("nats-server not installed (scripts/install-deps.sh)")
    # Every agent is a socket here and in a collector: the hard limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix="fpt-scale-", dir="/var/tmp")
    pki = h.make_pki(tmp)
    pg = h.PgServer()
    if args.pg_tune:
        for k, v in (("shared_buffers", "1GB"), ("max_wal_size", "8GB"),
                     ("checkpoint_timeout", "15min")):
            pg.psql("ALTER SYSTEM SET %s = '%s'" % (k, v))
        pg.restart()
    rows, mem = [], []
    agents = [int(x) for x in args.agents.split(",") if x]
    plan = [(a, c, 0, 1.0, 56, 0) for a in agents
            for c in (int(x) for x in args.collectors.split(",") if x)]
    if args.nats != "none":
        nats_agents = [int(x) for x in (args.nats_agents or args.agents).split(",")]
        plan += [(a, 1, int(b), 1.0, 56, 0) for b in args.nats.split(",")
                 for a in nats_agents]
    for x in filter(None, args.also.split(",")):
        f = x.split(":")
        plan.append((int(f[0]), int(f[1]), 0, float(f[2]), int(f[3]),
                     int(f[4]) if len(f) > 4 else 0))
    # Before/after: each run with every binary in turn, on the same database.
    plan = [p + (b,) for p in plan for b in binaries]
    t0 = time.time()
    try:
        for a, c, bus, mult, k, every, binary in plan:
            say("%s: %d agents, %d collector(s), bus %s, rate x%g, %d counters%s ..."
                % (binary, a, c, bus or "none", mult, k,
                   " every %g s" % (every / 1000) if every else ""))
            r = scenario(binary, fleetgen, pg, pki, a, c, bus, args, tmp, mult, k, every)
            rows.append(r)
            s = r["summary"]
            say("  offered %.0f/s stored %.0f/s p99 %.1f ms; cores coll %.2f pg %.2f nats %.2f "
                "gen %.2f host %.2f%s" % (s["offered_per_s"], s["acked_per_s"], s["ack_p99_ms"],
                                          r["cores"]["coll"], r["cores"]["pg"],
                                          r["cores"]["nats"], r["cores"]["gen"],
                                          r["cores"]["host"],
                                          "; " + s["last_error"] if s["last_error"] else ""))
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(r) + "\n")
        for n in (int(x) for x in args.memory.split(",")):
            if n:
                say("idle memory, %d connections ..." % n)
                m = idle_memory(binary, fleetgen, pg, pki, n, args)
                mem.append(m)
                if args.json:
                    with open(args.json, "a") as f:
                        f.write(json.dumps({"idle_memory": m}) + "\n")
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows, mem)
    say("%.0f s in all" % (time.time() - t0))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
