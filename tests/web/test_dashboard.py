#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_dashboard.py - the collector's dashboard in a real headless Chromium.

A flowpic-collector with --web-listen on a free loopback port and a SQLite
store, fed by `flowpic-agent --pcap data/lab-mix.pcap.xz` (with
--send-pictures) and by gRPC batches with hostile strings (python3-grpcio,
tests/collector/harness.py); Debian's chromium driven by python3-selenium
through chromedriver.  Checked against the store as `flowpic-collector query`
reads it and against `flowpic classify --json --blocks`:

  login      a page without a session goes to /login, /api/* answers 401, a
             wrong token is refused, the right one logs in, logout ends it
  overview   the five classes (and unknown) with the counts the store holds,
             for all time and for a custom range, flow and block stages
  live       a verdict stored by a new batch is counted within 2 s (SSE)
  flows      filters give exactly the rows `query` gives; paging covers all
             rows once; sorting by confidence
  flow       the block timeline and the flow verdict equal query's verdicts;
             every block's FlowPic is an image with naturalWidth > 0
  classify   data/demo.pcap.xz uploaded gives `flowpic classify`'s verdicts,
             and stores nothing
  hostile    agent ids, host names and classes with <script>, quotes and
             ESC are shown as text on every page; no payload runs
  console    no error in the browser console on any page

With --tls everything runs over TLS (the collector's certificate, from a CA
made for the test): the browser then speaks HTTP/2 (ALPN h2), which is
checked for the pages, the API calls and the live feed.

usage: test_dashboard.py --collector BIN --agent BIN --flowpic BIN [--tls] [--screenshots DIR] [--web-root DIR]
FLOWPIC_SKIP_BROWSER=1 skips it (exit 77); otherwise a missing chromium,
chromedriver or python3-selenium is a failure (scripts/install-deps.sh dev).
"""
import argparse
import importlib.util
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import http.client
import ssl
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "collector"))

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LAB_MIX = os.path.join(ROOT, "data", "lab-mix.pcap.xz")
DEMO = os.path.join(ROOT, "data", "demo.pcap.xz")
FIVE = ["voip", "video", "file_transfer", "chat", "browsing"]
CLASSES = FIVE + ["unknown"]
DEADLINE = time.monotonic() + 85  # the whole test, browser included
WAIT = 10                          # the longest wait for one page or element

# What a hostile agent sends: markup, quotes, terminal escapes.  Each payload
# would set window.__fpXss if it ever ran.
H_AGENT = "ag<script>window.__fpXss=1</script>\"'\x1b[31m"
H_HOST = "<img src=x onerror=\"window.__fpXss=2\">h'\"\x1b]0;pwned\x07"
H_CLASS = "<svg onload=\"window.__fpXss=3\"></svg>"

failures = []
TLS = None  # --tls: {"cert", "key", "ca"} of the collector's certificate


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def left():
    return DEADLINE - time.monotonic()


# ---- the programs ----

class CollectorWithWeb:
    """flowpic-collector --listen 127.0.0.1:0 --web-listen 127.0.0.1:0."""

    def __init__(self, binary, db, token_file, tmp, web_root):
        self.errpath = os.path.join(tmp, "collector.err")
        self.err = open(self.errpath, "w")
        cmd = [binary, "--listen", "127.0.0.1:0", "--db", "sqlite:" + db, "--no-token",
               "--web-listen", "127.0.0.1:0", "--web-token-file", token_file,
               "--web-root", web_root]
        if TLS:
            cmd += ["--tls-cert", TLS["cert"], "--tls-key", TLS["key"]]
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err)
        self.address = self.web = None
        buf = b""
        end = time.monotonic() + WAIT
        while (self.address is None or self.web is None) and time.monotonic() < end:
            r, _, _ = select.select([self.p.stdout], [], [], 0.2)
            if not r:
                if self.p.poll() is not None:
                    break
                continue
            chunk = os.read(self.p.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("event") == "listening":
                    self.address = ev["address"]
                elif ev.get("event") == "web":
                    self.web = ev["address"]
        if self.address is None or self.web is None:
            self.stop()
            sys.exit("flowpic-collector did not start with --web-listen (no 'listening' and web "
                     "address lines on stdout within %ds): %s" % (WAIT, self.stderr()[-2000:]))

    def stderr(self):
        if not self.err.closed:
            self.err.flush()
        with open(self.errpath, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.close()


def query(collector, db, *args):
    r = subprocess.run([collector, "query", "--db", "sqlite:" + db, *args],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("query %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


def key(v):
    return "%s/%d/%d" % (v["agent_id"], v["run_id"], v["seq"])


def stage_of(stage, v):
    if stage == "all":
        return True
    if stage == "final":
        return v["stage"] == "final"
    return v["stage"] in ("early", "block")


def send_batch(harness, address, agent_id, host, t0, cls, stage, seq=1, run_id=1, n=1):
    """n verdicts from one agent through the collector's gRPC port."""
    m = harness.pb()
    b = harness.make_batch(agent_id=agent_id, run_id=run_id, host=host, first_seq=seq, n=n, t0=t0)
    for v in b.verdicts:
        v.class_name = cls
        v.stage = stage(m)
    acks, code, det = harness.stream(address, [b], timeout=15,
                                     tls={"ca": TLS["ca"], "name": "localhost"} if TLS else None)
    if code.name != "OK" or not acks or acks[0].stored != n:
        raise RuntimeError("batch of %s not stored: %s %s %s" % (agent_id, code, det, acks))


# ---- HTTP without a browser ----

def http_get(web, method, path, body=None, headers=None):
    host, port = web.rsplit(":", 1)
    if TLS:
        ctx = ssl.create_default_context(cafile=TLS["ca"])
        c = http.client.HTTPSConnection(host, int(port), timeout=WAIT, context=ctx)
    else:
        c = http.client.HTTPConnection(host, int(port), timeout=WAIT)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


# ---- the browser ----

def browser(tmp):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    # This machine's network is closed: no background connections, no first
    # run, a new profile (docs of the build machine: the flags that matter).
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--disable-dev-shm-usage", "--disable-extensions",
              "--window-size=1280,800", "--user-data-dir=" + os.path.join(tmp, "profile")):
        o.add_argument(a)
    if TLS:
        # The test's own CA is not in the browser's store (a profile of
        # its own, no NSS database): certificate errors are let through.
        o.add_argument("--ignore-certificate-errors")
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    svc = Service(executable_path=CHROMEDRIVER, log_path=os.path.join(tmp, "chromedriver.log"))
    d = webdriver.Chrome(service=svc, options=o)
    d.set_page_load_timeout(WAIT)
    d.set_script_timeout(WAIT)
    # The viewport itself 1280 x 800, for the screenshots.
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    return d


class Page:
    """The driver plus the checks every page gets: console errors, payloads."""

    def __init__(self, driver, base):
        self.d = driver
        self.base = base
        self.console = []

    def go(self, path):
        self.d.get(self.base + path)

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def wait(self, what, cond, timeout=WAIT):
        from selenium.webdriver.support.ui import WebDriverWait
        timeout = max(0.5, min(timeout, left()))
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.05).until(lambda d: cond())
        except Exception as e:
            err = self.js("var e = document.getElementById('error'); return e && !e.hidden ? e.textContent : ''")
            raise AssertionError("%s: not within %.1fs (%s)%s" % (what, timeout, type(e).__name__,
                                 "; the page says: " + err if err else ""))

    def loaded(self, prev=None):
        """Wait for body[data-loaded] (set by the page's script when it has drawn its data)."""
        self.wait("page data at " + self.d.current_url,
                  lambda: self.js("return document.body && document.body.dataset.loaded || ''")
                  not in ("", None, prev))

    def drain_console(self, where):
        entries = self.d.get_log("browser")
        bad = [e for e in entries if e.get("level") == "SEVERE" or
               "Content Security Policy" in e.get("message", "")]
        self.console += [(where, e["message"]) for e in bad]
        return bad

    def no_payload(self, where):
        ran = self.js("return window.__fpXss === undefined ? null : String(window.__fpXss)")
        injected = self.js("return document.querySelectorAll('img[src=\"x\"], svg[onload], "
                           "[onerror], [onload], script:not([src])').length")
        check(ran is None and injected == 0,
              "%s: no hostile payload ran or became markup (flag %r, %d injected elements)"
              % (where, ran, injected))

    def shot(self, shots, name):
        if shots:
            path = os.path.join(shots, "dashboard-%s.png" % name)
            self.js("window.scrollTo(0, 0)")
            self.d.save_screenshot(path)
            print("      screenshot %s" % path)


def texts(page, selector, attr=None):
    """textContent (exact, control characters kept) or a data- attribute of every match."""
    if attr:
        return page.js("return [...document.querySelectorAll(arguments[0])].map(e => e.dataset[arguments[1]])",
                       selector, attr)
    return page.js("return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)", selector)


def num(s):
    return int(str(s).replace(",", "").strip() or 0)


# ---- the checks ----

def t_login(page, web, token):
    st, hd, _ = http_get(web, "GET", "/flows")
    check(st == 303 and hd.get("location", "").endswith("/login"),
          "GET /flows without a session: %d to %s" % (st, hd.get("location")))
    st, hd, body = http_get(web, "GET", "/api/flows")
    check(st == 401 and b"login required" in body, "GET /api/flows without a session: %d %r" % (st, body[:60]))
    st, hd, _ = http_get(web, "GET", "/login")
    csp = hd.get("content-security-policy", "")
    check("script-src 'self'" in csp and "unsafe-inline" not in csp,
          "the login page's Content-Security-Policy: %s" % csp)
    from selenium.webdriver.common.by import By
    page.go("/flows")
    page.wait("/flows without a session goes to /login",
              lambda: urllib.parse.urlsplit(page.d.current_url).path == "/login")
    check(True, "the browser at /flows without a session lands on %s" % page.d.current_url)
    page.d.find_element(By.ID, "token").send_keys("not-" + token)
    page.d.find_element(By.ID, "login-submit").click()
    page.wait("a wrong token is refused", lambda: "failed=1" in page.d.current_url)
    check(page.d.find_element(By.ID, "login-failed").is_displayed(), "a wrong token: 'not accepted' shown")
    page.d.find_element(By.ID, "token").send_keys(token)
    page.d.find_element(By.ID, "login-submit").click()
    page.wait("the right token logs in", lambda: urllib.parse.urlsplit(page.d.current_url).path == "/")
    cookie = page.d.get_cookie("fp_session") or {}
    check(cookie.get("httpOnly") is True and cookie.get("sameSite") == "Strict"
          and cookie.get("secure") is bool(TLS),
          "session cookie HttpOnly, SameSite=Strict, Secure %s (%s)"
          % (bool(TLS), {k: cookie.get(k) for k in ("httpOnly", "sameSite", "secure")}))
    page.drain_console("login")


def overview_counts(page):
    rows = page.js("return [...document.querySelectorAll('#totals tbody tr')].map(r => "
                   "[r.dataset.class, r.querySelector('td.count').textContent])")
    return {c: num(n) for c, n in rows}


def t_overview(page, rows, shots):
    for stage in ("final", "block"):
        page.go("/?range=all&stage=" + stage)
        page.wait("overview totals (%s)" % stage, lambda: page.js(
            "return document.querySelectorAll('#totals tbody tr').length") >= 6 and
            page.js("return document.getElementById('range').value") == "all")
        page.wait("overview chart", lambda: page.js(
            "return !!(window.Chart && Chart.getChart(document.getElementById('chart-classes')))"))
        got = overview_counts(page)
        want = {c: sum(1 for v in rows if stage_of(stage, v) and v["class"] == c) for c in CLASSES}
        check(all(got.get(c) == want[c] for c in CLASSES),
              "overview, all time, stage %s: %s (query: %s)" % (stage, got, want))
        if stage == "block":
            check(all(want[c] > 0 for c in FIVE), "the lab mix has block verdicts of all five classes")
        if stage == "block":
            page.shot(shots, "overview")
    # A custom range, the middle of the capture, against query --since/--until.
    starts = sorted(v["start_ns"] for v in rows if v["agent_id"] == "lab")
    s_ns = starts[len(starts) // 4] // 10**9 * 10**9
    u_ns = starts[3 * len(starts) // 4] // 10**9 * 10**9 + 10**9
    page.go("/?range=custom&stage=all&since=%d&until=%d" % (s_ns, u_ns))
    page.wait("overview custom range", lambda: page.js(
        "return document.querySelectorAll('#totals tbody tr').length") >= 6)
    got = overview_counts(page)
    return got, s_ns, u_ns


def t_protocol(page):
    """--tls: the page, its files, its API calls and the live feed came over h2."""
    page.go("/?range=all")
    page.wait("overview totals", lambda: page.js("return document.querySelectorAll('#totals tbody tr').length") >= 6)
    nav = page.js("return performance.getEntriesByType('navigation')[0].nextHopProtocol")
    res = page.js("return performance.getEntriesByType('resource')"
                  ".map(e => [e.name.replace(location.origin, ''), e.nextHopProtocol])")
    other = [r for r in res if r[1] != "h2"]
    check(nav == "h2" and len(res) >= 3 and not other,
          "HTTPS: the page (%s) and its %d files and API calls over h2 %s" % (nav, len(res), other[:3]))
    page.wait("the live feed connected over h2", lambda: page.js(
        "return document.getElementById('live-status').textContent") == "live")


def t_live(page, harness, address, t0):
    page.go("/?range=all&stage=final")
    page.wait("overview totals", lambda: page.js("return document.querySelectorAll('#totals tbody tr').length") >= 6)
    page.wait("the live feed connected", lambda: page.js(
        "return document.getElementById('live-status').textContent") == "live")
    before = overview_counts(page)["chat"]
    t_send = time.monotonic()
    send_batch(harness, address, "live-agent", "live-host", t0, "chat", lambda m: m.STAGE_FINAL, seq=1)
    t_stored = time.monotonic()
    try:
        page.wait("the new verdict counted", lambda: overview_counts(page)["chat"] == before + 1, timeout=5)
        t_seen = time.monotonic()
    except AssertionError as e:
        check(False, str(e))
        return
    check(t_seen - t_send <= 2.0,
          "live: a new chat verdict counted %.0f ms after the batch was sent (%.0f ms after its ack)"
          % (1000 * (t_seen - t_send), 1000 * (t_seen - t_stored)))
    feed = texts(page, "#live-feed tbody td.agent")
    check("live-agent" in feed, "live: the verdict is in the live feed table")


def flows_rows(page):
    return page.js("return [...document.querySelectorAll('#flows tbody tr')].map(r => r.dataset.key)")


def t_flows(page, collector, db, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    page.go("/flows")
    page.loaded()
    page.shot(shots, "flows")
    # Filters through the form, against the same filter given to query.
    cases = [
        ({"class": ["file_transfer"], "proto": "tcp"}, ["--class", "file_transfer", "--flow", "proto=tcp"]),
        ({"class": ["unknown", "voip"], "addr": "10.1.3.2"}, ["--class", "unknown,voip", "--flow", "addr=10.1.3.2"]),
        ({"port": "443", "agent": "lab"}, ["--flow", "port=443", "--agent", "lab"]),
    ]
    for form, qargs in cases:
        prev = page.js("return document.body.dataset.loaded")
        page.d.find_element(By.ID, "f-reset").click()
        page.loaded(prev)
        Select(page.d.find_element(By.ID, "f-stage")).select_by_value("all")
        Select(page.d.find_element(By.ID, "f-limit")).select_by_value("500")
        sel = Select(page.d.find_element(By.ID, "f-class"))
        sel.deselect_all()
        for c in form.get("class", []):
            sel.select_by_value(c)
        if "proto" in form:
            Select(page.d.find_element(By.ID, "f-proto")).select_by_value(form["proto"])
        for name in ("addr", "port", "agent"):
            if name in form:
                e = page.d.find_element(By.ID, "f-" + name)
                e.clear()
                e.send_keys(form[name])
        prev = page.js("return document.body.dataset.loaded")
        page.d.find_element(By.ID, "f-apply").click()
        page.loaded(prev)
        got = flows_rows(page)
        want = [key(v) for v in query(collector, db, *qargs)]
        check(len(want) > 0 and sorted(got) == sorted(want) and len(got) == len(set(got)),
              "flows filter %s: %d rows, query %s: %d" % (form, len(got), " ".join(qargs), len(want)))
    # Paging: 25 a page over everything, each row once.
    page.go("/flows?stage=all&limit=25")
    page.loaded()
    seen = []
    for _ in range(40):
        seen += flows_rows(page)
        if page.js("return document.getElementById('next').disabled"):
            break
        prev = page.js("return document.body.dataset.loaded")
        page.d.find_element(By.ID, "next").click()
        page.loaded(prev)
    want = [key(v) for v in query(collector, db)]
    check(sorted(seen) == sorted(want), "paging 25 a page: %d rows on %d pages, query: %d"
          % (len(seen), (len(seen) + 24) // 25, len(want)))
    # Sorting by confidence: a click, then the order of the column.
    prev = page.js("return document.body.dataset.loaded")
    page.d.find_element(By.CSS_SELECTOR, "#flows th[data-sort=confidence]").click()
    page.loaded(prev)
    conf = [float(x) for x in texts(page, "#flows tbody td.conf") if x != "-"]
    check(len(conf) > 1 and conf == sorted(conf, reverse=True) and "sort=confidence" in page.d.current_url,
          "sorted by confidence, highest first (%d rows)" % len(conf))
    page.drain_console("flows")


def t_flow(page, rows, pictures, shots):
    lab = [v for v in rows if v["agent_id"] == "lab"]
    nblocks = {}
    for v in lab:
        if v["stage"] != "final":
            k = (v["run_id"], v["flow_id"])
            nblocks[k] = nblocks.get(k, 0) + 1
    # The busiest flow with blocks and a flow verdict.
    finals = {(v["run_id"], v["flow_id"]): v for v in lab if v["stage"] == "final"}
    run_id, flow_id = max((k for k in nblocks if k in finals),
                          key=lambda k: finals[k]["packets_fwd"] + finals[k]["packets_rev"])
    mine = [v for v in lab if v["run_id"] == run_id and v["flow_id"] == flow_id]
    q = urllib.parse.urlencode({"agent_id": "lab", "run_id": run_id, "flow_id": flow_id})
    page.go("/flows?" + urllib.parse.urlencode({"agent": "lab", "stage": "final", "limit": 500}))
    page.loaded()
    links = page.js("return [...document.querySelectorAll('#flows tbody td.flow a')].map(a => a.getAttribute('href'))")
    check("/flow?" + q in links, "the flows table links to /flow?%s" % q)
    page.go("/flow?" + q)
    page.loaded()
    blocks = page.js("return [...document.querySelectorAll('#blocks .block-row')].map(r => ({...r.dataset, "
                     "conf: r.querySelector('.conf').textContent}))")
    want = sorted((v for v in mine if v["stage"] != "final"), key=lambda v: v["block_index"])
    got = [(b["key"], b["stage"], b["class"], b["reason"], b["conf"]) for b in blocks]
    exp = [(key(v), v["stage"], v["class"], v["reason"], "%.4f" % v["confidence"]) for v in want]
    check(got == exp, "flow %d: %d block rows equal query's %d block verdicts (key, stage, class, reason, confidence)"
          % (flow_id, len(got), len(exp)))
    fin = page.js("var f = document.getElementById('final'); return {...f.dataset, "
                  "conf: (f.querySelector('.conf') || {}).textContent}")
    fv = finals[(run_id, flow_id)]
    check((fin.get("key"), fin.get("class"), fin.get("reason"), fin.get("conf")) ==
          (key(fv), fv["class"], fv["reason"], "%.4f" % fv["confidence"]),
          "flow %d: the flow verdict equals query's (%s %s %s)" % (flow_id, fv["class"], fv["reason"], fin.get("conf")))
    counters = dict(page.js("return [...document.querySelectorAll('#counters tr')].map(r => "
                            "[r.dataset.name, r.querySelector('td').textContent])"))
    check(num(counters.get("packets forward")) == fv["packets_fwd"] and
          num(counters.get("payload bytes reverse")) == fv["payload_bytes_rev"],
          "flow %d: counters packets_fwd %s, payload_bytes_rev %s" % (
              flow_id, counters.get("packets forward"), counters.get("payload bytes reverse")))
    if not pictures:
        print("SKIP  FlowPic images: this flowpic-agent has no --send-pictures (no cells stored)")
    else:
        page.wait("every FlowPic decoded", lambda: page.js(
            "return [...document.querySelectorAll('#blocks img.flowpic')].every(i => i.complete)"))
        widths = page.js("return [...document.querySelectorAll('#blocks img.flowpic')].map(i => i.naturalWidth)")
        planes = page.js("return [...document.querySelectorAll('#blocks .block-row')].map(r => "
                         "r.querySelectorAll('img.flowpic').length)")
        check(len(widths) > 0 and all(w > 0 for w in widths) and all(p >= 1 for p in planes),
              "flow %d: %d FlowPic images, every block has one or more (%s), naturalWidth %s"
              % (flow_id, len(widths), planes, sorted(set(widths))))
    page.shot(shots, "flow")
    page.drain_console("flow")


def t_classify(page, flowpic, collector, db, shots):
    from selenium.webdriver.common.by import By
    r = subprocess.run([flowpic, "classify", "--json", "--blocks", DEMO], capture_output=True,
                       text=True, timeout=60)
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    before = len(query(collector, db))
    page.go("/classify")
    page.wait("the classify form", lambda: page.js("return !!document.getElementById('file')"))
    check(not page.d.find_element(By.ID, "store").is_selected(), "classify: 'store' is off by default")
    page.d.find_element(By.ID, "file").send_keys(DEMO)
    page.d.find_element(By.ID, "upload").click()
    page.wait("classify results", lambda: page.js("return document.body.dataset.loaded") in ("1", "error"), timeout=30)
    got = page.js("return [...document.querySelectorAll('#results tbody tr')].map(r => [r.dataset.flowId, "
                  "r.querySelector('td.class').dataset.class, r.querySelector('td.class').dataset.reason, "
                  "r.querySelector('td.conf').textContent])")
    want = [[str(l["flow_id"]), l["class"], l["reason"], "%.4f" % l["confidence"]] for l in lines if l["type"] == "flow"]
    check(sorted(got) == sorted(want) and len(want) > 0,
          "classify %s: the page's %d flows equal flowpic classify's %d (class, reason, confidence)"
          % (os.path.basename(DEMO), len(got), len(want)))
    gotb = page.js("return [...document.querySelectorAll('#blocks .block-row')].map(r => [r.dataset.flowId, "
                   "r.dataset.blockIndex, r.dataset.class, r.dataset.reason, r.querySelector('.conf').textContent])")
    wantb = [[str(l["flow_id"]), str(l["block_index"]), l["class"], l["reason"], "%.4f" % l["confidence"]]
             for l in lines if l["type"] == "block"]
    check(sorted(gotb) == sorted(wantb), "classify: the page's %d blocks equal flowpic classify --blocks' %d"
          % (len(gotb), len(wantb)))
    # Every block's picture, as the agent sends it: an image per plane.
    sent = int(page.js("return document.body.dataset.pictures || '0'"))
    page.wait("every uploaded FlowPic decoded", lambda: page.js(
        "return [...document.querySelectorAll('#blocks img.flowpic')].every(i => i.complete)"))
    widths = page.js("return [...document.querySelectorAll('#blocks .block-row')].map(r => "
                     "[...r.querySelectorAll('img.flowpic')].map(i => i.naturalWidth))")
    check(sent == len(wantb) > 0 and len(widths) == sent and all(w and all(x > 0 for x in w) for w in widths),
          "classify: %d pictures sent for %d blocks, each block's FlowPic images with naturalWidth > 0"
          % (sent, len(wantb)))
    check(page.js("return !document.getElementById('summary-card').hidden && "
                  "!!document.querySelector('#summary .file-summary') && !!document.getElementById('per-class')"),
          "classify: the summary lines shown (the file's accounting, the flows per class)")
    check(len(query(collector, db)) == before, "classify without 'store': nothing stored")
    page.shot(shots, "classify")
    page.drain_console("classify")


def t_agents(page, rows, shots):
    page.go("/agents")
    page.loaded()
    got = dict(page.js("return [...document.querySelectorAll('#agents > tbody > tr[data-agent]')].map(r => "
                       "[r.dataset.agent, [r.querySelector('td.verdicts').textContent, r.dataset.health]])"))
    want = {}
    for v in rows:
        want[v["agent_id"]] = want.get(v["agent_id"], 0) + 1
    check(sorted(got) == sorted(want) and all(num(got[a][0]) == n for a, n in want.items()) and
          all(h in ("ok", "stale", "losing") for _, h in got.values()),
          "agents: every agent with the verdicts query counts, and a health (%s)" % got)
    # The agent's counters, opened (as a reader would, and for the screenshot).
    from selenium.webdriver.common.by import By
    page.d.find_element(By.CSS_SELECTOR, '#agents tr[data-agent="lab"] button.toggle').click()
    n = page.js("var r = document.querySelector('#agents tr[data-counters-for=\"lab\"]'); "
                "return r && !r.hidden ? r.querySelectorAll('.counter[data-name]').length : 0")
    check(n > 0, "agents: the agent's counters listed (%d)" % n)
    page.shot(shots, "agents")
    page.drain_console("agents")


def t_hostile(page, shots):
    page.go("/flows?" + urllib.parse.urlencode({"agent": H_AGENT, "stage": "all"}))
    page.loaded()
    agents, hosts = texts(page, "#flows tbody td.agent"), texts(page, "#flows tbody td.host")
    classes = texts(page, "#flows tbody td.class", "class")
    badges = texts(page, "#flows tbody td.class .badge")
    check(len(agents) == 2 and set(agents) == {H_AGENT} and set(hosts) == {H_HOST},
          "flows: the hostile agent id and host shown as text, byte for byte (%d rows)" % len(agents))
    check(H_CLASS in classes and any(b.startswith(H_CLASS) for b in badges),
          "flows: the hostile class shown as text")
    page.no_payload("flows")
    link = page.js("var a = document.querySelector('#flows tbody td.flow a'); return a && a.getAttribute('href')")
    page.go(link)
    page.loaded()
    shown = page.js("return [...document.querySelectorAll('#counters td')].map(t => t.textContent)")
    check(H_AGENT in shown and H_HOST in shown, "flow page: the hostile agent id and host shown as text")
    page.no_payload("flow")
    page.go("/?range=all&stage=all")
    page.wait("overview per agent", lambda: H_AGENT in texts(page, "#per-agent tbody td.agent"))
    check(H_HOST in texts(page, "#per-agent tbody td.host"), "overview: the hostile host shown as text")
    page.no_payload("overview")
    page.go("/agents")
    page.loaded()
    check(H_AGENT in texts(page, "#agents tbody td.agent") and H_HOST in texts(page, "#agents tbody td.host"),
          "agents: the hostile agent id and host shown as text")
    page.no_payload("agents")
    page.drain_console("hostile")


def t_logout(page):
    from selenium.webdriver.common.by import By
    page.go("/agents")
    page.loaded()
    page.d.find_element(By.ID, "logout").click()
    page.wait("logout goes to /login", lambda: urllib.parse.urlsplit(page.d.current_url).path == "/login")
    page.go("/flows")
    page.wait("after logout, /flows goes to /login",
              lambda: urllib.parse.urlsplit(page.d.current_url).path == "/login")
    check(True, "logout: the session is over (/flows goes to /login)")
    page.drain_console("logout")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--collector", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--flowpic", required=True)
    ap.add_argument("--tls", action="store_true",
                    help="HTTPS with a certificate made for the test: the browser speaks HTTP/2")
    ap.add_argument("--screenshots", metavar="DIR", help="write dashboard-*.png (1280 x 800) here")
    ap.add_argument("--web-root", metavar="DIR", default=os.path.join(ROOT, "collector", "web", "static"),
                    help="the pages to test (default: the source tree's collector/web/static)")
    a = ap.parse_args()
    if os.environ.get("FLOWPIC_SKIP_BROWSER") == "1":
        print("SKIP: FLOWPIC_SKIP_BROWSER=1")
        return 77
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if importlib.util.find_spec("selenium") is None:
        missing.append("python3-selenium")
    if missing:
        print("FAIL: %s missing: scripts/install-deps.sh dev installs chromium, chromium-driver and "
              "python3-selenium (FLOWPIC_SKIP_BROWSER=1 skips this test)" % ", ".join(missing))
        return 1
    import harness
    global TLS
    if a.screenshots:
        os.makedirs(a.screenshots, exist_ok=True)

    tmp = tempfile.mkdtemp(prefix="fpt-web-")
    col = driver = None
    t_start = time.monotonic()
    try:
        token = "viewer-" + os.urandom(12).hex()
        tf = os.path.join(tmp, "tokens")
        with open(tf, "w") as f:
            f.write("%s tester\n" % token)
        os.chmod(tf, 0o600)
        db = os.path.join(tmp, "v.db")
        if a.tls:
            pki = harness.make_pki(tmp)
            TLS = {"cert": pki["server"] + ".pem", "key": pki["server"] + ".key",
                   "ca": pki["ca"] + ".pem"}
        col = CollectorWithWeb(a.collector, db, tf, tmp, a.web_root)
        print("      collector gRPC %s, web %s" % (col.address, col.web))

        # The lab mix through the agent, with its pictures when it can.
        helptext = subprocess.run([a.agent, "--help"], capture_output=True, text=True).stdout
        pictures = "--send-pictures" in helptext
        cmd = [a.agent, "--pcap", LAB_MIX, "--collector", col.address, "--agent-id", "lab"]
        if TLS:
            cmd += ["--collector-ca", TLS["ca"], "--collector-server-name", "localhost"]
        if pictures:
            cmd.append("--send-pictures")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("flowpic-agent: exit %d: %s" % (r.returncode, r.stderr[-500:]))
        rows = query(a.collector, db)
        lab_t0 = min(v["start_ns"] for v in rows)
        print("      store: %d verdicts from the agent, pictures %s" % (len(rows), "on" if pictures else "off"))

        driver = browser(tmp)
        page = Page(driver, ("https://" if TLS else "http://") + col.web)
        t_login(page, col.web, token)
        got, s_ns, u_ns = t_overview(page, rows, a.screenshots)
        want_rows = query(a.collector, db, "--since", str(s_ns // 10**9), "--until", str(u_ns // 10**9))
        want = {c: sum(1 for v in want_rows if v["class"] == c) for c in CLASSES}
        check(got == want, "overview, custom range [%d, %d) s, all stages: %s (query --since --until: %s)"
              % (s_ns // 10**9, u_ns // 10**9, got, want))
        page.drain_console("overview")
        t_live(page, harness, col.address, lab_t0 + 2 * 10**9)
        page.drain_console("live")
        rows = query(a.collector, db)
        t_flows(page, a.collector, db, a.screenshots)
        t_flow(page, rows, pictures, a.screenshots)
        t_classify(page, a.flowpic, a.collector, db, a.screenshots)
        t_agents(page, query(a.collector, db), a.screenshots)
        # Hostile strings: two verdicts, a flow and a block one.
        send_batch(harness, col.address, H_AGENT, H_HOST, lab_t0 + 10**9, H_CLASS,
                   lambda m: m.STAGE_FINAL, seq=1, n=1)
        send_batch(harness, col.address, H_AGENT, H_HOST, lab_t0 + 10**9, "video",
                   lambda m: m.STAGE_BLOCK, seq=2, n=1)
        t_hostile(page, a.screenshots)
        if TLS:
            t_protocol(page)
        t_logout(page)
        check(not page.console, "browser console: no errors (%d: %s)" % (len(page.console), page.console[:3]))
    except AssertionError as e:
        check(False, str(e))
    except Exception as e:  # selenium's, a program's: one line, then the cleanup
        check(False, "%s: %s" % (type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else ""))
    finally:
        if driver:
            driver.quit()
        if col:
            col.stop()
            err = col.stderr()
            if failures and err:
                print("collector stderr (last lines):\n" + "\n".join(err.splitlines()[-15:]))
        shutil.rmtree(tmp, ignore_errors=True)
    took = time.monotonic() - t_start
    check(took < 90, "the whole test took %.1f s (under 90)" % took)
    if failures:
        print("%d checks failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
