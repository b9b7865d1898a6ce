#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""collector.web_h2: the dashboard over HTTP/2 (docs/dashboard.md, "HTTP/2")
against a real flowpic-collector, spoken by python3-h2 (an HTTP/2 stack of
its own, not nghttp2): prior knowledge in plain text and ALPN h2 under TLS.

Every answer equals its HTTP/1.1 twin (pages, API, uploads) and carries the
security headers; many streams at once on one connection; the live feed is a
stream that gets a new verdict within 2 s while other streams are answered
on the same connection; refusals (login, CSRF, 411, 431); more streams than
slots are refused with REFUSED_STREAM and counted, and the slots come back;
a broken frame ends the connection, counted; mTLS logs in over h2.
Usage: test_web_h2.py [DEMO_CAPTURE] (FLOWPIC_COLLECTOR names the collector)."""
import lzma
import os
import select
import socket
import ssl
import sys
import tempfile
import time
import urllib.parse

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_web_api as api  # noqa: E402  (start, Web, flow_batch, TOKEN, CSP)

DEMO = sys.argv[1] if len(sys.argv) > 1 else os.path.join(harness.ROOT, "data", "demo.pcap.xz")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


class Stream:
    def __init__(self):
        self.headers, self.data, self.ended, self.reset = {}, b"", False, None
        self.chunks = []  # (time, bytes)


class H2:
    """One HTTP/2 connection to the dashboard, its streams and cookie."""

    def __init__(self, address, tls=None, cookie=None):
        host, port = address.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=10)
        self.alpn = None
        if tls:
            s = tls.wrap_socket(s, server_hostname="localhost")
            self.alpn = s.selected_alpn_protocol()
        self.s, self.scheme, self.cookie, self.csrf = s, "https" if tls else "http", cookie, None
        self.c = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False))
        self.c.initiate_connection()
        self.streams = {}
        self.closed = self.settings = False
        self.flush()

    def flush(self):
        data = self.c.data_to_send()
        if data:
            self.s.sendall(data)

    def pump(self, timeout=0.2):
        """Read what has come; False when the server closed."""
        r, _, _ = select.select([self.s], [], [], timeout)
        if not r and not (isinstance(self.s, ssl.SSLSocket) and self.s.pending()):
            return True
        try:
            data = self.s.recv(65536)
        except (ConnectionError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        try:
            events = self.c.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.closed = True
            return False
        for ev in events:
            st = self.streams.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived) and st:
                st.headers = dict(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                if st:
                    st.data += ev.data
                    st.chunks.append((time.monotonic(), ev.data))
                self.c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded) and st:
                st.ended = True
            elif isinstance(ev, h2.events.StreamReset) and st:
                st.reset = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.closed = True
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                self.settings = True
        self.flush()
        return True

    def start(self, method, path, headers=(), body=None, length=True, csrf=False):
        sid = self.c.get_next_available_stream_id()
        hd = [(":method", method), (":scheme", self.scheme), (":authority", "localhost"),
              (":path", path)]
        if self.cookie:
            hd.append(("cookie", self.cookie))
        if csrf and self.csrf:
            hd.append(("x-csrf-token", self.csrf))
        if body is not None and length:
            hd.append(("content-length", str(len(body))))
        hd += list(headers)
        self.streams[sid] = Stream()
        self.c.send_headers(sid, hd, end_stream=body is None)
        self.flush()
        if body:
            self.send_body(sid, body)
        return sid

    def send_body(self, sid, body):
        """The body within the flow-control windows, then END_STREAM."""
        off, end = 0, time.monotonic() + 30
        while off < len(body) and time.monotonic() < end:
            room = min(self.c.local_flow_control_window(sid), self.c.max_outbound_frame_size)
            if room <= 0:
                self.pump(0.5)
                continue
            self.c.send_data(sid, body[off:off + room])
            off += room
            self.flush()
        self.c.end_stream(sid)
        self.flush()

    def wait(self, sid, timeout=20):
        end = time.monotonic() + timeout
        st = self.streams[sid]
        while not (st.ended or st.reset is not None or self.closed) and time.monotonic() < end:
            self.pump(0.2)
        return st

    def get(self, path, **kw):
        st = self.wait(self.start("GET", path, **kw))
        return int(st.headers.get(":status", 0)), st.headers, st.data

    def login(self, token=api.TOKEN):
        body = ("token=" + urllib.parse.quote(token)).encode()
        st = self.wait(self.start("POST", "/login", body=body, headers=[
            ("content-type", "application/x-www-form-urlencoded")]))
        sc = st.headers.get("set-cookie", "")
        if sc:
            import json
            self.cookie = sc.split(";")[0]
            _, _, data = self.get("/api/session")
            self.csrf = json.loads(data)["csrf"]
        return int(st.headers.get(":status", 0)), sc

    def close(self):
        try:
            self.c.close_connection()
            self.flush()
        except (OSError, h2.exceptions.ProtocolError):
            pass
        self.s.close()


answers = []


def secure(path, h):
    answers.append((path, h))


def plain(tmp):
    db = os.path.join(tmp, "v.db")
    c = api.start(tmp, "sqlite:" + db, "--web-upload-max", "4000000")
    acks, code, det = harness.stream(c.address, [api.flow_batch(1_700_000_000 * 10**9)])
    check(code.name == "OK" and acks and acks[0].stored == 4, "a flow stored through gRPC")
    web = api.Web(c.web)
    web.login()

    # ---- prior knowledge, login ----
    h = H2(c.web)
    st, hd, _ = h.get("/")
    secure("/", hd)
    check(st == 303 and hd.get("location") == "/login" and "connection" not in hd,
          "h2c: GET / without a session: 303 /login, no Connection field")
    st, hd, _ = h.get("/api/flows")
    check(st == 401, "h2c: /api/flows without a session: 401")
    st, sc = h.login("wrong-token")
    check(st == 303 and not sc, "h2c: a wrong token: 303, no cookie")
    st, sc = h.login()
    attrs = [a.strip() for a in sc.split(";")]
    check(st == 303 and "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Secure" not in attrs,
          "h2c: login sets the session cookie: " + sc)

    # ---- many streams at once: each answer equals HTTP/1.1's ----
    paths = ["/api/flows?agent_id=flowy", "/api/flow?agent_id=flowy&run_id=1&flow_id=77",
             "/api/agents", "/static/app.js", "/login", "/api/flows?class=voip&limit=5",
             "/api/flow?agent_id=nobody&run_id=1&flow_id=1"] * 3
    want = {}
    for p in set(paths):
        s1, _, d1 = web.req("GET", p)
        want[p] = (s1, d1)
    sids = [(p, h.start("GET", p)) for p in paths]
    same = 0
    for p, sid in sids:
        s = h.wait(sid)
        secure(p, s.headers)
        if (int(s.headers.get(":status", 0)), s.data) == want[p]:
            same += 1
        else:
            print("     %s: h2 %s %r / h1 %s %r" % (p, s.headers.get(":status"), s.data[:120],
                                                   want[p][0], want[p][1][:120]))
    check(same == len(paths), "h2c: %d streams opened at once on one connection, %d answers equal "
          "HTTP/1.1's (status and body)" % (len(paths), same))

    # ---- the live feed is a stream; others go on beside it ----
    live = h.start("GET", "/api/live")
    end = time.monotonic() + 5
    while b"retry:" not in h.streams[live].data and time.monotonic() < end:
        h.pump(0.1)
    lh = h.streams[live].headers
    secure("/api/live", lh)
    check(lh.get(":status") == "200" and lh.get("content-type", "").startswith("text/event-stream")
          and "content-length" not in lh, "h2c: /api/live answers an event stream")
    t0 = time.monotonic()
    b = harness.make_batch(agent_id="live-h2", host="lh", sequence=1, n=3, t0=1_700_000_100 * 10**9)
    acks, code, _ = harness.stream(c.address, [b])
    got = None
    while time.monotonic() < t0 + 5 and got is None:
        h.pump(0.05)
        for t, chunk in h.streams[live].chunks:
            if b'"agent_id":"live-h2"' in chunk:
                got = t - t0
                break
    check(got is not None and got < 2.0, "h2c: a new verdict on the live stream within 2 s (%s s)"
          % (None if got is None else round(got, 3)))
    st, _, data = h.get("/api/session")
    check(st == 200 and b'"alice"' in data and not h.streams[live].ended,
          "h2c: another stream answered while the live stream stays open")

    # ---- an upload, as HTTP/1.1 gives it ----
    with lzma.open(DEMO) as f:
        capture = f.read()
    s1, _, d1 = web.req("POST", "/api/classify", body=capture,
                        headers={"Content-Type": "application/octet-stream"}, csrf=True)
    sid = h.start("POST", "/api/classify", body=capture, csrf=True,
                  headers=[("content-type", "application/octet-stream")])
    s = h.wait(sid, 60)
    secure("/api/classify", s.headers)
    check(s1 == 200 and s.headers.get(":status") == "200" and s.data == d1 and len(d1) > 1000,
          "h2c: an upload of %d bytes (past the windows) gives HTTP/1.1's answer, %d bytes"
          % (len(capture), len(s.data)))

    # ---- refusals ----
    s = h.wait(h.start("POST", "/api/classify", body=b"x" * 10))
    check(s.headers.get(":status") == "403", "h2c: a POST without X-CSRF-Token: 403")
    sid = h.start("POST", "/logout", body=b"abc", length=False, csrf=True)
    s = h.wait(sid)
    check(s.headers.get(":status") == "411", "h2c: a body without Content-Length: 411")
    s = h.wait(h.start("GET", "/api/session", headers=[("x-big", "a" * 20000)]))
    check(s.headers.get(":status") == "431" or s.reset is not None,
          "h2c: a 20 KB header field: 431 (%s)" % s.headers.get(":status"))
    st, _, data = h.get("/api/session")
    check(st == 200, "h2c: the connection serves on after the refusals")
    k0 = c.counters()

    # ---- more streams than slots ----
    hold = []
    for i in range(5):
        x = H2(c.web, cookie=h.cookie)
        while not x.settings and not x.closed:
            x.pump(0.05)  # the server's SETTINGS: the connection has its slot
        hold.append(x)
    for x in hold:
        for j in range(30):
            sid = x.c.get_next_available_stream_id()
            x.streams[sid] = Stream()
            x.c.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                                   (":authority", "localhost"), (":path", "/login"),
                                   ("content-length", "100")], end_stream=False)
        x.flush()
    end = time.monotonic() + 5
    refused = 0
    while time.monotonic() < end:
        for x in hold:
            x.pump(0.05)
        refused = sum(1 for x in hold for s in x.streams.values()
                      if s.reset == h2.errors.ErrorCodes.REFUSED_STREAM)
        if refused >= 150 - 128 + 6:
            break
    k1 = c.counters()
    # 128 slots: 6 connections hold one each (h and these 5).
    check(refused >= 150 - 128 + 6 and k1["web_h2_refused"] - k0["web_h2_refused"] == refused,
          "150 waiting streams on 5 connections: %d refused (REFUSED_STREAM), counted %d"
          % (refused, k1["web_h2_refused"] - k0["web_h2_refused"]))
    for x in hold:
        x.close()
    time.sleep(0.5)
    st, _, _ = H2(c.web, cookie=h.cookie).get("/api/session")
    check(st == 200, "their slots come back when their connections close")

    # ---- a broken frame ----
    raw = socket.create_connection(("127.0.0.1", int(c.web.rsplit(":", 1)[1])), timeout=5)
    raw.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x05\x04\x00\x00\x00\x00\x00" + b"\x00" * 5)
    got = b""
    try:
        while True:
            d = raw.recv(4096)
            if not d:
                break
            got += d
    except OSError:
        pass
    raw.close()
    goaway = None
    off = 0
    while off + 9 <= len(got):
        n, typ = int.from_bytes(got[off:off + 3], "big"), got[off + 3]
        if typ == 7 and off + 17 <= len(got):
            goaway = int.from_bytes(got[off + 13:off + 17], "big")
        off += 9 + n
    check(goaway == h2.errors.ErrorCodes.FRAME_SIZE_ERROR,
          "a SETTINGS frame of 5 bytes: GOAWAY FRAME_SIZE_ERROR, then closed (%s)" % goaway)
    h.close()
    time.sleep(0.3)
    k = c.stop()
    check(k["web_h2_errors"] >= 1 and k["web_h2_connections"] >= 8,
          "HTTP/2 connections and errors counted: %s" % {x: k[x] for x in k if "h2" in x})
    check("runtime error" not in c.stderr() and "Sanitizer" not in c.stderr(),
          "no sanitizer report on stderr")


def tls(tmp):
    pki = harness.make_pki(tmp)
    cfg = {"cert": pki["server"] + ".pem", "key": pki["server"] + ".key",
           "client_ca": pki["ca"] + ".pem"}
    c = api.start(tmp, "sqlite:" + os.path.join(tmp, "t.db"), tls=cfg)
    ctx = ssl.create_default_context(cafile=pki["ca"] + ".pem")
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    h = H2(c.web, tls=ctx)
    check(h.alpn == "h2", "HTTPS: a client offering h2 and http/1.1 gets h2 (%s)" % h.alpn)
    st, sc = h.login()
    check(st == 303 and "Secure" in [a.strip() for a in sc.split(";")],
          "HTTPS h2: the session cookie is Secure")
    st, hd, data = h.get("/api/session")
    secure("/api/session", hd)
    check(st == 200 and b'"via":"token"' in data, "HTTPS h2: a token session")
    cctx = ssl.create_default_context(cafile=pki["ca"] + ".pem")
    cctx.set_alpn_protocols(["h2"])
    cctx.load_cert_chain(pki["client"] + ".pem", pki["client"] + ".key")
    st, _, data = H2(c.web, tls=cctx).get("/api/session")
    check(st == 200 and b'"via":"cert"' in data and b'"user":"client"' in data,
          "HTTPS h2: a client certificate of the CA logs in by itself")
    one = ssl.create_default_context(cafile=pki["ca"] + ".pem")
    one.set_alpn_protocols(["http/1.1"])
    s = one.wrap_socket(socket.create_connection(("127.0.0.1", int(c.web.rsplit(":", 1)[1]))),
                        server_hostname="localhost")
    check(s.selected_alpn_protocol() == "http/1.1", "HTTPS: an HTTP/1.1-only client gets http/1.1")
    s.close()
    h.close()
    c.stop()


def main():
    t = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fpt-web-h2-") as tmp:
        plain(tmp)
        tls(tmp)
    bad = [p for p, hd in answers
           if hd.get("content-security-policy") != api.CSP or hd.get("x-content-type-options") != "nosniff"
           or hd.get("referrer-policy") != "no-referrer" or hd.get("x-frame-options") != "DENY"
           or (p.startswith("/api/") and hd.get("cache-control") != "no-store")]
    check(answers and not bad, "security headers on all %d HTTP/2 answers %s" % (len(answers), bad[:2]))
    print("%d failures, %.1f s" % (len(failures), time.monotonic() - t))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
