#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Dedup: a verdict is stored once, whatever is resent.  The same batches sent
twice (a reconnect), a resend overlapping new verdicts, the same verdict
twice in one batch, a collector restart between the two sends, and counters
that keep the newest batch's value whatever order batches arrive in."""
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def crash_and_resend(binary, path):
    """SIGKILL mid-stream: every acknowledged batch is in the file; after a
    restart the agent resends everything and each verdict is stored once."""
    c = h.Collector(binary, "sqlite:" + path)
    batches = [h.make_batch(agent_id="crash", sequence=i + 1, first_seq=i * 50 + 1, n=50)
               for i in range(60)]

    def slow():
        for b in batches:
            yield b
            time.sleep(0.02)
    killer = threading.Timer(0.6, c.kill)
    killer.start()
    acks, code, det = h.stream(c.address, slow(), token="test-token")
    killer.join()
    assert code.name == "UNAVAILABLE", (code, det)
    assert 0 < len(acks) < 60, len(acks)
    acked = [a.sequence for a in acks]
    assert acked == list(range(1, len(acks) + 1)), acked
    rows = h.sqlite_rows(path, "SELECT count(*) FROM verdicts WHERE seq <= %d" % (50 * len(acks)))
    assert rows == [(50 * len(acks),)], ("acknowledged but not stored", rows, len(acks))
    c = h.Collector(binary, "sqlite:" + path)
    again, code, det = h.stream(c.address, batches, token="test-token")
    assert code.name == "OK", (code, det)
    assert all(a.duplicates == 50 for a in again[:len(acks)]), again[:len(acks)]
    assert all(a.stored + a.duplicates == 50 for a in again)
    c.stop()
    rows = h.sqlite_rows(path, "SELECT count(*), count(DISTINCT seq), max(seq) FROM verdicts")
    assert rows == [(3000, 3000, 3000)], rows


def main():
    binary = h.collector_binary()
    d = tempfile.mkdtemp(prefix="fpt-collector-dedup-")
    try:
        db = "sqlite:" + os.path.join(d, "v.db")
        c = h.Collector(binary, db)
        first = [h.make_batch(sequence=i + 1, first_seq=i * 40 + 1, n=40,
                              counters={"packets.tcp": 100 * (i + 1)}) for i in range(10)]
        acks, code, det = h.stream(c.address, first, token="test-token")
        assert code.name == "OK", (code, det)
        assert [(a.stored, a.duplicates) for a in acks] == [(40, 0)] * 10, acks

        # The collector restarts; the agent resends everything, then more.
        c.stop()
        c = h.Collector(binary, db)
        again = [h.make_batch(sequence=i + 1, first_seq=i * 40 + 1, n=40,
                              counters={"packets.tcp": 100 * (i + 1)}) for i in range(10)]
        # Overlap: seq 381..420 (20 old, 20 new), sequence 11.
        again.append(h.make_batch(sequence=11, first_seq=381, n=40,
                                  counters={"packets.tcp": 1100}))
        acks, code, det = h.stream(c.address, again, token="test-token")
        assert code.name == "OK", (code, det)
        got = [(a.sequence, a.stored, a.duplicates) for a in acks]
        assert got == [(i + 1, 0, 40) for i in range(10)] + [(11, 20, 20)], got

        # One batch carrying the same verdict twice, and a seq 0 (refused).
        b = h.make_batch(sequence=12, first_seq=421, n=3)
        b.verdicts.add().CopyFrom(b.verdicts[0])
        b.verdicts.add().CopyFrom(b.verdicts[1])
        b.verdicts[-1].seq = 0
        # An old batch arriving late must not roll the counters back.
        late = h.make_batch(sequence=5, first_seq=1, n=1, counters={"packets.tcp": 500})
        acks, code, det = h.stream(c.address, [b, late], token="test-token")
        assert code.name == "OK", (code, det)
        got = [(a.sequence, a.stored, a.duplicates, a.rejected) for a in acks]
        assert got == [(12, 3, 1, 1), (5, 0, 1, 0)], got

        # Another agent run (new run_id) numbers from 1 again: all new.
        r2 = [h.make_batch(run_id=2, sequence=1, first_seq=1, n=40)]
        acks, code, det = h.stream(c.address, r2, token="test-token")
        assert [(a.stored, a.duplicates) for a in acks] == [(40, 0)], acks

        k = c.stop()
        assert k["verdicts_stored"] == 20 + 3 + 40, k
        assert k["verdicts_duplicate"] == 400 + 20 + 1 + 1, k
        assert k["verdicts_rejected"] == 1, k
        path = db[len("sqlite:"):]
        rows = h.sqlite_rows(path, "SELECT run_id, count(*), count(DISTINCT seq), max(seq) "
                                   "FROM verdicts GROUP BY run_id")
        assert rows == [(1, 423, 423, 423), (2, 40, 40, 40)], rows
        ctr = h.sqlite_rows(path, "SELECT value, batch_seq FROM agent_counters "
                                  "WHERE run_id = 1 AND name = 'packets.tcp'")
        assert ctr == [(1100, 11)], ctr
        crash_and_resend(binary, os.path.join(d, "crash.db"))
        print("dedup: ok")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
