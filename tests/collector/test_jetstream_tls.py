#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Publishing to NATS JetStream over TLS, and a collector started before
NATS (issue 16).  One JetStream node on loopback that requires TLS with
client certificates (mutual TLS, the CA of harness.make_pki).

1. The collector starts while no NATS server listens (a reboot, a cluster
   restart): it serves agents at once and holds their acks; the server
   comes up, the collector connects with --nats-ca/--nats-cert/--nats-key,
   creates the stream, publishes, and the held ack arrives.  The stream
   then holds exactly the verdicts sent.
2. Without a client certificate the server refuses the publisher: nothing
   is published, the ack stays held, and the collector says why.
3. A bad TLS file is a start-up error naming the flag's file."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def nats_server(d, port, mport, pki):
    conf = os.path.join(d, "nats.conf")
    with open(conf, "w") as f:
        f.write('listen: "127.0.0.1:%d"\nhttp: "127.0.0.1:%d"\n'
                'jetstream { store_dir: "%s" }\n'
                'tls { cert_file: "%s.pem"\n key_file: "%s.key"\n ca_file: "%s.pem"\n'
                ' verify: true\n timeout: 2 }\n'
                % (port, mport, os.path.join(d, "js"), pki["server"], pki["server"], pki["ca"]))
    log = open(os.path.join(d, "nats.log"), "a")
    return subprocess.Popen(["nats-server", "-c", conf], stdout=log, stderr=log)


def stream_messages(mport, name="FLOWPIC_VERDICTS"):
    url = "http://127.0.0.1:%d/jsz?streams=true" % mport
    with urllib.request.urlopen(url, timeout=2) as r:
        j = json.load(r)
    for acc in j.get("account_details") or []:
        for st in acc.get("stream_detail") or []:
            if st.get("name") == name:
                return st["state"]["messages"]
    return None


def held_stream(address, agent_id, n, out):
    out.append(h.stream(address, [h.make_batch(agent_id=agent_id, run_id=7, n=n)],
                        token="test-token", timeout=60))


def main():
    binary = h.collector_binary()
    d = tempfile.mkdtemp(prefix="fpt-collector-jstls-")
    srv = None
    try:
        pki = h.make_pki(d)
        port, mport = h.free_port(), h.free_port()
        tls = ["--nats", "nats://127.0.0.1:%d" % port, "--nats-ca", pki["ca"] + ".pem",
               "--nats-cert", pki["client"] + ".pem", "--nats-key", pki["client"] + ".key"]

        # 1. Started before NATS: serving, acks held, then published over mTLS.
        c = h.Collector(binary, "sqlite:" + os.path.join(d, "a.db"), *tls)
        held = []
        th = threading.Thread(target=held_stream, args=(c.address, "early", 40, held))
        th.start()
        time.sleep(2)
        assert th.is_alive() and not held, "acked before JetStream acknowledged"
        k = c.counters()
        assert k["verdicts_stored"] == 40 and k["nats_backlog"] == 40, k
        srv = nats_server(d, port, mport, pki)
        th.join(60)
        assert held and held[0][1].name == "OK" and len(held[0][0]) == 1, held
        for _ in range(50):
            if stream_messages(mport) == 40:
                break
            time.sleep(0.1)
        assert stream_messages(mport) == 40, stream_messages(mport)
        k = c.stop()
        assert k["nats_published"] == 40 and k["nats_backlog"] == 0, k
        err = c.stderr()
        assert "not connected (" in err and "connected to" in err, err
        print("started before NATS: ack held, then 40 verdicts published over mutual TLS")

        # 2. No client certificate: the server refuses, nothing published.
        c = h.Collector(binary, "sqlite:" + os.path.join(d, "b.db"), "--nats",
                        "nats://127.0.0.1:%d" % port, "--nats-ca", pki["ca"] + ".pem")
        held = []
        th = threading.Thread(target=held_stream, args=(c.address, "nocert", 10, held))
        th.start()
        time.sleep(3)
        assert th.is_alive() and not held, "acked without JetStream"
        assert stream_messages(mport) == 40, stream_messages(mport)
        k = c.counters()
        assert k["nats_published"] == 0 and k["nats_backlog"] == 10, k
        assert "not connected (" in c.stderr(), c.stderr()  # the library's reason, once
        c.kill()
        th.join(30)
        assert not held or held[0][1].name != "OK", held
        print("no client certificate: refused by the server, nothing published, ack held")

        # 3. A TLS file that cannot be read: one line, exit 1.
        r = subprocess.run([binary, "--listen", "127.0.0.1:0", "--no-token", "--db", "none",
                            "--nats", "nats://127.0.0.1:%d" % port, "--nats-ca",
                            os.path.join(d, "missing.pem")],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "--nats" in r.stderr and "missing.pem" in r.stderr, r
        r = subprocess.run([binary, "--listen", "127.0.0.1:0", "--no-token", "--db", "none",
                            "--nats", "nats://127.0.0.1:%d" % port, "--nats-cert",
                            pki["client"] + ".pem"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "--nats-key" in r.stderr, r
        print("bad TLS settings: one line each, the collector does not start")
    finally:
        if srv and srv.poll() is None:
            srv.terminate()
            srv.wait(10)
        shutil.rmtree(d, ignore_errors=True)
    print("jetstream tls: ok")


if __name__ == "__main__":
    main()
