#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Dashboard benchmark (docs/dashboard.md, "API"): the latency of the
dashboard's queries on a store of 10 million verdicts, SQLite and
PostgreSQL, through the collector's own web API (HTTP, the answer's JSON
included); then the collector's throughput with the web UI off, on with no
client, and on with an SSE client reading the live feed.

The stores are made here in bulk (SQLite: one INSERT ... SELECT over a
recursive CTE; PostgreSQL: generate_series, into the collector's own daily
partitions) with 200 agents on 150 hosts over 7 days up to now, in each
agent's seq order, with the class, stage and reason mix of a busy network.
The indexes the queries need are made after the rows (INDEXES below); the
rows bypass the collector, so verdict_counts is dropped and the collector's
first start makes it again from them (the migration of an existing store:
its time is printed).

Each agent also has a run of counters (agent_counters), as /api/agents shows.

  bench/web/run.py [--build DIR] [--rows N] [--backends sqlite,pg] [--keep DIR]
                   [--no-throughput] [--only NAME,...]
(DIR: a Release build with flowpic-collector and collector_loadgen; --keep: make
the stores there once and use them again: the SQLite file and a PostgreSQL data
directory, whose server is started on it again; delete them to make them anew.
--only: the queries whose names hold one of these words, e.g. overview,agents.)
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "collector"))
import harness as h  # noqa: E402

GOAL_MS = 200
AGENTS = 200
HOSTS = 150
DAYS = 7
TOKEN = "bench-viewer-token"

# What the dashboard's queries need beyond the collector's schema.  SQLite has
# only verdicts_start; PostgreSQL's schema (store_pg.c) has the first four.
INDEXES = [
    "CREATE INDEX IF NOT EXISTS verdicts_class ON verdicts (class, start_ns)",
    "CREATE INDEX IF NOT EXISTS verdicts_agent ON verdicts (agent_id, start_ns)",
    "CREATE INDEX IF NOT EXISTS verdicts_host ON verdicts (host, start_ns)",
    "CREATE INDEX IF NOT EXISTS verdicts_received ON verdicts (received_ns)",
    # /api/overview: a range of one stage read from the index alone.
    "CREATE INDEX IF NOT EXISTS verdicts_overview ON verdicts"
    " (stage, start_ns, class, reason, agent_id, host)",
    # /api/flows?addr=: either end of the flow (an OR of two index ranges).
    "CREATE INDEX IF NOT EXISTS verdicts_src ON verdicts (src_addr, start_ns)",
    "CREATE INDEX IF NOT EXISTS verdicts_dst ON verdicts (dst_addr, start_ns)",
    # /api/flow: one flow's verdicts.
    "CREATE INDEX IF NOT EXISTS verdicts_flow ON verdicts (agent_id, run_id, flow_id)",
]

# One row per i in [0, N): agent i / per_agent, seq = i % per_agent + 1; its
# start moves through the 7 days with seq; flows of ~5 verdicts (4 blocks
# and a final).  Classes: browsing 25 %, video 20 %, unknown 20 %, chat 15 %,
# voip 10 %, file_transfer 10 %.
COLS = ("agent_id, run_id, seq, host, agent_version, interface, src_addr, dst_addr, src_port,"
        " dst_port, protocol, direction, flow_id, stage, start_ns, duration_ns, packets_fwd,"
        " packets_rev, bytes_fwd, bytes_rev, block_index, blocks, class, confidence, probs,"
        " model, model_version, received_ns, reason")


def select_sql(n, t0, span, pg):
    per = n // AGENTS
    cat = "||"
    pad = ("lpad((i / %d)::text, 3, '0')" % per) if pg else \
        ("substr('00' || (i / %d), -3, 3)" % per)
    cls = ("CASE WHEN (i * 37) %% 100 < 25 THEN 'browsing' WHEN (i * 37) %% 100 < 45 THEN "
           "'video' WHEN (i * 37) %% 100 < 65 THEN 'unknown' WHEN (i * 37) %% 100 < 80 THEN "
           "'chat' WHEN (i * 37) %% 100 < 90 THEN 'voip' ELSE 'file_transfer' END")
    stage = "CASE WHEN i %% 5 = 4 THEN 'final' WHEN i %% 5 = 0 THEN 'early' ELSE 'block' END"
    reason = ("CASE WHEN (i * 37) %% 100 BETWEEN 45 AND 64 THEN (CASE (i / 3) %% 10 WHEN 0 THEN "
              "'other' WHEN 1 THEN 'other' WHEN 2 THEN 'disagree' WHEN 3 THEN 'low_confidence' "
              "ELSE 'sparse' END) ELSE 'ok' END")
    start = "%d + (i %% %d) * %d + ((i * 7919) %% 1000000000)" % (t0, per, span // per)
    sql = ("SELECT 'agent-' {cat} {pad}, 1, i %% {per} + 1, 'host-' {cat} ((i / {per}) %% {hosts}),"
           " '1.0', 'eth0', '10.' {cat} ((i / 65536) %% 256) {cat} '.' {cat} ((i / 256) %% 256)"
           " {cat} '.' {cat} (i %% 256), '192.0.2.' {cat} ((i / 5) %% 200), 1024 + (i / 5) %% 60000,"
           " CASE (i / 5) %% 4 WHEN 0 THEN 443 WHEN 1 THEN 80 WHEN 2 THEN 3478 ELSE 5222 END,"
           " CASE (i / 5) %% 3 WHEN 0 THEN 17 ELSE 6 END, 'outbound', i / 5 + 1, {stage},"
           " {start}, 15000000000, 100 + i %% 900, 80 + i %% 700, 90000 + i %% 9000,"
           " 70000 + i %% 7000, i %% 5, 4, {cls}, 0.3 + ((i * 13) %% 70) / 100.0,"
           " '{{\"voip\":0.1,\"video\":0.6,\"file_transfer\":0.1,\"chat\":0.1,\"browsing\":0.1}}',"
           " 'lenet32', '1', {start} + 20000000000, {reason}").format(
               cat=cat, pad=pad, per=per, hosts=HOSTS, stage=stage, start=start, cls=cls,
               reason=reason)
    return sql.replace("%%", "%")  # the CASE texts above were written for % formatting


# Each agent's counters (agent_counters), as an agent sends them: /api/agents
# reads the newest run's.
COUNTERS = ("capture_delivered", "capture_lost_ring_full", "capture_lost_total",
            "capture_ring_records", "capture_tcp_packets", "capture_udp_packets", "flows_active",
            "flows_active_max", "flows_untracked", "packets_fwd", "packets_rev", "blocks_empty",
            "blocks_failed", "stream_backlog_verdicts", "stream_rejected", "stream_ring_full")


def counters_sql(pg, now):
    names = " UNION ALL ".join("SELECT '%s' AS name" % n for n in COUNTERS)
    agents = ("SELECT i FROM generate_series(0, %d) AS i" % (AGENTS - 1) if pg else
              "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < %d)"
              " SELECT i FROM s" % (AGENTS - 1))
    pad = "lpad(a.i::text, 3, '0')" if pg else "substr('00' || a.i, -3, 3)"
    return ("INSERT INTO agent_counters (agent_id, run_id, name, value, host, batch_seq,"
            " updated_ns) SELECT 'agent-' || %s, 1, c.name, 1000 * a.i, 'host-' || (a.i %% %d), 1, %d"
            " FROM (%s) AS a CROSS JOIN (%s) AS c" % (pad, HOSTS, now, agents, names))


def make_collector_schema(binary, db):
    c = h.Collector(binary, db, token=None)
    c.stop()


def build_sqlite(binary, path, n):
    t = time.monotonic()
    make_collector_schema(binary, "sqlite:" + path)
    now = time.time_ns()
    span = DAYS * 86400 * 10**9
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("DROP INDEX IF EXISTS verdicts_start")
    con.execute("INSERT INTO verdicts (%s) WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1"
                " FROM s WHERE i < %d) %s FROM s" % (COLS, n - 1,
                                                      select_sql(n, now - span, span, False)))
    con.commit()
    con.execute("CREATE INDEX verdicts_start ON verdicts (start_ns)")
    con.execute("DROP TABLE IF EXISTS verdict_counts")  # made again by the migration
    con.execute(counters_sql(False, now))
    made = time.monotonic() - t
    for sql in INDEXES:
        con.execute(sql)
    con.execute("ANALYZE")
    con.commit()
    con.close()
    return made, time.monotonic() - t - made


def build_pg(binary, pg, n):
    t = time.monotonic()
    make_collector_schema(binary, pg.url)
    now = time.time_ns()
    span = DAYS * 86400 * 10**9
    day = 86400 * 10**9
    for d in range(now // day - DAYS - 1, now // day + 2):
        name = time.strftime("verdicts_p%Y%m%d", time.gmtime(d * 86400))
        pg.psql("CREATE TABLE IF NOT EXISTS %s PARTITION OF verdicts FOR VALUES FROM (%d) TO (%d)"
                % (name, d * day, (d + 1) * day))
    for ix in ("verdicts_class", "verdicts_agent", "verdicts_host", "verdicts_received"):
        pg.psql("DROP INDEX IF EXISTS " + ix)
    pg.psql("INSERT INTO verdicts (%s) %s FROM generate_series(0::bigint, %d) AS i"
            % (COLS, select_sql(n, now - span, span, True), n - 1))
    pg.psql("DROP TABLE IF EXISTS verdict_counts")  # made again by the migration
    pg.psql(counters_sql(True, now))
    made = time.monotonic() - t
    for sql in INDEXES:
        pg.psql(sql)
    pg.psql("VACUUM ANALYZE verdicts")
    return made, time.monotonic() - t - made


class KeptPg(h.PgServer):
    """A PostgreSQL server whose data directory stays in DIR (--keep), so the
    store of 10 million verdicts is made once: started again if it is there."""

    def __init__(self, dir):
        self.dir = dir
        self.data = os.path.join(dir, "data")
        self.sock = dir
        self.user = "nobody" if os.geteuid() == 0 else None
        fresh = not os.path.exists(os.path.join(self.data, "PG_VERSION"))
        os.makedirs(dir, exist_ok=True)
        if self.user:
            os.chown(dir, 65534, 65534)
        os.chmod(dir, 0o700)
        if fresh:
            self._run("initdb", "-D", self.data, "-A", "trust", "-U", "flowpic", "--no-sync")
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(dir, "log"), "-w", "-t", "120",
                  "-o", "-k %s -c listen_addresses= -c fsync=on" % self.sock, "start")
        self.url = "postgresql:///postgres?host=%s&user=flowpic" % self.sock

    def stop(self):
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "120", "stop")


class Web:
    def __init__(self, address):
        host, port = address.rsplit(":", 1)
        self.c = http.client.HTTPConnection(host, int(port), timeout=120)
        self.c.request("POST", "/login", body="token=" + TOKEN,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = self.c.getresponse()
        r.read()
        self.cookie = r.getheader("Set-Cookie").split(";")[0]

    def get(self, path):
        t = time.perf_counter()
        self.c.request("GET", path, headers={"Cookie": self.cookie})
        r = self.c.getresponse()
        data = r.read()
        ms = (time.perf_counter() - t) * 1000
        if r.status != 200:
            raise RuntimeError("%s: %d %s" % (path, r.status, data[:200]))
        return ms, json.loads(data)


def start_web(binary, db, tmp, *extra):
    tok = os.path.join(tmp, "viewers")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(tok, 0o600)
    c = h.Collector(binary, db, "--web-listen", "127.0.0.1:0", "--web-token-file", tok,
                    *extra, token=None)
    ev = json.loads(c.p.stdout.readline())
    c.web = ev["address"]
    return c


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def latency(binary, db, tmp, backend, repeat, only=None):
    t = time.monotonic()
    c = start_web(binary, db, tmp)
    mig = [l for l in c.stderr().splitlines() if "verdict_counts made" in l]
    if mig:
        print("%s: %s (collector start %.0f s)" % (backend, mig[-1], time.monotonic() - t))
    rows = []
    try:
        w = Web(c.web)
        now = time.time_ns()
        hour, day = 3600 * 10**9, 86400 * 10**9
        _, fl = w.get("/api/flows?limit=1")
        one = fl["rows"][0]
        cases = [
            ("overview last 1 h (final)", "/api/overview?since=%d" % (now - hour)),
            ("overview last 24 h (final)", "/api/overview?since=%d" % (now - day)),
            ("overview last 24 h (all stages)", "/api/overview?since=%d&stage=all" % (now - day)),
            ("overview 7 d = all (final)", "/api/overview?since=0"),
            ("overview 7 d = all (all stages)", "/api/overview?since=0&stage=all"),
            ("overview last 24 h, one host", "/api/overview?since=%d&host=host-17" % (now - day)),
            ("overview last 1 h, one agent", "/api/overview?since=%d&agent=agent-007" % (now - hour)),
            ("flows newest 50 (final)", "/api/flows"),
            ("flows class=video", "/api/flows?class=video"),
            ("flows class=voip,chat all stages", "/api/flows?class=voip,chat&stage=all"),
            ("flows agent=agent-042", "/api/flows?agent=agent-042"),
            ("flows host=host-17", "/api/flows?host=host-17"),
            ("flows port=3478 proto=udp", "/api/flows?port=3478&proto=udp"),
            ("flows addr (one address)", "/api/flows?addr=%s&stage=all" % one["src"]),
            ("flows min_conf=0.95 last 1 h", "/api/flows?min_conf=0.95&since=%d" % (now - hour)),
            ("flows sort=confidence last 1 h", "/api/flows?sort=confidence&since=%d" % (now - hour)),
            ("flows page 20 (offset 1000)", "/api/flows?offset=1000"),
            ("flow detail", "/api/flow?agent_id=%s&run_id=%d&flow_id=%d"
             % (urllib.parse.quote(one["agent_id"]), one["run_id"], one["flow_id"])),
            ("agents (200)", "/api/agents"),
        ]
        for name, path in cases:
            if only and not any(o in name for o in only):
                continue
            w.get(path)  # warm the cache once
            ms, n = [], 0
            for _ in range(repeat):
                t, body = w.get(path)
                ms.append(t)
            n = len(body.get("rows", [])) if "rows" in body else \
                (sum(body["totals"].values()) if "totals" in body else
                 len(body.get("agents", body.get("blocks", []))))
            rows.append((name, backend, pct(ms, 50), pct(ms, 95), n))
            print("  %-34s %-10s p50 %8.1f ms" % (name, backend, pct(ms, 50)), file=sys.stderr)
    finally:
        c.stop()
    return rows


def sse_reader(address, cookie, stop, count):
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.sendall(("GET /api/live HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n\r\n" % cookie).encode())
    s.settimeout(0.5)
    while not stop.is_set():
        try:
            d = s.recv(1 << 16)
        except socket.timeout:
            continue
        if not d:
            break
        count[0] += d.count(b"event: verdict")
    s.close()


def throughput(binary, loadgen, tmp, batches):
    def cpu_s(pid):
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
        return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")

    out = []
    for case in ("web UI off", "web UI on, no client", "web UI on, SSE client"):
        db = "sqlite:%s/t%d.db" % (tmp, len(out))
        if case == "web UI off":
            c = h.Collector(binary, db, token=None)
        else:
            c = start_web(binary, db, tmp)
        stop, count, th = threading.Event(), [0], None
        if case.endswith("SSE client"):
            th = threading.Thread(target=sse_reader, args=(c.web, Web(c.web).cookie, stop, count))
            th.start()
            time.sleep(0.3)
        cpu0 = cpu_s(c.p.pid)
        r = subprocess.run([loadgen, "--target", c.address, "--batches", str(batches),
                            "--per-batch", "500", "--run-id", str(time.time_ns())],
                           capture_output=True, text=True, timeout=600)
        if r.returncode:
            raise RuntimeError("loadgen: " + r.stderr + r.stdout)
        res = json.loads(r.stdout)
        cpu = cpu_s(c.p.pid) - cpu0
        time.sleep(1.0)
        stop.set()
        if th:
            th.join()
        k = c.stop()
        out.append((case, res["stored"], res["seconds"], res["stored"] / res["seconds"],
                    res["stored"] / cpu if cpu else 0, count[0], k.get("web_live_dropped", 0)))
        print("  throughput: %s done" % case, file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-web", "release"))
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--backends", default="sqlite,pg")
    ap.add_argument("--keep", help="make the stores here once, use them again")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--batches", type=int, default=400, help="throughput: batches of 500")
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--only", help="the queries whose names hold one of these (comma separated)")
    a = ap.parse_args()
    only = a.only.split(",") if a.only else None
    binary = os.path.join(a.build, "collector", "flowpic-collector")
    loadgen = os.path.join(a.build, "bench", "collector", "collector_loadgen")
    for p in (binary, loadgen):
        if not os.access(p, os.X_OK):
            sys.exit("missing %s: cmake -S . -B %s -DCMAKE_BUILD_TYPE=Release && make -C %s "
                     "flowpic-collector collector_loadgen" % (p, a.build, a.build))
    tmp = tempfile.mkdtemp(prefix="fpt-web-bench-", dir="/var/tmp")
    keep = os.path.abspath(a.keep or tmp)
    os.makedirs(keep, exist_ok=True)
    rows, built = [], []
    pg = None
    try:
        if "sqlite" in a.backends:
            path = os.path.join(keep, "web-%d.db" % a.rows)
            if not os.path.exists(path):
                made, ix = build_sqlite(binary, path, a.rows)
                built.append(("SQLite", made, ix, os.path.getsize(path)))
            rows += latency(binary, "sqlite:" + path, tmp, "SQLite", a.repeat, only)
        if "pg" in a.backends:
            done = os.path.join(keep, "pg-%d" % a.rows, "made")
            pg = KeptPg(os.path.dirname(done)) if a.keep else h.PgServer()
            if not os.path.exists(done):
                made, ix = build_pg(binary, pg, a.rows)
                size = int(pg.psql("SELECT pg_database_size('postgres')")[0][0])
                built.append(("PostgreSQL", made, ix, size))
                if a.keep:
                    open(done, "w").close()
            rows += latency(binary, pg.url, tmp, "PostgreSQL", a.repeat, only)
        tp = [] if a.no_throughput else throughput(binary, loadgen, tmp, a.batches)
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    for name, made, ix, size in built:
        print("%s store: %d verdicts made in %.0f s, indexes in %.0f s, %.1f GB"
              % (name, a.rows, made, ix, size / 1e9))
    print("\ndashboard API latency on %d stored verdicts (%d requests each, HTTP on loopback, "
          "JSON included)" % (a.rows, a.repeat))
    print("%-36s %-10s %8s %8s %6s %6s" % ("query", "backend", "p50 ms", "p95 ms", "rows", "goal"))
    for name, be, p50, p95, n in rows:
        print("%-36s %-10s %8.1f %8.1f %6d %6s" % (name, be, p50, p95, n,
                                                   "ok" if p95 <= GOAL_MS else "MISS"))
    print("goal: %d ms (p95); rows: rows, or verdicts counted by an overview" % GOAL_MS)
    if tp:
        print("\ncollector throughput (C loadgen, %d batches of 500, SQLite fsync per commit)"
              % a.batches)
        print("%-24s %9s %7s %11s %11s %9s %8s" % ("case", "verdicts", "wall s", "verdicts/s",
                                                  "per core/s", "SSE got", "dropped"))
        for case, n, wall, rate, per_cpu, got, dropped in tp:
            print("%-24s %9d %7.2f %11.0f %11.0f %9d %8d" % (case, n, wall, rate, per_cpu, got,
                                                         dropped))


if __name__ == "__main__":
    main()
