"""Chat: IRC.  An ngircd server in the server namespace (foreground, its own
config in env.workdir, no DNS or ident look-ups, TLS on 6697 with the lab
certificate, or plain 6667 in some sessions) and 3-6 users in the client
namespace, one connection each, speaking IRC as clients like irssi or
weechat do (a small asyncio client written here): they join a channel or
two, talk with human timing (typing time, thinking, lulls), send private
messages, come and go (join/part/quit), set themselves away, change nick,
and check their lag with PINGs.

Labels: the IRC port used (tcp/6697 or tcp/6667) is "chat".
"""
import json
import os
import time

from labkit import assets as lab_assets
from labkit.procs import keep_logs, run_client, script, start_server
from labkit.session import stop

TLS_PORT = 6697
PLAIN_PORT = 6667

NGIRCD_CONF = """\
[Global]
\tName = irc.lab.flowpic.test
\tInfo = flowpic lab IRC server
\tAdminInfo1 = flowpic lab
\tAdminInfo2 = namespace
\tAdminEMail = admin@lab.flowpic.test
\tListen = {ip}
\tPorts = {plain_ports}
\tMotdFile = {wd}/ngircd.motd

[Limits]
\tMaxConnections = 0
\tMaxConnectionsIP = 0
\tMaxJoins = 10
\tMaxNickLength = 16
\tPingTimeout = 120
\tPongTimeout = 20

[Options]
\tDNS = no
\tIdent = no
\tPAM = no
\tIncludeDir = {wd}/conf.d
\tMorePrivacy = no
\tNoticeBeforeRegistration = yes

[SSL]
\tCertFile = {cert}
\tKeyFile = {key}
\tPorts = {tls_ports}

[Channel]
\tName = #lab
\tTopic = flowpic lab chat - be nice
\tModes = +tn

[Channel]
\tName = #random
\tTopic = anything goes
\tModes = +tn
"""

MOTD = """\
Welcome to irc.lab.flowpic.test!
This server runs inside a network namespace for the flowpic traffic lab.
Rules: be nice, no spam, no flooding.
Channels: #lab (main), #random (anything goes).
Have fun.
"""

CLIENTS = r'''
import asyncio, json, random, ssl, sys, time

from labkit.apps import chat_text as ct
from labkit.apps.chat_text import log, sleep_until


class User:
    def __init__(self, a, spec, rng):
        self.a, self.spec, self.rng = a, spec, rng
        self.nick = spec["nick"]
        self.cps = spec["cps"]
        self.channels = set()
        self.registered = asyncio.Event()
        self.writer = None
        self.online = False
        self.away = False
        self.error = None
        self.busy_until = 0.0
        self.out = []

    async def connect(self):
        ctx = None
        if self.a.tls:
            ctx = ssl.create_default_context(cafile=self.a.ca)
        self.reader, self.writer = await asyncio.open_connection(
            self.a.server, self.a.port, ssl=ctx,
            server_hostname=self.a.server if ctx else None)
        self.task = asyncio.ensure_future(self.read_loop())
        self.send("CAP LS 302")
        self.send(f"NICK {self.nick}")
        self.send(f"USER {self.spec['user']} 0 * :{self.spec['real']}")
        await asyncio.wait_for(self.registered.wait(), 60)
        self.online = True
        self.send(f"MODE {self.nick} +i")
        self.pinger = asyncio.ensure_future(self.lag_check())

    def send(self, line):
        # Lines queued in one turn of the event loop leave together, as a
        # client's output buffer does (CAP/NICK/USER; JOIN/MODE/WHO).
        self.out.append((line + "\r\n").encode("utf-8", "replace"))
        if len(self.out) == 1:
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self):
        data, self.out = b"".join(self.out), []
        if self.writer and not self.writer.is_closing():
            self.writer.write(data)

    async def read_loop(self):
        buf = b""
        try:
            while True:
                data = await self.reader.read(4096)
                if not data:
                    break
                buf += data
                while b"\r\n" in buf:
                    line, buf = buf.split(b"\r\n", 1)
                    self.handle(line.decode("utf-8", "replace"))
        except (ConnectionError, ssl.SSLError) as e:
            self.error = repr(e)
        self.online = False

    def handle(self, line):
        prefix = ""
        if line.startswith(":"):
            prefix, line = line[1:].split(" ", 1)
        parts = line.split(" ")
        cmd = parts[0]
        if cmd == "PING":
            self.send("PONG " + " ".join(parts[1:]))
        elif cmd == "CAP" and len(parts) > 2 and parts[2] == "LS":
            offered = line.split(":", 1)[-1].split()
            want = [c for c in ("multi-prefix", "userhost-in-names", "away-notify")
                    if c in offered]
            self.send("CAP REQ :" + " ".join(want) if want else "CAP END")
        elif cmd == "CAP" and len(parts) > 2 and parts[2] in ("ACK", "NAK"):
            self.send("CAP END")
        elif cmd == "001":
            self.registered.set()
        elif cmd == "433":
            self.nick += "_"
            self.send(f"NICK {self.nick}")
        elif cmd == "ERROR":
            self.error = line

    async def lag_check(self):
        # Clients check their lag now and then (irssi, weechat: ~every minute).
        while self.online:
            await asyncio.sleep(self.spec["lag"] * self.rng.uniform(0.9, 1.1))
            self.send(f"PING :LAG{int(time.time() * 1000)}")

    def join(self, chan):
        self.send(f"JOIN {chan}")
        self.channels.add(chan)
        # Clients ask who is there, and the modes, right after joining.
        self.send(f"MODE {chan}")
        self.send(f"WHO {chan}")
        log(self.nick, "joins", chan)

    def part(self, chan, msg):
        self.send(f"PART {chan} :{msg}")
        self.channels.discard(chan)
        log(self.nick, "parts", chan)

    async def say(self, target, text, deadline):
        t = ct.typing_seconds(self.rng, text, self.cps)
        self.busy_until = time.monotonic() + t
        await sleep_until(t, deadline)
        if time.monotonic() >= deadline or not self.online:
            return
        # IRC lines are short: clients split a long text into several.
        chunks = [text[i:i + 400] for i in range(0, len(text), 400)]
        for c in chunks:
            self.send(f"PRIVMSG {target} :{c}")
            if len(chunks) > 1:
                await asyncio.sleep(self.rng.uniform(0.3, 1.2))
        log(self.nick, "says", target, len(text))

    async def quit(self, msg):
        self.send(f"QUIT :{msg}")
        try:
            await self.writer.drain()
            await asyncio.wait_for(self.task, 3)
        except Exception:
            pass
        self.online = False
        self.writer.close()
        log(self.nick, "quits")


async def main(a):
    rng = random.Random(a.seed)
    specs = json.loads(a.users)
    users = [User(a, s, random.Random(rng.getrandbits(32))) for s in specs]
    deadline = time.monotonic() + a.seconds
    late = [u for u in users if u.spec["late"]]
    early = [u for u in users if not u.spec["late"]]
    # Those online from the start connect one after another; a login that
    # is slow (a lossy link) does not hold the others up.
    async def arrive(u, chans):
        try:
            await u.connect()
        except Exception as e:
            u.error = u.error or repr(e)
            return
        for c in chans:
            u.join(c)
    arrivals = []
    for u in early:
        arrivals.append(asyncio.ensure_future(
            arrive(u, ["#lab"] + (["#random"] if u.spec["random"] else []))))
        # (the arrivals take at most a quarter of a short session)
        await asyncio.sleep(min(rng.uniform(1.0, 6.0), 0.25 * a.seconds / len(users)))
    end = time.monotonic() + 60
    while len([u for u in users if u.channels]) < 2:
        if time.monotonic() > end or all(t.done() for t in arrivals):
            errs = [f"{u.nick}: {u.error}" for u in users if u.error]
            print("FAILED: fewer than two users online", *errs[:1], flush=True)
            sys.exit(3)
        await asyncio.sleep(0.2)
    log("ONLINE", len([u for u in users if u.channels]))
    late_at = {u: time.monotonic() + rng.uniform(0.15, 0.6) * a.seconds for u in late}
    leaving = rng.choice(early) if len(early) > 2 and rng.random() < 0.5 else None
    leave_at = time.monotonic() + rng.uniform(0.5, 0.9) * a.seconds
    while time.monotonic() < deadline - 2:
        now = time.monotonic()
        for u in list(late_at):
            if now >= late_at[u]:
                del late_at[u]
                arrivals.append(asyncio.ensure_future(arrive(u, ["#lab"])))
        if leaving and now >= leave_at and leaving.online:
            await leaving.quit(rng.choice(["bye all", "gotta go", "Leaving", "later!",
                                           "Client exited"]))
            leaving = None
        here = [u for u in users if u.online and "#lab" in u.channels]
        if len(here) < 2:
            await sleep_until(2.0, deadline)
            continue
        r = rng.random()
        if r < 0.7:
            # The channel talks for a while.  People react to what they read,
            # so several may be typing at once: each message starts a little
            # after the one before, and is sent when its author has typed it.
            chan = "#lab"
            if rng.random() < 0.25:
                rnd = [u for u in users if u.online and "#random" in u.channels]
                if len(rnd) >= 2:
                    here, chan = rnd, "#random"
            tasks = []
            who = rng.choice(here)
            for i in range(rng.randint(2, 10)):
                if time.monotonic() >= deadline - 2:
                    break
                free = [u for u in here if u.online and u.busy_until <= time.monotonic()]
                if who not in free:
                    if not free:
                        await sleep_until(1.0, deadline)
                        continue
                    who = rng.choice(free)
                tasks.append(asyncio.ensure_future(
                    who.say(chan, ct.message(rng, style="irc"), deadline)))
                await asyncio.sleep(0)
                if rng.random() < 0.6:
                    who = rng.choice(here)
                await sleep_until(ct.think_seconds(rng, median=2.5), deadline)
            if tasks:
                await asyncio.wait(tasks)
        elif r < 0.85:
            # A private conversation.
            p, q = rng.sample(here, 2)
            for i in range(rng.randint(2, 6)):
                if time.monotonic() >= deadline - 2:
                    break
                await p.say(q.nick, ct.message(rng, style="irc"), deadline)
                if rng.random() < 0.7:
                    p, q = q, p
                await sleep_until(ct.think_seconds(rng), deadline)
        elif r < 0.92:
            u = rng.choice(here)
            if u.away:
                u.send("AWAY")
                u.away = False
                log(u.nick, "back")
            else:
                u.send(f"AWAY :{rng.choice(ct.STATUS)}")
                u.away = True
                log(u.nick, "away")
        elif r < 0.97:
            u = rng.choice(here)
            if "#random" in u.channels:
                u.part("#random", rng.choice(["", "bbl", "too noisy"]))
            else:
                u.join("#random")
        else:
            u = rng.choice(here)
            new = (u.spec["nick"] + rng.choice(["_afk", "|work", "_", "^"]))[:16]
            if u.nick != u.spec["nick"]:
                new = u.spec["nick"]
            u.send(f"NICK {new}")
            u.nick = new
            log(u.spec["nick"], "is now", new)
        await sleep_until(ct.idle_seconds(rng, median=6.0), deadline)
    for t in arrivals:
        if not t.done():
            t.cancel()
    for u in users:
        if u.online:
            await u.quit(rng.choice(["bye", "Leaving", "good night", "Client exited", ""]))
            await asyncio.sleep(rng.uniform(0.1, 0.8))
    await asyncio.sleep(0.3)
    print("DONE", flush=True)


asyncio.run(main(ct.client_args(tls=int)))
'''

NICKS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
REAL = ["Alice Liddell", "Bob", "Carol S.", "dave", "Erin M", "Frank", "Grace H.", "heidi"]


class IrcNgircd:
    CLASS = "chat"
    NAME = "irc-ngircd"
    PACKAGES = ["ngircd", "python3"]
    SERVER_IPS = 1

    def run(self, env):
        tls = lab_assets.tls(env.assets, env.server_ips)
        use_tls = env.rng.random() < 0.75
        port = TLS_PORT if use_tls else PLAIN_PORT
        wd = os.path.join(env.workdir, "ngircd")
        os.makedirs(os.path.join(wd, "conf.d"), exist_ok=True)
        conf = os.path.join(wd, "ngircd.conf")
        with open(conf, "w") as f:
            f.write(NGIRCD_CONF.format(ip=env.server_ip, wd=wd, cert=tls["cert"], key=tls["key"],
                                       plain_ports=PLAIN_PORT, tls_ports=TLS_PORT))
        with open(os.path.join(wd, "ngircd.motd"), "w") as f:
            f.write(MOTD)
        r = env.run_server(["ngircd", "--configtest", "-f", conf], timeout=30, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"ngircd config rejected: {(r.stderr or r.stdout).strip()[-200:]}")
        n = env.rng.randint(3, 6)
        idx = env.rng.sample(range(len(NICKS)), n)
        users = []
        for k, i in enumerate(idx):
            users.append({"nick": NICKS[i], "user": NICKS[i][:8], "real": REAL[i],
                          "cps": env.rng.uniform(3.5, 9.0),
                          "lag": env.rng.choice([30, 60, 60, 120]),
                          "random": env.rng.random() < 0.5,
                          "late": k >= 2 and env.rng.random() < 0.3})
        clients = script(env, "irc_clients.py", CLIENTS)
        logs = {s: os.path.join(env.workdir, f"irc-{s}.log") for s in ("server", "client")}
        srv = None
        try:
            srv = start_server(env, "ngircd", ["ngircd", "-n", "-f", conf], port, logs["server"],
                               seconds=15)
            time.sleep(env.rng.uniform(0.2, 1.0))
            talk = max(5.0, env.remaining() - 2.0)
            run_client(env, "irc clients",
                       ["/usr/bin/python3", clients, "--server", env.server_ip,
                        "--port", str(port), "--tls", str(int(use_tls)),
                        "--ca", tls["ca"], "--users", json.dumps(users),
                        "--seed", str(env.rng.getrandbits(32)),
                        "--seconds", f"{talk:.1f}"], logs["client"], talk + 40, "DONE")
        finally:
            stop([srv])
            keep_logs(*logs.values())
        return [{"proto": "tcp", "port": port, "label": "chat"}]


APPS = [IrcNgircd]
