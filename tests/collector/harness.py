# SPDX-License-Identifier: MIT
"""harness.py - shared pieces of the collector tests and benchmark.

Builds the Python protobuf module from proto/flowpic.proto with protoc
(--python_out) into a temporary directory, starts and stops flowpic-collector,
makes test certificates with the openssl command, and streams batches with
Debian's python3-grpcio through a generic stream-stream call (the same bytes
any gRPC client sends).
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROTO = os.path.join(ROOT, "proto", "flowpic.proto")
METHOD = "/flowpic.v1.Collector/Stream"
CLASSES = ["voip", "video", "file_transfer", "chat", "browsing"]

_pb = None
_cleanup = []       # temporary paths and live collectors, undone at exit


@atexit.register
def _undo():
    for x in reversed(_cleanup):
        if isinstance(x, Collector):
            if x.p.poll() is None:  # a test failed with it running
                x.p.kill()
                x.p.wait()
        elif os.path.isdir(x):
            shutil.rmtree(x, ignore_errors=True)
        elif os.path.exists(x):
            os.unlink(x)


def pb():
    """The generated flowpic_pb2 module (built once per process)."""
    global _pb
    if _pb is None:
        out = tempfile.mkdtemp(prefix="fpt-collector-pb-")
        _cleanup.append(out)
        subprocess.run(["protoc", "--proto_path=" + os.path.dirname(PROTO),
                        "--python_out=" + out, PROTO], check=True)
        sys.path.insert(0, out)
        import flowpic_pb2  # noqa: E402
        _pb = flowpic_pb2
    return _pb


def make_batch(agent_id="agent-1", run_id=1, host="host-a", sequence=1, first_seq=1, n=10,
               counters=None, t0=1764230400 * 10**9):
    """A Batch of n verdicts numbered first_seq.. (deterministic content)."""
    m = pb()
    b = m.Batch()
    b.agent.host = host
    b.agent.agent_id = agent_id
    b.agent.run_id = run_id
    b.agent.version = "test"
    b.sequence = sequence
    b.model.name = "lenet32"
    b.model.version = "1"
    b.model.classes.extend(CLASSES)
    for i in range(n):
        s = first_seq + i
        v = b.verdicts.add()
        v.seq = s
        v.interface = "eth0"
        v.flow.src_addr = bytes([10, 0, (s >> 8) & 255, s & 255])
        v.flow.dst_addr = bytes([192, 0, 2, 1])
        v.flow.src_port = 40000 + s % 20000
        v.flow.dst_port = 443
        v.flow.protocol = 6 if s % 2 else 17
        v.direction = m.DIRECTION_OUTBOUND
        v.flow_id = s
        v.stage = m.STAGE_BLOCK
        v.span.start_unix_ns = t0 + s * 10**9
        v.span.duration_ns = 60 * 10**9
        v.span.packets_fwd = s
        v.span.packets_rev = 2 * s
        v.span.bytes_fwd = 100 * s
        v.span.bytes_rev = 200 * s
        v.span.block_index = 0
        v.class_name = CLASSES[s % len(CLASSES)]
        v.confidence = 0.5 + (s % 50) / 100.0
        p = [0.05] * len(CLASSES)
        p[s % len(CLASSES)] = 0.8
        v.probs.extend(p)
    for name, value in (counters or {}).items():
        c = b.counters.add()
        c.name = name
        c.value = value
    return b


def stream(target, batches, token=None, tls=None, timeout=30):
    """Send batches on one Collector.Stream call; returns (acks, code, details).

    tls: None (h2c) or dict(ca=PEM path, cert=, key=, name=server name)."""
    import grpc
    m = pb()
    opts = [("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20)]
    if tls:
        def rd(p):
            if not p:
                return None
            with open(p, "rb") as f:
                return f.read()
        creds = grpc.ssl_channel_credentials(root_certificates=rd(tls.get("ca")),
                                             private_key=rd(tls.get("key")),
                                             certificate_chain=rd(tls.get("cert")))
        if tls.get("name"):
            opts.append(("grpc.ssl_target_name_override", tls["name"]))
        ch = grpc.secure_channel(target, creds, options=opts)
    else:
        ch = grpc.insecure_channel(target, options=opts)
    call = ch.stream_stream(METHOD, request_serializer=lambda b: b.SerializeToString(),
                            response_deserializer=m.Ack.FromString)
    md = [("authorization", "Bearer " + token)] if token else None
    acks = []
    code, details = None, None
    try:
        for a in call(iter(batches), metadata=md, timeout=timeout):
            acks.append(a)
        code = grpc.StatusCode.OK
    except grpc.RpcError as e:
        code, details = e.code(), e.details()
    finally:
        ch.close()
    return acks, code, details


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Collector:
    """A flowpic-collector process; stop() returns its exit counters."""

    def __init__(self, binary, db, *args, token="test-token", tls=None, env=None):
        cmd = [binary, "--listen", "127.0.0.1:0", "--db", db]
        if token:
            cmd += ["--token", token]
        elif token is None:
            cmd += ["--no-token"]  # token=False: the caller passes its own
        if tls:
            cmd += ["--tls-cert", tls["cert"], "--tls-key", tls["key"]]
            if tls.get("client_ca"):
                cmd += ["--client-ca", tls["client_ca"]]
        cmd += list(args)
        fd, self.errpath = tempfile.mkstemp(prefix="fpt-collector-err-")
        self.err = os.fdopen(fd, "w+")
        _cleanup.append(self.errpath)
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                  env=env)
        _cleanup.append(self)
        line = self.p.stdout.readline()
        if not line:
            self.p.wait(10)
            raise RuntimeError("collector did not start: " + self.stderr())
        ev = json.loads(line)
        assert ev["event"] == "listening", line
        self.address = ev["address"]

    def stderr(self):
        if not self.err.closed:
            self.err.flush()
        with open(self.errpath) as f:
            return f.read()

    def counters(self):
        """Counters now (SIGUSR1)."""
        self.p.send_signal(signal.SIGUSR1)
        line = self.p.stdout.readline()
        return json.loads(line)["counters"]

    def kill(self):
        """SIGKILL: no commit, no goodbye (a crash or a power cut of the process)."""
        self.p.kill()
        self.p.wait(10)
        self.err.close()

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        out, _ = self.p.communicate(timeout=30)
        rc = self.p.returncode
        lines = [l for l in out.splitlines() if l.strip()]
        self.err.close()
        if rc != 0:
            raise RuntimeError("collector exit %d: %s" % (rc, self.stderr()))
        return json.loads(lines[-1])["counters"]


def openssl(*args, cwd=None):
    subprocess.run(["openssl", *args], check=True, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_pki(d):
    """CA, server cert (CN/SAN localhost + 127.0.0.1), a client cert from the
    CA, and a client cert from another CA.  Returns a dict of paths."""
    def ca(name):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
                "-subj", "/CN=" + name, cwd=d)

    def leaf(name, ca_name, server):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
        ext = os.path.join(d, name + ".ext")
        with open(ext, "w") as f:
            if server:
                f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                        "extendedKeyUsage=serverAuth\n")
            else:
                f.write("extendedKeyUsage=clientAuth\n")
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca_name + ".pem", "-CAkey",
                ca_name + ".key", "-CAcreateserial", "-out", name + ".pem", "-days", "2",
                "-extfile", ext, cwd=d)

    ca("ca")
    ca("otherca")
    leaf("server", "ca", True)
    leaf("client", "ca", False)
    leaf("rogue", "otherca", False)
    return {k: os.path.join(d, k) for k in ("ca", "otherca", "server", "client", "rogue")}


def sqlite_rows(path, sql):
    import sqlite3
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def collector_binary():
    b = os.environ.get("FLOWPIC_COLLECTOR")
    if not b or not os.access(b, os.X_OK):
        sys.exit("FLOWPIC_COLLECTOR must name the flowpic-collector binary")
    return b


# ---- raw HTTP/2, for the fault tests: bytes no well-behaved client sends ----

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(ftype, flags, sid, payload=b""):
    n = len(payload)
    return bytes([n >> 16 & 255, n >> 8 & 255, n & 255, ftype, flags]) + \
        sid.to_bytes(4, "big") + payload


def _hpack_int(v, prefix_bits, first=0):
    mx = (1 << prefix_bits) - 1
    if v < mx:
        return bytes([first | v])
    out = [first | mx]
    v -= mx
    while v >= 128:
        out.append(v % 128 + 128)
        v //= 128
    out.append(v)
    return bytes(out)


def hpack_headers(pairs):
    """Literal header fields without indexing, no Huffman (RFC 7541 6.2.2)."""
    out = b""
    for k, v in pairs:
        k, v = k.encode(), v.encode()
        out += b"\x00" + _hpack_int(len(k), 7) + k + _hpack_int(len(v), 7) + v
    return out


def grpc_request_headers(token=None, path=METHOD):
    h = [(":method", "POST"), (":scheme", "http"), (":path", path),
         (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers")]
    if token:
        h.append(("authorization", "Bearer " + token))
    return hpack_headers(h)


def grpc_msg(body, flag=0):
    return bytes([flag]) + len(body).to_bytes(4, "big") + body


def grpc_split(body):
    """The messages of a gRPC byte stream (uncompressed)."""
    out = []
    while len(body) >= 5:
        n = int.from_bytes(body[1:5], "big")
        out.append(body[5:5 + n])
        body = body[5 + n:]
    assert not body, "trailing bytes in a gRPC stream"
    return out


class RawH2:
    """A cleartext HTTP/2 connection driven by hand."""
    DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW = 0, 1, 3, 4, 6, 7, 8

    def __init__(self, address, settings=b""):
        host, port = address.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=10)
        self.buf = b""
        self.s.sendall(PREFACE + h2_frame(self.SETTINGS, 0, 0, settings))

    def send(self, data):
        self.s.sendall(data)

    def open_call(self, sid=1, token=None, path=METHOD):
        self.send(h2_frame(self.HEADERS, 0x4, sid, grpc_request_headers(token, path)))

    def data(self, sid, payload, end=False):
        self.send(h2_frame(self.DATA, 0x1 if end else 0, sid, payload))

    def frames(self, until, timeout=10):
        """Read frames until until(ftype, flags, sid, payload) is true or the
        peer closes; returns the frames seen and whether the peer closed."""
        seen = []
        end = time.time() + timeout
        while time.time() < end:
            while len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + n:
                    break
                f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7fffffff,
                     self.buf[9:9 + n])
                self.buf = self.buf[9 + n:]
                seen.append(f)
                if f[0] == self.SETTINGS and not f[1] & 1:
                    self.s.sendall(h2_frame(self.SETTINGS, 1, 0))
                if until(*f):
                    return seen, False
            try:
                self.s.settimeout(max(0.05, end - time.time()))
                d = self.s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionError:
                return seen, True
            if not d:
                return seen, True
            self.buf += d
        raise AssertionError("no expected HTTP/2 frame within %ds; saw types %s"
                             % (timeout, [f[0] for f in seen]))

    def close(self):
        self.s.close()


# ---- a throw-away PostgreSQL server ----

PG_BIN = "/usr/lib/postgresql/15/bin"


class PgServer:
    """initdb + pg_ctl in a temporary directory, a unix socket only, run as
    `nobody` when we are root (postgres refuses to run as root)."""

    def __init__(self):
        for b in ("initdb", "pg_ctl", "postgres"):
            if not os.access(os.path.join(PG_BIN, b), os.X_OK):
                raise RuntimeError("PostgreSQL 15 server not installed (%s/%s): "
                                   "apt-get install postgresql" % (PG_BIN, b))
        self.dir = tempfile.mkdtemp(prefix="fpt-collector-pg-")
        self.data = os.path.join(self.dir, "data")
        self.sock = self.dir
        self.user = "nobody" if os.geteuid() == 0 else None
        if self.user:
            os.chown(self.dir, 65534, 65534)
        os.chmod(self.dir, 0o700)
        try:
            self._run("initdb", "-D", self.data, "-A", "trust", "-U", "flowpic", "--no-sync")
            self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w",
                      "-t", "60", "-o", "-k %s -c listen_addresses= -c fsync=on" % self.sock,
                      "start")
        except Exception:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.url = "postgresql:///postgres?host=%s&user=flowpic" % self.sock

    def _run(self, prog, *args):
        cmd = [os.path.join(PG_BIN, prog), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError("%s failed: %s %s" % (prog, r.stdout, r.stderr))

    def restart(self):
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-m", "fast",
                  "-w", "-t", "60", "restart")

    def psql(self, sql):
        r = subprocess.run(["psql", "-X", "-A", "-t", "-h", self.sock, "-U", "flowpic",
                            "-d", "postgres", "-c", sql], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql: " + r.stderr)
        return [l.split("|") for l in r.stdout.splitlines() if l]

    def stop(self):
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
