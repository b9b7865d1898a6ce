#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Horizontal collectors: three collectors on one PostgreSQL database, an
agent (flowpic-send, the agent's own stream library) given all three
(--collector A,B,C) and moved between them mid-stream by killing the one it
is using, twice.  Every verdict is stored exactly once: none lost, none
doubled, and the agent sees every one acknowledged.
Usage: test_failover.py FLOWPIC_SEND FLOWPIC DEMO_CAPTURE"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def main():
    send_tool, flowpic, capture = sys.argv[1:4]
    binary = h.collector_binary()
    lines = subprocess.run([flowpic, "classify", "--json", capture], capture_output=True,
                           text=True, check=True).stdout
    per_pass = sum(1 for l in lines.splitlines() if l.endswith('"type":"flow"}'))  # flow verdicts
    rate = 300                     # verdicts a second: about 6 s of streaming
    repeat = max(1, 1800 // per_pass)
    want = per_pass * repeat
    pg = h.PgServer()
    d = tempfile.mkdtemp(prefix="fpt-failover-")
    try:
        cs = [h.Collector(binary, pg.url) for _ in range(3)]
        path = os.path.join(d, "v.jsonl")
        with open(path, "w") as f:
            f.write(lines)
        p = subprocess.Popen([send_tool, "--json", "--collector",
                              ",".join(c.address for c in cs), "--token", "test-token",
                              "--agent-id", "failover", "--run-id", "5", "--repeat", str(repeat),
                              "--rate", str(rate), "--batch", "20", "--timeout", "30000", path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        moved = []
        for victim in cs[:2]:
            # Wait until the victim has stored something, then kill it mid-stream.
            for _ in range(100):
                if victim.counters().get("verdicts_stored", 0) > 0:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("collector %s never got a verdict" % victim.address)
            moved.append(victim.counters()["verdicts_stored"])
            victim.kill()
        out, err = p.communicate(timeout=120)
        counters = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])["counters"]
        assert p.returncode == 0, (p.returncode, err[-2000:])
        assert counters["stream.submitted"] == want, (counters, want)
        assert counters["stream.acked"] == want, counters
        rows = pg.psql("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM verdicts"
                       " WHERE agent_id = 'failover'")
        assert rows == [[str(want), str(want), "1", str(want)]], (rows, want)
        k3 = cs[2].stop()
        assert k3["verdicts_stored"] > 0, k3
        print("failover: ok (%d verdicts through 3 collectors on one PostgreSQL; the first "
              "stored %d, the second %d before each was killed, the third %d; stored once "
              "each, every one acknowledged)" % (want, moved[0], moved[1],
                                                 k3["verdicts_stored"]))
    finally:
        pg.stop()
        import shutil
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
