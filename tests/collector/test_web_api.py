#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""collector.web_api: the dashboard's server side (docs/dashboard.md, "API"
and "Security") against a real flowpic-collector over loopback HTTP and
HTTPS, fed by gRPC batches (harness.py) and the CLI's own answers.

Login and sessions (cookie flags, wrong tokens counted), CSRF, the security
headers on every answer, /static without traversal, hostile agent strings
JSON-escaped, /api/flows = `query`, /api/overview = the store's counts,
/api/flow's blocks and pictures, /api/live within 2 s, /api/classify =
`flowpic classify --json --blocks` and nothing stored, 413, a 10,000-verdict
burst with an SSE client (acks keep coming), and TLS with a client
certificate.  Usage: test_web_api.py FLOWPIC [DEMO_CAPTURE]
(FLOWPIC_COLLECTOR names the collector)."""
import http.client
import json
import lzma
import os
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BIN = harness.collector_binary()
FLOWPIC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.dirname(BIN)), "cli", "flowpic")
DEMO = sys.argv[2] if len(sys.argv) > 2 else os.path.join(harness.ROOT, "data", "demo.pcap.xz")
TOKEN = "viewer-token-0123456789"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
failures = []
answers = []        # every response's headers: each must carry the security headers


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


class Web:
    """One HTTP(S) connection to the dashboard, with its session cookie."""

    def __init__(self, address, tls=None):
        host, port = address.rsplit(":", 1)
        self.host, self.port, self.tls = host, int(port), tls
        self.cookie = None
        self.csrf = None
        self.conn = None

    def _conn(self):
        if self.conn is None:
            if self.tls:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.tls,
                                                        timeout=30)
            else:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        return self.conn

    def req(self, method, path, body=None, headers=None, csrf=False):
        h = dict(headers or {})
        if self.cookie:
            h["Cookie"] = self.cookie
        if csrf and self.csrf:
            h["X-CSRF-Token"] = self.csrf
        c = self._conn()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
        except (http.client.HTTPException, OSError):
            self.conn = None
            raise
        if r.getheader("Connection", "").lower() == "close":
            c.close()
            self.conn = None
        answers.append((path, r.status, dict((k.lower(), v) for k, v in r.getheaders())))
        return r.status, r, data

    def json(self, path):
        st, r, data = self.req("GET", path)
        return st, json.loads(data.decode("utf-8")) if data else None

    def login(self, token=TOKEN):
        st, r, _ = self.req("POST", "/login", body="token=" + urllib.parse.quote(token),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        sc = r.getheader("Set-Cookie")
        if sc:
            self.cookie = sc.split(";")[0]
            _, s = self.json("/api/session")
            self.csrf = s["csrf"]
        return st, r, sc


def query_rows(db, *args):
    out = subprocess.run([BIN, "query", "--db", db, *args], check=True, capture_output=True,
                         text=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def start(tmp, db, *extra, tls=None):
    root = os.path.join(tmp, "root")
    os.makedirs(root, exist_ok=True)
    for name, text in (("overview.html", "<!doctype html><title>overview</title>"),
                       ("login.html", "<!doctype html><title>login</title>"),
                       ("login.js", "// login"), ("app.js", "// app")):
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    tok = os.path.join(tmp, "viewers")
    with open(tok, "w") as f:
        f.write(TOKEN + " alice\nsecond-token-abcdef\n")
    os.chmod(tok, 0o600)
    with open(os.path.join(tmp, "secret.txt"), "w") as f:
        f.write("not for the web\n")
    c = harness.Collector(BIN, db, "--web-listen", "127.0.0.1:0", "--web-token-file", tok,
                          "--web-root", root, *extra, token=None, tls=tls)
    ev = json.loads(c.p.stdout.readline())
    assert ev["event"] == "web", ev
    c.web = ev["address"]
    return c


def hostile_batches():
    """Verdicts whose strings an attacker chose: script tags, quotes, escapes."""
    m = harness.pb()
    evil_agent = '<script>alert("a")</script>\x1b[31m'
    evil_host = 'h"o\'st<img src=x onerror=alert(1)>\\'
    b = harness.make_batch(agent_id=evil_agent, host=evil_host, sequence=1, n=5,
                           counters={"ring_lost": 3, "pkts\x1b[2J": 7})
    b.verdicts[0].class_name = "<script>x</script>"
    b.verdicts[0].stage = m.STAGE_FINAL
    return b, evil_agent, evil_host


def flow_batch(t0):
    """One flow (agent flowy, flow 77): three blocks, the second with a
    picture, then its flow verdict."""
    m = harness.pb()
    b = harness.make_batch(agent_id="flowy", host="fh", sequence=1, first_seq=1, n=4, t0=t0)
    for i, v in enumerate(b.verdicts):
        v.flow_id = 77
        v.span.block_index = i if i < 3 else 0
        v.stage = m.STAGE_BLOCK if i < 3 else m.STAGE_FINAL
    cells = b.verdicts[1].cells
    cells.rows, cells.cols, cells.window_ns = 32, 32, 15 * 10**9
    cells.index_delta.extend([5, 1, 30])
    cells.count.extend([2, 1, 7])
    return b


def sse_open(web):
    """An SSE connection to /api/live; returns (socket file, response head)."""
    s = socket.create_connection((web.host, web.port), timeout=10)
    if web.tls:
        s = web.tls.wrap_socket(s, server_hostname="localhost")
    s.sendall(("GET /api/live HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n\r\n" % web.cookie).encode())
    f = s.makefile("rb")
    head = []
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        head.append(line.decode())
    return s, f, head


class SseReader(threading.Thread):
    def __init__(self, f):
        super().__init__(daemon=True)
        self.f, self.events, self.lock = f, [], threading.Lock()

    def run(self):
        ev = None
        try:
            for line in self.f:
                line = line.decode().rstrip("\n")
                if line.startswith("event: "):
                    ev = line[7:]
                elif line.startswith("data: "):
                    with self.lock:
                        self.events.append((time.monotonic(), ev, json.loads(line[6:])))
        except (OSError, ValueError):
            pass

    def snapshot(self):
        with self.lock:
            return list(self.events)


def npy_u8(path):
    """A .npy of uint8 (what flowpic export writes): (shape, flat bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    hlen = int.from_bytes(data[8:10], "little")
    header = data[10:10 + hlen].decode()
    shape = tuple(int(x) for x in header.split("'shape': (")[1].split(")")[0].split(",")
                  if x.strip())
    return shape, data[10 + hlen:]


def upload_pictures(tmp, pictures, cli):
    """The answer's pictures = `flowpic export --format npy` for the same
    flow and block (the default model: split, 32 x 32, 15 s), as the agent's
    pictures are checked (tests/agent/test_agent_pictures.py)."""
    import csv
    prefix = os.path.join(tmp, "pics")
    r = subprocess.run([FLOWPIC, "export", DEMO, "--format", "npy", "--direction", "split",
                        "-o", prefix, "-q"], capture_output=True, text=True)
    check(r.returncode == 0, "flowpic export --format npy --direction split: %s" % r.stderr)
    shape, data = npy_u8(prefix + ".npy")
    with open(prefix + ".index.csv") as f:
        index = {(int(x["flow"]), int(x["block"])): int(x["pic"]) for x in csv.DictReader(f)}
    npix = shape[1] * shape[2] * shape[3]
    blocks = {(x["flow_id"], x["block_index"]) for x in cli if x["type"] == "block"}
    got, same, differ = set(), 0, []
    for fid, pics in pictures.items():
        for p in pics:
            got.add((int(fid), p["block_index"]))
            cl = p["cells"]
            dense = [0] * npix
            for i, n in zip(cl["index"], cl["count"]):
                dense[i] = n
            i = index.get((int(fid), p["block_index"]))
            if (i is not None and (cl["rows"], cl["cols"], cl["planes"], cl["window_ns"])
                    == (shape[2], shape[3], shape[1], 15 * 10**9)
                    and bytes(dense) == data[i * npix:(i + 1) * npix]):
                same += 1
            else:
                differ.append((fid, p["block_index"]))
    check(got == blocks and same == len(blocks) == shape[0] and not differ,
          "/api/classify: a picture per block (%d), each = flowpic export's for its flow and "
          "block (differ %s)" % (same, differ[:5]))


def plain_tests(tmp):
    dbpath = os.path.join(tmp, "v.db")
    db = "sqlite:" + dbpath
    c = start(tmp, db, "--web-upload-max", "1000000")
    web = Web(c.web)
    grpc = c.address

    # ---- login required ----
    st, r, _ = web.req("GET", "/")
    check(st == 303 and r.getheader("Location") == "/login", "GET / without a session: 303 /login")
    st, body = web.json("/api/flows")
    check(st == 401 and body == {"error": "login required"}, "GET /api/flows without a session: 401")
    st, _, _ = web.req("GET", "/static/app.js")
    check(st == 303, "a static file without a session: 303")
    st, _, data = web.req("GET", "/static/login.js")
    check(st == 200 and data == b"// login", "the login page's own files need no session")
    st, _, data = web.req("GET", "/login")
    check(st == 200 and b"login" in data, "GET /login needs no session")
    st, _, _ = web.req("GET", "/api/live")
    check(st == 401, "GET /api/live without a session: 401")
    forged = Web(c.web)
    forged.cookie = "fp_session=" + "ab" * 32
    st, _, _ = forged.req("GET", "/api/overview")
    check(st == 401, "a forged session cookie: 401")

    # ---- tokens ----
    st, r, sc = web.login("wrong-token")
    check(st == 303 and r.getheader("Location") == "/login?failed=1" and not sc,
          "a wrong token: 303 /login?failed=1, no cookie")
    st, r, _ = web.req("POST", "/login", body="token=" + TOKEN,
                       headers={"Origin": "http://evil.example",
                                "Content-Type": "application/x-www-form-urlencoded"})
    check(st == 403, "a login posted from another origin: 403")
    st, r, sc = web.login()
    check(st == 303 and r.getheader("Location") == "/", "the right token: 303 /")
    attrs = [a.strip() for a in (sc or "").split(";")]
    check(attrs[0].startswith("fp_session=") and len(attrs[0]) == len("fp_session=") + 64
          and "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/" in attrs
          and "Max-Age=43200" in attrs and "Secure" not in attrs,
          "session cookie: 256-bit, HttpOnly, SameSite=Strict, Path=/, Max-Age, no Secure in plain HTTP: " + str(sc))
    st, s = web.json("/api/session")
    check(st == 200 and s["user"] == "alice" and s["via"] == "token" and len(s["csrf"]) == 64,
          "GET /api/session: the token's name, via token, a CSRF token")
    k = c.counters()
    check(k["web_login_failed"] == 2 and k["web_logins"] == 1,
          "logins counted: %d failed, %d ok" % (k["web_login_failed"], k["web_logins"]))

    # ---- CSRF ----
    st, _, _ = web.req("POST", "/logout")
    check(st == 403, "POST /logout without X-CSRF-Token: 403")
    st, _, _ = web.req("POST", "/logout", headers={"X-CSRF-Token": "0" * 64})
    check(st == 403, "POST /logout with a wrong X-CSRF-Token: 403")
    st, _, _ = web.req("POST", "/api/classify", body=b"x", headers={"X-CSRF-Token": "1" * 64})
    check(st == 403, "POST /api/classify with a wrong X-CSRF-Token: 403")
    check(c.counters()["web_csrf_refused"] == 3, "CSRF refusals counted")

    # ---- static files: no way out of the directory ----
    for p in ("/static/../secret.txt", "/static/..%2Fsecret.txt", "/static/%2e%2e/secret.txt",
              "/static/.hidden", "/static/root/../../secret.txt", "/static//etc/passwd",
              "/static/%00", "/static/vendor/../../secret.txt"):
        st, _, data = web.req("GET", p)
        check(st in (400, 404) and b"not for the web" not in data and b"root:" not in data,
              "traversal refused: %s -> %d" % (p, st))
    st, _, data = web.req("GET", "/static/app.js")
    check(st == 200 and data == b"// app", "a static file with a session")
    st, r, data = web.req("GET", "/")
    check(st == 200 and r.getheader("Content-Type").startswith("text/html"), "/ is the overview page")

    # ---- verdicts: hostile strings, a flow, then query's rows ----
    t0 = (time.time_ns() // 10**9 - 600) * 10**9
    hb, evil_agent, evil_host = hostile_batches()
    fb = flow_batch(t0)
    normal = [harness.make_batch(agent_id="a%d" % i, host="h%d" % (i % 2), sequence=1,
                                 n=60, t0=t0) for i in range(3)]
    for b in [hb, fb] + normal:
        acks, code, det = harness.stream(grpc, [b])
        assert code.name == "OK", det
    # A host name that is not UTF-8 (an agent older than the checks, another writer).
    con = sqlite3.connect(dbpath)
    con.execute("UPDATE verdicts SET host = CAST(x'62616466ff2e6e6574' AS TEXT)"
                " WHERE agent_id = 'a2' AND seq = 1")
    con.commit()
    con.close()

    st, r, data = web.req("GET", "/api/flows?stage=all&limit=500")
    check(st == 200 and b"\x1b" not in data and b"\xff" not in data,
          "/api/flows: no raw escape byte or invalid UTF-8 in the answer")
    rows = json.loads(data.decode("utf-8"))["rows"]
    evil = [x for x in rows if x["agent_id"] == evil_agent]
    check(len(evil) == 5 and all(x["host"] == evil_host for x in evil)
          and any(x["class"] == "<script>x</script>" for x in evil),
          "/api/flows: hostile agent id, host and class come back exactly (JSON-escaped)")
    check(any(x["host"] == "badf\ufffd.net" for x in rows), "/api/flows: invalid UTF-8 as U+FFFD")
    st, r, data = web.req("GET", "/api/agents")
    check(st == 200 and b"\x1b" not in data, "/api/agents: no raw escape byte")
    ag = {a["agent_id"]: a for a in json.loads(data.decode("utf-8"))["agents"]}
    check(evil_agent in ag and ag[evil_agent]["host"] == evil_host
          and ag[evil_agent]["counters"].get("pkts\x1b[2J") == 7,
          "/api/agents: hostile agent id, host and counter name exactly")
    check(ag[evil_agent]["health"] == "losing" and ag["a0"]["health"] == "ok"
          and ag["a0"]["verdicts"] == 60 and ag["a0"]["runs"] == 1 and ag["a0"]["version"] == "test",
          "/api/agents: health (ring_lost 3: losing), verdicts, runs, version")

    # /api/flows with a class filter = query --class (every field, in order).
    for cls in ("video", "voip,chat", "unknown"):
        want = query_rows(db, "--class", cls)
        st, got = web.json("/api/flows?stage=all&limit=500&class=" + cls)
        check(st == 200 and got["rows"] == want and not got["more"],
              "/api/flows?class=%s equals query --class %s (%d rows)" % (cls, cls, len(want)))
    want = query_rows(db, "--agent", "a1", "--flow", "proto=tcp", "--oldest-first")
    st, got = web.json("/api/flows?stage=all&limit=500&agent=a1&proto=tcp&order=asc")
    check(st == 200 and got["rows"] == want, "/api/flows agent+proto+asc equals query (%d rows)" % len(want))
    st, p1 = web.json("/api/flows?stage=all&limit=7&agent=a0")
    st2, p2 = web.json("/api/flows?stage=all&limit=7&offset=7&agent=a0")
    allrows = query_rows(db, "--agent", "a0")
    check(p1["more"] and p1["rows"] + p2["rows"] == allrows[:14], "/api/flows pages: offset and more")
    st, got = web.json("/api/flows?stage=final&limit=500")
    check(st == 200 and all(x["stage"] == "final" for x in got["rows"]) and len(got["rows"]) == 2,
          "/api/flows stage=final: flow verdicts only")
    st, got = web.json("/api/flows?stage=all&limit=500&min_conf=0.9&sort=confidence&order=asc")
    confs = [x["confidence"] for x in got["rows"]]
    check(st == 200 and confs and min(confs) >= 0.9 and confs == sorted(confs),
          "/api/flows min_conf and sort=confidence")
    for bad in ("class=bogus", "limit=501", "port=70000", "addr=not-an-ip", "sort=seq;drop",
                "since=-1", "stage=x", "min_conf=2"):
        st, body = web.json("/api/flows?" + bad)
        check(st == 400 and "error" in body, "/api/flows?%s: 400 %s" % (bad, body.get("error")))

    # /api/overview: totals = the store's counts per class.
    allrows = query_rows(db)
    per = {}
    for x in allrows:
        per[x["class"]] = per.get(x["class"], 0) + 1
    st, ov = web.json("/api/overview?since=0&stage=all")
    check(st == 200 and all(ov["totals"].get(k, 0) == v for k, v in per.items())
          and sum(ov["totals"].values()) == len(allrows),
          "/api/overview?since=0&stage=all: totals = the store's per class %s" % per)
    check(len(ov["buckets"]) <= 500 and all(sum(ov["series"][k]) == ov["totals"][k] for k in ov["classes"]),
          "/api/overview: the series add up to the totals, %d buckets" % len(ov["buckets"]))
    check(ov["classes"][:6] == ["voip", "video", "file_transfer", "chat", "browsing", "unknown"],
          "/api/overview: the classes in the contract's order")
    st, ov2 = web.json("/api/overview?since=0&stage=all&bucket=1")
    check(st == 200 and len(ov2["buckets"]) <= 500 and ov2["bucket_ns"] > 10**9,
          "/api/overview: a bucket too small is widened (%d ns)" % ov2["bucket_ns"])
    st, ov3 = web.json("/api/overview?since=0&stage=final&agent=flowy")
    check(st == 200 and sum(ov3["totals"].values()) == 1 and ov3["per_agent"][0]["agent_id"] == "flowy",
          "/api/overview stage=final, agent: one flow verdict")

    # /api/flow: the blocks in order, the flow verdict, the picture.
    st, fl = web.json("/api/flow?agent_id=flowy&run_id=1&flow_id=77")
    check(st == 200 and fl["final"] and fl["final"]["stage"] == "final"
          and [b["block_index"] for b in fl["blocks"]] == [0, 1, 2]
          and fl["classes"] == harness.CLASSES,
          "/api/flow: final, three blocks by block_index, the model's classes")
    cells = [b["cells"] for b in fl["blocks"]]
    check(cells[0] is None and cells[2] is None and cells[1] and cells[1]["index"] == [5, 6, 36]
          and cells[1]["count"] == [2, 1, 7] and cells[1]["rows"] == 32 and cells[1]["planes"] == 1,
          "/api/flow: a block's picture as flat indexes and counts, null without one")
    st, _ = web.json("/api/flow?agent_id=flowy&run_id=1&flow_id=78")
    check(st == 404, "/api/flow of no flow: 404")

    # ---- the live feed within 2 s ----
    s, f, head = sse_open(web)
    check(head and head[0].startswith("HTTP/1.1 200") and
          any(h.lower().startswith("content-type: text/event-stream") for h in head),
          "GET /api/live: an event stream")
    rd = SseReader(f)
    rd.start()
    time.sleep(0.3)
    b = harness.make_batch(agent_id="live1", host="lh", sequence=1, n=3, t0=t0)
    sent = time.monotonic()
    harness.stream(grpc, [b])
    deadline = sent + 2.0
    got = []
    while time.monotonic() < deadline:
        got = [e for e in rd.snapshot() if e[1] == "verdict" and e[2]["agent_id"] == "live1"]
        if len(got) == 3:
            break
        time.sleep(0.02)
    check(len(got) == 3 and got[-1][0] - sent < 2.0,
          "/api/live: the 3 new verdicts within 2 s (%.3f s)" % ((got[-1][0] - sent) if got else -1))
    want = query_rows(db, "--agent", "live1", "--oldest-first")
    check([e[2] for e in got] == [dict(w, received_ns=e[2]["received_ns"]) for w, e in zip(want, got)]
          and [e[2]["received_ns"] for e in got] == [w["received_ns"] for w in want],
          "/api/live: each verdict as query prints it")

    # ---- a burst with the SSE client connected: acks keep coming ----
    batches = [harness.make_batch(agent_id="burst", host="bh", sequence=i + 1,
                                  first_seq=1 + 500 * i, n=500, t0=t0) for i in range(20)]
    t = time.monotonic()
    acks, code, det = harness.stream(grpc, batches, timeout=30)
    dt = time.monotonic() - t
    check(code.name == "OK" and len(acks) == 20 and sum(a.stored for a in acks) == 10000,
          "burst: 10,000 verdicts acked in %.2f s with an SSE client" % dt)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        ev = rd.snapshot()
        n = sum(1 for e in ev if e[1] == "verdict" and e[2]["agent_id"] == "burst")
        gaps = sum(e[2]["dropped"] for e in ev if e[1] == "gap")
        if n + gaps >= 10000:
            break
        time.sleep(0.1)
    check(n + gaps == 10000, "burst: the SSE client got %d verdicts and %d as gaps" % (n, gaps))
    k = c.counters()
    check(k["web_sse_clients"] == 1 and k["web_live_verdicts"] >= 10003,
          "counters: web_sse_clients 1, web_live_verdicts %d" % k["web_live_verdicts"])
    s.close()

    # ---- uploads ----
    st, _, _ = web.req("POST", "/api/classify?name=x", body=b"\0" * 1200000,
                       headers={"Content-Type": "application/octet-stream"}, csrf=True)
    check(st == 413, "an upload over --web-upload-max: 413 (%d)" % st)
    web.conn = None
    before = len(query_rows(db))
    with open(DEMO, "rb") as fh:
        cap = fh.read()
    st, r, data = web.req("POST", "/api/classify?name=" + urllib.parse.quote(DEMO), body=cap,
                          headers={"Content-Type": "application/octet-stream"}, csrf=True)
    out = subprocess.run([FLOWPIC, "classify", "--json", "--blocks", DEMO], check=True,
                         capture_output=True, text=True).stdout
    cli_text = [l for l in out.splitlines() if l.strip()]
    cli = [json.loads(l) for l in cli_text]
    cli_verdicts = [x for x in cli if x["type"] in ("block", "flow")]
    got = json.loads(data.decode()) if st == 200 else {}
    check(st == 200 and got.get("lines") and
          [x for x in got["lines"] if x["type"] in ("block", "flow")] == cli_verdicts,
          "/api/classify: the block and flow lines of flowpic classify --json --blocks (%d; %d %s)"
          % (len(cli_verdicts), st, data[:100]))
    check(got.get("lines") == cli and sum(x["type"] == "summary" for x in cli) == 2
          and all(l.encode() in data for l in cli_text),
          "/api/classify: every line of flowpic classify --json --blocks, the two summary "
          "lines too, byte for byte (%d lines)" % len(cli))
    check(len(query_rows(db)) == before, "/api/classify stores nothing by default")
    web.conn = None
    upload_pictures(tmp, got.get("pictures", {}), cli)

    # store=1: the verdicts stored as agent "upload", host the login's name.
    k0 = c.counters()
    st, _, data = web.req("POST", "/api/classify?store=1&name=" + urllib.parse.quote("demo \"cap\".xz"),
                          body=cap, headers={"Content-Type": "application/octet-stream"}, csrf=True)
    web.conn = None
    up = json.loads(data.decode()) if st == 200 else {}
    s1 = up.get("stored", {})
    n = len(cli_verdicts)
    check(st == 200 and up.get("lines") == [dict(x, file="demo \"cap\".xz") if "records" in x else x
                                            for x in cli]
          and s1.get("agent_id") == "upload" and s1.get("host") == "alice"
          and s1.get("verdicts") == n and s1.get("stored") == n and s1.get("duplicates") == 0,
          "/api/classify?store=1: the same lines, %d verdicts stored (%d %s)" % (n, st, s1 or data[:120]))
    mine = query_rows(db, "--agent", "upload")
    check(len(query_rows(db)) == before + n and len(mine) == n
          and all(r["host"] == "alice" and r["run_id"] == s1.get("run_id")
                  and r["interface"] == 'demo "cap".xz' for r in mine),
          "store=1: query --agent upload gives the %d verdicts, one run, host alice, the file's "
          "name as interface (%d)" % (n, len(mine)))
    rows, off = [], 0
    while True:
        _, page = web.json("/api/flows?agent=upload&stage=all&sort=start_ns&limit=500&offset=%d" % off)
        rows += page["rows"]
        off += 500
        if not page["more"]:
            break
    key = lambda r: (r["run_id"], r["seq"])  # noqa: E731
    check(sorted(rows, key=key) == sorted(mine, key=key),
          "store=1: /api/flows?agent=upload = query --agent upload (%d rows)" % len(rows))
    # The stored verdicts are the classify lines: flow verdicts and blocks.
    want = sorted((x["flow_id"], x.get("block_index", -1), x["class"], x["reason"],
                   round(x["confidence"], 4)) for x in cli_verdicts)
    have = sorted((r["flow_id"], r["block_index"] if r["stage"] != "final" else -1, r["class"],
                   r["reason"], round(r["confidence"], 4)) for r in mine)
    check(want == have, "store=1: the stored verdicts are classify's (flow, block, class, "
          "reason, confidence)")
    # Each stored block's picture is the one the answer had.
    same = bad = 0
    for fid, pics in up.get("pictures", {}).items():
        _, fl = web.json("/api/flow?agent_id=upload&run_id=%d&flow_id=%s" % (s1["run_id"], fid))
        stored = {b["block_index"]: b["cells"] for b in fl["blocks"]}
        for p in pics:
            if stored.get(p["block_index"]) == p["cells"]:
                same += 1
            else:
                bad += 1
    check(same > 0 and bad == 0, "store=1: /api/flow's stored pictures = the answer's (%d, %d differ)"
          % (same, bad))
    k1 = c.counters()
    check(k1["web_upload_stored"] - k0["web_upload_stored"] == n and k1["web_upload_store_failed"] == 0,
          "counters: web_upload_stored %d" % k1["web_upload_stored"])
    st, _, data = web.req("POST", "/api/classify?store=yes", body=cap, csrf=True)
    web.conn = None
    check(st == 400 and len(query_rows(db)) == before + n,
          "/api/classify?store=yes: 400, nothing stored (%d)" % st)
    st, _, data = web.req("POST", "/api/classify", body=b"this is no capture at all" * 10,
                          csrf=True)
    check(st == 400 and b"error" in data, "/api/classify of no capture: 400 " + data.decode()[:80])
    web.conn = None
    # A long name: the interface holds its first 63 bytes, cut between
    # characters (2-byte é: 31 of them), in the store and in the answer.
    st, _, data = web.req("POST", "/api/classify?store=1&name=" + urllib.parse.quote("\u00e9" * 40),
                          body=cap, csrf=True)
    web.conn = None
    s2 = json.loads(data.decode()).get("stored", {}) if st == 200 else {}
    mine = [r for r in query_rows(db, "--agent", "upload") if r["run_id"] == s2.get("run_id")]
    check(st == 200 and s2.get("interface") == "\u00e9" * 31 and len(mine) == s2.get("verdicts")
          and all(r["interface"] == "\u00e9" * 31 for r in mine),
          "store=1 with an 80-byte name: interface its first 62 bytes (31 characters), %d rows"
          % len(mine))
    # A capture cut inside a record: classified as far as it goes, counted
    # (web_upload_partial), not logged, however often it comes.
    with lzma.open(DEMO) as fh:
        raw = fh.read()
    cut = raw[:len(raw) * 3 // 5 + 7]
    partial = []
    for _ in range(3):
        st, _, data = web.req("POST", "/api/classify?name=cut.pcap", body=cut, csrf=True)
        lines = json.loads(data.decode())["lines"] if st == 200 else []
        partial += [x for x in lines if x.get("type") == "summary" and x.get("complete") is False]
    check(len(partial) == 3 and all("cut.pcap" in x.get("error", "") for x in partial),
          "a truncated capture, 3 times: 200, its summary complete: false with the reason (%s)"
          % (partial[:1],))

    # ---- security headers on every answer ----
    missing = [(p, st) for p, st, h in answers
               if h.get("content-security-policy") != CSP or h.get("x-content-type-options") != "nosniff"
               or h.get("referrer-policy") != "no-referrer"
               or (p.startswith("/api/") and h.get("cache-control") != "no-store")]
    check(not missing, "CSP, nosniff, no-referrer (no-store for /api) on all %d answers %s"
          % (len(answers), missing[:3]))

    st, _, _ = web.req("POST", "/logout", csrf=True)
    st2, _ = web.json("/api/session")
    check(st == 303 and st2 == 401, "POST /logout ends the session")
    k = c.stop()
    check("runtime error" not in c.stderr() and "Sanitizer" not in c.stderr(),
          "no sanitizer report on stderr")
    check(k["web_upload_partial"] == 3 and "cut.pcap" not in c.stderr(),
          "truncated uploads counted (%d), not logged" % k["web_upload_partial"])
    check(k["web_unauthorized"] >= 5 and k["web_too_large"] >= 1 and k["web_uploads"] == 6
          and k["web_bad_request"] >= 8, "refusals counted: %s" % {x: k[x] for x in k if x.startswith("web_")})


def tls_tests(tmp):
    pki = harness.make_pki(tmp)
    tls = {"cert": pki["server"] + ".pem", "key": pki["server"] + ".key",
           "client_ca": pki["ca"] + ".pem"}
    c = start(tmp, "sqlite:" + os.path.join(tmp, "t.db"), tls=tls)
    ctx = ssl.create_default_context(cafile=pki["ca"] + ".pem")
    ctx.set_alpn_protocols(["http/1.1"])  # h2 too: collector.web_h2
    web = Web(c.web, tls=ctx)
    st, r, sc = web.login()
    check(st == 303 and "Secure" in [a.strip() for a in sc.split(";")],
          "HTTPS: the session cookie is Secure")
    check(web.conn is None or web.conn.sock.selected_alpn_protocol() == "http/1.1",
          "HTTPS: ALPN http/1.1")
    st, s = web.json("/api/session")
    check(st == 200 and s["via"] == "token", "HTTPS: a token session")
    cctx = ssl.create_default_context(cafile=pki["ca"] + ".pem")
    cctx.load_cert_chain(pki["client"] + ".pem", pki["client"] + ".key")
    certweb = Web(c.web, tls=cctx)
    st, s = certweb.json("/api/session")
    check(st == 200 and s["via"] == "cert" and s["user"] == "client",
          "HTTPS: a client certificate of the CA logs in by itself")
    rctx = ssl.create_default_context(cafile=pki["ca"] + ".pem")
    rctx.load_cert_chain(pki["rogue"] + ".pem", pki["rogue"] + ".key")
    st, _ = Web(c.web, tls=rctx).json("/api/session")
    check(st == 401, "HTTPS: another CA's certificate does not")
    raw = socket.create_connection(("127.0.0.1", int(c.web.rsplit(":", 1)[1])), timeout=5)
    raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        raw.recv(100)
    except OSError:
        pass
    raw.close()
    time.sleep(0.2)
    k = c.stop()
    check(k["web_tls_handshake"] >= 1, "HTTPS: plain HTTP to it is a failed handshake, counted")


def main():
    t = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fpt-web-") as tmp:
        plain_tests(tmp)
        tls_tests(tmp)
    print("%d failures, %.1f s" % (len(failures), time.monotonic() - t))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
