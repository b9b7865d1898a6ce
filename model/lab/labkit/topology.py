"""Network namespaces for one lab session: a client and a server host joined
through a router host that emulates the link (delay, jitter, loss, rate).

    client ns  --veth--  router ns (linkem bridges the two)  --veth--  server ns
    10.S.0.1/16                                                 10.S.0.2/16 (+ .3, .4 ...)

S is the session's slot (1..250), so sessions run in parallel without
clashing.  Everything is created here and removed by close(); nothing leaves
the namespaces.  Offloads (TSO, GSO, GRO) are turned off so every captured
frame is a wire-sized packet.
"""
import os
import re
import subprocess
import threading
import time

# Topologies open in this process, so a signal handler can remove them.
_open = set()
_open_lock = threading.Lock()


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kw)


class Topology:
    def __init__(self, slot, n_server_ips=1, linkem=None, link=None):
        if not 1 <= slot <= 250:
            raise ValueError(f"slot {slot} outside 1..250")
        self.slot = slot
        tag = f"fpl{os.getpid() % 100000}s{slot}"
        self.ns_client = f"{tag}-c"
        self.ns_server = f"{tag}-s"
        self.ns_router = f"{tag}-r"
        self.client_if = f"c{slot}e0"
        self.server_if = f"s{slot}e0"
        self.client_ip = f"10.{slot}.0.1"
        self.server_ips = [f"10.{slot}.0.{2 + i}" for i in range(n_server_ips)]
        self.server_ip = self.server_ips[0]
        self.linkem = linkem      # path of the linkem binary, or None: direct veth
        self.link = link          # profile parameters for linkem (dict)
        self._linkem_proc = None
        self._up = False

    # ---- life cycle ----
    def open(self):
        with _open_lock:
            _open.add(self)
        try:
            self._create()
        except Exception:
            self.close()
            raise
        return self

    def _create(self):
        for ns in (self.ns_client, self.ns_server):
            sh("ip", "netns", "add", ns)
        self._up = True
        if self.linkem:
            sh("ip", "netns", "add", self.ns_router)
            # client <-> router(rc) and router(rs) <-> server
            sh("ip", "link", "add", self.client_if, "netns", self.ns_client,
               "type", "veth", "peer", "name", "rc", "netns", self.ns_router)
            sh("ip", "link", "add", self.server_if, "netns", self.ns_server,
               "type", "veth", "peer", "name", "rs", "netns", self.ns_router)
            for dev in ("rc", "rs"):
                self._no_offload(self.ns_router, dev)
                sh("ip", "-n", self.ns_router, "link", "set", dev, "up")
            sh("ip", "-n", self.ns_router, "link", "set", "lo", "up")
            # The router is a wire: its own IPv6 router solicitations and MLD
            # reports would reach the client without crossing linkem.
            sh("ip", "netns", "exec", self.ns_router, "sysctl", "-qw",
               "net.ipv6.conf.all.disable_ipv6=1")
        else:
            sh("ip", "link", "add", self.client_if, "netns", self.ns_client,
               "type", "veth", "peer", "name", self.server_if, "netns", self.ns_server)
        sh("ip", "-n", self.ns_client, "addr", "add", f"{self.client_ip}/16",
           "dev", self.client_if)
        for ip in self.server_ips:
            sh("ip", "-n", self.ns_server, "addr", "add", f"{ip}/16", "dev", self.server_if)
        for ns, dev in ((self.ns_client, self.client_if), (self.ns_server, self.server_if)):
            # IPv4 only: an IPv6 link-local address finishing duplicate
            # address detection ~2 s after start looks like a network
            # change to browsers, which then drop their connections.
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            sh("ip", "netns", "exec", ns, "sysctl", "-qw",
               "net.ipv6.conf.default.disable_ipv6=1")
            self._no_offload(ns, dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        if self.linkem:
            self._start_linkem()
        self._wait_reachable()

    def _no_offload(self, ns, dev):
        sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off",
           "gro", "off", check=False)

    def _start_linkem(self):
        args = ["ip", "netns", "exec", self.ns_router, self.linkem, "--a", "rc", "--b", "rs"]
        for key, value in sorted((self.link or {}).items()):
            args += [f"--{key.replace('_', '-')}", str(value)]
        self._linkem_proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True)

    def _wait_reachable(self, seconds=10):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r = sh("ip", "netns", "exec", self.ns_client, "ping", "-c", "1", "-W", "1",
                   self.server_ip, check=False)
            if r.returncode == 0:
                return
            if self._linkem_proc and self._linkem_proc.poll() is not None:
                raise RuntimeError(f"linkem exited: {self._linkem_proc.stderr.read().strip()}")
        raise RuntimeError(f"{self.server_ip} not reachable from {self.ns_client}")

    def linkem_stats(self):
        """Stop linkem and return the JSON line it prints at exit (or None)."""
        p, self._linkem_proc = self._linkem_proc, None
        if not p:
            return None
        p.terminate()
        try:
            out, _ = p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        lines = [l for l in out.splitlines() if l.startswith("{")]
        return lines[-1] if lines else None

    def close(self):
        if self._linkem_proc:
            self.linkem_stats()
        for ns in (self.ns_client, self.ns_server, self.ns_router):
            # Kill whatever still runs inside, then remove the namespace.
            r = sh("ip", "netns", "pids", ns, check=False)
            for pid in r.stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", ns, check=False)
        self._up = False
        with _open_lock:
            _open.discard(self)

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    # ---- running programs ----
    def _cmd(self, ns, args):
        return ["ip", "netns", "exec", ns] + list(args)

    def popen(self, side, args, **kw):
        ns = self.ns_client if side == "client" else self.ns_server
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        return subprocess.Popen(self._cmd(ns, args), **kw)

    def run(self, side, args, timeout=None, check=True, **kw):
        ns = self.ns_client if side == "client" else self.ns_server
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.run(self._cmd(ns, args), timeout=timeout, check=check, text=True, **kw)


def close_all():
    """Remove every topology this process opened (from a signal handler)."""
    with _open_lock:
        topos = list(_open)
    for t in topos:
        t.close()


def remove_stale():
    """Remove lab namespaces left by lab processes that no longer run (a crash,
    a kill -9).  Returns their names."""
    gone = []
    for line in sh("ip", "netns", "list").stdout.splitlines():
        ns = line.split()[0] if line.strip() else ""
        m = re.fullmatch(r"fpl(\d+)s\d+-[csr]", ns)
        if not m:
            continue
        # The tag holds the pid modulo 100000: alive means a lab process has it.
        alive = any(int(p) % 100000 == int(m.group(1))
                    and "lab.py" in open(f"/proc/{p}/cmdline", "rb").read().decode(errors="replace")
                    for p in os.listdir("/proc") if p.isdigit() and os.path.exists(f"/proc/{p}/cmdline"))
        if alive:
            continue
        for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
            sh("kill", "-9", pid, check=False)
        sh("ip", "netns", "del", ns, check=False)
        gone.append(ns)
    return gone
