#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Publishing to NATS JetStream (issue 16): a 3-node JetStream cluster on
loopback, the stream replicated 3 times, a collector publishing to all three.

1. rate: 4 agents stream as fast as acks allow; verdicts/s printed.
2. failover: 4 agents stream while the node the collector is connected to is
   killed (SIGKILL) and restarted; every verdict is acked, stored once, and
   the example consumer reads each exactly once (unique Nats-Msg-Id ==
   verdicts sent == the stream's message count).
3. bridge (--db none): a resend of acked batches is acked, and JetStream's
   duplicate window drops every copy (nats_duplicates), the stream unchanged.
4. hold and bound: with the whole cluster down a batch's ack is held (not
   sent before JetStream acknowledged), a batch beyond --nats-backlog ends
   UNAVAILABLE (err_nats_backlog); with the cluster back the held ack comes.

argv: the flowpic-consume-verdicts binary."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

NODES = 3


class Cluster:
    def __init__(self, d):
        self.d = d
        self.ports = [h.free_port() for _ in range(NODES)]
        self.cports = [h.free_port() for _ in range(NODES)]
        self.mports = [h.free_port() for _ in range(NODES)]
        self.p = [None] * NODES
        self.urls = ",".join("nats://127.0.0.1:%d" % p for p in self.ports)
        for i in range(NODES):
            self.start(i)

    def start(self, i):
        routes = ",".join("nats://127.0.0.1:%d" % p for j, p in enumerate(self.cports) if j != i)
        sd = os.path.join(self.d, "n%d" % i)
        os.makedirs(sd, exist_ok=True)
        log = open(os.path.join(self.d, "n%d.log" % i), "a")
        self.p[i] = subprocess.Popen(
            ["nats-server", "-js", "-sd", sd, "-a", "127.0.0.1", "-p", str(self.ports[i]),
             "-m", str(self.mports[i]), "-n", "n%d" % i, "--cluster_name", "fpt",
             "--cluster", "nats://127.0.0.1:%d" % self.cports[i], "--routes", routes],
            stdout=log, stderr=log)

    def kill(self, i):
        self.p[i].send_signal(signal.SIGKILL)
        self.p[i].wait(10)

    def stop(self):
        for p in self.p:
            if p and p.poll() is None:
                p.terminate()
                p.wait(10)

    def connz(self, i):
        with urllib.request.urlopen("http://127.0.0.1:%d/connz" % self.mports[i], timeout=2) as r:
            return json.load(r)

    def stream_leader(self):
        """The node leading the stream's replicas (its Raft group)."""
        for i in range(NODES):
            try:
                url = "http://127.0.0.1:%d/jsz?streams=true" % self.mports[i]
                with urllib.request.urlopen(url, timeout=2) as r:
                    j = json.load(r)
                for acc in j.get("account_details") or []:
                    for st in acc.get("stream_detail") or []:
                        leader = (st.get("cluster") or {}).get("leader")
                        if leader:
                            return int(leader[1:])
            except OSError:
                pass
        return None

    def collector_node(self):
        """The node the collector's publisher is connected to."""
        for i in range(NODES):
            try:
                if any(c.get("name") == "flowpic-collector"
                       for c in self.connz(i).get("connections") or []):
                    return i
            except OSError:
                pass
        return None


def collector(binary, cl, db, *args, deadline=30):
    """A collector with --nats on the cluster: retried while JetStream elects
    its leaders (creating the stream fails until then)."""
    end = time.time() + deadline
    while True:
        try:
            return h.Collector(binary, db, "--nats", cl.urls, "--nats-replicas", "3", *args)
        except RuntimeError:
            if time.time() > end:
                raise
            time.sleep(0.5)


def agent(address, batches, out, pace=0.0, deadline=60):
    """An agent: streams the batches, and after a failed call resends what
    was not acked (as flowpic-send does); out gets (acks, calls, codes)."""
    acks, codes = [], []
    end = time.time() + deadline

    def paced(bs):
        for b in bs:
            yield b
            if pace:
                time.sleep(pace)
    while len(acks) < len(batches) and time.time() < end:
        got, code, det = h.stream(address, paced(batches[len(acks):]), token="test-token")
        acks += got
        codes.append((code.name, det))
        if code.name != "OK":
            time.sleep(0.2)
    out.append((acks, codes))


def run_agents(address, n_agents, n_batches, per_batch, run_id, pace=0.0):
    outs, threads = [], []
    for a in range(n_agents):
        bs = [h.make_batch(agent_id="agent.%d" % a, run_id=run_id, host="h%d" % a,
                           sequence=i + 1, first_seq=i * per_batch + 1, n=per_batch)
              for i in range(n_batches)]
        t = threading.Thread(target=agent, args=(address, bs, outs, pace))
        t.start()
        threads.append(t)
    return threads, outs


def consume(consumer, cl, idle=3):
    r = subprocess.run([consumer, "-s", cl.urls, "-x", str(idle)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    return [x for x in lines if "msg_id" in x], lines[-1]


def main():
    binary = h.collector_binary()
    consumer = sys.argv[1]
    d = tempfile.mkdtemp(prefix="fpt-collector-js-")
    cl = Cluster(d)
    try:
        db = os.path.join(d, "v.db")
        c = collector(binary, cl, "sqlite:" + db)

        # 1. The rate, all three nodes up (4 agents x 20 batches x 250).
        t0 = time.time()
        threads, outs = run_agents(c.address, 4, 20, 250, run_id=1)
        for t in threads:
            t.join()
        dt = time.time() - t0
        assert all(len(a) == 20 for a, _ in outs), [(len(a), k) for a, k in outs]
        rate_n = 4 * 20 * 250
        print("rate: %d verdicts stored and published (R3) in %.2f s: %.0f verdicts/s"
              % (rate_n, dt, rate_n / dt))

        # 2. A node killed and restarted while 4 agents stream.
        threads, outs = run_agents(c.address, 4, 60, 50, run_id=2, pace=0.04)
        time.sleep(0.8)
        # The stream's leader: publishes in flight get no ack, the
        # replicas elect another; also the collector's node if it is.
        victim, conn = cl.stream_leader(), cl.collector_node()
        assert victim is not None and conn is not None, (victim, conn)
        cl.kill(victim)
        print("killed node n%d (the stream's leader; the collector's: n%d) mid-stream"
              % (victim, conn))
        time.sleep(2.5)
        cl.start(victim)
        for t in threads:
            t.join()
        assert all(len(a) == 60 for a, _ in outs), [(len(a), k) for a, k in outs]
        for acks, _ in outs:
            assert [a.sequence for a in acks] == list(range(1, 61))
        k = c.counters()
        total = rate_n + 4 * 60 * 50
        print("failover: calls per agent %s; nats_errors %d (resent), nats_duplicates %d"
              % ([len(x) for _, x in outs], k["nats_errors"], k["nats_duplicates"]))
        assert k["verdicts_stored"] == total, k
        assert k["nats_backlog"] == 0, k
        assert k["nats_published"] >= total, k
        assert k["nats_errors"] > 0, ("the leader's death resent nothing", k)
        assert h.sqlite_rows(db, "SELECT count(*), count(DISTINCT agent_id || '/' || run_id "
                             "|| '/' || seq) FROM verdicts") == [(total, total)]
        msgs, last = consume(consumer, cl)
        ids = [m["msg_id"] for m in msgs]
        print("consumer: %d messages, %d unique Nats-Msg-Id, stream %d"
              % (len(ids), len(set(ids)), last["messages"]))
        assert len(ids) == total and len(set(ids)) == total, (len(ids), len(set(ids)), total)
        assert last == {"event": "stream", "messages": total}, last
        assert all(m["subject"] == "flowpic.v1.verdicts." + m["agent_id"].replace(".", "_")
                   for m in msgs[:50])
        assert "agent.0/2/3000" in set(ids)
        c.stop()

        # 3. Bridge mode: a resend of run 2's first agent; nothing doubled.
        b = collector(binary, cl, "none")
        bs = [h.make_batch(agent_id="agent.0", run_id=2, host="h0", sequence=i + 1,
                           first_seq=i * 50 + 1, n=50) for i in range(10)]
        acks, code, det = h.stream(b.address, bs, token="test-token")
        assert code.name == "OK" and len(acks) == 10, (code, det, len(acks))
        k = b.counters()
        assert k["nats_duplicates"] == 500 and k["nats_published"] == 500, k
        _, last = consume(consumer, cl, idle=1)
        assert last["messages"] == total, last

        # 4. The whole cluster down: acks held, the backlog bounded.
        b.stop()
        b = collector(binary, cl, "none", "--nats-backlog", "150")
        for i in range(NODES):
            cl.kill(i)
        held = []
        th = threading.Thread(target=lambda: held.append(h.stream(
            b.address, [h.make_batch(agent_id="agent.9", run_id=3, n=100)],
            token="test-token", timeout=60)))
        th.start()
        time.sleep(3)
        assert th.is_alive() and not held, "acked before JetStream acknowledged"
        acks, code, det = h.stream(b.address, [h.make_batch(agent_id="agent.8", run_id=3,
                                                            n=100)], token="test-token")
        assert code.name == "UNAVAILABLE" and not acks, (code, det, acks)
        k = b.counters()
        assert k["err_nats_backlog"] == 1 and k["nats_backlog"] == 100, k
        assert k["nats_errors"] > 0, k
        for i in range(NODES):
            cl.start(i)
        th.join(60)
        assert held and held[0][1].name == "OK" and len(held[0][0]) == 1, held
        k = b.stop()
        assert k["nats_published"] == 100 and k["nats_backlog"] == 0, k
        _, last = consume(consumer, cl, idle=1)
        assert last["messages"] == total + 100, last
        print("hold: ack held while the cluster was down, sent after it came back; "
              "a batch over --nats-backlog refused (err_nats_backlog 1)")
    finally:
        cl.stop()
        shutil.rmtree(d, ignore_errors=True)
    print("jetstream: ok")


if __name__ == "__main__":
    main()
