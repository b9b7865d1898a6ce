#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Verdict pictures (Verdict.cells, issue 14) at the collector, on SQLite and
on a real PostgreSQL (Debian's postgresql 15, started here):

  - bad pictures (sizes, dirs, counts, indexes out of order or range, one on
    a FINAL verdict) end the call INVALID_ARGUMENT with one line naming the
    problem, counted in err_bad_cells, nothing stored;
  - good ones sent by a Python protobuf client are read back exactly by
    store_get_cells() (tests/collector/cells_tool.c), as sparse and dense;
    a verdict without a picture reads "no picture" (the column is NULL), an
    unknown one "no verdict";
  - the stream library's encoding (cells_tool feed: 120 pictures through a
    picture buffer of one picture's bound, so it goes round many times) is
    stored and read back exactly;
  - a store from before the cells column (and the reason column) gets it
    when a collector opens it; read-only, such a store has no pictures.

Usage: test_cells.py CELLS_TOOL   (FLOWPIC_COLLECTOR: the collector binary)
"""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOOL = None
PASS, FAIL = [], []
PICTURE_BYTES_MAX = 8192 * 6 + 64  # STREAM_PICTURE_BYTES_MAX


def check(cond, what):
    (PASS if cond else FAIL).append(what)
    print(("ok   " if cond else "FAIL ") + what)


def deltas(index):
    return [index[0]] + [b - a for a, b in zip(index, index[1:])] if index else []


def with_cells(v, rows, cols, dirs, index, count, window_ns=15 * 10**9):
    v.cells.rows = rows
    v.cells.cols = cols
    v.cells.dirs = dirs
    v.cells.window_ns = window_ns
    v.cells.index_delta.extend(deltas(index))
    v.cells.count.extend(count)


def get(db, agent, run, seq):
    r = subprocess.run([TOOL, "get", db, agent, str(run), str(seq)], capture_output=True,
                       text=True, timeout=60)
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else r.stderr)


def feed_picture(k):
    n = 200 + (37 * k) % 800
    return [2 * j + k % 2 for j in range(n)], [1 + (j * k) % 255 for j in range(n)]


BAD = [
    # (what the message must say, how to break a good picture)
    ("rows 0", lambda c: setattr(c, "rows", 0)),
    ("rows 32, cols 4096", lambda c: setattr(c, "cols", 4096)),
    ("dirs 7", lambda c: setattr(c, "dirs", 7)),
    ("3 index_delta but 2 count", lambda c: c.count.pop()),
    ("index_delta[2] is 0", lambda c: c.index_delta.__setitem__(2, 0)),
    ("outside the 2048 pixels of 32 x 32 x 2", lambda c: c.index_delta.__setitem__(2, 5000)),
    ("count[1] is 0", lambda c: c.count.__setitem__(1, 0)),
    ("count[0] is 256", lambda c: c.count.__setitem__(0, 256)),
]


def validation(binary, d):
    m = h.pb()
    c = h.Collector(binary, "sqlite:" + os.path.join(d, "bad.db"))
    try:
        for i, (say, breakit) in enumerate(BAD):
            b = h.make_batch(agent_id="bad", sequence=1, first_seq=1, n=3)
            with_cells(b.verdicts[1], 32, 32, m.PICTURE_DIRS_SPLIT, [3, 40, 1500], [1, 2, 255])
            breakit(b.verdicts[1].cells)
            acks, code, det = h.stream(c.address, [b], token="test-token")
            check(code.name == "INVALID_ARGUMENT" and not acks and det and "\n" not in det
                  and "verdict seq 2: cells: " in det and say in det,
                  "bad picture (%s): INVALID_ARGUMENT, %r" % (say, det))
        b = h.make_batch(agent_id="bad", sequence=1, first_seq=1, n=2)
        b.verdicts[0].stage = m.STAGE_FINAL
        with_cells(b.verdicts[0], 32, 32, m.PICTURE_DIRS_BOTH, [0], [1])
        acks, code, det = h.stream(c.address, [b], token="test-token")
        check(code.name == "INVALID_ARGUMENT" and "only EARLY and BLOCK" in (det or ""),
              "a picture on a FINAL verdict refused: %r" % det)
        k = c.stop()
        check(k["err_bad_cells"] == len(BAD) + 1 and k["verdicts_stored"] == 0,
              "err_bad_cells = %d, nothing stored" % k["err_bad_cells"])
    finally:
        if c.alive():
            c.kill()


def good_batch(m):
    b = h.make_batch(agent_id="good", run_id=5, sequence=1, first_seq=1, n=4)
    with_cells(b.verdicts[0], 32, 32, m.PICTURE_DIRS_SPLIT, [0, 1, 31, 32, 1023, 1024, 2047],
               [1, 2, 3, 127, 128, 254, 255])
    with_cells(b.verdicts[1], 32, 32, m.PICTURE_DIRS_BOTH, [], [])  # an empty picture
    b.verdicts[2].stage = m.STAGE_EARLY
    with_cells(b.verdicts[2], 16, 8, m.PICTURE_DIRS_REV, [5, 127], [9, 1], window_ns=60 * 10**9)
    return b  # verdict 4: no picture


def read_back(db, tag):
    rc, got = get(db, "good", 5, 1)
    check(rc == 0 and got["rows"] == 32 and got["cols"] == 32 and got["planes"] == 2
          and got["dirs"] == 3 and got["window_ns"] == 15 * 10**9
          and got["index"] == [0, 1, 31, 32, 1023, 1024, 2047]
          and got["count"] == [1, 2, 3, 127, 128, 254, 255]
          and got["dense_pixels"] == 7 and got["dense_sum"] == 770,
          "%s: split picture read back exactly (sparse and dense)" % tag)
    rc, got = get(db, "good", 5, 2)
    check(rc == 0 and got["index"] == [] and got["planes"] == 1 and got["dense_pixels"] == 0,
          "%s: an empty picture reads back empty" % tag)
    rc, got = get(db, "good", 5, 3)
    check(rc == 0 and (got["rows"], got["cols"], got["dirs"], got["window_ns"]) ==
          (16, 8, 2, 60 * 10**9) and got["index"] == [5, 127] and got["count"] == [9, 1],
          "%s: a 16 x 8 rev picture of an EARLY verdict" % tag)
    rc, got = get(db, "good", 5, 4)
    check(rc == 3, "%s: a verdict without a picture: no picture (exit %d)" % (tag, rc))
    rc, got = get(db, "good", 5, 99)
    check(rc == 4, "%s: no such verdict (exit %d)" % (tag, rc))


def feed(c, db, tag, n=120):
    r = subprocess.run([TOOL, "feed", c.address, str(n), str(PICTURE_BYTES_MAX), "test-token"],
                       capture_output=True, text=True, timeout=120)
    k = json.loads(r.stdout) if r.returncode == 0 else {}
    check(k.get("acked") == n and k.get("pictures") == n and k.get("pictures_no_room") == 0,
          "%s: %d pictures streamed through a one-picture buffer, all acknowledged: %s %s"
          % (tag, n, k, r.stderr[-300:]))
    bad = []
    for seq in range(1, n + 1, 7):
        rc, got = get(db, "feeder", 7, seq)
        index, count = feed_picture(seq)
        if rc != 0 or got["index"] != index or got["count"] != count or got["planes"] != 2:
            bad.append(seq)
    check(not bad, "%s: stored pictures equal what was submitted (bad: %s)" % (tag, bad))


OLD_SCHEMA = (
    "CREATE TABLE verdicts ("
    " agent_id TEXT NOT NULL, run_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " host TEXT NOT NULL, agent_version TEXT NOT NULL, interface TEXT NOT NULL,"
    " src_addr TEXT NOT NULL, dst_addr TEXT NOT NULL, src_port INTEGER NOT NULL,"
    " dst_port INTEGER NOT NULL, protocol INTEGER NOT NULL, direction TEXT NOT NULL,"
    " flow_id INTEGER NOT NULL, stage TEXT NOT NULL, start_ns INTEGER NOT NULL,"
    " duration_ns INTEGER NOT NULL, packets_fwd INTEGER NOT NULL, packets_rev INTEGER NOT NULL,"
    " bytes_fwd INTEGER NOT NULL, bytes_rev INTEGER NOT NULL, block_index INTEGER NOT NULL,"
    " blocks INTEGER NOT NULL, class TEXT NOT NULL, confidence REAL NOT NULL,"
    " probs TEXT NOT NULL, model TEXT NOT NULL, model_version TEXT NOT NULL,"
    " received_ns INTEGER NOT NULL,"
    " PRIMARY KEY (agent_id, run_id, seq)) WITHOUT ROWID")


def sqlite_tests(binary, d):
    m = h.pb()
    db = os.path.join(d, "cells.db")
    c = h.Collector(binary, "sqlite:" + db)
    acks, code, det = h.stream(c.address, [good_batch(m)], token="test-token")
    check(code.name == "OK" and acks[0].stored == 4, "sqlite: 4 verdicts stored (%s)" % det)
    read_back("sqlite:" + db, "sqlite")
    feed(c, "sqlite:" + db, "sqlite")
    c.stop()
    nulls = h.sqlite_rows(db, "SELECT count(*) FROM verdicts WHERE agent_id = 'good' AND"
                              " cells IS NULL")
    check(nulls == [(1,)], "sqlite: the verdict without a picture has cells NULL")

    # A store from before reasons and pictures: read-only it has none; a
    # collector adds both columns (last, in that order) and stores pictures.
    old = os.path.join(d, "old.db")
    con = sqlite3.connect(old)
    con.execute(OLD_SCHEMA)
    con.execute("INSERT INTO verdicts VALUES ('good', 5, 1, 'h', 'v', 'eth0', '10.0.0.1',"
                " '10.0.0.2', 1, 2, 6, 'unspecified', 1, 'block', 0, 0, 1, 1, 1, 1, 0, 0,"
                " 'voip', 0.5, '{}', 'm', '1', 0)")
    con.commit()
    con.close()
    rc, got = get("sqlite:" + old, "good", 5, 1)
    check(rc == 3, "sqlite: a read-only store from before pictures: no picture (exit %d, %s)"
          % (rc, got))
    c = h.Collector(binary, "sqlite:" + old)
    b = good_batch(m)
    del b.verdicts[0]  # seq 1 is the old row
    acks, code, det = h.stream(c.address, [b], token="test-token")
    c.stop()
    cols = [r[1] for r in h.sqlite_rows(old, "PRAGMA table_info(verdicts)")]
    check(cols[-2:] == ["reason", "cells"] and code.name == "OK" and acks[0].stored == 3,
          "sqlite: an old store gets reason and cells, last (%s)" % cols[-3:])
    rc, got = get("sqlite:" + old, "good", 5, 3)
    rc1, _ = get("sqlite:" + old, "good", 5, 1)
    check(rc == 0 and got["index"] == [5, 127] and rc1 == 3,
          "sqlite: migrated store: new pictures read back, the old row has none")


def pg_tests(binary):
    m = h.pb()
    pg = h.PgServer()
    try:
        c = h.Collector(binary, pg.url)
        acks, code, det = h.stream(c.address, [good_batch(m)], token="test-token")
        check(code.name == "OK" and acks[0].stored == 4, "pg: 4 verdicts stored (%s)" % det)
        read_back(pg.url, "pg")
        feed(c, pg.url, "pg", n=40)
        c.stop()
        rows = pg.psql("SELECT seq, cells IS NULL FROM verdicts WHERE agent_id = 'good'"
                       " ORDER BY seq")
        check(rows == [["1", "f"], ["2", "f"], ["3", "f"], ["4", "t"]],
              "pg: cells NULL only where there is no picture (%s)" % rows)
        # A database from before pictures: the collector adds the column.
        pg.psql("DROP TABLE verdicts CASCADE")
        pg.psql(OLD_SCHEMA.replace(" WITHOUT ROWID", "").replace("INTEGER", "BIGINT"))
        rc, got = get(pg.url, "good", 5, 3)
        check(rc == 3, "pg: read-only, a database from before pictures: no picture (exit %d)"
              % rc)
        c = h.Collector(binary, pg.url)
        acks, code, det = h.stream(c.address, [good_batch(m)], token="test-token")
        c.stop()
        rc, got = get(pg.url, "good", 5, 1)
        check(code.name == "OK" and rc == 0 and got["count"][-1] == 255,
              "pg: an old table gets the cells column and pictures (%s)" % det)
    finally:
        pg.stop()


def main():
    global TOOL
    TOOL = sys.argv[1]
    binary = h.collector_binary()
    with tempfile.TemporaryDirectory(prefix="fpt-cells-") as d:
        validation(binary, d)
        sqlite_tests(binary, d)
    pg_tests(binary)
    print("%d passed, %d failed" % (len(PASS), len(FAIL)))
    return 1 if FAIL else 0


if __name__ == "__main__":
    sys.exit(main())
