#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Interop and fault tests of the verdict stream (docs/stream.md): our
flowpic-send streams to a Python gRPC server (Debian's python3-grpcio,
grpc_server.py) in cleartext, TLS and mutual TLS; the server is killed and
restarted mid-stream; the spool fills up; the token is wrong; a token without
TLS beyond loopback is warned about (cleartext-token: root, its own network
namespace).

With --collector, the same against flowpic-collector (SQLite): killed and
restarted mid-stream (every verdict stored exactly once), mutual TLS with a
token (a wrong token refused, nothing lost).

Usage: interop.py --send PATH/flowpic-send [--collector PATH] SCENARIO
Scenarios: clear tls mtls kill stall spool-limit token cleartext-token collector-kill
collector-mtls classify
Exit status 0 = pass; anything else says what failed (one line per check).
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL: " + what, flush=True)
    return cond


def verdict_lines(n, start=1):
    """n verdicts: the minimal JSON form, and every 7th in `flowpic classify --json` form."""
    out = []
    for i in range(start, start + n):
        if i % 7 == 0:
            out.append(json.dumps({
                "file": "demo.pcap", "flow_id": i, "proto": "udp", "src": "10.77.0.1", "sport": 5000 + i % 1000,
                "dst": "10.77.0.2", "dport": 5004, "packets": 3 * i, "bytes": 100 * i,
                "packets_fwd": i, "packets_rev": 2 * i, "bytes_fwd": 40 * i, "bytes_rev": 60 * i,
                "payload_bytes_fwd": 20 * i, "payload_bytes_rev": 30 * i,
                "start": 1795767794.793470000, "start_ns": 1795767794793470000 + i,
                "duration": 62.5, "blocks": 2, "end": "input", "class": "voip",
                "confidence": 0.5, "probs": [0.5, 0.25, 0.125, 0.0625, 0.0625], "early": False}))
        else:
            out.append(json.dumps({
                "interface": "eth%d" % (i % 3), "src_addr": "192.0.2.%d" % (i % 250 + 1),
                "dst_addr": "2001:db8::%x" % i, "src_port": 1024 + i % 60000, "dst_port": 443,
                "protocol": 6, "direction": "inbound" if i % 2 else "outbound", "flow_id": i,
                "stage": ["early", "block", "final"][i % 3], "start_unix_ns": 1795767794000000000 + i,
                "duration_ns": 60 * 10**9, "packets_fwd": i, "packets_rev": i + 1,
                "payload_bytes_fwd": 1000 * i, "payload_bytes_rev": 7, "block_index": i % 5, "blocks": 1,
                "class_name": "video", "confidence": 0.75, "probs": [0.0, 0.75, 0.25]}))
    return "\n".join(out) + "\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, tmp, store, port=0, tls=None, client_ca=None, token=None):
        cmd = [PY, os.path.join(HERE, "grpc_server.py"), "--pyout", os.path.join(tmp, "py"),
               "--store", store, "--port", str(port), "--log", store + ".batches"]
        if tls:
            cmd += ["--tls", tls[0], tls[1]]
        if client_ca:
            cmd += ["--client-ca", client_ca]
        if token:
            cmd += ["--token", token]
        self.err = open(os.path.join(tmp, "server.err"), "a")
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("listening "):
            self.p.kill()
            raise SystemExit("the Python gRPC server did not start (see %s/server.err)" % tmp)
        self.port = int(line.split()[1])

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            self.p.wait(timeout=20)


def send(tool, args, stdin_text="", timeout=120):
    p = subprocess.run([tool, "--json"] + args, input=stdin_text, capture_output=True,
                       text=True, timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    return p.returncode, send_counters(lines[-1]) if lines else {}, p.stderr


def send_counters(line):
    """flowpic-send --json's {"seconds":..,"counters":{"stream.acked":..,..},"type":"counters"},
    the stream's counters without their "stream." prefix."""
    return {k[7:] if k.startswith("stream.") else k: v
            for k, v in json.loads(line)["counters"].items()}


def stored(store):
    """(agent_id, run_id, seq) -> record, and how many lines (a key twice = stored twice)."""
    recs, lines = {}, 0
    if os.path.exists(store):
        for line in open(store):
            d = json.loads(line)
            recs[(d["agent_id"], d["run_id"], d["seq"])] = d
            lines += 1
    return recs, lines


def spool_verdicts(d):
    """Read a spool directory with an independent reader of the format: good records' verdicts."""
    total = 0
    for name in sorted(os.listdir(d)):
        if not (name.startswith("seg-") and name.endswith(".fps")):
            continue
        b = open(os.path.join(d, name), "rb").read()
        if b[:8] != b"FPSPOOL1":
            continue
        off = 16
        while off + 24 <= len(b):
            if b[off:off + 4] != b"FPSR":
                break
            ln = int.from_bytes(b[off + 4:off + 8], "little")
            nv = int.from_bytes(b[off + 8:off + 12], "little")
            crc = int.from_bytes(b[off + 12:off + 16], "little")
            payload = b[off + 24:off + 24 + ln]
            c = zlib.crc32(b[off + 4:off + 12])
            c = zlib.crc32(b[off + 16:off + 24], c)
            c = zlib.crc32(payload, c)
            if len(payload) < ln or c != crc:
                break
            total += nv
            off += 24 + ln
    return total


def expect_all(store, n, run_id, agent="flowpic-send"):
    recs, lines = stored(store)
    mine = sorted(k[2] for k in recs if k[0] == agent and k[1] == run_id)
    check(mine == list(range(1, n + 1)),
          "server stored seq 1..%d of run %d exactly (got %d verdicts, first missing %s)"
          % (n, run_id, len(mine), next((i for i in range(1, n + 1) if i not in set(mine)), None)))
    check(lines == len(recs), "each verdict stored once (%d lines, %d identities)"
          % (lines, len(recs)))
    return recs


def check_fields(recs, run_id):
    """A few verdicts field by field against what was sent."""
    d = recs.get(("flowpic-send", run_id, 8))
    if check(d is not None, "verdict 8 stored"):
        check(d["src"] == "c0000209" and d["dst"] == "20010db8000000000000000000000008",
              "verdict 8 addresses (IPv4 as 4 bytes, IPv6 as 16): %s %s" % (d["src"], d["dst"]))
        check(d["sport"] == 1032 and d["dport"] == 443 and d["protocol"] == 6,
              "verdict 8 ports/protocol")
        check(d["direction"] == 1 and d["stage"] == 3 and d["flow_id"] == 8
              and d["block_index"] == 3, "verdict 8 direction/stage/flow/block")
        check(d["start_unix_ns"] == 1795767794000000008 and d["duration_ns"] == 60 * 10**9,
              "verdict 8 span times (ns exact)")
        check(d["class_name"] == "video" and d["confidence"] == 0.75
              and d["probs"] == [0.0, 0.75, 0.25], "verdict 8 class/confidence/probs")
        check(d["interface"] == "eth2", "verdict 8 interface")
        check(d["counters"].get("stream.submitted", 0) >= 1, "batch counters carried")
    d = recs.get(("flowpic-send", run_id, 7))
    if check(d is not None, "verdict 7 (classify --json form) stored"):
        check(d["src"] == "0a4d0001" and d["sport"] == 5007 and d["protocol"] == 17
              and d["class_name"] == "voip" and d["stage"] == 3 and d["flow_id"] == 7
              and d["start_unix_ns"] == 1795767794793470007
              and d["duration_ns"] == 62500000000 and d["interface"] == "demo.pcap",
              "verdict 7 fields from the classify form: %s" % d)


def make_certs(tmp):
    def ossl(*a):
        subprocess.run(["openssl"] + list(a), check=True, capture_output=True)
    c = {}
    for ca in ("ca", "otherca"):
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=fpt-stream-" + ca, "-keyout", os.path.join(tmp, ca + ".key"),
             "-out", os.path.join(tmp, ca + ".pem"))
    ext = os.path.join(tmp, "san.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, ca in (("server", "ca"), ("client", "ca"), ("stranger", "otherca")):
        key, csr, pem = (os.path.join(tmp, name + s) for s in (".key", ".csr", ".pem"))
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=fpt-stream-" + name,
             "-keyout", key, "-out", csr)
        ossl("x509", "-req", "-in", csr, "-CA", os.path.join(tmp, ca + ".pem"), "-CAkey",
             os.path.join(tmp, ca + ".key"), "-CAcreateserial", "-days", "2", "-out", pem,
             "-extfile", ext)
        c[name] = (pem, key)
    c["ca"] = os.path.join(tmp, "ca.pem")
    c["otherca"] = os.path.join(tmp, "otherca.pem")
    return c


def counters_ok(c, n, what):
    check(c.get("submitted") == n and c.get("acked") == n and c.get("spooled") == 0
          and c.get("dropped") == 0, "%s: submitted = acked = %d, nothing spooled or dropped: %s"
          % (what, n, c))


def scenario_clear(tool, tmp):
    store = os.path.join(tmp, "store.jsonl")
    srv = Server(tmp, store)
    try:
        n = 3000
        rc, c, err = send(tool, ["--collector", "127.0.0.1:%d" % srv.port, "--batch", "100",
                                 "--run-id", "11", "--model", "lenet32", "--classes",
                                 "voip,video,file_transfer,chat,browsing"], verdict_lines(n))
        check(rc == 0, "flowpic-send exit 0 (got %d): %s" % (rc, err.strip()))
        counters_ok(c, n, "cleartext")
        check(c.get("batches_acked") == 30, "30 batches of 100 acknowledged")
        check(c.get("stored") == n and c.get("duplicates") == 0, "Ack.stored sums to %d" % n)
        recs = expect_all(store, n, 11)
        check_fields(recs, 11)
        d = recs.get(("flowpic-send", 11, 1), {})
        check(d.get("model") == "lenet32" and len(d.get("classes", [])) == 5, "model in batches")
        # Counters: in the first batch, then at most every 10 s (not in all 30).
        carried = sorted({r["batch"] for r in recs.values() if r["counters"]})
        check(carried[:1] == [1] and len(carried) <= 4,
              "counters in batch 1 and then at most every 10 s: batches %s" % carried)
        # Bad lines: each reported with file:line, the rest sent.
        bad = "not json\n" + verdict_lines(2) + '{"class":"x","src":"300.1.1.1"}\n{"file":"x","type":"summary"}\n'
        rc, c, err = send(tool, ["--collector", "127.0.0.1:%d" % srv.port, "--run-id", "12"], bad)
        check(rc == 5 and c.get("lines_bad") == 2 and c.get("lines_skipped") == 1
              and c.get("acked") == 2, "bad lines: exit 5, 2 bad, 1 summary skipped, 2 sent: rc %d %s"
              % (rc, c))
        check("-:1: expected a JSON object at byte 1" in err and "-:4: \"src\": not an IPv4" in err,
              "bad lines reported as FILE:LINE: what: %r" % err)
    finally:
        srv.stop()


def scenario_tls(tool, tmp, mutual):
    certs = make_certs(tmp)
    store = os.path.join(tmp, "store.jsonl")
    srv = Server(tmp, store, tls=certs["server"], client_ca=certs["ca"] if mutual else None)
    try:
        n = 1000
        args = ["--collector", "127.0.0.1:%d" % srv.port, "--ca", certs["ca"], "--batch", "64",
                "--run-id", "21"]
        if mutual:
            args += ["--cert", certs["client"][0], "--key", certs["client"][1]]
        rc, c, err = send(tool, args, verdict_lines(n))
        check(rc == 0, "TLS%s: exit 0 (got %d): %s" % (" mutual" if mutual else "", rc, err.strip()))
        counters_ok(c, n, "mTLS" if mutual else "TLS")
        expect_all(store, n, 21)
        # The collector's certificate from another CA: refused, nothing lost.
        spool = os.path.join(tmp, "spool-wrongca")
        rc, c, err = send(tool, ["--collector", "127.0.0.1:%d" % srv.port, "--ca", certs["otherca"],
                                 "--run-id", "22", "--spool", spool, "--timeout", "1500",
                                 "--backoff-initial", "200"] +
                          (["--cert", certs["client"][0], "--key", certs["client"][1]] if mutual else []),
                          verdict_lines(50))
        check(rc == 3 and c.get("spooled") == 50 and c.get("acked") == 0,
              "server certificate of another CA: exit 3, all 50 spooled: rc %d %s" % (rc, c))
        check("certificate" in err, "the refusal names the certificate: %r" % err.strip())
        if mutual:
            for label, extra in (("no client certificate", []),
                                 ("client certificate of another CA",
                                  ["--cert", certs["stranger"][0], "--key", certs["stranger"][1]])):
                spool = os.path.join(tmp, "spool-" + label.replace(" ", "-"))
                rc, c, err = send(tool, ["--collector", "127.0.0.1:%d" % srv.port, "--ca", certs["ca"],
                                         "--run-id", "23", "--spool", spool, "--timeout", "1500",
                                         "--backoff-initial", "200"] + extra, verdict_lines(40))
                check(rc == 3 and c.get("spooled") == 40 and c.get("acked") == 0
                      and c.get("connect_failures", 0) >= 1,
                      "mTLS, %s: refused, exit 3, all 40 spooled: rc %d %s" % (label, rc, c))
                check(err.strip() != "", "mTLS, %s: the refusal is reported" % label)
            recs, _ = stored(store)
            check(not any(k[1] == 23 for k in recs), "refused clients stored nothing")
    finally:
        srv.stop()


def scenario_kill(tool, tmp):
    store = os.path.join(tmp, "store.jsonl")
    spool = os.path.join(tmp, "spool")
    srv = Server(tmp, store)
    port = srv.port
    n = 6000
    inp = os.path.join(tmp, "verdicts.jsonl")
    with open(inp, "w") as f:
        f.write(verdict_lines(n))
    p = subprocess.Popen([tool, "--json", "--collector", "127.0.0.1:%d" % port, "--run-id", "31",
                          "--batch", "50", "--delay", "100", "--rate", "2000", "--spool", spool,
                          "--backoff-initial", "200", "--backoff-max", "1000",
                          "--timeout", "20000", inp], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        srv.stop(signal.SIGKILL)
        before, _ = stored(store)
        time.sleep(1.2)
        srv = Server(tmp, store, port=port)
        out, err = p.communicate(timeout=90)
        c = send_counters([l for l in out.splitlines() if l.startswith("{")][-1])
        check(p.returncode == 0, "kill/restart: exit 0 (got %d): %s" % (p.returncode, err.strip()))
        counters_ok(c, n, "kill/restart")
        check(0 < len(before) < n, "the server was killed mid-stream (%d of %d stored before)"
              % (len(before), n))
        check(c.get("reconnects", 0) >= 1 and c.get("connect_failures", 0) >= 1,
              "reconnected after failures: %s" % c)
        check(c.get("stored", 0) + c.get("duplicates", 0) == n,
              "acks: stored + duplicates = %d (%s)" % (n, c))
        check(c.get("stored", 0) + len(before) >= n, "stored by the restarted server + before >= n")
        expect_all(store, n, 31)
    finally:
        if p.poll() is None:
            p.kill()
        srv.stop()


def scenario_stall(tool, tmp):
    """A server that stops answering (SIGSTOP): no acknowledgement within --ack-timeout
    -> reconnect with backoff, batches spooled; it comes back (SIGCONT): all delivered once."""
    store = os.path.join(tmp, "store.jsonl")
    spool = os.path.join(tmp, "spool")
    srv = Server(tmp, store)
    n = 3000
    inp = os.path.join(tmp, "verdicts.jsonl")
    with open(inp, "w") as f:
        f.write(verdict_lines(n))
    p = subprocess.Popen([tool, "--json", "--collector", "127.0.0.1:%d" % srv.port, "--run-id", "91",
                          "--batch", "50", "--delay", "100", "--rate", "1500", "--spool", spool,
                          "--ack-timeout", "800", "--connect-timeout", "800",
                          "--backoff-initial", "200", "--backoff-max", "500",
                          "--timeout", "20000", inp],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.7)
        srv.p.send_signal(signal.SIGSTOP)
        time.sleep(2.5)
        srv.p.send_signal(signal.SIGCONT)
        out, err = p.communicate(timeout=90)
        c = send_counters([l for l in out.splitlines() if l.startswith("{")][-1])
        check(p.returncode == 0, "stall: exit 0 (got %d): %s" % (p.returncode, err.strip()))
        counters_ok(c, n, "stall")
        check("no acknowledgement for 800 ms" in err, "the stall is reported: %r" % err.strip())
        check(c.get("spooled_total", 0) > 0 and c.get("reconnects", 0) >= 1,
              "spooled while stalled, reconnected: %s" % c)
        expect_all(store, n, 91)
    finally:
        if p.poll() is None:
            p.kill()
        srv.p.send_signal(signal.SIGCONT)
        srv.stop()


def scenario_spool_limit(tool, tmp):
    spool = os.path.join(tmp, "spool")
    port = free_port()
    n = 2000
    rc, c, err = send(tool, ["--collector", "127.0.0.1:%d" % port, "--run-id", "41", "--batch", "20",
                             "--delay", "10", "--spool", spool, "--spool-max", "40K",
                             "--segment", "8K", "--timeout", "300", "--backoff-initial", "100"],
                      verdict_lines(n))
    on_disk = spool_verdicts(spool)
    check(rc == 4, "spool limit: exit 4 (dropped), got %d: %s" % (rc, err.strip()))
    check(c.get("dropped", 0) > 0 and c.get("spooled", 0) > 0,
          "some spooled, some dropped: %s" % c)
    check(c.get("submitted") == c.get("spooled", 0) + c.get("dropped", 0),
          "submitted = spooled + dropped exactly: %s" % c)
    check(on_disk == c.get("spooled"), "verdicts in the spool files (%d) = counter spooled (%d)"
          % (on_disk, c.get("spooled", -1)))
    size = sum(os.path.getsize(os.path.join(spool, f)) for f in os.listdir(spool))
    check(size <= 40 * 1024, "spool within its limit: %d bytes" % size)
    check("dropping batches" in err, "the drops are reported: %r" % err)
    # Replay: the collector is back; the spool drains, in order, and is deleted.
    store = os.path.join(tmp, "store.jsonl")
    srv = Server(tmp, store, port=port)
    try:
        rc, c2, err = send(tool, ["--collector", "127.0.0.1:%d" % port, "--spool", spool], "")
        check(rc == 0 and c2.get("replayed") == on_disk and c2.get("acked") == on_disk
              and c2.get("spooled") == 0, "replay: every spooled verdict acknowledged: rc %d %s"
              % (rc, c2))
        recs, lines = stored(store)
        mine = sorted(k[2] for k in recs if k[1] == 41)
        check(len(mine) == on_disk and lines == len(recs),
              "server stored the %d spooled verdicts once" % on_disk)
        check(n - len(mine) == c.get("dropped"), "lost = dropped exactly (%d)" % (n - len(mine)))
        batches = [int(l.split()[2]) for l in open(store + ".batches")]
        check(batches == sorted(batches), "replayed in order")
        check(not [f for f in os.listdir(spool) if f.endswith(".fps")],
              "spool segments deleted once acknowledged")
    finally:
        srv.stop()


def scenario_token(tool, tmp):
    store = os.path.join(tmp, "store.jsonl")
    spool = os.path.join(tmp, "spool")
    srv = Server(tmp, store, token="s3cret-token")
    try:
        n = 500
        rc, c, err = send(tool, ["--collector", "127.0.0.1:%d" % srv.port, "--run-id", "51",
                                 "--token", "wrong-token", "--spool", spool, "--timeout", "1500",
                                 "--backoff-initial", "200"], verdict_lines(n))
        check(rc == 3, "wrong token: exit 3 (kept in the spool), got %d" % rc)
        check("UNAUTHENTICATED" in err and "access token not accepted" in err,
              "wrong token reported clearly: %r" % err.strip())
        check(len(err.strip().splitlines()) <= 3, "reported once, not per retry: %r" % err)
        check(c.get("refusals", 0) >= 1 and c.get("spooled") == n and c.get("dropped") == 0
              and c.get("acked") == 0, "nothing lost, all %d spooled: %s" % (n, c))
        check(not stored(store)[0], "nothing stored with a wrong token")
        tokf = os.path.join(tmp, "token")
        with open(tokf, "w") as f:
            f.write("  s3cret-token \n")
        rc, c, err = send(tool, ["--collector", "127.0.0.1:%d" % srv.port, "--token-file", tokf,
                                 "--spool", spool], "")
        check(rc == 0 and c.get("acked") == n, "right token: the spool is delivered: rc %d %s"
              % (rc, c))
        expect_all(store, n, 51)
    finally:
        srv.stop()


def scenario_cleartext_token(tool, tmp):
    """A token sent without TLS beyond loopback is warned about, once; not on loopback.
    Runs in a network namespace of its own (root) with a veth pair, so the
    non-loopback address is real and no packet leaves the host."""
    import ctypes
    import threading
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        raise SystemExit("unshare(CLONE_NEWNET): %s (this scenario needs root)"
                         % os.strerror(ctypes.get_errno()))
    for cmd in (["ip", "link", "set", "lo", "up"],
                ["ip", "link", "add", "fpt-ct0", "type", "veth", "peer", "name", "fpt-ct1"],
                ["ip", "addr", "add", "198.18.0.1/24", "dev", "fpt-ct0"],
                ["ip", "link", "set", "fpt-ct0", "up"],
                ["ip", "link", "set", "fpt-ct1", "up"]):
        subprocess.run(cmd, check=True)

    def listener(addr):
        ls = socket.socket()
        ls.bind((addr, 0))
        ls.listen(16)

        def serve():  # accept and hang up: the warning comes with the TCP connection
            while True:
                try:
                    c, _ = ls.accept()
                except OSError:
                    return
                c.close()
        threading.Thread(target=serve, daemon=True).start()
        return ls

    warning = "the access token goes in cleartext"
    for addr, want in (("198.18.0.1", 1), ("127.0.0.1", 0)):
        ls = listener(addr)
        rc, c, err = send(tool, ["--collector", "%s:%d" % (addr, ls.getsockname()[1]), "--token", "tok",
                                 "--timeout", "1500", "--backoff-initial", "100"],
                          verdict_lines(3))
        ls.close()
        check(err.count(warning) == want,
              "token without TLS to %s: %d warning(s) wanted over %d connection attempts: %r"
              % (addr, want, c.get("connect_failures", 0) + c.get("connects", 0), err))
        check(c.get("connect_failures", 0) >= 2, "%s: reconnected (%s)" % (addr, c))
    ls = listener("198.18.0.1")
    rc, c, err = send(tool, ["--collector", "198.18.0.1:%d" % ls.getsockname()[1], "--timeout", "500"],
                      verdict_lines(3))
    ls.close()
    check(warning not in err, "no token: no warning: %r" % err)


class Collector:
    """flowpic-collector (collector/) with a SQLite store."""

    def __init__(self, path, tmp, db, port=0, args=()):
        self.err = open(os.path.join(tmp, "collector.err"), "a")
        self.p = subprocess.Popen([path, "--listen", "127.0.0.1:%d" % port, "--db",
                                   "sqlite:" + db] + list(args), stdout=subprocess.PIPE,
                                  stderr=self.err, text=True)
        line = self.p.stdout.readline()
        try:
            ev = json.loads(line)
            self.port = int(ev["address"].rsplit(":", 1)[1])
        except (ValueError, KeyError):
            self.p.kill()
            raise SystemExit("flowpic-collector did not start (%r; see %s/collector.err)"
                             % (line, tmp))

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            self.p.wait(timeout=30)


def db_seqs(db, run_id):
    import sqlite3
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT seq FROM verdicts WHERE agent_id = 'flowpic-send' AND "
                           "run_id = ? ORDER BY seq", (run_id,)).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def scenario_collector_kill(tool, collector, tmp):
    """The collector killed (-9) mid-stream and restarted: every verdict stored once in SQLite."""
    db = os.path.join(tmp, "verdicts.db")
    spool = os.path.join(tmp, "spool")
    tokf = os.path.join(tmp, "token")
    with open(tokf, "w") as f:
        f.write("fpt-stream-token\n")
    col = Collector(collector, tmp, db, args=["--token-file", tokf])
    port = col.port
    n = 6000
    inp = os.path.join(tmp, "verdicts.jsonl")
    with open(inp, "w") as f:
        f.write(verdict_lines(n))
    p = subprocess.Popen([tool, "--json", "--collector", "127.0.0.1:%d" % port, "--run-id", "61",
                          "--token-file", tokf, "--batch", "50", "--delay", "100",
                          "--rate", "2000", "--spool", spool, "--backoff-initial", "200",
                          "--backoff-max", "1000", "--timeout", "20000", inp],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        col.stop(signal.SIGKILL)
        before = len(db_seqs(db, 61))
        time.sleep(1.2)
        col = Collector(collector, tmp, db, port=port, args=["--token-file", tokf])
        out, err = p.communicate(timeout=90)
        c = send_counters([l for l in out.splitlines() if l.startswith("{")][-1])
        check(p.returncode == 0, "collector kill/restart: exit 0 (got %d): %s"
              % (p.returncode, err.strip()))
        counters_ok(c, n, "collector kill/restart")
        check(0 < before < n, "killed mid-stream (%d of %d stored before)" % (before, n))
        check(c.get("reconnects", 0) >= 1, "reconnected: %s" % c)
        check(c.get("stored", 0) + c.get("duplicates", 0) == n,
              "acks: stored + duplicates = %d: %s" % (n, c))
        seqs = db_seqs(db, 61)
        check(seqs == list(range(1, n + 1)), "SQLite holds seq 1..%d exactly once (%d rows)"
              % (n, len(seqs)))
    finally:
        if p.poll() is None:
            p.kill()
        col.stop()


def scenario_collector_mtls(tool, collector, tmp):
    """Mutual TLS and a token against the real collector; a wrong token refused and spooled."""
    certs = make_certs(tmp)
    db = os.path.join(tmp, "verdicts.db")
    col = Collector(collector, tmp, db, args=[
        "--tls-cert", certs["server"][0], "--tls-key", certs["server"][1],
        "--client-ca", certs["ca"], "--token", "fpt-stream-ok"])
    try:
        base = ["--collector", "127.0.0.1:%d" % col.port, "--ca", certs["ca"], "--cert",
                certs["client"][0], "--key", certs["client"][1]]
        spool = os.path.join(tmp, "spool")
        rc, c, err = send(tool, base + ["--token", "fpt-stream-bad", "--run-id", "71",
                                        "--spool", spool, "--timeout", "1500",
                                        "--backoff-initial", "200"], verdict_lines(300))
        check(rc == 3 and c.get("spooled") == 300 and c.get("refusals", 0) >= 1,
              "wrong token: refused, all 300 spooled: rc %d %s" % (rc, c))
        check("UNAUTHENTICATED" in err, "refusal reported: %r" % err.strip())
        check(db_seqs(db, 71) == [], "nothing stored with a wrong token")
        rc, c, err = send(tool, base + ["--token", "fpt-stream-ok", "--spool", spool],
                          "")
        check(rc == 0 and c.get("acked") == 300, "right token: spool delivered: rc %d %s %s"
              % (rc, c, err.strip()))
        check(db_seqs(db, 71) == list(range(1, 301)), "SQLite holds the 300 verdicts once")
    finally:
        col.stop()


def scenario_classify(tool, flowpic, tmp):
    """What `flowpic classify --json` prints goes through flowpic-send as it is."""
    demo = os.path.join(os.path.dirname(os.path.dirname(HERE)), "data", "demo.pcap.xz")
    cl = subprocess.run([flowpic, "classify", "--json", demo], capture_output=True, text=True,
                        timeout=120)
    check(cl.returncode == 0, "flowpic classify ran: %s" % cl.stderr.strip())
    lines = [json.loads(l) for l in cl.stdout.splitlines()]
    flows = [d for d in lines if "class" in d]
    store = os.path.join(tmp, "store.jsonl")
    srv = Server(tmp, store)
    try:
        rc, c, err = send(tool, ["--collector", "127.0.0.1:%d" % srv.port, "--run-id", "81",
                                 "--interface", "demo.pcap.xz"], cl.stdout)
        check(rc == 0 and c.get("acked") == len(flows) > 0
              and c.get("lines_skipped") == len(lines) - len(flows),
              "classify --json: %d flow verdicts sent, summaries skipped: rc %d %s %s"
              % (len(flows), rc, c, err.strip()))
        recs, _ = stored(store)
        got = sorted((d["flow_id"], d["class_name"], d["sport"], d["interface"], d["classes"][0])
                     for d in recs.values())
        want = sorted((d["flow_id"], d["class"], d["sport"], "demo.pcap.xz", list(d["probs"])[0])
                      for d in flows)
        check(got == want, "stored = classify's verdicts: %s vs %s" % (got, want))
        for d in recs.values():
            f = next(x for x in flows if x["flow_id"] == d["flow_id"])
            check([round(p, 4) for p in d["probs"]] == list(f["probs"].values()),
                  "flow %d probabilities in class order" % f["flow_id"])
            check(d["start_unix_ns"] == f["start_ns"] and d["packets_rev"] == f["packets_rev"]
                  and d["bytes_fwd"] == f["payload_bytes_fwd"] != f["bytes_fwd"],
                  "flow %d span (payload bytes, not IP bytes, on the wire)" % f["flow_id"])
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--send", required=True)
    ap.add_argument("--collector", help="flowpic-collector, for the collector-* scenarios")
    ap.add_argument("--flowpic", help="flowpic, for the classify scenario")
    ap.add_argument("scenario", choices=["clear", "tls", "mtls", "kill", "stall", "spool-limit", "token",
                                         "cleartext-token",
                                         "collector-kill", "collector-mtls", "classify"])
    a = ap.parse_args()
    if a.scenario.startswith("collector-") and not a.collector:
        ap.error("--collector PATH is needed for " + a.scenario)
    with tempfile.TemporaryDirectory(prefix="fpt-stream-") as tmp:
        {"clear": lambda: scenario_clear(a.send, tmp),
         "tls": lambda: scenario_tls(a.send, tmp, False),
         "mtls": lambda: scenario_tls(a.send, tmp, True),
         "kill": lambda: scenario_kill(a.send, tmp),
         "stall": lambda: scenario_stall(a.send, tmp),
         "spool-limit": lambda: scenario_spool_limit(a.send, tmp),
         "token": lambda: scenario_token(a.send, tmp),
         "cleartext-token": lambda: scenario_cleartext_token(a.send, tmp),
         "classify": lambda: scenario_classify(a.send, a.flowpic, tmp),
         "collector-kill": lambda: scenario_collector_kill(a.send, a.collector, tmp),
         "collector-mtls": lambda: scenario_collector_mtls(a.send, a.collector, tmp)}[a.scenario]()
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        return 1
    print("ok: " + a.scenario)
    return 0


if __name__ == "__main__":
    sys.exit(main())
