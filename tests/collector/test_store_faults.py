#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Store faults (issue 15): values that do not fit the store, NaN and Inf,
a batch the database refuses inside a group commit shared with another agent
(PostgreSQL and SQLite), a SQLite file locked by another process while other
connections must still be served, `query` output (control characters in
--table, absurd --since, non-finite numbers never printed as invalid JSON),
and the mode of new SQLite files.

Usage: test_store_faults.py [sqlite|pg|query|all] (default all)."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOKEN = "test-token"


def strict_json(line):
    """json.loads that refuses NaN/Infinity (Python accepts them by default)."""
    def bad(c):
        raise ValueError("not JSON: " + c)
    return json.loads(line, parse_constant=bad)


def two_calls(address, batches):
    """Each batch on its own call, all on one connection and sent in one
    write, so the collector reads them in one go: they share one group
    commit.  Returns {sid: (acks, grpc-status, grpc-message)}."""
    import hpack
    raw = h.RawH2(address)
    out = b""
    sids = []
    for i, b in enumerate(batches):
        sid = 1 + 2 * i
        sids.append(sid)
        out += h.h2_frame(raw.HEADERS, 0x4, sid, h.grpc_request_headers(TOKEN))
    for sid, b in zip(sids, batches):
        out += h.h2_frame(raw.DATA, 0x1, sid, h.grpc_msg(b.SerializeToString()))
    raw.send(out)
    dec = hpack.Decoder()
    body = {sid: b"" for sid in sids}
    trailers = {}

    def until(t, f, s, p):
        if t == raw.HEADERS:
            if f & 0x20:  # PRIORITY
                p = p[5:]
            hdrs = dict(dec.decode(p))
            if f & 1:
                trailers[s] = hdrs
        elif t == raw.DATA and s in body:
            body[s] += p
        return len(trailers) == len(sids)
    raw.frames(until, timeout=20)
    raw.close()
    res = {}
    for sid in sids:
        acks = [h.pb().Ack.FromString(m) for m in h.grpc_split(body[sid])]
        t = trailers[sid]
        res[sid] = (acks, int(t.get("grpc-status", "-1")), t.get("grpc-message", ""))
    return res


def bad_value_batches():
    """A good agent and one with a value the old PostgreSQL path could not
    store (src_port 2^32-1 in an INTEGER column)."""
    good = h.make_batch(agent_id="good", n=10)
    bad = h.make_batch(agent_id="bad", n=10)
    bad.verdicts[3].flow.src_port = 2**32 - 1
    return good, bad


def check_isolated(res, good_n, what):
    """Stream 1 (good) stored and OK; stream 3 (bad) INVALID_ARGUMENT with
    its own message; the good one's status never carries the bad one's."""
    acks, status, msg = res[1]
    print("  %s: good agent: status %d, acks %s, message %r" %
          (what, status, [(a.stored, a.duplicates) for a in acks], msg[:80]))
    acks3, status3, msg3 = res[3]
    print("  %s: bad agent: status %d, message %r" % (what, status3, msg3[:100]))
    assert status == 0 and [a.stored for a in acks] == [good_n], res[1]
    assert status3 == 3 and not acks3, res[3]  # INVALID_ARGUMENT
    return msg3


def nan_inf_batches():
    nan = h.make_batch(agent_id="nan", n=3)
    nan.verdicts[1].confidence = float("nan")
    inf = h.make_batch(agent_id="inf", n=3)
    inf.verdicts[2].probs[0] = float("inf")
    return nan, inf


def query_lines(binary, db, *args):
    r = subprocess.run([binary, "query", "--db", db, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


# ---- PostgreSQL ----

def pg_tests(binary):
    pg = h.PgServer()
    try:
        c = h.Collector(binary, pg.url, token=TOKEN)
        # 1. A value out of range (validated before the store).
        res = two_calls(c.address, bad_value_batches())
        msg = check_isolated(res, 10, "pg, src_port 2^32-1")
        assert "src_port 4294967295" in msg, msg
        # 2. A batch the database itself refuses (a CHECK constraint stands
        # in for any error validation cannot foresee): rolled back alone.
        pg.psql("ALTER TABLE verdicts ADD CONSTRAINT test_refuse CHECK (interface <> 'refuse-me')")
        good = h.make_batch(agent_id="good2", n=7)
        bad = h.make_batch(agent_id="bad2", n=5)
        for v in bad.verdicts:
            v.interface = "refuse-me"
        k0 = c.counters()
        res = two_calls(c.address, [good, bad])
        k1 = c.counters()
        msg = check_isolated(res, 7, "pg, database refuses one batch")
        assert "test_refuse" in msg and "test_refuse" not in res[1][2], res
        assert k1["commits"] - k0["commits"] == 1, "not one group commit: %s" % k1
        # 3. NaN and Inf refused, counted.
        nan, inf = nan_inf_batches()
        for b in (nan, inf):
            acks, code, det = h.stream(c.address, [b], token=TOKEN)
            print("  pg, %s: %s %r" % (b.agent.agent_id, code.name, det))
            assert code.name == "INVALID_ARGUMENT" and "not finite" in det, (code, det)
        k = c.stop()
        print("  pg counters: out_of_range %d, non_finite %d, store_batch %d, store %d" %
              (k["err_out_of_range"], k["err_non_finite"], k["err_store_batch"], k["err_store"]))
        assert k["err_out_of_range"] == 1 and k["err_non_finite"] == 2 and \
            k["err_store_batch"] == 1 and k["err_store"] == 0, k
        rows = pg.psql("SELECT agent_id, count(*) FROM verdicts GROUP BY agent_id ORDER BY 1")
        assert rows == [["good", "10"], ["good2", "7"]], rows
        # 4. Rows already stored with non-finite values: query prints JSON.
        pg.psql("UPDATE verdicts SET confidence = 'Infinity' WHERE seq = 1")
        pg.psql("UPDATE verdicts SET confidence = 'NaN', probs = '[Infinity]' WHERE seq = 2")
        lines = query_lines(binary, pg.url)
        out = [strict_json(l) for l in lines]
        assert len(out) == 17 and sum(1 for v in out if v["confidence"] is None) == 4, out
        print("pg: ok")
    finally:
        pg.stop()


# ---- SQLite ----

def ping_ms(address):
    """Time from connecting to a PING answered, on a new HTTP/2 connection."""
    t0 = time.monotonic()
    raw = h.RawH2(address)
    raw.send(h.h2_frame(raw.PING, 0, 0, b"12345678"))
    raw.frames(lambda t, f, s, p: t == raw.PING and f & 1, timeout=20)
    ms = (time.monotonic() - t0) * 1000
    raw.close()
    return ms


def hold_lock(path, seconds, locked):
    con = sqlite3.connect(path, isolation_level=None, timeout=10)
    con.execute("BEGIN EXCLUSIVE")
    locked.set()
    time.sleep(seconds)
    con.execute("ROLLBACK")
    con.close()


def locked_store(binary, d, busy_timeout, expect_ok):
    path = os.path.join(d, "locked-%s.db" % busy_timeout)
    c = h.Collector(binary, "sqlite:" + path, "--busy-timeout", busy_timeout, token=TOKEN)
    acks, code, _ = h.stream(c.address, [h.make_batch(agent_id="warm", n=1)], token=TOKEN)
    assert code.name == "OK"
    locked = threading.Event()
    holder = threading.Thread(target=hold_lock, args=(path, 3.0, locked))
    holder.start()
    locked.wait(10)
    result = {}

    def agent_a():
        t0 = time.monotonic()
        result["r"] = h.stream(c.address, [h.make_batch(agent_id="A", n=20)], token=TOKEN)
        result["s"] = time.monotonic() - t0
    ta = threading.Thread(target=agent_a)
    ta.start()
    time.sleep(0.5)  # A's batch is waiting for the lock now
    pings = [ping_ms(c.address) for _ in range(3)]
    holder.join()
    ta.join(30)
    acks, code, det = result["r"]
    k = c.stop()
    rows = h.sqlite_rows(path, "SELECT count(*), count(DISTINCT seq) FROM verdicts "
                         "WHERE agent_id = 'A'")
    print("  sqlite locked 3 s, --busy-timeout %s: PING answered in %s ms; agent A: %s after "
          "%.1f s %r, acks %s; rows %s; busy retries %d, err_store %d" %
          (busy_timeout, ["%.0f" % p for p in pings], code.name, result["s"], det,
           [(a.stored, a.duplicates) for a in acks], rows, k["store_busy_retries"],
           k["err_store"]))
    assert max(pings) < 300, pings
    if expect_ok:
        assert code.name == "OK" and [a.stored for a in acks] == [20], (code, det, acks)
        assert rows == [(20, 20)], rows
        assert k["store_busy_retries"] > 0 and k["err_store"] == 0, k
    else:
        assert code.name == "UNAVAILABLE" and not acks and rows == [(0, 0)], (code, rows)
        assert k["err_store"] == 1, k
        assert "DATABASE" not in (det or "").upper() or "log" in det, det
        # The agent resends once the file is free: stored once.
        c = h.Collector(binary, "sqlite:" + path, token=TOKEN)
        acks, code, det = h.stream(c.address, [h.make_batch(agent_id="A", n=20)], token=TOKEN)
        assert code.name == "OK" and acks[0].stored == 20, (code, det)
        c.stop()


def sqlite_tests(binary):
    d = tempfile.mkdtemp(prefix="fpt-collector-storefaults-")
    old = os.umask(0o022)
    try:
        path = os.path.join(d, "v.db")
        c = h.Collector(binary, "sqlite:" + path, token=TOKEN)
        # New database files are private, whatever the umask.
        acks, code, _ = h.stream(c.address, [h.make_batch(agent_id="first", n=2)], token=TOKEN)
        assert code.name == "OK"
        modes = {s: oct(os.stat(path + s).st_mode & 0o777) for s in ("", "-wal", "-shm")}
        print("  sqlite file modes (umask 022): %s" % modes)
        assert set(modes.values()) == {"0o600"}, modes
        # A batch SQLite refuses rolls back alone (a trigger stands in for any
        # error validation cannot foresee); the other batch of the commit is stored.
        con = sqlite3.connect(path)
        con.execute("CREATE TRIGGER test_refuse BEFORE INSERT ON verdicts WHEN "
                    "new.interface = 'refuse-me' BEGIN SELECT RAISE(ABORT, 'test_refuse'); END")
        con.commit()
        con.close()
        good = h.make_batch(agent_id="good2", n=7)
        bad = h.make_batch(agent_id="bad2", n=5)
        for v in bad.verdicts:
            v.interface = "refuse-me"
        msg = check_isolated(two_calls(c.address, [good, bad]), 7,
                             "sqlite, database refuses one batch")
        assert "test_refuse" in msg, msg
        res = two_calls(c.address, bad_value_batches())
        check_isolated(res, 10, "sqlite, src_port 2^32-1")
        nan, inf = nan_inf_batches()
        for b in (nan, inf):
            acks, code, det = h.stream(c.address, [b], token=TOKEN)
            print("  sqlite, %s: %s %r %s" % (b.agent.agent_id, code.name, det,
                                               [(a.stored, a.duplicates) for a in acks]))
            assert code.name == "INVALID_ARGUMENT" and "not finite" in det, (code, det)
        k = c.stop()
        assert k["err_non_finite"] == 2 and k["err_out_of_range"] == 1, k
        assert k["err_store_batch"] == 1 and k["err_store"] == 0, k
        rows = h.sqlite_rows(path, "SELECT agent_id, count(*) FROM verdicts GROUP BY 1 ORDER BY 1")
        assert rows == [("first", 2), ("good", 10), ("good2", 7)], rows
        # Rows already stored with non-finite values or broken probs.
        con = sqlite3.connect(path)
        con.execute("UPDATE verdicts SET confidence = ?, probs = '{\"voip\":inf}' WHERE seq = 1 "
                    "AND agent_id = 'good'", (float("inf"),))
        con.commit()
        con.close()
        out = [strict_json(l) for l in query_lines(binary, "sqlite:" + path)]
        assert len(out) == 19, out
        row = [v for v in out if v["agent_id"] == "good" and v["seq"] == 1][0]
        assert row["confidence"] is None and row["probs"] == '{"voip":inf}', row
        print("  sqlite: query prints %d lines, all JSON" % len(out))
        # A locked file: the loop keeps serving; the commit is retried.
        locked_store(binary, d, "5", True)
        locked_store(binary, d, "1", False)
        print("sqlite: ok")
    finally:
        os.umask(old)
        shutil.rmtree(d, ignore_errors=True)


# ---- query ----

def query_tests(binary):
    d = tempfile.mkdtemp(prefix="fpt-collector-query-")
    try:
        path = os.path.join(d, "v.db")
        c = h.Collector(binary, "sqlite:" + path, token=TOKEN)
        b = h.make_batch(agent_id="esc", host="evil\x1b]0;pwned\x07\x1b[2J", n=2)
        b.verdicts[0].class_name = "video\x1b[31m\x9b"
        acks, code, det = h.stream(c.address, [b], token=TOKEN)
        assert code.name == "OK", (code, det)
        c.stop()
        r = subprocess.run([binary, "query", "--db", "sqlite:" + path, "--table"],
                           capture_output=True)
        out = r.stdout.decode("utf-8", "replace")
        print("  query --table: %d ESC bytes in the output; host shown as %r" %
              (r.stdout.count(b"\x1b"), out.splitlines()[1][21:37] if r.returncode == 0 else ""))
        assert r.returncode == 0 and b"\x1b" not in r.stdout and b"\x07" not in r.stdout and \
            b"\x9b" not in r.stdout, r.stdout
        assert "evil\\x1b]0;pwn" in out, out
        for when in ("-213504d", "-99999999999d", "9999-01-01", "99999999999"):
            r = subprocess.run([binary, "query", "--db", "sqlite:" + path, "--since", when],
                               capture_output=True, text=True)
            print("  query --since %s: exit %d, %d lines, %r" %
                  (when, r.returncode, len(r.stdout.splitlines()), r.stderr.strip()[:90]))
            assert r.returncode == 2 and "out of range" in r.stderr, (when, r.stderr)
        r = subprocess.run([binary, "query", "--db", "sqlite:" + path, "--since", "-36500d"],
                           capture_output=True, text=True)
        assert r.returncode == 0 and len(r.stdout.splitlines()) == 2, r.stderr
        print("query: ok")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    binary = h.collector_binary()
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what in ("query", "all"):
        query_tests(binary)
    if what in ("sqlite", "all"):
        sqlite_tests(binary)
    if what in ("pg", "all"):
        pg_tests(binary)


if __name__ == "__main__":
    main()
