#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""PostgreSQL: a real server started here (Debian's postgresql 15, a unix
socket in a temporary directory), two collectors sharing its database, the
same batches sent to both at once: every verdict stored once, the acks of the
two add up (stored + duplicates = sent, stored in total = unique verdicts),
counters upserted, and the query command reads it back."""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def main():
    binary = h.collector_binary()
    pg = h.PgServer()
    try:
        # Both start together: the schema is created under an advisory lock.
        c1 = h.Collector(binary, pg.url)
        c2 = h.Collector(binary, pg.url)
        batches = [h.make_batch(sequence=i + 1, first_seq=i * 100 + 1, n=100,
                                counters={"packets.tcp": i + 1, "stream.spooled": 0})
                   for i in range(30)]
        for b in batches:
            for v in b.verdicts:
                if v.seq % 7 == 0:
                    v.reason = h.pb().REASON_SPARSE
        results = {}

        def send(name, c, order):
            results[name] = h.stream(c.address, order, token="test-token")
        # c1 in order, c2 backwards: they meet in the middle, in the same tables.
        t1 = threading.Thread(target=send, args=("a", c1, batches))
        t2 = threading.Thread(target=send, args=("b", c2, batches[::-1]))
        t1.start(), t2.start()
        t1.join(120), t2.join(120)
        stored = dup = 0
        for name in ("a", "b"):
            acks, code, det = results[name]
            assert code.name == "OK", (name, code, det)
            assert len(acks) == 30
            stored += sum(a.stored for a in acks)
            dup += sum(a.duplicates for a in acks)
        assert stored == 3000 and dup == 3000, (stored, dup)
        # A resend after a reconnect to the other collector: all duplicates.
        acks, code, det = h.stream(c2.address, batches[:5], token="test-token")
        assert code.name == "OK" and [a.duplicates for a in acks] == [100] * 5, acks
        k1, k2 = c1.stop(), c2.stop()
        assert k1["verdicts_stored"] + k2["verdicts_stored"] == 3000, (k1, k2)
        rows = pg.psql("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM verdicts")
        assert rows == [["3000", "3000", "1", "3000"]], rows
        ctr = pg.psql("SELECT name, value, batch_seq FROM agent_counters ORDER BY name")
        assert ctr == [["packets.tcp", "30", "30"], ["stream.spooled", "0", "30"]], ctr
        row = pg.psql("SELECT src_addr, class, probs FROM verdicts WHERE seq = 7")[0]
        assert row[:2] == ["10.0.0.7", "file_transfer"] and json.loads(row[2])["file_transfer"] \
            == 0.8, row
        r = subprocess.run([binary, "query", "--db", pg.url, "--class", "video",
                            "--flow", "proto=udp", "--limit", "5"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        out = [json.loads(l) for l in r.stdout.splitlines()]
        assert len(out) == 5 and all(v["class"] == "video" and v["proto"] == "udp" for v in out), out
        assert out[0]["start_ns"] > out[-1]["start_ns"]
        # Verdict.reason: every 7th verdict was sent 'sparse', the rest none.
        r = subprocess.run([binary, "query", "--db", pg.url, "--reason", "sparse"],
                           capture_output=True, text=True)
        out = [json.loads(l) for l in r.stdout.splitlines()]
        assert r.returncode == 0 and len(out) == 3000 // 7 and \
            all(v["seq"] % 7 == 0 and v["reason"] == "sparse" for v in out), r.stderr
        assert pg.psql("SELECT count(*) FROM verdicts WHERE reason = 'unspecified'") == \
            [[str(3000 - 3000 // 7)]]
        # The database restarts under an idle collector: the next
        # transaction reconnects and runs again; nothing is lost or doubled.
        c3 = h.Collector(binary, pg.url)
        acks, code, det = h.stream(c3.address, batches[:2], token="test-token")
        assert code.name == "OK" and [a.duplicates for a in acks] == [100, 100], acks
        pg.restart()
        more = [h.make_batch(sequence=31 + i, first_seq=3001 + i * 100, n=100) for i in range(3)]
        acks, code, det = h.stream(c3.address, more, token="test-token")
        assert code.name == "OK" and [a.stored for a in acks] == [100] * 3, (code, det, acks)
        k3 = c3.stop()
        assert k3["err_store"] == 0, k3
        rows = pg.psql("SELECT count(*), max(seq) FROM verdicts")
        assert rows == [["3300", "3300"]], rows
        partitions(binary, pg)
        hostile(binary, pg)
        print("pg: ok (two collectors, one database, 6000 sent, 3000 stored; daily "
              "partitions, retention; hostile strings stored exactly)")
    finally:
        pg.stop()


def partitions(binary, pg):
    """Daily partitions by the block's start: made on demand (once, though two
    collectors race for them), a resend still meets its first copy, and
    --retention-days drops whole old days (at start), leaving the rest."""
    day = 86400 * 10**9
    today = time.time_ns() // day * day
    days = [today - 40 * day, today - 3 * day, today]
    batches = [h.make_batch(agent_id="part", sequence=i + 1, first_seq=i * 50 + 1, n=50,
                            t0=t) for i, t in enumerate(days)]
    c1, c2 = h.Collector(binary, pg.url), h.Collector(binary, pg.url)
    res = {}
    ts = [threading.Thread(target=lambda n, c: res.__setitem__(
        n, h.stream(c.address, batches, token="test-token")), args=(n, c))
        for n, c in (("a", c1), ("b", c2))]
    [t.start() for t in ts]
    [t.join(60) for t in ts]
    assert all(res[n][1].name == "OK" for n in res), (res, c1.stderr(), c2.stderr())
    assert sum(a.stored for n in res for a in res[n][0]) == 150
    names = [time.strftime("verdicts_p%Y%m%d", time.gmtime(t // 10**9)) for t in days]
    parts = [r[0] for r in pg.psql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'verdicts'::regclass ORDER BY 1")]
    assert all(n in parts for n in names), (names, parts)
    assert pg.psql("SELECT relkind FROM pg_class WHERE relname = 'verdicts'") == [["p"]]
    for n in names:
        assert pg.psql("SELECT count(*) FROM %s WHERE agent_id = 'part'" % n) == [["50"]], n
    acks, code, det = h.stream(c1.address, batches[2:], token="test-token")
    assert code.name == "OK" and [a.duplicates for a in acks] == [50], acks
    c1.stop(), c2.stop()
    # --retention-days 7: the 40-day-old partition goes, at start; the others stay.
    c3 = h.Collector(binary, pg.url, "--retention-days", "7")
    parts = [r[0] for r in pg.psql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'verdicts'::regclass ORDER BY 1")]
    assert names[0] not in parts and names[1] in parts and names[2] in parts, parts
    assert pg.psql("SELECT count(*) FROM verdicts WHERE agent_id = 'part'") == [["100"]]
    # A day dropped is made again when a verdict of that day comes.
    acks, code, det = h.stream(c3.address, [h.make_batch(agent_id="part", sequence=9,
                                                         first_seq=900, n=5, t0=days[0])],
                               token="test-token")
    assert code.name == "OK" and acks[0].stored == 5, (code, det, acks)
    c3.stop()


# Agents' strings reach COPY's text format (store_pg.c): each of these must
# come back exactly: none may shift a column, end the data or read as NULL.
HOSTILE = ["tab\there", "nl\nhere", "cr\rhere", "back\\slash", "\\N", "\\.", "\\.\n\\.",
           "end\\", "quote'\"q", "ctl\x01\x1f\x7f", "uni \u2713 \u65e5\u672c", "\\x41\\t",
           "\t\n\r\\", "NULL", " lead and trail "]


class Raw:
    """A batch as bytes, for what the protobuf library will not build."""
    def __init__(self, data):
        self.data = data

    def SerializeToString(self):
        return self.data


def hostile(binary, pg):
    """Tabs, newlines, backslashes, literal backslash-N and backslash-dot, quotes, control
    characters in every string an agent sends (agent id, host, version,
    model, interface, class, a class name), stored and read
    back exactly by query; invalid UTF-8 bytes stored as U+FFFD (as the JSON
    writers do), not refusing the batch."""
    batches = []
    for i, t in enumerate(HOSTILE):
        b = h.make_batch(agent_id="hostile-%d %s" % (i, t), host="h " + t, sequence=1,
                         first_seq=1, n=3)
        b.agent.version = t
        b.model.name, b.model.version = "m " + t, t
        b.model.classes[1] = "c " + t
        for v in b.verdicts:
            v.interface, v.class_name = t, "c " + t
        batches.append(b)
    # Invalid UTF-8 (a lone continuation byte, a truncated sequence, 0xff)
    # in place of same-length ASCII, under the same length prefixes.
    bad = h.make_batch(agent_id="hostile-bad-BYTES-HERE!", host="BYTES-HERE!", n=2)
    for v in bad.verdicts:
        v.interface = v.class_name = "BYTES-HERE!"
    raw = bad.SerializeToString().replace(b"BYTES-HERE!", b"a\x80b\xe2\x82c\xffd\xc0\xafe")
    c = h.Collector(binary, pg.url)
    acks, code, det = h.stream(c.address, batches + [Raw(raw)], token="test-token")
    assert code.name == "OK" and [a.stored for a in acks] == [3] * len(HOSTILE) + [2], \
        (code, det, acks, c.stderr())
    # A resend: duplicates, whatever the strings.
    acks, code, det = h.stream(c.address, batches, token="test-token")
    assert code.name == "OK" and [a.duplicates for a in acks] == [3] * len(HOSTILE), acks
    k = c.stop()
    assert k["err_store"] == 0 and k["err_store_batch"] == 0, k
    r = subprocess.run([binary, "query", "--db", pg.url, "--limit", "1000"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        v = json.loads(line)
        if v["agent_id"].startswith("hostile-"):
            out.setdefault(v["agent_id"], []).append(v)
    for i, t in enumerate(HOSTILE):
        got = out.get("hostile-%d %s" % (i, t))
        assert got and len(got) == 3, (t, got)
        for v in got:
            want = {"host": "h " + t, "interface": t, "class": "c " + t, "model": "m " + t,
                    "model_version": t}
            assert {f: v[f] for f in want} == want, (t, v)
            # Keyed by the class names, or an array where one is not plain (store.c).
            p = v["probs"]
            if isinstance(p, dict):
                assert list(p) == h.CLASSES[:1] + ["c " + t] + h.CLASSES[2:], v
                p = list(p.values())
            assert len(p) == len(h.CLASSES) and 0.8 in p, v
    # agent_version is not in query's output: its bytes, from the database.
    rows = pg.psql("SELECT encode(convert_to(agent_version, 'UTF8'), 'hex')"
                   " FROM verdicts WHERE agent_id LIKE 'hostile-%' AND seq = 1"
                   " AND agent_id NOT LIKE 'hostile-bad%'")
    versions = sorted(bytes.fromhex(x).decode() for x, in rows)
    assert versions == sorted(HOSTILE), (versions, HOSTILE)
    fixed = "a\ufffdb\ufffd\ufffdc\ufffdd\ufffd\ufffde"
    got = out.get("hostile-bad-" + fixed)
    assert got and len(got) == 2 and all(
        v["host"] == fixed and v["interface"] == fixed and v["class"] == fixed for v in got), \
        (got, sorted(out))


if __name__ == "__main__":
    main()
