#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""flowpic-collector's settings: a config file (-c), FLOWPIC_* variables and
flags (defaults < file < environment < flags), --print-config, errors named
by file and line or by variable; SIGHUP reloads the token file (a call
already running goes on; the new token works at once, the removed one is
refused) and the log level, keeps everything on a bad file, and names what
needs a restart; --log-format json: every stderr line is a JSON object."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def run(binary, *args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([binary, *args], capture_output=True, text=True, env=e, timeout=30)


def test_precedence(binary, d):
    conf = os.path.join(d, "c.conf")
    with open(conf, "w") as f:
        f.write("# the collector\nlisten = 127.0.0.1:0\nno_token = yes\n"
                "max-message = 1000\nidle-timeout = 30\ncommit-delay = \"0.2\"\n"
                "db = sqlite:%s/p.db\n" % d)
    r = run(binary, "-c", conf, "--max-message", "3000", "--print-config",
            env={"FLOWPIC_IDLE_TIMEOUT": "60", "FLOWPIC_MAX_MESSAGE": "2000",
                 "FLOWPIC_BUILD_DIR": "/x", "FLOWPIC_COLLECTOR_ARGS": "", "FLOWPIC_DATA_DIR": "/y"})
    assert r.returncode == 0, r.stderr
    got = dict(l.split(" = ", 1) for l in r.stdout.splitlines() if not l.startswith("#"))
    # file < environment < flags
    assert got == {"listen": "127.0.0.1:0", "no-token": "true", "max-message": "3000",
                   "idle-timeout": "60", "commit-delay": "0.2", "db": "sqlite:%s/p.db" % d}, got
    assert r.stderr == "", r.stderr  # the scripts' FLOWPIC_ names do not warn
    # An unknown FLOWPIC_ name warns, naming it; the collector still starts.
    r = run(binary, "-c", conf, "--print-config", env={"FLOWPIC_IDLE_TIMOUT": "5"})
    assert r.returncode == 0 and "FLOWPIC_IDLE_TIMOUT" in r.stderr \
        and len(r.stderr.splitlines()) == 1, r.stderr
    # The settings really apply: a file alone starts a server.
    c = subprocess.Popen([binary, "-c", conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    ev = json.loads(c.stdout.readline())
    assert ev["event"] == "listening" and ev["token"] is False, ev
    acks, code, det = h.stream(ev["address"], [h.make_batch(n=3)])
    assert code.name == "OK" and acks[0].stored == 3, (code, det)
    c.terminate()
    c.communicate(timeout=30)
    # Errors: each bad line by file and line, a bad variable by name; exit 2.
    bad = os.path.join(d, "bad.conf")
    with open(bad, "w") as f:
        f.write("listen = 127.0.0.1:0\nmax-streams = many\nbogus = 1\nno-token = maybe\n"
                "listen = 127.0.0.1:1\n")
    r = run(binary, "-c", bad, env={"FLOWPIC_SLOW_TIMEOUT": "0"})
    lines = r.stderr.splitlines()
    assert r.returncode == 2, r
    for want in ("bad.conf:2: --max-streams 'many'", "bad.conf:3: unknown key 'bogus'",
                 "bad.conf:4: no-token 'maybe': give true or false",
                 "bad.conf:5: listen is already set on line 1",
                 "FLOWPIC_SLOW_TIMEOUT: --slow-timeout '0'"):
        assert sum(want in l for l in lines) == 1, (want, lines)
    r = run(binary, "-c", os.path.join(d, "missing.conf"))
    assert r.returncode == 2 and "missing.conf: cannot read the config file" in r.stderr, r
    # The checks of the whole still run after the file: a token and no-token.
    r = run(binary, "-c", conf, "--token", "abc")
    assert r.returncode == 2 and "contradict" in r.stderr, r
    print("precedence and errors: OK")


def wait_line(p, pred, timeout=10):
    """The next stdout line of p for which pred is true."""
    out = []

    def rd():
        for line in p.stdout:
            if pred(line):
                out.append(line)
                return
    t = threading.Thread(target=rd, daemon=True)
    t.start()
    t.join(timeout)
    assert out, "no such line within %s s" % timeout
    return json.loads(out[0])


def test_sighup(binary, d):
    tok = os.path.join(d, "tokens")
    conf = os.path.join(d, "hup.conf")
    with open(tok, "w") as f:
        f.write("token-a agent-1\n")
    os.chmod(tok, 0o600)
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:0\ndb = sqlite:%s/hup.db\ntoken-file = %s\n"
                "log-level = error\n" % (d, tok))
    errpath = os.path.join(d, "hup.err")
    err = open(errpath, "w")
    p = subprocess.Popen([binary, "-c", conf], stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        ev = json.loads(p.stdout.readline())
        addr = ev["address"]
        # A call with token-a that stays open across the reload.
        gate = threading.Event()
        sent = []

        def batches():
            yield h.make_batch(sequence=1, first_seq=1, n=5)
            gate.wait(20)
            sent.append(2)
            yield h.make_batch(sequence=2, first_seq=6, n=5)
        res = {}
        t = threading.Thread(target=lambda: res.update(
            r=h.stream(addr, batches(), token="token-a")))
        t.start()
        time.sleep(0.5)
        # Rotate: token-b for agent-1, token-a gone; the log level to info.
        with open(tok, "w") as f:
            f.write("# rotated\ntoken-b agent-1\n")
        with open(conf, "w") as f:
            f.write("listen = 127.0.0.1:0\ndb = sqlite:%s/hup.db\ntoken-file = %s\n"
                    "log-level = info\n" % (d, tok))
        p.send_signal(signal.SIGHUP)
        ev = wait_line(p, lambda l: '"reloaded"' in l)
        assert ev["tokens"] == 1 and ev["log_level"] == "info", ev
        gate.set()
        t.join(30)
        acks, code, det = res["r"]
        assert code.name == "OK" and [a.stored for a in acks] == [5, 5], (code, det, acks)
        acks, code, det = h.stream(addr, [h.make_batch(sequence=3, first_seq=11, n=5)],
                                   token="token-b")
        assert code.name == "OK" and acks[0].stored == 5, (code, det)
        _, code, _ = h.stream(addr, [h.make_batch(sequence=4, first_seq=16, n=5)],
                              token="token-a")
        assert code.name == "UNAUTHENTICATED", code
        _, code, _ = h.stream(addr, [h.make_batch(agent_id="agent-2", n=5)], token="token-b")
        assert code.name == "PERMISSION_DENIED", code
        # A bad file: nothing changes (token-b still works), one error line.
        with open(conf, "a") as f:
            f.write("max-streams = lots\n")
        p.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "settings not reloaded" not in open(errpath).read():
            assert time.time() < deadline, open(errpath).read()
            time.sleep(0.1)
        acks, code, det = h.stream(addr, [h.make_batch(sequence=5, first_seq=21, n=5)],
                                   token="token-b")
        assert code.name == "OK", (code, det)
        # A setting that needs a restart is named.
        with open(conf, "w") as f:
            f.write("listen = 127.0.0.1:0\ndb = sqlite:%s/hup.db\ntoken-file = %s\n"
                    "log-level = info\nmax-streams = 8\n" % (d, tok))
        p.send_signal(signal.SIGHUP)
        wait_line(p, lambda l: '"reloaded"' in l)
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        assert p.returncode == 0
        log = open(errpath).read()
        assert "bad.conf" not in log and "hup.conf:5: --max-streams 'lots'" in log, log
        assert "SIGHUP: max-streams changed: takes effect at the next start" in log, log
        # At log-level info the refused call above was logged; at error it was not.
        assert "missing or wrong access token" in log, log
    finally:
        if p.poll() is None:
            p.kill()
        err.close()
    print("SIGHUP: OK")


def test_json_logs(binary, d):
    # A token file whose name needs JSON escapes, open to others: a warning
    # naming it; a refused call and a bad method: warnings from the server.
    name = os.path.join(d, 'tok "q" \\ é \x01.txt')
    with open(name, "w") as f:
        f.write("tok-j\n")
    os.chmod(name, 0o644)
    errpath = os.path.join(d, "json.err")
    with open(errpath, "w") as err:
        p = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--db",
                              "sqlite:%s/j.db" % d, "--token-file", name, "--log-format",
                              "json", "-v"], stdout=subprocess.PIPE, stderr=err, text=True)
        addr = json.loads(p.stdout.readline())["address"]
        h.stream(addr, [h.make_batch(n=2)], token="wrong")
        raw = h.RawH2(addr)
        raw.open_call(sid=1, token="tok-j", path='/no"such\\/Method')
        raw.frames(lambda t, fl, sid, pl: t == 3 or (t == 1 and fl & 1), timeout=5)
        raw.close()
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=30)
    with open(errpath, "rb") as f:
        lines = f.read().decode("utf-8").splitlines()
    assert len(lines) >= 3, lines
    objs = [json.loads(l) for l in lines]  # every line: JSON
    for o in objs:
        assert set(o) == {"ts", "level", "prog", "msg", "type"} and o["type"] == "log", o
        assert o["prog"] == "flowpic-collector" and o["level"] in ("error", "warn", "info",
                                                                   "debug"), o
        assert len(o["ts"]) == 24 and o["ts"].endswith("Z") and o["ts"][10] == "T", o
    assert any(name in o["msg"] for o in objs), (name, objs)
    assert any("missing or wrong access token" in o["msg"] for o in objs), objs
    # The environment sets it too (FLOWPIC_LOG_FORMAT, for every program).
    r = run(binary, "--no-token", "--max-streams", "0", env={"FLOWPIC_LOG_FORMAT": "json"})
    assert r.returncode == 2, r  # argp's own usage errors stay text
    r = run(binary, "--no-token", env={"FLOWPIC_LOG_FORMAT": "json", "FLOWPIC_SLOW_TIMEOUT": "x"})
    assert r.returncode == 2 and json.loads(r.stderr.splitlines()[0])["level"] == "error", r
    print("JSON logs: %d lines, all JSON: OK" % len(lines))


def main():
    binary = h.collector_binary()
    d = tempfile.mkdtemp(prefix="fpt-settings-")
    try:
        test_precedence(binary, d)
        test_sighup(binary, d)
        test_json_logs(binary, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("collector.settings: OK")


if __name__ == "__main__":
    main()
