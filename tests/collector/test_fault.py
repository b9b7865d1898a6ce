#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Faults: malformed HTTP/2 (raw bytes, a bad frame), bad gRPC prefixes, a
message cut short, bad protobufs, a batch without an agent, an oversized
message, an unknown method, a silent connection and a client that stops
reading.  Each gets its error and its counter; the collector never crashes
and a good client streaming all along loses nothing."""
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOKEN = "test-token"


def good_client(address, stop, result):
    """Batches every 50 ms until stop is set (at most 400)."""
    sent = []

    def gen():
        for i in range(400):
            if stop.is_set() and i >= 20:
                return
            b = h.make_batch(agent_id="good", sequence=i + 1, first_seq=i * 25 + 1, n=25)
            sent.append(b)
            yield b
            time.sleep(0.05)
    acks, code, det = h.stream(address, gen(), token=TOKEN, timeout=120)
    result.update(acks=acks, code=code, details=det, sent=len(sent))


def call_end(raw, sid=1):
    """Frames until the call's END_STREAM (trailers) or RST_STREAM."""
    seen, closed = raw.frames(lambda t, f, s, p: s == sid and (
        (t in (raw.HEADERS, raw.DATA) and f & 1) or t == raw.RST))
    assert not closed, "connection closed instead of ending the call"
    return seen


def wait_counter(c, name, want, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        k = c.counters()
        if k[name] >= want:
            return k
        time.sleep(0.2)
    raise AssertionError("%s stayed %d (< %d)" % (name, k[name], want))


def max_connections(binary, db):
    """--max-connections 2: a third connection is closed at once, the two
    others keep working."""
    c = h.Collector(binary, db, "--max-connections", "2", token=TOKEN)
    a, b = h.RawH2(c.address), h.RawH2(c.address)
    for r in (a, b):
        r.frames(lambda t, f, s, p: t == r.SETTINGS and not f & 1)
    third = h.RawH2(c.address)
    seen, closed = third.frames(lambda t, f, s, p: False)
    assert closed and not seen, seen
    a.open_call(token=TOKEN)
    a.data(1, h.grpc_msg(h.make_batch(agent_id="limit", n=2).SerializeToString()), end=True)
    seen = call_end(a)
    assert any(f[0] == a.DATA and len(f[3]) > 5 for f in seen), "no ack"
    for r in (a, b, third):
        r.close()
    k = c.stop()
    assert k["err_refused_max_connections"] == 1 and k["verdicts_stored"] == 2, k


def main():
    binary = h.collector_binary()
    d = tempfile.mkdtemp(prefix="fpt-collector-fault-")
    try:
        path = os.path.join(d, "v.db")
        c = h.Collector(binary, "sqlite:" + path, "--max-message", "65536", "--slow-timeout", "1",
                        "--handshake-timeout", "1", "--max-pending-acks", "8", token=TOKEN)
        stop, result = threading.Event(), {}
        t = threading.Thread(target=good_client, args=(c.address, stop, result))
        t.start()
        time.sleep(0.3)
        host, port = c.address.rsplit(":", 1)
        good = h.make_batch(agent_id="raw", n=3).SerializeToString()

        # 1. Not HTTP/2 at all.
        s = socket.create_connection((host, int(port)))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(10)
        while s.recv(4096):
            pass
        s.close()
        # 2. A SETTINGS frame of 5 bytes (must be a multiple of 6): GOAWAY.
        r = h.RawH2(c.address)
        r.send(h.h2_frame(r.SETTINGS, 0, 0, b"\x00" * 5))
        seen, closed = r.frames(lambda t, f, s, p: t == r.GOAWAY)
        assert seen[-1][0] == r.GOAWAY and seen[-1][3][4:8] == b"\x00\x00\x00\x06", seen[-1]
        r.close()
        # 3. Compressed flag (none negotiated), then an invalid flag byte.
        for flag in (1, 0x80):
            r = h.RawH2(c.address)
            r.open_call(token=TOKEN)
            r.data(1, h.grpc_msg(good, flag))
            call_end(r)
            r.close()
        # 4. A message cut short by END_STREAM.
        r = h.RawH2(c.address)
        r.open_call(token=TOKEN)
        r.data(1, h.grpc_msg(good)[:-2], end=True)
        call_end(r)
        r.close()
        # 5. Calls on one connection: a bad protobuf ends its call only.
        r = h.RawH2(c.address)
        r.open_call(1, token=TOKEN)
        r.open_call(3, token=TOKEN)
        r.data(1, h.grpc_msg(b"\xff\xff\xff\xff"))
        call_end(r, 1)
        r.data(3, h.grpc_msg(good), end=True)
        seen = call_end(r, 3)
        assert any(f[0] == r.DATA and f[2] == 3 and len(f[3]) > 5 for f in seen), "no ack on 3"
        r.close()

        # 6. Through grpcio: garbage protobuf, no agent, oversized, unknown method.
        import grpc
        ch = grpc.insecure_channel(c.address)
        md = [("authorization", "Bearer " + TOKEN)]
        raw_call = ch.stream_stream(h.METHOD, request_serializer=lambda b: b,
                                    response_deserializer=lambda b: b)
        for body, want in ((b"\x0a\xff\xff\xff\xff\x0f", "INVALID_ARGUMENT"),
                           (h.pb().Batch(sequence=1).SerializeToString(), "INVALID_ARGUMENT"),
                           (h.make_batch(agent_id="big", n=1000).SerializeToString(),
                            "RESOURCE_EXHAUSTED")):
            try:
                list(raw_call(iter([body]), metadata=md, timeout=10))
                raise AssertionError("call succeeded: " + want)
            except grpc.RpcError as e:
                assert e.code().name == want, (e.code(), e.details(), want)
        try:
            ch.unary_unary("/flowpic.v1.Collector/Nope")(b"", metadata=md, timeout=10)
            raise AssertionError("unknown method answered")
        except grpc.RpcError as e:
            assert e.code().name == "UNIMPLEMENTED", e.code()
        ch.close()

        # 7. Silent connection: closed after the handshake timeout.
        s = socket.create_connection((host, int(port)))
        s.settimeout(10)
        t0 = time.time()
        while s.recv(4096):  # the server's SETTINGS, then the close
            pass
        assert time.time() - t0 < 5
        s.close()
        # 8a. A client that stops taking acks for a while (window 0), then
        # opens its window: the collector held back, resumes, loses nothing.
        r = h.RawH2(c.address, settings=(4).to_bytes(2, "big") + (0).to_bytes(4, "big"))
        r.open_call(token=TOKEN)
        for i in range(20):
            r.data(1, h.grpc_msg(h.make_batch(agent_id="pause", sequence=i + 1,
                                              first_seq=i + 1, n=1).SerializeToString()))
        time.sleep(0.4)
        r.send(h.h2_frame(r.SETTINGS, 0, 0, (4).to_bytes(2, "big") + (65535).to_bytes(4, "big")))
        r.data(1, b"", end=True)
        seen = call_end(r)
        body = b"".join(f[3] for f in seen if f[0] == r.DATA and f[2] == 1)
        acks = [h.pb().Ack.FromString(m) for m in h.grpc_split(body)]
        assert [a.sequence for a in acks] == list(range(1, 21)), acks
        assert all(a.stored == 1 for a in acks), acks
        assert seen[-1][0] == r.HEADERS, "no trailers"
        r.close()
        # 8. A client that sends and never reads (window 0: no ack can reach
        # it): no longer read, then closed after --slow-timeout.
        r = h.RawH2(c.address, settings=(4).to_bytes(2, "big") + (0).to_bytes(4, "big"))
        r.open_call(token=TOKEN)
        for i in range(40):
            r.data(1, h.grpc_msg(h.make_batch(agent_id="slow", sequence=i + 1, first_seq=i + 1,
                                              n=1).SerializeToString()))
        wait_counter(c, "err_slow_client", 1)
        r.close()

        stop.set()
        t.join(60)
        assert not t.is_alive(), "good client hung"
        assert result["code"].name == "OK", result
        acks = result["acks"]
        assert len(acks) == result["sent"] and all(a.stored == 25 for a in acks), \
            (len(acks), result["sent"])
        assert c.alive(), "collector died"
        k = c.stop()
        for name, want in (("err_http2_protocol", 2), ("err_compressed", 1),
                           ("err_grpc_frame", 1), ("err_truncated", 1),
                           ("err_bad_protobuf", 2), ("err_bad_batch", 1),
                           ("err_message_too_big", 1), ("err_unknown_method", 1),
                           ("err_idle_timeout", 1), ("err_slow_client", 1)):
            assert k[name] == want, (name, k[name], want, k)
        good_rows = h.sqlite_rows(path, "SELECT count(*) FROM verdicts WHERE agent_id = 'good'")
        assert good_rows == [(25 * result["sent"],)], good_rows
        err = c.stderr()
        for phrase in ("malformed HTTP/2", "compressed gRPC message", "malformed protobuf Batch",
                       "larger than the limit", "slow client", "stream ended inside",
                       "unknown method /flowpic.v1.Collector/Nope"):
            assert phrase in err, (phrase, err)
        max_connections(binary, "sqlite:" + os.path.join(d, "limits.db"))
        print("fault: ok (%d good batches during the faults)" % result["sent"])
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
