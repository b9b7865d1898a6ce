#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Every JSON line of every program against docs/output.schema.json: flowpic
flows/classify (a file name with a byte that is not UTF-8 included),
flowpic-agent --pcap (verdicts on stdout, counters on stderr), flowpic-send
--json, flowpic-collector (events, counters) and its query.  Each line must be
strict UTF-8, JSON without NaN or Infinity, and valid against the schema.
Usage: test_json_schema.py BUILD_DIR DEMO_CAPTURE"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import jsonschema

build, demo = sys.argv[1:3]
here = os.path.dirname(os.path.abspath(__file__))
schema = json.load(open(os.path.join(here, "..", "..", "docs", "output.schema.json")))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
flowpic = os.path.join(build, "cli", "flowpic")
agent = os.path.join(build, "agent", "flowpic-agent")
collector = os.path.join(build, "collector", "flowpic-collector")
send = os.path.join(build, "stream", "flowpic-send")
checked, types = 0, {}


def no_constant(name):
    raise ValueError("not JSON: " + name)


def check(what, data):
    """Every line of data (bytes) that starts with '{'."""
    global checked
    for n, raw in enumerate(data.splitlines(), 1):
        if not raw.startswith(b"{"):
            continue
        text = raw.decode("utf-8")  # strict: a byte that is not UTF-8 fails here
        obj = json.loads(text, parse_constant=no_constant)
        errors = sorted(validator.iter_errors(obj), key=lambda e: e.path)
        assert not errors, "%s line %d: %s\n%s" % (what, n, errors[0].message[:300], text[:300])
        types[obj["type"]] = types.get(obj["type"], 0) + 1
        checked += 1


def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, check=True, **kw)


d = tempfile.mkdtemp(prefix="fpt-json-")
p = None
try:
    odd = os.path.join(d.encode(), b"demo-\xff-\"q\".pcap.xz")
    shutil.copy(demo, odd)
    check("flowpic flows --json", run(flowpic, "flows", "--json", demo).stdout)
    r = run(flowpic, "classify", "--json", "--blocks", odd)
    assert b"\\ufffd" in r.stdout, "the 0xff byte of the file name is not escaped as U+FFFD"
    check("flowpic classify --json --blocks (odd name)", r.stdout)
    check("flowpic classify --json two files", run(flowpic, "classify", "--json", demo, odd).stdout)
    r = run(agent, "--pcap", demo)
    check("flowpic-agent stdout", r.stdout)
    check("flowpic-agent stderr", r.stderr)
    db = os.path.join(d, "v.db")
    p = subprocess.Popen([collector, "--listen", "127.0.0.1:0", "--no-token", "--db", "sqlite:" + db,
                          "--metrics-listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    first = p.stdout.readline()
    second = p.stdout.readline()
    check("flowpic-collector start", first + second)
    address = json.loads(first)["address"]
    verdicts = run(flowpic, "classify", "--json", demo).stdout
    r = run(send, "--json", "--collector", address, input=verdicts)
    check("flowpic-send --json", r.stdout)
    p.terminate()
    out, _ = p.communicate(timeout=30)
    check("flowpic-collector exit", out)
    q = run(collector, "query", "--db", "sqlite:" + db).stdout
    check("flowpic-collector query", q)
    # One name, one meaning: the stored verdicts say proto as the flow lines do,
    # and name the payload bytes they carry so (not bytes_fwd, IP bytes in flow lines).
    rows = [json.loads(x) for x in q.splitlines()]
    assert rows and {r["proto"] for r in rows} <= {"tcp", "udp"}, rows[:1]
    assert all("payload_bytes_fwd" in r and "bytes_fwd" not in r for r in rows), rows[:1]
    # Log lines: JSON with a type, or text stamped with the time when not a terminal.
    bad = os.path.join(d, "missing.pcap")
    r = subprocess.run([flowpic, "classify", bad], capture_output=True,
                       env=dict(os.environ, FLOWPIC_LOG_FORMAT="json"))
    check("flowpic --log-format json (FLOWPIC_LOG_FORMAT)", r.stderr)
    assert b'"type":"log"' in r.stderr, r.stderr
    r = subprocess.run([flowpic, "classify", bad], capture_output=True)
    line = r.stderr.decode().splitlines()[0]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z flowpic: error: ", line), line
finally:
    if p and p.poll() is None:  # a check failed while the collector ran
        p.kill()
        p.wait(10)
    shutil.rmtree(d, ignore_errors=True)
want = {"flow", "block", "summary", "counters", "event", "verdict", "log"}
assert want <= set(types), types
print("json schema: ok (%d lines: %s)" % (checked, ", ".join("%s %d" % kv for kv in sorted(types.items()))))
