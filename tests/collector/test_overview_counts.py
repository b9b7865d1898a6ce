#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""collector.overview_counts: verdict_counts (docs/collector.md, "Storage")
and /api/overview read from it (docs/dashboard.md), on SQLite and, when
PostgreSQL 15 is installed, on PostgreSQL.

Three agents on two hosts send verdicts spread over three days (every stage,
class and reason, a hostile class name), then resend some batches whole and
one half new: verdict_counts must equal counting the verdicts table at every
grain (exactly once), and /api/overview (totals, unknown reasons, per agent,
series) must equal counting the verdicts for ranges on and off minute, hour
and day edges, every stage, an agent and a host filter and several buckets.
Then the migration: verdict_counts dropped, the collector restarted, it is
made again from the verdicts with a log line; and --retention-days drops the
old days' counts with their verdicts.
Usage: test_overview_counts.py (FLOWPIC_COLLECTOR names the collector;
FLOWPIC_SKIP_PG=1 skips PostgreSQL)."""
import http.client
import json
import os
import random
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BIN = harness.collector_binary()
TOKEN = "viewer-token-overview"
MIN, HOUR, DAY = 60 * 10**9, 3600 * 10**9, 86400 * 10**9
GRAINS = (60, 3600, 86400)
# The reasons /api/overview lists for unknown verdicts (proto values 0, 2 .. 6).
REASONS = ("unspecified", "other", "sparse", "disagree", "low_confidence", "untracked")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


class Web:
    def __init__(self, address):
        host, port = address.rsplit(":", 1)
        self.c = http.client.HTTPConnection(host, int(port), timeout=30)
        self.c.request("POST", "/login", body="token=" + TOKEN,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = self.c.getresponse()
        r.read()
        self.cookie = r.getheader("Set-Cookie").split(";")[0]

    def get(self, path):
        self.c.request("GET", path, headers={"Cookie": self.cookie})
        r = self.c.getresponse()
        return r.status, json.loads(r.read())


def start(db, tmp, *extra):
    tok = os.path.join(tmp, "viewers")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(tok, 0o600)
    c = harness.Collector(BIN, db, "--web-listen", "127.0.0.1:0", "--web-token-file", tok,
                          *extra, token=None)
    c.web = json.loads(c.p.stdout.readline())["address"]
    return c


def batches(t0, rng):
    """(agent, host) x 4 batches of 60 verdicts over three days from t0."""
    m = harness.pb()
    out = []
    stages = (m.STAGE_EARLY, m.STAGE_BLOCK, m.STAGE_FINAL)
    classes = list(harness.CLASSES) + ["unknown", "<b>x\"y"]
    for agent, host in (("a0", "h0"), ("a1", "h1"), ("a2", "h0")):
        for k in range(4):
            b = harness.make_batch(agent_id=agent, host=host, sequence=k + 1,
                                   first_seq=1 + 60 * k, n=60)
            for v in b.verdicts:
                # Clusters at edges (a minute's last second, an hour's first)
                # and spread over the days.
                v.span.start_unix_ns = t0 + rng.choice(
                    (rng.randrange(3 * DAY), rng.randrange(3) * DAY + 5 * HOUR - rng.randrange(2 * MIN),
                     rng.randrange(3) * DAY + 17 * HOUR + rng.randrange(90) * 10**9))
                v.stage = rng.choice(stages)
                v.class_name = rng.choice(classes)
                v.reason = rng.choice((0, 2, 3, 4, 5, 6)) if v.class_name == "unknown" else 1
            out.append(b)
    return out


class Sqlite:
    name = "SQLite"

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "v.db")
        self.url = "sqlite:" + self.path

    def rows(self, sql):
        con = sqlite3.connect(self.path)
        try:
            return [tuple(r) for r in con.execute(sql)]
        finally:
            con.close()

    def drop_counts(self):
        con = sqlite3.connect(self.path)
        con.execute("DROP TABLE verdict_counts")
        con.commit()
        con.close()


class Pg:
    name = "PostgreSQL"

    def __init__(self, tmp):
        self.srv = harness.PgServer()
        self.url = self.srv.url

    def rows(self, sql):
        out = []
        for r in self.srv.psql(sql):
            out.append(tuple(int(x) if x.lstrip("-").isdigit() else x for x in r))
        return out

    def drop_counts(self):
        self.srv.psql("DROP TABLE verdict_counts")


def verdicts(db):
    return db.rows("SELECT agent_id, host, stage, class, reason, start_ns FROM verdicts")


def counts_equal_verdicts(db, what):
    """verdict_counts at each grain, per agent and over all = the verdicts' counts."""
    vs = verdicts(db)
    ok = True
    for g in GRAINS:
        w = g * 10**9
        want, want_all = {}, {}
        for a, hst, st, cl, re, t in vs:
            k = (st, t // w * w, cl, re)
            want[(a, hst) + k] = want.get((a, hst) + k, 0) + 1
            want_all[k] = want_all.get(k, 0) + 1
        got = {}
        for a, hst, st, t, cl, re, n in db.rows(
                "SELECT agent_id, host, stage, t_ns, class, reason, n FROM verdict_counts"
                " WHERE per_agent = 1 AND grain = %d" % g):
            got[(a, hst, st, t, cl, re)] = got.get((a, hst, st, t, cl, re), 0) + int(n)
        got_all = {}
        for st, t, cl, re, n in db.rows(
                "SELECT stage, t_ns, class, reason, n FROM verdict_counts"
                " WHERE per_agent = 0 AND grain = %d" % g):
            got_all[(st, t, cl, re)] = got_all.get((st, t, cl, re), 0) + int(n)
        ok = ok and got == want and got_all == want_all
    check(ok and vs, "%s: verdict_counts = the %d verdicts counted, every grain" % (what, len(vs)))


STAGES = {"all": ("early", "block", "final", "unspecified"), "final": ("final",),
          "block": ("early", "block")}


def expect(vs, since, until, stage, agent, host, bucket_ns, first):
    tot, unk, per, series = {}, {}, {}, {}
    for a, hst, st, cl, re, t in vs:
        if not (since <= t < until) or st not in STAGES[stage]:
            continue
        if (agent and a != agent) or (host and hst != host):
            continue
        tot[cl] = tot.get(cl, 0) + 1
        if cl == "unknown" and re in REASONS:
            unk[re] = unk.get(re, 0) + 1
        per.setdefault((a, hst), {})
        per[(a, hst)][cl] = per[(a, hst)].get(cl, 0) + 1
        key = (cl, t // bucket_ns - first)
        series[key] = series.get(key, 0) + 1
    return tot, unk, per, series


def nz(d):
    return {k: v for k, v in d.items() if v}


def overview_equals(db, web, t0, rng, what):
    vs = verdicts(db)
    lo = min(v[5] for v in vs)
    ranges = [(0, t0 + 4 * DAY), (t0, t0 + 3 * DAY), (t0 + DAY, t0 + 2 * DAY),
              (t0 + 5 * HOUR - 7 * 10**9, t0 + DAY + 17 * HOUR + 30 * 10**9),
              (t0 + 17 * HOUR + 13 * 10**9, t0 + 17 * HOUR + 50 * 10**9),
              (t0 + 4 * HOUR + 58 * MIN + 1, t0 + 2 * DAY + 5 * HOUR - 1)]
    for _ in range(6):
        a = t0 + rng.randrange(3 * DAY)
        ranges.append((a, a + rng.randrange(1, 2 * DAY)))
    cases = 0
    bad = []
    for since, until in ranges:
        for stage in ("all", "final", "block"):
            for agent, host in ((None, None), ("a1", None), (None, "h0"), ("a2", "h0")):
                for bucket in (None, 60, 3600, 7, 86400, 1800):
                    q = "/api/overview?since=%d&until=%d&stage=%s" % (since, until, stage)
                    q += "&agent=" + agent if agent else ""
                    q += "&host=" + host if host else ""
                    q += "&bucket=%d" % bucket if bucket else ""
                    st, ov = web.get(q)
                    cases += 1
                    if st != 200:
                        bad.append((q, st, ov))
                        continue
                    s0 = max(since, lo) if since < lo else since
                    bns = ov["bucket_ns"]
                    first = ov["buckets"][0] // bns
                    tot, unk, per, series = expect(vs, s0, until, stage, agent, host, bns, first)
                    got_per = {(p["agent_id"], p["host"]): nz(p["totals"]) for p in ov["per_agent"]}
                    got_series = {}
                    for cl, ns in ov["series"].items():
                        for i, n in enumerate(ns):
                            if n:
                                got_series[(cl, i)] = n
                    if (nz(ov["totals"]) != tot or nz(ov["unknown_reasons"]) != unk
                            or nz({k: v for k, v in got_per.items() if v}) != per
                            or got_series != series):
                        bad.append((q, [nz(ov["totals"]) == tot, nz(ov["unknown_reasons"]) == unk,
                                        got_per == per, got_series == series]))
    check(not bad, "%s: /api/overview = counting the verdicts in %d requests%s"
          % (what, cases, (": " + repr(bad[:2])) if bad else ""))


def agents_equal(db, web, what):
    """/api/agents = the store: per agent its verdicts (the sum over its runs
    of the highest seq), runs, the newest run's last host and version, and
    the counters of its newest counted run (an agent with counters only: their
    host)."""
    want = {}
    for agent, run, top in db.rows("SELECT agent_id, run_id, max(seq) FROM verdicts"
                                   " GROUP BY agent_id, run_id"):
        a = want.setdefault(agent, {"verdicts": 0, "vruns": set(), "cruns": set()})
        a["verdicts"] += int(top)
        a["vruns"].add(int(run))
    for agent, run in db.rows("SELECT DISTINCT agent_id, run_id FROM agent_counters"):
        want.setdefault(agent, {"verdicts": 0, "vruns": set(), "cruns": set()})["cruns"].add(int(run))
    for agent, a in want.items():
        esc = agent.replace("'", "''")
        a["runs"] = max(len(a["vruns"]), len(a["cruns"]))
        a["host"], a["version"] = ("", "")
        if not a["vruns"]:  # its host from its counters
            a["host"] = db.rows("SELECT host FROM agent_counters WHERE agent_id = '%s'"
                                " ORDER BY updated_ns DESC LIMIT 1" % esc)[0][0]
        else:
            a["host"], a["version"] = db.rows(
                "SELECT host, agent_version FROM verdicts WHERE agent_id = '%s' AND run_id = %d"
                " ORDER BY seq DESC LIMIT 1" % (esc, max(a["vruns"])))[0]
        a["counters"] = {n: int(v) for n, v in db.rows(
            "SELECT name, value FROM agent_counters WHERE agent_id = '%s' AND run_id = (SELECT"
            " run_id FROM agent_counters WHERE agent_id = '%s' ORDER BY updated_ns DESC LIMIT 1)"
            % (esc, esc))}
    st, got = web.get("/api/agents")
    have = {a["agent_id"]: a for a in got["agents"]} if st == 200 else {}
    bad = [x for x in sorted(set(want) | set(have))
           if x not in have or x not in want
           or any(have[x][k] != want[x][k] for k in ("verdicts", "runs", "host", "version",
                                                    "counters"))]
    check(st == 200 and want and not bad,
          "%s: /api/agents = the store for %d agents (verdicts, runs, host, version, counters)%s"
          % (what, len(want), "; differ: %s" % [(x, have.get(x), want.get(x)) for x in bad[:2]]
             if bad else ""))


def run(db, tmp):
    rng = random.Random(14)
    # Three whole days ending yesterday (UTC), so none is today's partial day.
    t0 = (time.time_ns() // DAY - 4) * DAY
    bs = batches(t0, rng)
    c = start(db.url, tmp)
    try:
        acks, code, _ = harness.stream(c.address, bs)
        check(len(acks) == len(bs) and sum(a.stored for a in acks) == 60 * len(bs),
              "%s: %d batches stored" % (db.name, len(bs)))
        # Resends: three whole batches again, and one half old, half new.
        again = [bs[0], bs[5], bs[11]]
        half = harness.make_batch(agent_id="a1", host="h1", sequence=9, first_seq=211, n=60)
        old = {v.seq: v for v in bs[7].verdicts}
        for v in half.verdicts:
            if v.seq in old:
                v.CopyFrom(old[v.seq])
            else:
                v.span.start_unix_ns = t0 + DAY + 5 * HOUR + v.seq * 10**9
        acks, code, _ = harness.stream(c.address, again + [half])
        check([a.stored for a in acks] == [0, 0, 0, 30]
              and [a.duplicates for a in acks] == [60, 60, 60, 30],
              "%s: resends are duplicates (%s)" % (db.name, [a.stored for a in acks]))
        counts_equal_verdicts(db, db.name)
        overview_equals(db, Web(c.web), t0, rng, db.name)
        # Agents: a second run of a0 on another host and version, with
        # counters; counters of a1's run; an agent with counters only.
        more = []
        for agent, run, host, ver, ctrs, n in (("a0", 7, "h0b", "v2", {"ring_lost": 0, "pkts": 9}, 5),
                                               ("a1", 1, "h1", "test", {"ring_lost": 2}, 0),
                                               ("c9", 3, "hc", "v3", {"pkts": 1}, 0)):
            b = harness.make_batch(agent_id=agent, run_id=run, host=host, sequence=50,
                                   first_seq=1 if run != 1 else 241, n=n, counters=ctrs)
            b.agent.version = ver
            more.append(b)
        for b in more:
            acks, code, _ = harness.stream(c.address, [b])
            check(code.name == "OK", "%s: agents' batch of %s stored (%s)" % (db.name, b.agent.agent_id, code))
        agents_equal(db, Web(c.web), db.name)
    finally:
        c.stop()
    # The migration: a store from before verdict_counts gets it, filled.
    db.drop_counts()
    c = start(db.url, tmp)
    try:
        c.stop()
        log = c.stderr()
        check("verdict_counts made" in log,
              "%s: the migration says what it did: %s" % (
                  db.name, [l for l in log.splitlines() if "verdict_counts" in l][:2]))
        counts_equal_verdicts(db, db.name + " after the migration")
    except Exception as e:  # noqa: BLE001
        check(False, "%s: migration: %s" % (db.name, e))
    # Retention: the days older than two days go, counts with verdicts.
    c = start(db.url, tmp, "--retention-days", "2")
    try:
        c.stop()
    except Exception as e:  # noqa: BLE001
        check(False, "%s: retention: %s" % (db.name, e))
    cutoff = (time.time_ns() // DAY - 2) * DAY
    old = db.rows("SELECT count(*) FROM verdict_counts WHERE t_ns < %d" % cutoff)[0][0]
    left = db.rows("SELECT count(*) FROM verdicts")[0][0]
    check(int(old) == 0 and 0 < int(left) < 60 * len(bs),
          "%s: --retention-days 2: no counts before the cutoff, %s verdicts left" % (db.name, left))
    counts_equal_verdicts(db, db.name + " after retention")


def main():
    t = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fpt-counts-") as tmp:
        run(Sqlite(tmp), tmp)
        if os.environ.get("FLOWPIC_SKIP_PG") == "1":
            print("skip PostgreSQL: FLOWPIC_SKIP_PG=1")
        else:
            pg = Pg(tmp)
            try:
                run(pg, tmp)
            finally:
                pg.srv.stop()
    print("%d failures, %.1f s" % (len(failures), time.monotonic() - t))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
