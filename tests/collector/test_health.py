#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""grpc.health.v1.Health/Check on the collector's port, with python3-grpcio's
generated client: health.proto is written here from the public spec
(grpc/doc/health-checking.md) and compiled with grpc_tools.protoc.

- SQLite: SERVING without a token (the collector requires one), for "" and
  "flowpic.v1.Collector"; NOT_FOUND for another service; NOT_SERVING while
  the database file is read-only (the collector runs as nobody when we are
  root, so the mode counts) and while it is renamed away; SERVING again
  after each; agents are served all along.
- PostgreSQL: SERVING; NOT_SERVING within 3 s of the server stopping, each
  answer within 2.5 s; SERVING again once it is back."""
import json
import os
import socket
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

HEALTH_PROTO = """syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health {
  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);
  rpc Watch(HealthCheckRequest) returns (stream HealthCheckResponse);
}
"""


def health_modules(d):
    with open(os.path.join(d, "health.proto"), "w") as f:
        f.write(HEALTH_PROTO)
    from grpc_tools import protoc
    rc = protoc.main(["protoc", "-I" + d, "--python_out=" + d, os.path.join(d, "health.proto")])
    assert rc == 0, "grpc_tools.protoc failed"
    sys.path.insert(0, d)
    import health_pb2
    return health_pb2


class Checker:
    def __init__(self, address, pb2):
        import grpc
        self.grpc = grpc
        self.pb2 = pb2
        self.ch = grpc.insecure_channel(address)
        # The two methods by their paths: only the messages come from the proto.
        ser = pb2.HealthCheckRequest.SerializeToString
        de = pb2.HealthCheckResponse.FromString
        self.check_call = self.ch.unary_unary("/grpc.health.v1.Health/Check",
                                              request_serializer=ser, response_deserializer=de)
        self.watch_call = self.ch.unary_stream("/grpc.health.v1.Health/Watch",
                                               request_serializer=ser, response_deserializer=de)

    def check(self, service=""):
        """(status name or grpc code name, seconds taken)"""
        t = time.monotonic()
        try:
            r = self.check_call(self.pb2.HealthCheckRequest(service=service), timeout=5)
            out = self.pb2.HealthCheckResponse.ServingStatus.Name(r.status)
        except self.grpc.RpcError as e:
            out = e.code().name
        return out, time.monotonic() - t

    def until(self, want, within):
        """Checks until the answer is want (each answer timed); the answers seen."""
        seen, end = [], time.monotonic() + within
        while True:
            got, took = self.check()
            seen.append((got, round(took, 3)))
            if got == want:
                return seen
            assert time.monotonic() < end, "no %s within %s s: %s" % (want, within, seen)
            time.sleep(0.2)

    def watch(self):
        try:
            for _ in self.watch_call(self.pb2.HealthCheckRequest(), timeout=5):
                return "answered"
        except self.grpc.RpcError as e:
            return e.code().name


def as_nobody():
    """A prefix running the collector as nobody when we are root: root writes
    any file whatever its mode."""
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] \
        if os.geteuid() == 0 else []


class Proc:
    """The collector with a command prefix (harness.Collector has none)."""

    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("collector did not start: " + self.p.stderr.read())
        self.address = __import__("json").loads(line)["address"]

    def stop(self):
        self.p.terminate()
        out, err = self.p.communicate(timeout=30)
        assert self.p.returncode == 0, (self.p.returncode, err)
        return err


def test_sqlite(binary, pb2):
    d = tempfile.mkdtemp(prefix="fpt-health-")
    try:
        os.chmod(d, 0o777)
        db = os.path.join(d, "v.db")
        tok = os.path.join(d, "token")
        with open(tok, "w") as f:
            f.write("health-test-token\n")
        os.chmod(tok, 0o644)  # readable by nobody (the warning is fine)
        c = Proc(as_nobody() + [binary, "--listen", "127.0.0.1:0", "--db", "sqlite:" + db,
                                "--token-file", tok])
        k = Checker(c.address, pb2)
        assert k.check("")[0] == "SERVING"
        assert k.check("flowpic.v1.Collector")[0] == "SERVING"
        assert k.check("no.such.Service")[0] == "NOT_FOUND"
        assert k.watch() == "UNIMPLEMENTED"
        # The file made read-only: NOT_SERVING (within the 1 s the answer may
        # be old), then back.
        os.chmod(db, 0o444)
        seen = k.until("NOT_SERVING", 3)
        print("read-only: %s" % seen)
        os.chmod(db, 0o600)
        seen = k.until("SERVING", 3)
        print("writable again: %s" % seen)
        # Renamed away (what a careless cleanup does): NOT_SERVING, then back.
        os.rename(db, db + ".away")
        seen = k.until("NOT_SERVING", 3)
        print("renamed: %s" % seen)
        os.rename(db + ".away", db)
        k.until("SERVING", 3)
        # Agents are served all along, with the token.
        acks, code, det = h.stream(c.address, [h.make_batch(n=5)], token="health-test-token")
        assert code.name == "OK" and acks[0].stored == 5, (code, det)
        k.ch.close()
        err = c.stop()
        assert "health: NOT_SERVING" in err and "health: SERVING" in err, err
    finally:
        shutil.rmtree(d, ignore_errors=True)


def healthz(address):
    """GET /healthz on the metrics listener: (HTTP status, body)."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode().strip()


def healthz_until(address, want, within):
    end = time.time() + within
    while True:
        got = healthz(address)
        if got == want or time.time() > end:
            return got
        time.sleep(0.1)


def test_pg(binary, pb2):
    pg = h.PgServer()
    try:
        c = h.Collector(binary, pg.url, "--metrics-listen", "127.0.0.1:0")
        maddr = json.loads(c.p.stdout.readline())["address"]  # the "metrics" event
        k = Checker(c.address, pb2)
        assert k.check()[0] == "SERVING"
        assert healthz(maddr) == (200, "SERVING"), healthz(maddr)
        pg._run("pg_ctl", "-D", pg.data, "-m", "fast", "-w", "stop")
        seen = k.until("NOT_SERVING", 3)
        print("PostgreSQL stopped: %s" % seen)
        assert all(took < 2.5 for _, took in seen), seen
        # The same answer over HTTP, for probes that cannot speak gRPC over TLS.
        assert healthz_until(maddr, (503, "NOT_SERVING"), 3) == (503, "NOT_SERVING")
        pg._run("pg_ctl", "-D", pg.data, "-l", os.path.join(pg.dir, "log"), "-w", "-t", "60",
                "-o", "-k %s -c listen_addresses=" % pg.sock, "start")
        seen = k.until("SERVING", 5)
        print("PostgreSQL back: %s" % seen)
        assert healthz_until(maddr, (200, "SERVING"), 3) == (200, "SERVING")
        k.ch.close()
        c.stop()
        assert "health: NOT_SERVING" in c.stderr(), c.stderr()
    finally:
        pg.stop()


def main():
    binary = h.collector_binary()
    d = tempfile.mkdtemp(prefix="fpt-health-pb-")
    try:
        pb2 = health_modules(d)
        test_sqlite(binary, pb2)
        test_pg(binary, pb2)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("collector.health: OK")


if __name__ == "__main__":
    main()
