#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The store thread (issue 16): a slow database delays acks, never the loop.

PostgreSQL is made slow by another session holding a lock on the verdicts
table (as collector.store_faults holds SQLite's write lock), so the
collector's commit of agent A's batch blocks in the database.  Meanwhile:

1. a second agent's new TLS connection, its call with a batch and a PING
   are served within a short bound (before the store thread, the loop sat in
   the commit and the handshake waited for the lock);
2. once the lock goes, both batches are acknowledged and stored once (resent:
   all duplicates);
3. with --commit-max small, a third agent sending more than its HTTP/2
   window while the commit blocks is held back (its connection is not read
   while the next group is full: store_paused, TCP stops it) and is then
   stored whole, nothing refused, while a new connection is still served;
4. SIGTERM while a commit blocks: the group in flight is committed and
   acknowledged before the collector exits (0).

Usage: test_store_thread.py"""
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOKEN = "test-token"
LOCK_S = 6
PING_BOUND_MS = 1500


class TlsH2(h.RawH2):
    """RawH2 over TLS (ALPN h2), as an agent connects."""

    def __init__(self, address, ca):
        host, port = address.rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=ca)
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, int(port)), timeout=20)
        self.s = ctx.wrap_socket(raw, server_hostname="localhost")
        assert self.s.selected_alpn_protocol() == "h2"
        self.buf = b""
        self.s.sendall(h.PREFACE + h.h2_frame(self.SETTINGS, 0, 0))


def hold_lock(pg, seconds):
    """Another session holds verdicts in EXCLUSIVE mode (reads go on, writes
    wait) for seconds; returns the psql process once the lock is granted."""
    p = subprocess.Popen(["psql", "-X", "-q", "-h", pg.sock, "-U", "flowpic", "-d", "postgres",
                          "-c", "BEGIN; LOCK TABLE verdicts IN EXCLUSIVE MODE; "
                          "SELECT pg_sleep(%g); COMMIT;" % seconds],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    end = time.time() + 20
    while time.time() < end:
        n = pg.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = 'verdicts' AND l.mode = 'ExclusiveLock' AND l.granted")
        if n == [["1"]]:
            return p
        time.sleep(0.05)
    p.kill()
    raise AssertionError("the lock was not granted: " + p.stderr.read())


def wait_blocked(pg):
    """Until a collector's INSERT waits for the lock."""
    end = time.time() + 20
    while time.time() < end:
        n = pg.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%INSERT INTO verdicts%'")
        if n != [["0"]]:
            return
        time.sleep(0.05)
    raise AssertionError("no commit waits for the lock")


def in_thread(fn, *args):
    out = {}

    def run():
        t0 = time.monotonic()
        out["r"] = fn(*args)
        out["s"] = time.monotonic() - t0
    t = threading.Thread(target=run)
    t.start()
    return t, out


def call_on(conn, batch, sid=1, end=True):
    conn.send(h.h2_frame(conn.HEADERS, 0x4, sid, h.grpc_request_headers(TOKEN)) +
              h.h2_frame(conn.DATA, 0x1 if end else 0, sid,
                         h.grpc_msg(batch.SerializeToString())))


def acks_of(frames, sid=1):
    body = b"".join(p for t, f, s, p in frames if t == h.RawH2.DATA and s == sid)
    return [h.pb().Ack.FromString(m) for m in h.grpc_split(body)]


def rows(pg, agent):
    return pg.psql("SELECT count(*), count(DISTINCT seq) FROM verdicts WHERE agent_id = '%s'"
                   % agent)


def main():
    binary = h.collector_binary()
    d = tempfile.mkdtemp(prefix="fpt-collector-storethread-")
    h._cleanup.append(d)
    pki = h.make_pki(d)
    tls = {"cert": pki["server"] + ".pem", "key": pki["server"] + ".key"}
    gtls = {"ca": pki["ca"] + ".pem", "name": "localhost"}
    pg = h.PgServer()
    try:
        c = h.Collector(binary, pg.url, token=TOKEN, tls=tls)
        # Today's partition and the session's statements exist.
        acks, code, det = h.stream(c.address, [h.make_batch(agent_id="warm", n=1)],
                                   token=TOKEN, tls=gtls)
        assert code.name == "OK", (code, det)

        # 1. A's commit blocks; B connects, calls and pings meanwhile.
        a_batch = h.make_batch(agent_id="A", n=20)
        b_batch = h.make_batch(agent_id="B", n=15)
        locker = hold_lock(pg, LOCK_S)
        t_lock = time.monotonic()
        ta, ra = in_thread(h.stream, c.address, [a_batch], TOKEN, gtls)
        wait_blocked(pg)
        t0 = time.monotonic()
        b = TlsH2(c.address, pki["ca"] + ".pem")
        tls_ms = (time.monotonic() - t0) * 1000
        call_on(b, b_batch)
        b.send(h.h2_frame(b.PING, 0, 0, b"storethr"))
        seen, _ = b.frames(lambda t, f, s, p: t == b.PING and f & 1, timeout=20)
        ping_ms = (time.monotonic() - t0) * 1000
        k_mid = c.counters()
        still_locked = locker.poll() is None
        print("  A's commit blocked by a lock: B's TLS handshake in %.0f ms, TLS + call + "
              "PING in %.0f ms (bound %d ms; lock still held: %s); store_inflight %d, "
              "queued %d batches" % (tls_ms, ping_ms, PING_BOUND_MS, still_locked,
                                     k_mid.get("store_inflight", -1),
                                     k_mid.get("store_queued_batches", -1)))
        if not any(t == b.HEADERS and f & 1 and s == 1 for t, f, s, p in seen):
            seen += b.frames(lambda t, f, s, p: t == b.HEADERS and f & 1 and s == 1,
                             timeout=30)[0]
        b.close()
        locker.wait(30)
        ta.join(30)
        acks, code, det = ra["r"]
        b_acks = acks_of(seen)
        print("  after the lock (%.1f s): A %s in %.1f s, acks %s; B acks %s" %
              (time.monotonic() - t_lock, code.name, ra["s"],
               [(x.stored, x.duplicates) for x in acks],
               [(x.stored, x.duplicates) for x in b_acks]))
        assert ping_ms < PING_BOUND_MS, "B waited %.0f ms behind A's commit" % ping_ms
        assert still_locked, "the lock ended before B was served: no test"
        assert k_mid["store_inflight"] == 1, k_mid
        assert code.name == "OK" and [(x.stored, x.duplicates) for x in acks] == [(20, 0)], \
            (code, det, acks)
        assert [(x.stored, x.duplicates) for x in b_acks] == [(15, 0)], b_acks
        assert rows(pg, "A") == [["20", "20"]] and rows(pg, "B") == [["15", "15"]]
        # Resent: duplicates, nothing stored twice.
        for bt, n in ((a_batch, 20), (b_batch, 15)):
            acks, code, det = h.stream(c.address, [bt], token=TOKEN, tls=gtls)
            assert code.name == "OK" and [(x.stored, x.duplicates) for x in acks] == \
                [(0, n)], (code, det, acks)
        assert rows(pg, "A") == [["20", "20"]] and rows(pg, "B") == [["15", "15"]]
        k = c.stop()
        print("  counters: commits %d, store_thread_ms %d, err_store %d, err_idle_timeout %d"
              % (k["commits"], k["store_thread_ms"], k["err_store"], k["err_idle_timeout"]))
        assert k["err_store"] == 0 and k["err_store_batch"] == 0, k
        assert k["store_thread_ms"] >= (LOCK_S - 2) * 1000, k
        assert k["store_inflight"] == 0 and k["store_queued_batches"] == 0, k

        # 3. The next group full while one blocks: the agent's connection is
        # not read (more than its 1 MiB window is sent); all stored once after.
        c = h.Collector(binary, pg.url, "--commit-max", "100", token=TOKEN, tls=tls)
        many = [h.make_batch(agent_id="D", sequence=i + 1, first_seq=i * 200 + 1, n=200)
                for i in range(60)]
        size = sum(len(x.SerializeToString()) for x in many)
        locker = hold_lock(pg, 3)
        ta, ra = in_thread(h.stream, c.address, [h.make_batch(agent_id="A2", n=5)], TOKEN,
                           gtls)
        wait_blocked(pg)
        td, rd = in_thread(h.stream, c.address, many, TOKEN, gtls, 60)
        t0 = time.monotonic()
        b = TlsH2(c.address, pki["ca"] + ".pem")
        b.send(h.h2_frame(b.PING, 0, 0, b"heldwind"))
        b.frames(lambda t, f, s, p: t == b.PING and f & 1, timeout=20)
        ping2_ms = (time.monotonic() - t0) * 1000
        b.close()
        locker.wait(30)
        ta.join(30)
        td.join(90)
        acks, code, det = rd["r"]
        k = c.stop()
        print("  --commit-max 100, %d KiB sent while a commit blocked: D %s, %d acks, stored "
              "%d; store_paused %d, err_store_busy %d; a new TLS connection's PING "
              "in %.0f ms" % (size // 1024, code.name, len(acks),
                              sum(x.stored for x in acks), k["store_paused"],
                              k["err_store_busy"], ping2_ms))
        assert size > 1 << 20, size
        assert code.name == "OK" and len(acks) == 60 and \
            sum(x.stored for x in acks) == 12000, (code, det, len(acks))
        assert ra["r"][1].name == "OK", ra
        assert k["store_paused"] > 0 and k["err_store_busy"] == 0, k
        assert ping2_ms < PING_BOUND_MS, ping2_ms
        assert rows(pg, "D") == [["12000", "12000"]], rows(pg, "D")

        # 4. SIGTERM while a commit blocks: drained, acknowledged, exit 0.
        c = h.Collector(binary, pg.url, token=TOKEN, tls=tls)
        acks, code, det = h.stream(c.address, [h.make_batch(agent_id="warm2", n=1)],
                                   token=TOKEN, tls=gtls)
        assert code.name == "OK", (code, det)
        e = TlsH2(c.address, pki["ca"] + ".pem")
        locker = hold_lock(pg, 3)
        call_on(e, h.make_batch(agent_id="E", n=12), end=False)
        wait_blocked(pg)
        c.p.send_signal(15)
        seen, closed = e.frames(lambda t, f, s, p: t == e.GOAWAY, timeout=30)
        e.close()
        locker.wait(30)
        out, _ = c.p.communicate(timeout=30)
        c.err.close()
        e_acks = acks_of(seen)
        print("  SIGTERM during a blocked commit: exit %d, E's acks %s, then GOAWAY; rows %s"
              % (c.p.returncode, [(x.stored, x.duplicates) for x in e_acks], rows(pg, "E")))
        assert c.p.returncode == 0, c.stderr()
        assert [(x.stored, x.duplicates) for x in e_acks] == [(12, 0)], e_acks
        assert rows(pg, "E") == [["12", "12"]]
        print("store thread: ok")
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
