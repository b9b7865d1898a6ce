#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""flowpic-agent's settings from the environment and its run-time reloads:
FLOWPIC_<KEY> over the config file and under the flags; an unknown FLOWPIC_
name warns (the scripts' own names do not); a bad value is an error naming
the variable; SIGHUP opens the counters file again (logrotate moved it) and
the agent goes on; --log-format json makes every stderr line a JSON object.

usage: test_agent_settings.py AGENT CAPTURE"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def run(agent, *args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([agent, *args], capture_output=True, text=True, env=e, timeout=60)


def config_of(out):
    return dict(l.split(" = ", 1) for l in out.splitlines() if " = " in l and l[0] != "#")


def test_environment(agent, cap, d):
    conf = os.path.join(d, "agent.conf")
    with open(conf, "w") as f:
        f.write("idle-timeout = 30\nmax-flows = 1000\nsweep = 0.5\n")
    r = run(agent, "-c", conf, "--pcap", cap, "--max-flows", "3000", "--print-config",
            env={"FLOWPIC_IDLE_TIMEOUT": "60", "FLOWPIC_MAX_FLOWS": "2000",
                 "FLOWPIC_LOG_FORMAT": "json", "FLOWPIC_AGENT_ARGS": "-v",
                 "FLOWPIC_BUILD_DIR": "/x", "FLOWPIC_CAPTURE_NO_TCX": "1"})
    assert r.returncode == 0 and r.stderr == "", r
    c = config_of(r.stdout)
    # file < environment < flags
    assert (c["idle-timeout"], c["max-flows"], c["sweep"], c["log-format"]) == \
        ("60", "3000", "0.5", "json"), c
    r = run(agent, "--pcap", cap, "--print-config", env={"FLOWPIC_MAX_FLOW": "9"})
    assert r.returncode == 0 and "FLOWPIC_MAX_FLOW:" in r.stderr, r
    r = run(agent, "--pcap", cap, env={"FLOWPIC_IDLE_TIMEOUT": "soon"})
    assert r.returncode == 2 and r.stdout == "" and \
        "FLOWPIC_IDLE_TIMEOUT: idle-timeout 'soon'" in r.stderr, r
    print("environment: OK")


def test_sighup_json(agent, cap, d):
    counters = os.path.join(d, "counters.jsonl")
    errpath = os.path.join(d, "agent.err")
    # A collector that is not there keeps the agent waiting for acks
    # (--collector-wait) after the capture, then the verdicts go to the
    # spool: it runs long enough to be signalled, and logs warnings.
    spool = os.path.join(d, "spool")
    os.mkdir(spool, 0o700)
    with open(errpath, "w") as err:
        p = subprocess.Popen([agent, "--pcap", cap, "--counters-file", counters,
                              "--collector", "127.0.0.1:1", "--collector-wait", "3",
                              "--spool-dir", spool,
                              "--log-format", "json", "--flow-verdicts-only"],
                             stdout=subprocess.PIPE, stderr=err, text=True)
        first = p.stdout.readline()  # replaying: SIGHUP's thread runs
        assert first, "no verdict"
        os.rename(counters, counters + ".1")
        p.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        p.send_signal(signal.SIGHUP)  # twice: one file each time, the same name
        rest, _ = p.communicate(timeout=60)
    # SIGHUP did not end it; the last counters went to the new file.
    assert p.returncode == 0, (p.returncode, open(errpath).read())
    assert all(json.loads(l)["class"] for l in rest.splitlines()), rest
    with open(counters) as f:
        lines = f.read().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["counters"]["packets"] > 0, lines
    assert os.path.getsize(counters + ".1") == 0
    with open(errpath, "rb") as f:
        errs = f.read().decode("utf-8").splitlines()
    objs = [json.loads(l) for l in errs]
    assert objs and all(set(o) == {"ts", "level", "prog", "msg", "type"} and
                        o["prog"] == "flowpic-agent" for o in objs), objs
    assert any("127.0.0.1:1" in o["msg"] for o in objs), objs
    print("SIGHUP reopened the counters file; %d JSON log lines: OK" % len(objs))
    # A message with bytes that are not UTF-8 and a quote (a file name): one
    # valid JSON line, U+FFFD for the bad byte; errors of the settings
    # themselves come out as JSON too.
    r = subprocess.run([agent.encode(), b"--pcap", cap.encode(), b"--log-format", b"json",
                        b"--counters-file", b"/nonexistent-fpt/\xff\"q.jsonl"],
                       capture_output=True, timeout=60)
    assert r.returncode == 2, r
    o = json.loads(r.stderr.decode("utf-8"))
    assert "/nonexistent-fpt/\ufffd\"q.jsonl" in o["msg"] and o["level"] == "error", o
    r = run(agent, "--pcap", cap, "--log-format", "json", "--idle-timeout", "x\x01")
    o = json.loads(r.stderr)
    assert r.returncode == 2 and "control character 0x01" in o["msg"], r


def main():
    agent, cap = sys.argv[1], sys.argv[2]
    d = tempfile.mkdtemp(prefix="fpt-agent-settings-")
    try:
        test_environment(agent, cap, d)
        test_sighup_json(agent, cap, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("agent.settings: OK")


if __name__ == "__main__":
    main()
