"""One lab session: a topology, a packet capture on the client's interface,
one application run, and the manifest record that labels its flows.

An application driver (labkit/apps/<name>.py) is a class with:

    CLASS = "voip"              # voip | video | file_transfer | chat | browsing,
                                # or "other": background traffic of none of the
                                # five (SSH, VPN tunnels, telemetry, mail)
    NAME = "baresip-opus"       # unique, stable: it names sessions and stats
    PACKAGES = ["baresip"]      # Debian packages it needs (install-deps reads these)
    SERVER_IPS = 1              # server addresses it needs (several peers: more)

    def run(self, env) -> list[dict]:
        ...drive the real programs for about env.seconds...
        return [{"proto": "udp", "port": [16384, 16483], "label": "voip"},
                {"proto": "udp", "port": 5060, "label": "control"}]

Each returned selector labels the flows whose port on the server side (the
port at a server address) is `port` (an int) or within `[lo, hi]`.  `label`
is the class for flows that carry the class's traffic, or a role name
("control", "dns", "tracker", ...) for flows that must not be trained on.
Flows no selector matches are "unlabeled" and excluded from training.
"""
import json
import os
import random
import shutil
import subprocess
import tempfile
import time

CLASSES = ("voip", "video", "file_transfer", "chat", "browsing")
# Background drivers label their flows "other": the open set's training and
# rejection data (issue 12).  `generate` runs them only when asked (--classes).
OTHER = "other"
LAB_CLASSES = CLASSES + (OTHER,)


class SessionEnv:
    """What an application driver gets."""

    def __init__(self, topo, seconds, seed, assets, workdir, log):
        self.topo = topo
        self.seconds = seconds            # traffic to generate, s
        self.seed = seed
        self.rng = random.Random(seed)    # every random choice comes from here
        self.assets = assets              # shared, read-only: certs, media, sites
        self.workdir = workdir            # private scratch, removed afterwards
        self.client_ip = topo.client_ip
        self.server_ip = topo.server_ip
        self.server_ips = topo.server_ips
        self.log = log
        self.deadline = time.monotonic() + seconds

    def server(self, args, **kw):
        """Start a program in the server namespace (returns the Popen)."""
        return self.topo.popen("server", args, **kw)

    def client(self, args, **kw):
        """Start a program in the client namespace (returns the Popen)."""
        return self.topo.popen("client", args, **kw)

    def run_client(self, args, timeout=None, check=True, **kw):
        return self.topo.run("client", args, timeout=timeout, check=check, **kw)

    def run_server(self, args, timeout=None, check=True, **kw):
        return self.topo.run("server", args, timeout=timeout, check=check, **kw)

    def remaining(self):
        return max(0.0, self.deadline - time.monotonic())

    def wait_port(self, port, proto="tcp", side="server", seconds=10):
        """Wait until something listens on port in a namespace."""
        flag = "-tln" if proto == "tcp" else "-uln"
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r = self.topo.run(side, ["ss", "-H", flag, f"sport = :{port}"], check=False)
            if r.stdout.strip():
                return
            time.sleep(0.1)
        raise RuntimeError(f"nothing listens on {proto}/{port} in the {side} namespace")


def stop(procs, grace=3.0):
    """Terminate processes (and wait), killing those that linger."""
    for p in procs:
        if p and p.poll() is None:
            p.terminate()
    end = time.monotonic() + grace
    for p in procs:
        if not p:
            continue
        try:
            p.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_session(app, topo_factory, out_pcap, seconds, seed, assets, profile, log,
                snaplen=128):
    """Run one session; returns its manifest record (a dict).  Raises on failure."""
    workdir = tempfile.mkdtemp(prefix="fplab-")
    topo = topo_factory()
    cap = None
    try:
        topo.open()
        # --immediate-mode: without it the kernel hands packets over in
        # blocks up to ~1 s late, and stopping tcpdump 0.5 s after the run
        # lost a session's last packets (its closing handshake).
        cap = topo.popen("client", ["tcpdump", "-i", topo.client_if, "-s", str(snaplen),
                                    "--immediate-mode", "-U", "-w", out_pcap + ".part"],
                         stderr=subprocess.PIPE)
        time.sleep(0.5)  # tcpdump is listening before the first packet
        env = SessionEnv(topo, seconds, seed, assets, workdir, log)
        start = time.time()
        selectors = app.run(env)
        end = time.time()
        time.sleep(0.5)
        stop([cap])
        linkem = topo.linkem_stats()
        os.replace(out_pcap + ".part", out_pcap)
        return {
            "class": app.CLASS,
            "app": app.NAME,
            "profile": profile["name"] if profile else None,
            "link": profile,
            "seed": seed,
            "start": round(start, 6),
            "end": round(end, 6),
            "client": topo.client_ip,
            "servers": topo.server_ips,
            "flows": selectors,
            "linkem": json.loads(linkem) if linkem else None,
        }
    finally:
        if cap:
            stop([cap])
        topo.close()
        shutil.rmtree(workdir, ignore_errors=True)
        if os.path.exists(out_pcap + ".part"):
            os.unlink(out_pcap + ".part")
