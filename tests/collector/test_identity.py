#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Identity (issue 15, item 8): a token file mapping tokens to agent ids.
Agents A and B each have their own token; B writing as A is refused
(PERMISSION_DENIED, counted) and none of its verdicts is stored while A,
streaming at the same time, is unaffected; a token without an agent id
writes as any agent.  With --agent-id-from-cert, agent_id must be the
client certificate's CN."""
import os
import shutil
import sys
import subprocess
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def main():
    binary = h.collector_binary()
    d = tempfile.mkdtemp(prefix="fpt-collector-identity-")
    try:
        path = os.path.join(d, "v.db")
        tokfile = os.path.join(d, "tokens")
        with open(tokfile, "w") as f:
            f.write("# token agent_id\ntok-a agent-a\ntok-b agent-b\n\ntok-any\n")
        os.chmod(tokfile, 0o600)
        c = h.Collector(binary, "sqlite:" + path, "--token-file", tokfile, token=False)
        res = {}

        def agent_a():
            res["a"] = h.stream(c.address, [h.make_batch(agent_id="agent-a", sequence=i + 1,
                                                         first_seq=i * 10 + 1, n=10)
                                            for i in range(20)], token="tok-a")
        ta = threading.Thread(target=agent_a)
        ta.start()
        # B with its own token, writing as A (the same seqs: they would win).
        acks, code, det = h.stream(c.address, [h.make_batch(agent_id="agent-b", n=5),
                                               h.make_batch(agent_id="agent-a", sequence=2,
                                                            host="B", first_seq=1000, n=5)],
                                   token="tok-b")
        print("  B writing as agent-a: %s %r, acks %s" % (code.name, det,
                                                          [a.stored for a in acks]))
        assert code.name == "PERMISSION_DENIED" and [a.stored for a in acks] == [5], (code, det)
        ta.join(60)
        acks, code, det = res["a"]
        assert code.name == "OK" and sum(a.stored for a in acks) == 200, (code, det)
        acks, code, det = h.stream(c.address, [h.make_batch(agent_id="agent-z", n=3)],
                                   token="tok-any")
        assert code.name == "OK" and acks[0].stored == 3, (code, det)
        k = c.stop()
        assert k["err_permission_denied"] == 1, k
        rows = h.sqlite_rows(path, "SELECT agent_id, host, count(*) FROM verdicts GROUP BY 1, 2 "
                             "ORDER BY 1, 2")
        assert rows == [("agent-a", "host-a", 200), ("agent-b", "host-a", 5),
                        ("agent-z", "host-a", 3)], rows

        # A malformed token file is refused at start, naming the line.
        with open(tokfile, "w") as f:
            f.write("tok-a agent-a extra\n")
        r = subprocess.run([binary, "--db", "sqlite:" + path, "--token-file", tokfile],
                             capture_output=True, text=True)
        assert r.returncode == 2 and "tokens:1" in r.stderr, r.stderr

        # agent_id bound to the client certificate's CN ("client").
        pki = h.make_pki(d)
        c = h.Collector(binary, "sqlite:" + path, "--agent-id-from-cert", token=None,
                        tls={"cert": pki["server"] + ".pem", "key": pki["server"] + ".key",
                             "client_ca": pki["ca"] + ".pem"})
        tls = {"ca": pki["ca"] + ".pem", "name": "localhost", "cert": pki["client"] + ".pem",
               "key": pki["client"] + ".key"}
        acks, code, det = h.stream(c.address, [h.make_batch(agent_id="client", n=4)], tls=tls)
        assert code.name == "OK" and acks[0].stored == 4, (code, det)
        acks, code, det = h.stream(c.address, [h.make_batch(agent_id="agent-a", n=4)], tls=tls)
        print("  certificate CN client writing as agent-a: %s %r" % (code.name, det))
        assert code.name == "PERMISSION_DENIED" and not acks, (code, det)
        k = c.stop()
        assert k["err_permission_denied"] == 1, k
        print("identity: ok")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
