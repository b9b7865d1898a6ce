"""Chat: XMPP.  A prosody server in the server namespace (foreground, its own
config and data in env.workdir, c2s with STARTTLS required, the lab
certificate) and 2-4 slixmpp clients in the client namespace, one TCP
connection each to 5222, who know each other (their rosters are set up
before the server starts) and chat as people do: typing notifications
(XEP-0085) while they type at their own speed, pauses to think, receipts
(XEP-0184), read markers (XEP-0333), presence changes, a group chat room
(XEP-0045) when there are three or more, and now and then a picture shared
through HTTP File Upload (XEP-0363, prosody's mod_http_file_share on HTTPS
5281): the sender PUTs it, the others' clients fetch it.

xmpp-idle is the same server and clients as a messenger on phones looks
when no one is typing, the commonest state of a real chat connection: 2-3
people whose apps are in the background (Client State Indication,
XEP-0352, inactive: the server holds back their contacts' presence),
keeping their TLS connection up with XMPP pings (XEP-0199) every 30-120 s
and, on about half of them, stream management acks (XEP-0198); a short
message now and then (one every 30 s to several minutes), answered by a
delivery receipt at once and by a read marker only when its person opens
the app, sometimes with a reply; now and then a presence change.  A
connection carries a few packets in 15 s, often none.

Labels: c2s (tcp/5222) "chat"; the upload/download flows (tcp/5281) carry
files, not chat, and are labeled with the role "upload".
"""
import json
import os
import time

from labkit import assets as lab_assets
from labkit.procs import keep_logs, run_client, script, start_server
from labkit.session import stop

DOMAIN = "lab.flowpic.test"
C2S_PORT = 5222
HTTPS_PORT = 5281

PROSODY_CFG = """\
-- flowpic lab: one session's XMPP server
run_as_root = true
pidfile = "{wd}/prosody.pid"
data_path = "{wd}/data"
log = {{ info = "{wd}/prosody.log" }}
interfaces = {{ "{ip}" }}
c2s_ports = {{ {c2s} }}
s2s_ports = {{ }}
component_ports = {{ }}
http_ports = {{ }}
https_ports = {{ {https} }}
https_interfaces = {{ "{ip}" }}
http_external_url = "https://{ip}:{https}/"
http_default_host = "{domain}"
c2s_require_encryption = true
allow_registration = false
authentication = "internal_hashed"
storage = "internal"
certificates = "{wd}/certs"
ssl = {{ certificate = "{cert}"; key = "{key}" }}
https_ssl = {{ certificate = "{cert}"; key = "{key}" }}
modules_enabled = {{
  "roster"; "saslauth"; "tls"; "disco"; "carbons"; "pep"; "private";
  "blocklist"; "vcard4"; "vcard_legacy"; "version"; "uptime"; "time";
  "ping"; "smacks"; "csi_simple"; "offline";
}}
modules_disabled = {{ "s2s" }}
muc_room_locking = false

VirtualHost "{domain}"

Component "conference.{domain}" "muc"
  modules_enabled = {{ "muc_mam" }}

Component "upload.{domain}" "http_file_share"
  -- Clients reach it by address (no DNS here): route that Host to it.
  http_host = "{ip}"
  http_file_share_size_limit = 16*1024*1024
"""

# The client script's people (slixmpp), shared by both drivers' mains.
CLIENT_USERS = r'''
import asyncio, json, logging, random, ssl, sys, time
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from labkit.apps import chat_text as ct
from labkit.apps.chat_text import log, sleep_until
import slixmpp
from slixmpp import JID

UP = "urn:xmpp:http:upload:0"


class User(slixmpp.ClientXMPP):
    def __init__(self, a, spec, rng, ctx):
        super().__init__(spec["jid"], spec["password"])
        self.spec, self.rng, self.ctx, self.a = spec, rng, ctx, a
        self.nick = spec["nick"]
        self.cps = spec["cps"]
        self.ca_certs = a.ca
        self.online = False
        self.failed = None
        self.away = False
        self.upload_service = None
        self.downloads = []
        for p in ("xep_0030", "xep_0045", "xep_0066", "xep_0085", "xep_0115", "xep_0184",
                  "xep_0333", "xep_0359"):
            self.register_plugin(p)
        self.register_plugin("xep_0199", {"keepalive": True, "interval": spec["ping"]})
        if spec["smacks"]:
            self.register_plugin("xep_0198")
        self["xep_0184"].auto_ack = True
        self["xep_0184"].auto_request = False
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("groupchat_message", self.on_message)
        self.add_event_handler("failed_auth", lambda e: self.fail("authentication failed"))
        self.add_event_handler("connection_failed", lambda e: self.fail(f"connection failed: {e}"))
        self.add_event_handler("disconnected", lambda e: setattr(self, "online", False))
        for ev in ("connected", "tls_success", "auth_success", "session_bind", "disconnected",
                   "stream_error", "ssl_invalid_chain", "ssl_invalid_cert"):
            self.add_event_handler(ev, lambda e, ev=ev: log(self.nick, ev))

    def fail(self, why):
        self.failed = why

    async def start(self, event):
        log(self.nick, "session started")
        self.send_presence()
        await self.get_roster()
        if self.spec["room"]:
            self["xep_0045"].join_muc(JID(self.a.room), self.nick)
        self.online = True

    def on_message(self, msg):
        if msg["type"] not in ("chat", "groupchat") or not msg["body"]:
            return
        if msg["type"] == "groupchat" and msg["mucnick"] == self.nick:
            return
        url = msg["oob"]["url"]
        if url:
            # The client fetches shared pictures by itself, soon after.
            self.downloads.append(asyncio.ensure_future(
                self.fetch(url, self.rng.uniform(0.5, 4.0))))
        if msg["type"] == "chat" and not self.away and msg["id"]:
            asyncio.ensure_future(self.mark_read(msg["from"], msg["id"],
                                                 self.rng.uniform(0.5, 6.0)))

    async def mark_read(self, to, mid, delay):
        await asyncio.sleep(delay)
        m = self.make_message(mto=to, mtype="chat")
        m["displayed"]["id"] = mid
        m.send()

    def chat_state(self, to, mtype, state):
        m = self.make_message(mto=to, mtype=mtype)
        m["chat_state"] = state
        m.send()

    async def say(self, to, mtype, text, deadline):
        """Type text (with typing notifications) and send it."""
        t = ct.typing_seconds(self.rng, text, self.cps)
        log(self.nick, "types", mtype, to, len(text), round(t, 1))
        self.chat_state(to, mtype, "composing")
        if t > 5 and self.rng.random() < 0.4:
            part = t * self.rng.uniform(0.3, 0.7)
            await sleep_until(part, deadline)
            self.chat_state(to, mtype, "paused")
            await sleep_until(self.rng.uniform(1.0, 6.0), deadline)
            self.chat_state(to, mtype, "composing")
            t -= part
        await sleep_until(t, deadline)
        if time.monotonic() >= deadline:
            return
        if self.rng.random() < 0.04:
            # Typed, then deleted it: no message after all.
            self.chat_state(to, mtype, "active")
            return
        log(self.nick, "says", mtype, to, len(text))
        m = self.make_message(mto=to, mbody=text, mtype=mtype)
        m["chat_state"] = "active"
        if mtype == "chat":
            m["request_receipt"] = True
            m["markable"] = True
        m.send()

    async def find_upload(self):
        if self.upload_service:
            return self.upload_service
        items = await self["xep_0030"].get_items(jid=JID(self.a.domain), timeout=10)
        for item in items["disco_items"]["items"]:
            info = await self["xep_0030"].get_info(jid=item[0], timeout=10)
            if ("store", "file") in [(i[0], i[1]) for i in info["disco_info"]["identities"]]:
                self.upload_service = item[0]
                return item[0]
        raise RuntimeError("no upload service")

    async def share_picture(self, to, mtype, deadline):
        size = int(self.rng.uniform(60, 600) * 1024)
        name = f"IMG_{self.rng.randint(20230101, 20241231)}_{self.rng.randint(100000, 235959)}.jpg"
        svc = await self.find_upload()
        iq = self.make_iq_get(ito=svc)
        req = ET.Element(f"{{{UP}}}request", {"filename": name, "size": str(size),
                                               "content-type": "image/jpeg"})
        iq.append(req)
        res = await iq.send(timeout=10)
        slot = res.xml.find(f"{{{UP}}}slot")
        put = slot.find(f"{{{UP}}}put")
        get_url = slot.find(f"{{{UP}}}get").get("url")
        headers = {h.get("name"): h.text for h in put.findall(f"{{{UP}}}header")}
        body = self.rng.randbytes(size)
        # (a slow uplink may not get it through before the session ends)
        await asyncio.wait_for(http(self.ctx, "PUT", put.get("url"), body, headers,
                                    "image/jpeg"), max(5.0, deadline - time.monotonic()))
        log(self.nick, "shares", mtype, to, size)
        m = self.make_message(mto=to, mbody=get_url, mtype=mtype)
        m["oob"]["url"] = get_url
        m["chat_state"] = "active"
        m.send()

    async def fetch(self, url, delay):
        await asyncio.sleep(delay)
        try:
            log(self.nick, "fetches", url)
            await http(self.ctx, "GET", url)
        except Exception as e:
            print("download failed", url, e, flush=True)

    def set_presence(self, show, status):
        log(self.nick, "presence", show, status)
        self.away = show in ("away", "xa")
        kw = {"pshow": show, "pstatus": status} if show else {}
        self.send_presence(**kw)
        if self.spec["room"]:
            self.send_presence(pto=f"{self.a.room}/{self.nick}", **kw)


async def http(ctx, method, url, body=b"", headers=None, ctype=None):
    u = urlsplit(url)
    reader, writer = await asyncio.open_connection(u.hostname, u.port or 443, ssl=ctx,
                                                   server_hostname=u.hostname)
    path = u.path + (("?" + u.query) if u.query else "")
    head = [f"{method} {path} HTTP/1.1", f"Host: {u.netloc}", "User-Agent: slixmpp",
            "Connection: close"]
    if method == "PUT":
        head += [f"Content-Length: {len(body)}", f"Content-Type: {ctype}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    for i in range(0, len(body), 16384):
        writer.write(body[i:i + 16384])
        await writer.drain()
    await writer.drain()
    status = await reader.readline()
    rest = await reader.read()
    writer.close()
    code = int(status.split()[1])
    if code >= 400:
        raise RuntimeError(f"HTTP {code} for {method} {url}")
    return len(rest)


def online(users):
    return [u for u in users if u.online and not u.failed]
'''

# xmpp-prosody's main: people chatting.
CHAT_MAIN = r'''

async def main(a):
    rng = random.Random(a.seed)
    specs = json.loads(a.users)
    ctx = ssl.create_default_context(cafile=a.ca)
    users = [User(a, s, random.Random(rng.getrandbits(32)), ctx) for s in specs]
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    # People come online one after another.  A login that is slow (a lossy
    # link) does not hold the others up: they chat with whoever is online.
    for u in users:
        u.connect(address=(a.server, a.port))
        # (the arrivals take at most a quarter of a short session)
        await asyncio.sleep(min(rng.uniform(1.0, 6.0), 0.25 * a.seconds / len(users)))
    end = time.monotonic() + 60
    while len(online(users)) < 2:
        bad = [u.failed for u in users if u.failed]
        if bad or time.monotonic() > end:
            print("FAILED:", bad[0] if bad else "fewer than two clients got a session",
                  flush=True)
            sys.exit(3)
        await asyncio.sleep(0.2)
    print("ONLINE", len(online(users)), flush=True)
    shared = 0
    first = True
    while time.monotonic() < deadline - 2:
        # One exchange: two people, or the room.
        here = online(users)
        room_users = [u for u in here if u.spec["room"]]
        if len(here) < 2:
            await sleep_until(1.0, deadline)
            continue
        if len(room_users) >= 3 and rng.random() < 0.35:
            parts, to, mtype = room_users, None, "groupchat"
        else:
            parts, to, mtype = rng.sample(here, 2), None, "chat"
        n = rng.randint(2, 12)
        who = rng.choice(parts)
        for i in range(n):
            if time.monotonic() >= deadline - 2:
                break
            if mtype == "chat":
                to = [p for p in parts if p is not who][0].boundjid.bare
            else:
                to = a.room
            if rng.random() < 0.05 and shared < 3 and not first:
                try:
                    await who.share_picture(to, mtype, deadline)
                    shared += 1
                except Exception as e:
                    print("share failed:", repr(e), flush=True)
            else:
                await who.say(to, mtype, ct.message(rng), deadline)
            first = False
            # Next: mostly the other one answers, sometimes the same one goes on.
            if rng.random() < 0.65:
                who = rng.choice([p for p in parts if p is not who])
            await sleep_until(ct.think_seconds(rng), deadline)
        # A lull; somebody's status may change.
        if rng.random() < 0.3:
            u = rng.choice(online(users) or users)
            if u.away:
                u.set_presence(None, None)
            else:
                u.set_presence(rng.choice(["away", "away", "xa", "dnd"]), rng.choice(ct.STATUS))
        await sleep_until(ct.idle_seconds(rng), deadline)
    for u in users:
        for d in u.downloads:
            if not d.done():
                d.cancel()
    # Going offline, one by one.
    for u in users:
        u.send_presence(ptype="unavailable")
        u.disconnect()
        await asyncio.sleep(rng.uniform(0.1, 0.8))
    await asyncio.sleep(0.5)
    print("DONE", flush=True)


logging.basicConfig(level=logging.ERROR)
asyncio.run(main(ct.client_args(domain=str, room=str)))
'''
CLIENTS = CLIENT_USERS + CHAT_MAIN

# xmpp-idle's main: phones in pockets, a message now and then.
IDLE_MAIN = r'''
import math


class Phone(User):
    """A messaging app in the background: CSI inactive but while its person
    has it open; receipts at once (auto_ack), read markers when opened."""

    def __init__(self, *args):
        super().__init__(*args)
        self.register_plugin("xep_0352")
        self.unread = []
        self.open = True

    async def start(self, event):
        await super().start(event)
        # Logged in, a look at the app, and back into the pocket.
        await asyncio.sleep(self.rng.uniform(2.0, 10.0))
        self.background()

    def on_message(self, msg):
        if msg["type"] == "chat" and msg["body"] and msg["id"]:
            log(self.nick, "got", len(msg["body"]))
            self.unread.append((msg["from"], msg["id"]))
            if self.open:
                asyncio.ensure_future(self.read(self.rng.uniform(0.5, 4.0)))

    def foreground(self):
        if not self.open:
            log(self.nick, "opens the app")
            self.open = True
            self["xep_0352"].send_active()

    def background(self):
        if self.open:
            log(self.nick, "closes the app")
            self.open = False
            self["xep_0352"].send_inactive()

    async def read(self, delay):
        await asyncio.sleep(delay)
        while self.unread:
            to, mid = self.unread.pop(0)
            await self.mark_read(to, mid, 0)


async def use_app(u, rng, deadline, reply_to=None):
    """Someone takes the phone out: reads what came, maybe writes, puts it away."""
    u.foreground()
    await sleep_until(rng.uniform(0.5, 3.0), deadline)
    await u.read(0)
    if reply_to is not None:
        await sleep_until(ct.think_seconds(rng), deadline)
        text = rng.choice(ct.SHORT) if rng.random() < 0.6 else rng.choice(ct.SENTENCES)
        await u.say(reply_to, "chat", text, deadline)
    await sleep_until(rng.uniform(2.0, 20.0), deadline)
    u.background()


async def main(a):
    rng = random.Random(a.seed)
    specs = json.loads(a.users)
    ctx = ssl.create_default_context(cafile=a.ca)
    users = [Phone(a, s, random.Random(rng.getrandbits(32)), ctx) for s in specs]
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    for u in users:
        u.connect(address=(a.server, a.port))
        await asyncio.sleep(min(rng.uniform(0.5, 3.0), 0.1 * a.seconds))
    end = time.monotonic() + 60
    while len(online(users)) < 2:
        bad = [u.failed for u in users if u.failed]
        if bad or time.monotonic() > end:
            print("FAILED:", bad[0] if bad else "fewer than two clients got a session",
                  flush=True)
            sys.exit(3)
        await asyncio.sleep(0.2)
    print("ONLINE", len(online(users)), flush=True)

    def after(lo, hi):
        return time.monotonic() + math.exp(rng.uniform(math.log(lo), math.log(hi)))

    next_msg, next_presence = after(20, 300), after(60, 600)
    while time.monotonic() < deadline - 2:
        now = time.monotonic()
        here = online(users)
        if now >= next_msg and len(here) >= 2:
            who, other = rng.sample(here, 2)
            who.foreground()
            text = rng.choice(ct.SHORT) if rng.random() < 0.6 else rng.choice(ct.SENTENCES)
            await who.say(other.boundjid.bare, "chat", text, deadline)
            asyncio.ensure_future(sleep_then(rng.uniform(2.0, 20.0), who.background))
            # The other mostly opens the app a while later (else not in
            # this session) and reads it, and half of those times answers.
            if rng.random() < 0.7:
                answer = who.boundjid.bare if rng.random() < 0.5 else None
                asyncio.ensure_future(later(rng.uniform(5.0, 120.0), deadline,
                                            use_app(other, rng, deadline, answer)))
            next_msg = after(30, 360)
        if now >= next_presence and here:
            u = rng.choice(here)
            if u.away:
                u.set_presence(None, None)
            else:
                u.set_presence(rng.choice(["away", "xa", "dnd"]), rng.choice(ct.STATUS))
            next_presence = after(60, 600)
        await sleep_until(min(next_msg, next_presence) - time.monotonic(), deadline)
    for u in users:
        u.send_presence(ptype="unavailable")
        u.disconnect()
        await asyncio.sleep(rng.uniform(0.1, 0.8))
    await asyncio.sleep(0.5)
    print("DONE", flush=True)


async def sleep_then(delay, fn):
    await asyncio.sleep(delay)
    fn()


async def later(delay, deadline, coro):
    await sleep_until(delay, deadline)
    if time.monotonic() < deadline - 2:
        await coro
    else:
        coro.close()


logging.basicConfig(level=logging.ERROR)
asyncio.run(main(ct.client_args(domain=str, room=str)))
'''

NAMES = ["alice", "bob", "carol", "dave"]


def _roster_file(path, me, users):
    lines = ["return {", "\t[false] = {", '\t\t["version"] = 1;', "\t};"]
    for u in users:
        if u == me:
            continue
        lines += [f'\t["{u}@{DOMAIN}"] = {{', '\t\t["groups"] = {};',
                  '\t\t["subscription"] = "both";', f'\t\t["name"] = "{u.capitalize()}";',
                  "\t};"]
    lines.append("};")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _enc(s):
    """prosody's datamanager path encoding."""
    return "".join(c if c.isalnum() or c == "_" else "%%%02x" % ord(c) for c in s)


class XmppProsody:
    CLASS = "chat"
    NAME = "xmpp-prosody"
    PACKAGES = ["prosody", "lua-sec", "python3-slixmpp", "python3"]
    SERVER_IPS = 1
    PEOPLE = [2, 2, 3, 3, 4]      # how many, drawn per session
    ROOM = True                   # three or more share a group chat room
    SCRIPT = CLIENTS

    def user(self, env, name, pw, room):
        """One person's client settings (the script's --users entry)."""
        return {"jid": f"{name}@{DOMAIN}/{env.rng.choice(['phone', 'laptop', 'desktop'])}",
                "password": pw, "nick": name.capitalize(),
                "cps": env.rng.uniform(3.0, 8.0),
                "ping": env.rng.choice([60, 120, 180, 300]),
                "smacks": env.rng.random() < 0.5,
                "room": room}

    def run(self, env):
        tls = lab_assets.tls(env.assets, env.server_ips)
        wd = os.path.join(env.workdir, "prosody")
        os.makedirs(os.path.join(wd, "data"), exist_ok=True)
        os.makedirs(os.path.join(wd, "certs"), exist_ok=True)
        cfg = os.path.join(wd, "prosody.cfg.lua")
        with open(cfg, "w") as f:
            f.write(PROSODY_CFG.format(wd=wd, ip=env.server_ip, c2s=C2S_PORT, https=HTTPS_PORT,
                                       domain=DOMAIN, cert=tls["cert"], key=tls["key"]))
        n = env.rng.choice(self.PEOPLE)
        names = NAMES[:n]
        room_users = names if n >= 3 and self.ROOM else []
        users = []
        for name in names:
            pw = "%016x" % env.rng.getrandbits(64)
            r = env.run_server(["prosodyctl", "--config", cfg, "register", name, DOMAIN, pw],
                               timeout=60, check=False)
            if r.returncode != 0:
                raise RuntimeError(f"prosodyctl register failed: "
                                   f"{(r.stderr or r.stdout).strip().splitlines()[-1:]}")
            users.append(self.user(env, name, pw, name in room_users))
        rdir = os.path.join(wd, "data", _enc(DOMAIN), "roster")
        os.makedirs(rdir, exist_ok=True)
        for name in names:
            _roster_file(os.path.join(rdir, _enc(name) + ".dat"), name, names)
        clients = script(env, "xmpp_clients.py", self.SCRIPT)
        logs = {s: os.path.join(env.workdir, f"xmpp-{s}.log") for s in ("server", "client")}
        prosody_log = os.path.join(wd, "prosody.log")
        srv = None
        try:
            srv = start_server(env, "prosody", ["prosody", "--config", cfg, "-F"], C2S_PORT,
                               logs["server"], seconds=20, more_ports=[HTTPS_PORT],
                               more_logs=[prosody_log])
            time.sleep(env.rng.uniform(0.2, 1.0))
            talk = max(5.0, env.remaining() - 2.0)
            run_client(env, "xmpp clients",
                       ["/usr/bin/python3", clients, "--server", env.server_ip,
                        "--port", str(C2S_PORT), "--domain", DOMAIN,
                        "--room", f"friends@conference.{DOMAIN}", "--ca", tls["ca"],
                        "--users", json.dumps(users),
                        "--seed", str(env.rng.getrandbits(32)),
                        "--seconds", f"{talk:.1f}"], logs["client"], talk + 40, "DONE")
        finally:
            stop([srv])
            keep_logs(*logs.values(), prosody_log)
        return [{"proto": "tcp", "port": C2S_PORT, "label": "chat"},
                {"proto": "tcp", "port": HTTPS_PORT, "label": "upload"}]


class XmppIdle(XmppProsody):
    NAME = "xmpp-idle"
    PEOPLE = [2, 2, 3]
    ROOM = False
    SCRIPT = CLIENT_USERS + IDLE_MAIN

    def user(self, env, name, pw, room):
        # Phones: mobile apps ping every 30-120 s (to keep NAT and
        # carrier state) and mostly resume their stream (XEP-0198).
        return {"jid": f"{name}@{DOMAIN}/{env.rng.choice(['phone', 'android', 'iphone'])}",
                "password": pw, "nick": name.capitalize(),
                "cps": env.rng.uniform(2.5, 6.0),
                "ping": round(env.rng.uniform(30.0, 120.0), 1),
                "smacks": env.rng.random() < 0.5,
                "room": False}


APPS = [XmppProsody, XmppIdle]
