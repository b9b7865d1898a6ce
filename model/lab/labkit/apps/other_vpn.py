"""Background traffic: an OpenVPN tunnel carrying an idle laptop's traffic.
Not one of the five classes: one long encrypted flow whose packets are
whatever the tunnel carries, here the light mix of an employee's laptop on
the company VPN when nothing heavy runs, and OpenVPN's own keepalives in
between.  The model must not take it for any of the five.

An OpenVPN server in the server namespace and its client in the client
namespace (both foreground, their configs in env.workdir): TLS mode with the
lab CA (the lab server certificate; a client certificate the lab CA signs),
sometimes tls-auth or tls-crypt, an AEAD data cipher (or, on some old
set-ups, AES-256-CBC with HMAC), keepalive 10 60 pushed to the client.  UDP
1194 (vpn-openvpn), or TCP 1194 as set-ups behind strict firewalls use
(vpn-openvpn-tcp).

Inside the tunnel, addresses of the session's slot S only, apart from the
lab's 10.S.0.x: the tunnel is 172.31.S.0/24 (server .1, client .2) and the
"intranet" behind the server 172.30.S.0/24, addresses on the server
namespace's loopback pushed to the client as a route: a web server
(172.30.S.10, HTTP/1.1) and a name server (172.30.S.53, UDP).  What the
laptop does (a script in the client namespace): a monitoring agent's pings,
mail, calendar and chat clients polling their intranet servers, name look-ups
(A and AAAA, cached for their TTL, some for names that do not exist), and
once in a while its user opening an intranet page.

Labels: the tunnel's outer flow (udp/1194 or tcp/1194) is "other".
"""
import json
import os
import subprocess
import time

from labkit import assets as lab_assets
from labkit.procs import keep_logs, read, run_client, script, start_server, tail
from labkit.session import stop

PORT = 1194
DOMAIN = "corp.flowpic.test"

SERVER_CONF = """\
# flowpic lab: one session's VPN gateway
proto {proto}
local {ip}
port {port}
dev tun
topology subnet
server 172.31.{slot}.0 255.255.255.0
push "route 172.30.{slot}.0 255.255.255.0"
push "dhcp-option DNS 172.30.{slot}.53"
push "dhcp-option DOMAIN {domain}"
keepalive 10 60
ca {ca}
cert {cert}
key {key}
dh none
{crypto}
persist-key
persist-tun
verb 3
"""

CLIENT_CONF = """\
# flowpic lab: the laptop's VPN profile
client
proto {proto}
remote {ip} {port}
nobind
dev tun
resolv-retry 5
ca {ca}
cert {cert}
key {key}
verify-x509-name lab.flowpic.test name
{crypto}
persist-key
persist-tun
verb 3
{exit_notify}
"""

# Runs in the server namespace: the intranet's web server and name server.
INTRANET = r'''
import json, random, socket, struct, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

a = json.loads(sys.argv[1])


class Web(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as intranet servers do
    server_version = "nginx"
    sys_version = ""

    def reply(self):
        q = parse_qs(urlsplit(self.path).query)
        size = int(q.get("b", ["512"])[0])
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Type", q.get("t", ["application/json"])[0])
        self.send_header("Content-Length", str(size))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(random.randbytes(size))

    do_GET = do_POST = reply

    def log_message(self, *args):
        pass


def name_server():
    """Answers A queries for the intranet's names; AAAA with no answer;
    other names do not exist."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a["dns"], 53))
    web = socket.inet_aton(a["web"])
    while True:
        q, peer = s.recvfrom(1500)
        qid = struct.unpack("!H", q[:2])[0]
        labels, end = [], 12
        while q[end]:
            labels.append(q[end + 1:end + 1 + q[end]].decode().lower())
            end += q[end] + 1
        name = ".".join(labels)
        qtype = struct.unpack("!H", q[end + 1:end + 3])[0]
        question = q[12:end + 5]
        if name.endswith(a["domain"]) and name.split(".")[0] in a["hosts"]:
            if qtype == 1:
                answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, a["ttl"], 4) + web
                s.sendto(struct.pack("!HHHHHH", qid, 0x8580, 1, 1, 0, 0) + question + answer,
                         peer)
            else:
                s.sendto(struct.pack("!HHHHHH", qid, 0x8580, 1, 0, 0, 0) + question, peer)
        else:
            s.sendto(struct.pack("!HHHHHH", qid, 0x8583, 1, 0, 0, 0) + question, peer)


threading.Thread(target=name_server, daemon=True).start()
ThreadingHTTPServer((a["web"], 80), Web).serve_forever()
'''

# Runs in the client namespace once the tunnel is up: the laptop's
# background traffic, one thread per program, each with its own random
# stream.
LAPTOP = r'''
import http.client, json, random, socket, struct, subprocess, sys, threading, time

a = json.loads(sys.argv[1])
T0 = time.monotonic()
deadline = T0 + a["seconds"]
counts = {"http": 0, "http_failed": 0, "dns": 0, "ping": 0}
lock = threading.Lock()


def log(*args):
    print(f"{time.monotonic() - T0:7.1f}", *args, flush=True)


def count(what):
    with lock:
        counts[what] += 1


def sleep(seconds):
    time.sleep(max(0.0, min(seconds, deadline - time.monotonic())))


def alive():
    return time.monotonic() < deadline - 1


class Resolver:
    """A stub resolver with a cache: a name is asked for (A, and AAAA as
    dual-stack systems do) when its cached answer has expired."""
    def __init__(self, rng):
        self.rng, self.cache = rng, {}

    def query(self, name, qtype):
        qid = self.rng.getrandbits(16)
        q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
        q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
        q += struct.pack("!HH", qtype, 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2.0)
        try:
            for _ in range(3):   # retries, as a stub resolver does
                s.sendto(q, (a["dns"], 53))
                try:
                    r = s.recv(1500)
                except socket.timeout:
                    continue
                count("dns")
                return r
        finally:
            s.close()
        return None

    def resolve(self, name):
        with lock:
            hit = self.cache.get(name)
        if hit and hit > time.monotonic():
            return
        self.query(name, 1)
        if self.rng.random() < 0.7:
            self.query(name, 28)
        with lock:
            self.cache[name] = time.monotonic() + a["ttl"]


def fetch(conn, method, path, body, host):
    headers = {"Host": host, "User-Agent": "Mozilla/5.0", "Accept": "*/*"}
    if body:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body or None, headers=headers)
    r = conn.getresponse()
    r.read()
    return r.status


def poller(p, rng, resolver):
    """A program that asks its server for news every period seconds: on one
    kept-alive connection, or a new one each time."""
    sleep(rng.uniform(0, min(p["period"], 20)))
    conn = None
    host = f'{p["host"]}.{a["domain"]}'
    while alive():
        try:
            if conn is None:
                resolver.resolve(host)
                conn = http.client.HTTPConnection(a["web"], 80, timeout=15)
            size = int(p["resp"] * rng.uniform(0.5, 1.6))
            body = (json.dumps({"since": int(time.time()), "client": p["name"],
                                "pad": "x" * int(p["req"] * rng.uniform(0.5, 1.5))})
                    if p["post"] else "")
            fetch(conn, "POST" if p["post"] else "GET",
                  f'/{p["name"]}/sync?b={size}', body, host)
            count("http")
        except (OSError, http.client.HTTPException) as e:
            count("http_failed")
            log(p["name"], "failed:", repr(e))
            conn = None
        if conn is not None and not p["keep"]:
            conn.close()
            conn = None
        sleep(p["period"] * rng.uniform(0.8, 1.2))
    if conn:
        conn.close()


def pinger(rng):
    """A monitoring agent checking that the gateway and a server answer."""
    sleep(rng.uniform(0, 5))
    while alive():
        target = rng.choice([a["gateway"], a["web"]])
        n = rng.choice([1, 1, 1, 3])
        r = subprocess.run(["ping", "-n", "-q", "-c", str(n), "-i", "0.5", "-W", "2",
                            "-s", str(a["ping_size"]), target],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            count("ping")
        sleep(a["ping_period"] * rng.uniform(0.9, 1.1))


def lookups(rng, resolver):
    """The OS and its programs looking names up now and then, some of which
    do not exist (wpad, printers gone, typos)."""
    while alive():
        sleep(rng.expovariate(1 / a["dns_period"]))
        if not alive():
            break
        name = rng.choice(a["noise_names"])
        resolver.query(f"{name}.{a['domain']}", rng.choice([1, 1, 28]))


def person(rng, resolver):
    """The laptop's user opening an intranet page now and then: the page,
    then its objects on two connections."""
    sleep(rng.uniform(3, max(4, a["seconds"] * 0.8)))
    while alive():
        page = rng.choice(["wiki", "intranet", "jira", "hr"])
        host = f"{page}.{a['domain']}"
        try:
            resolver.resolve(host)
            conns = [http.client.HTTPConnection(a["web"], 80, timeout=15) for _ in range(2)]
            fetch(conns[0], "GET", f"/{page}/?b={rng.randint(15000, 70000)}&t=text/html",
                  "", host)
            count("http")
            for i in range(rng.randint(2, 8)):
                fetch(conns[i % 2], "GET", f"/{page}/static/{i}?b={rng.randint(1500, 40000)}",
                      "", host)
                count("http")
            for c in conns:
                c.close()
            log("page", page)
        except (OSError, http.client.HTTPException) as e:
            count("http_failed")
            log("page failed:", repr(e))
        sleep(rng.uniform(60, 300))


rng = random.Random(a["seed"])
resolver = Resolver(random.Random(rng.getrandbits(32)))
threads = [threading.Thread(target=poller, args=(p, random.Random(rng.getrandbits(32)), resolver))
           for p in a["pollers"]]
threads.append(threading.Thread(target=pinger, args=(random.Random(rng.getrandbits(32)),)))
threads.append(threading.Thread(target=lookups, args=(random.Random(rng.getrandbits(32)),
                                                      resolver)))
if a["person"]:
    threads.append(threading.Thread(target=person, args=(random.Random(rng.getrandbits(32)),
                                                         resolver)))
for t in threads:
    t.daemon = True
    t.start()
for t in threads:
    t.join(timeout=max(0.0, deadline - time.monotonic()) + 20)
log("counts", json.dumps(counts))
if counts["http"] + counts["dns"] + counts["ping"] == 0:
    print("FAILED: nothing got through the tunnel", flush=True)
    sys.exit(3)
print("DONE", flush=True)
'''

# The programs that poll: (name, host, period range s, request and
# response bytes, POST or GET).
POLLERS = [
    ("mail", "mail", (30, 120), 300, 1200, True),
    ("calendar", "calendar", (60, 300), 250, 2500, False),
    ("chat", "chat", (15, 45), 150, 400, True),
    ("updates", "updates", (120, 600), 200, 3000, False),
    ("edr", "edr", (20, 90), 1500, 300, True),
]
HOSTS = ["intranet", "wiki", "jira", "hr"] + sorted({p[1] for p in POLLERS})
NOISE_NAMES = ["wpad", "printer-3f", "fileserver", "time", "proxy", "ldap", "sccm",
               "isatap", "fs01", "intranet", "wiki"]


def _client_cert(ca_dir):
    """A builder for the laptop's certificate, signed by the lab CA."""
    def build(path):
        key, csr, crt = (os.path.join(path, n) for n in ("client.key", "client.csr", "client.pem"))
        for args in (["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-subj", "/CN=laptop.corp.flowpic.test", "-keyout", key, "-out", csr],
                     ["x509", "-req", "-in", csr, "-CA", os.path.join(ca_dir, "ca.pem"),
                      "-CAkey", os.path.join(ca_dir, "ca.key"), "-CAcreateserial",
                      "-days", "3650", "-out", crt]):
            subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    return build


def _crypto(cipher, wrap, wrap_key, side):
    """One side's data cipher and control channel protection lines (both
    sides get the same cipher and wrap)."""
    lines = [f"data-ciphers {cipher}"]
    if cipher == "AES-256-CBC":
        lines.append("auth SHA256")
    if wrap == "tls-auth":
        lines.append(f"tls-auth {wrap_key} {0 if side == 'server' else 1}")
    elif wrap == "tls-crypt":
        lines.append(f"tls-crypt {wrap_key}")
    return "\n".join(lines)


class OpenVpn:
    CLASS = "other"
    NAME = "vpn-openvpn"
    PACKAGES = ["openvpn", "openssl", "iputils-ping", "iproute2", "python3"]
    SERVER_IPS = 1
    PROTO = "udp4"

    def _configs(self, env):
        """Both ends' config files (server, client), in the workdir."""
        rng = env.rng
        tls = lab_assets.tls(env.assets, env.server_ips)
        cdir = lab_assets.ensure(env.assets, "tls-vpn-client",
                                 _client_cert(os.path.dirname(tls["ca"])))
        # Today's AEAD defaults in some order, or an old set-up's CBC + HMAC.
        cipher = rng.choice(["AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305",
                             "AES-128-GCM:AES-256-GCM", "CHACHA20-POLY1305:AES-256-GCM",
                             "AES-256-CBC"])
        wrap = rng.choice([None, "tls-auth", "tls-crypt", "tls-crypt"])
        wrap_key = os.path.join(env.workdir, "ta.key")
        if wrap:
            subprocess.run(["openvpn", "--genkey", "secret", wrap_key], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        udp = self.PROTO.startswith("udp")
        # Over UDP the laptop tells the gateway it leaves (over TCP the
        # connection's end does).  The gateway itself stays up for others.
        exit_notify = "explicit-exit-notify 1" if udp else ""
        env.log(f"{self.NAME}: {cipher.split(':')[0]}, {wrap or 'no tls wrap'}")
        confs = []
        for side, text, cert, key in (
                ("server", SERVER_CONF, tls["cert"], tls["key"]),
                ("client", CLIENT_CONF, os.path.join(cdir, "client.pem"),
                 os.path.join(cdir, "client.key"))):
            path = os.path.join(env.workdir, f"openvpn-{side}.conf")
            with open(path, "w") as f:
                f.write(text.format(proto=self.PROTO if udp else f"{self.PROTO}-{side}",
                                    ip=env.server_ip, port=PORT, slot=env.topo.slot,
                                    domain=DOMAIN, ca=tls["ca"], cert=cert, key=key,
                                    crypto=_crypto(cipher, wrap, wrap_key, side),
                                    exit_notify=exit_notify))
            confs.append(path)
        return confs

    def _laptop(self, env, web, dns, gateway):
        """What the laptop's programs do (the LAPTOP script's settings)."""
        rng = env.rng
        pollers = [{"name": n, "host": h, "period": round(rng.uniform(*per), 1),
                    "req": req, "resp": resp, "post": post, "keep": rng.random() < 0.6}
                   for n, h, per, req, resp, post in rng.sample(POLLERS, rng.randint(1, 3))]
        laptop = {"web": web, "dns": dns, "gateway": gateway, "domain": DOMAIN,
                  "ttl": rng.choice([30, 60, 300]), "pollers": pollers,
                  "ping_period": rng.uniform(5, 30), "ping_size": rng.choice([56, 56, 32, 64]),
                  "dns_period": rng.uniform(20, 90), "noise_names": NOISE_NAMES,
                  "person": rng.random() < 0.6, "seed": rng.getrandbits(32)}
        env.log(f"{self.NAME}: " + " ".join(f"{p['name']}/{p['period']}s" for p in pollers)
                + f"; ping every {laptop['ping_period']:.0f}s; a person: {laptop['person']}")
        return laptop

    def run(self, env):
        rng = env.rng
        slot = env.topo.slot
        server_conf, client_conf = self._configs(env)
        # The intranet behind the gateway: addresses of the server namespace.
        web, dns, gateway = f"172.30.{slot}.10", f"172.30.{slot}.53", f"172.31.{slot}.1"
        for ip in (web, dns):
            env.run_server(["ip", "addr", "add", f"{ip}/32", "dev", "lo"])
        laptop = self._laptop(env, web, dns, gateway)
        logs = {s: os.path.join(env.workdir, f"{s}.log")
                for s in ("openvpn-server", "openvpn-client", "intranet", "laptop")}
        servers, cli = [], None
        try:
            servers.append(start_server(
                env, "intranet", ["/usr/bin/python3", script(env, "intranet.py", INTRANET),
                                  json.dumps({"web": web, "dns": dns, "domain": DOMAIN,
                                              "hosts": HOSTS, "ttl": laptop["ttl"]})],
                80, logs["intranet"]))
            servers.append(start_server(env, "openvpn server",
                                        ["openvpn", "--config", server_conf], PORT,
                                        logs["openvpn-server"], proto=self.PROTO[:3]))
            # The laptop connects a moment into the session, as its user
            # clicks connect.
            time.sleep(rng.uniform(0.3, 2.0))
            with open(logs["openvpn-client"], "w") as f:
                cli = env.client(["openvpn", "--config", client_conf], stdout=f, stderr=f)
            end = time.monotonic() + 45
            while "Initialization Sequence Completed" not in read(logs["openvpn-client"]):
                if cli.poll() is not None or time.monotonic() > end:
                    raise RuntimeError("the VPN tunnel did not come up: "
                                       f"{tail(logs['openvpn-client'], proc=cli)}"[:400])
                time.sleep(0.2)
            laptop["seconds"] = max(5.0, env.remaining() - 1.5)
            run_client(env, "laptop traffic",
                       ["/usr/bin/python3", script(env, "laptop.py", LAPTOP), json.dumps(laptop)],
                       logs["laptop"], laptop["seconds"] + 60, "DONE")
        finally:
            # The client first: its exit notification reaches a running server.
            stop([cli])
            # its last packets (exit notification, FIN) reach the capture,
            # which gets frames from the kernel up to a second late
            time.sleep(1.0)
            stop(servers)
            keep_logs(*logs.values())
        return [{"proto": self.PROTO[:3], "port": PORT, "label": "other"}]


class OpenVpnTcp(OpenVpn):
    NAME = "vpn-openvpn-tcp"
    PROTO = "tcp4"


APPS = [OpenVpn, OpenVpnTcp]
