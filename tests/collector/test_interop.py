#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Interoperability: Debian's python3-grpcio streams batches to flowpic-collector,
cleartext (h2c) and over TLS (certificates made here with openssl), and gets
one Ack per batch; the stored rows, the agents' counters and the query
command are checked against what was sent."""
import json
import os
import shutil
import subprocess
import time
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def check_acks(acks, code, details, batches):
    assert code.name == "OK", "call failed: %s %s" % (code, details)
    assert [a.sequence for a in acks] == [b.sequence for b in batches], acks
    assert all(a.stored == len(b.verdicts) and a.duplicates == 0 for a, b in zip(acks, batches))


# The verdicts table as collectors made it before Verdict.reason existed.
OLD_SCHEMA = (
    "CREATE TABLE verdicts (agent_id TEXT NOT NULL, run_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " host TEXT NOT NULL, agent_version TEXT NOT NULL, interface TEXT NOT NULL,"
    " src_addr TEXT NOT NULL, dst_addr TEXT NOT NULL, src_port INTEGER NOT NULL,"
    " dst_port INTEGER NOT NULL, protocol INTEGER NOT NULL, direction TEXT NOT NULL,"
    " flow_id INTEGER NOT NULL, stage TEXT NOT NULL, start_ns INTEGER NOT NULL,"
    " duration_ns INTEGER NOT NULL, packets_fwd INTEGER NOT NULL, packets_rev INTEGER NOT NULL,"
    " bytes_fwd INTEGER NOT NULL, bytes_rev INTEGER NOT NULL, block_index INTEGER NOT NULL,"
    " blocks INTEGER NOT NULL, class TEXT NOT NULL, confidence REAL NOT NULL,"
    " probs TEXT NOT NULL, model TEXT NOT NULL, model_version TEXT NOT NULL,"
    " received_ns INTEGER NOT NULL, PRIMARY KEY (agent_id, run_id, seq)) WITHOUT ROWID")


def reasons(binary, d):
    """Verdict.reason stored and queried; a store from before the column is
    read (read-only: every verdict 'unspecified') and then upgraded by a
    collector, its old rows 'unspecified'."""
    import sqlite3
    m = h.pb()
    db = os.path.join(d, "old.db")
    con = sqlite3.connect(db)
    con.execute(OLD_SCHEMA)
    con.execute("INSERT INTO verdicts VALUES ('old', 1, 1, 'h', 'v', 'eth0', '10.0.0.1',"
                " '10.0.0.2', 1, 2, 6, 'outbound', 1, 'final', 5, 0, 1, 1, 1, 1, 0, 1,"
                " 'video', 0.9, '{}', 'm', '1', 7)")
    con.commit()
    con.close()

    def q(*args):
        r = subprocess.run([binary, "query", "--db", "sqlite:" + db, *args],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return [json.loads(l) for l in r.stdout.splitlines()]
    old = q()
    assert len(old) == 1 and old[0]["reason"] == "unspecified", old
    assert len(q("--reason", "unspecified")) == 1 and q("--reason", "ok") == []
    r = subprocess.run([binary, "query", "--db", "sqlite:" + db, "--reason", "no_blocks"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--reason" in r.stderr, r.stderr
    # A collector upgrades the store; verdicts of every reason, and one
    # without (an old agent).
    c = h.Collector(binary, "sqlite:" + db)
    b = h.make_batch(agent_id="new", n=8)
    names = [None, m.REASON_OK, m.REASON_OTHER, m.REASON_SPARSE, m.REASON_DISAGREE,
             m.REASON_LOW_CONFIDENCE, m.REASON_UNTRACKED, m.REASON_SPARSE]
    for v, reason in zip(b.verdicts, names):
        if reason is not None:
            v.reason = reason
        if reason not in (None, m.REASON_OK):
            v.class_name = "unknown"
    acks, code, details = h.stream(c.address, [b], token="test-token")
    check_acks(acks, code, details, [b])
    c.stop()
    got = {(v["agent_id"], v["seq"]): v["reason"] for v in q()}
    assert got == {("old", 1): "unspecified", ("new", 1): "unspecified", ("new", 2): "ok",
                   ("new", 3): "other", ("new", 4): "sparse", ("new", 5): "disagree",
                   ("new", 6): "low_confidence", ("new", 7): "untracked",
                   ("new", 8): "sparse"}, got
    sparse = q("--class", "unknown", "--reason", "sparse")
    assert [v["seq"] for v in sparse] == [8, 4], sparse
    r = subprocess.run([binary, "query", "--db", "sqlite:" + db, "--table", "--reason", "other"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "reason" in r.stdout.splitlines()[0] and \
        "other" in r.stdout.splitlines()[1] and "(1 verdicts)" in r.stdout, r.stdout


def main():
    binary = h.collector_binary()
    d = tempfile.mkdtemp(prefix="fpt-collector-interop-")
    try:
        pki = h.make_pki(d)
        db = os.path.join(d, "v.db")
        # Cleartext: 20 batches of 50 verdicts, counters on the last one.
        c = h.Collector(binary, "sqlite:" + db)
        batches = [h.make_batch(sequence=i + 1, first_seq=i * 50 + 1, n=50) for i in range(20)]
        batches[-1].counters.add(name="packets.tcp", value=1234)
        batches[-1].counters.add(name="stream.spooled", value=0)
        acks, code, details = h.stream(c.address, batches, token="test-token")
        check_acks(acks, code, details, batches)

        # Many agents at once: 24 concurrent calls, one connection each.
        results = {}

        def agent(i):
            bs = [h.make_batch(agent_id="many-%02d" % i, sequence=j + 1, first_seq=j * 20 + 1,
                               n=20) for j in range(10)]
            results[i] = h.stream(c.address, bs, token="test-token")
        threads = [threading.Thread(target=agent, args=(i,)) for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for i in range(24):
            acks, code, details = results[i]
            assert code.name == "OK" and [a.stored for a in acks] == [20] * 10, (i, code, details)

        # TLS: the server's certificate is verified against our CA as "localhost".
        k = c.stop()
        assert k["verdicts_stored"] == 1000 + 24 * 200 and k["acks_sent"] == 20 + 240, k
        c = h.Collector(binary, "sqlite:" + db,
                        tls={"cert": pki["server"] + ".pem", "key": pki["server"] + ".key"})
        tb = [h.make_batch(agent_id="agent-tls", host="host-tls", sequence=i + 1,
                           first_seq=i * 100 + 1, n=100) for i in range(5)]
        acks, code, details = h.stream(c.address, tb, token="test-token",
                                       tls={"ca": pki["ca"] + ".pem", "name": "localhost"})
        check_acks(acks, code, details, tb)
        # A client that does not trust the server's CA gets nowhere.
        acks, code, details = h.stream(c.address, tb[:1], token="test-token",
                                       tls={"ca": pki["otherca"] + ".pem", "name": "localhost"},
                                       timeout=5)
        assert code.name == "UNAVAILABLE" and not acks, (code, details)
        k = c.stop()
        assert k["verdicts_stored"] == 500 and k["err_tls_handshake"] >= 1, k

        rows = h.sqlite_rows(db, "SELECT agent_id, count(*), min(seq), max(seq) FROM verdicts "
                                 "WHERE agent_id NOT LIKE 'many-%' GROUP BY agent_id ORDER BY agent_id")
        assert rows == [("agent-1", 1000, 1, 1000), ("agent-tls", 500, 1, 500)], rows
        rows = h.sqlite_rows(db, "SELECT count(DISTINCT agent_id), count(*) FROM verdicts "
                                 "WHERE agent_id LIKE 'many-%'")
        assert rows == [(24, 4800)], rows
        row = h.sqlite_rows(db, "SELECT host, interface, src_addr, dst_addr, src_port, dst_port,"
                                " protocol, direction, stage, start_ns, packets_rev, bytes_rev,"
                                " class, round(confidence, 3), probs, model, model_version"
                                " FROM verdicts WHERE agent_id = 'agent-1' AND seq = 7")[0]
        want = ("host-a", "eth0", "10.0.0.7", "192.0.2.1", 40007, 443, 6, "outbound", "block",
                1764230400 * 10**9 + 7 * 10**9, 14, 1400, "file_transfer", 0.57)
        assert row[:14] == want, row
        probs = json.loads(row[14])
        assert probs == {"voip": 0.05, "video": 0.05, "file_transfer": 0.8, "chat": 0.05,
                         "browsing": 0.05}, probs
        assert row[15:] == ("lenet32", "1"), row
        ctr = h.sqlite_rows(db, "SELECT name, value, batch_seq FROM agent_counters ORDER BY name")
        assert ctr == [("packets.tcp", 1234, 20), ("stream.spooled", 0, 20)], ctr

        # The query command, JSON lines and filters.
        def q(*args):
            r = subprocess.run([binary, "query", "--db", "sqlite:" + db, *args],
                               capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            return [json.loads(l) for l in r.stdout.splitlines()]
        assert len(q()) == 1500 + 4800
        chat = q("--class", "chat", "--host", "host-a", "--agent", "agent-1")
        assert len(chat) == 200 and all(v["class"] == "chat" for v in chat)
        one = q("--flow", "src=10.0.0.7,dport=443,proto=tcp", "--limit", "2")
        assert len(q("--flow", "10.0.0.7")) == 2 + 24
        assert [(v["agent_id"], v["seq"]) for v in one] == [("agent-1", 7), ("agent-tls", 7)], one
        assert one[0]["probs"]["file_transfer"] == 0.8 and one[0]["sport"] == 40007
        t0 = 1764230400
        win = q("--since", str(t0 + 10), "--until", "2025-11-27T08:00:20Z", "--oldest-first",
                "--agent", "agent-1")
        assert [v["seq"] for v in win] == list(range(10, 20)), [v["seq"] for v in win]
        assert len(q("--limit", "3")) == 3
        # Comma lists, an unknown class refused, the time the collector stored a verdict.
        both = q("--class", "chat,file_transfer", "--agent", "agent-1,agent-tls")
        assert {v["class"] for v in both} == {"chat", "file_transfer"}, {v["class"] for v in both}
        assert len(both) == len(q("--class", "chat", "--agent", "agent-1,agent-tls")) + \
            len(q("--class", "file_transfer", "--agent", "agent-1,agent-tls"))
        assert {v["agent_id"] for v in both} == {"agent-1", "agent-tls"}
        assert len(q("--received-since", "-1h")) == 1500 + 4800
        assert q("--received-since", "-0s") == []
        for bad in (["--class", "foo"], ["--class", "chat,,video"], ["--since", "-213504d"]):
            r = subprocess.run([binary, "query", "--db", "sqlite:" + db, *bad],
                               capture_output=True, text=True)
            assert r.returncode == 2 and r.stdout == "" and bad[1] in r.stderr or \
                (r.returncode == 2 and "empty" in r.stderr), (bad, r.returncode, r.stderr)
        # No --db: the collector's default database, in the working folder.
        shutil.copy(db, os.path.join(d, "flowpic-verdicts.db"))
        r = subprocess.run([binary, "query", "--limit", "1"], capture_output=True, text=True,
                           cwd=d)
        assert r.returncode == 0 and len(r.stdout.splitlines()) == 1, r.stderr
        r = subprocess.run([binary, "query", "--db", "sqlite:" + db, "--table", "--limit", "2"],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "(2 verdicts)" in r.stdout, r.stdout
        r = subprocess.run([binary, "query", "--db", "sqlite:" + os.path.join(d, "none.db")],
                           capture_output=True, text=True)
        assert r.returncode == 1 and "none.db" in r.stderr, r.stderr
        reasons(binary, d)
        # --retention-days: the test's verdicts start on 2025-11-27, more than 7 days
        # ago; a collector started with 7 deletes them (SQLite: rows), and only them.
        keep = h.sqlite_rows(db, "SELECT count(*) FROM verdicts WHERE start_ns >= %d"
                             % ((time.time_ns() // 86400_000_000_000 - 7) * 86400_000_000_000))
        total = h.sqlite_rows(db, "SELECT count(*) FROM verdicts")
        assert total[0][0] > keep[0][0], (total, keep)
        c = h.Collector(binary, "sqlite:" + db, "--retention-days", "7")
        c.stop()
        assert h.sqlite_rows(db, "SELECT count(*) FROM verdicts") == keep, keep
        print("interop: ok (h2c 1000 verdicts and 24 agents at once, TLS 500 verdicts, query, "
              "reasons)")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
