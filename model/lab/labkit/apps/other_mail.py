"""A person's mail client (background traffic, "other"): IMAP over TLS
(993) to dovecot, connected all along and waiting in IDLE (or polling with
NOOP), fetching the headers of new mail as it arrives and whole messages
when the person opens them; and SMTP submission (587 with STARTTLS, or 465
TLS) of the messages they write, a few kB of text, sometimes with a
50-500 kB attachment, each then filed in Sent over IMAP (APPEND) as mail
clients do.

Mail is neither chat nor file transfer, though it has a bit of both (short
exchanges, the odd burst of an attachment): the open set's model must
learn to reject it.

Server side, in the server namespace, everything from the workdir with its
own configuration: dovecot (IMAP, a maildir owned by nobody) and an
aiosmtpd submission server that delivers mail to the person into that
maildir and drops the rest (nothing leaves the lab).  Mail from the rest
of the world arrives meanwhile: the driver drops it into the maildir, as
the MTA would.
"""
import itertools
import os
import random
import threading
import time
import email.policy
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from labkit import assets as lab_assets
from labkit.apps.file_common import link_rates, loguniform
from labkit.procs import keep_logs, run_client, script, start_server
from labkit.session import stop

IMAPS_PORT = 993
SUBMISSION_PORT = 587     # STARTTLS
SMTPS_PORT = 465          # TLS from the first byte
DOMAIN = "lab.flowpic.test"
MAIL_HOST = "mail." + DOMAIN
KB = 1024

DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
instance_name = fplab-{ip}
listen = {ip}
protocols = imap
log_path = /dev/stderr
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/home/%n
}}
first_valid_uid = 1
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    auto = subscribe
    special_use = \\Drafts
  }}
  mailbox Sent {{
    auto = subscribe
    special_use = \\Sent
  }}
  mailbox Trash {{
    auto = subscribe
    special_use = \\Trash
  }}
  mailbox Archive {{
    auto = subscribe
    special_use = \\Archive
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""

# --- what mail says -------------------------------------------------------

PEOPLE = ["Anna Schmidt <anna.schmidt@example.org>", "Ben Carter <ben@carter-family.example>",
          "Chloe Martin <c.martin@example.com>", "David Okafor <david.okafor@example.net>",
          "Elena Rossi <elena@rossi-studio.example>", "Farid Haddad <farid.h@example.org>",
          "Grace Liu <grace.liu@example.com>", "Hugo Lefebvre <hugo@example.net>",
          "IT Helpdesk <helpdesk@example.com>", "Calendar <calendar-noreply@example.com>"]
SENDERS_BULK = ["Weekly Digest <newsletter@news.example.com>",
                "Shop <orders@shop.example>", "Bank <no-reply@bank.example>",
                "GitLab <gitlab@git.example.org>", "Travel <bookings@travel.example>"]
SUBJECTS = ["Meeting notes from today", "Re: budget for Q3", "Quick question about the report",
            "Draft for review", "Invitation: project sync", "Updated: team offsite agenda",
            "Your order has shipped", "Photos from the weekend", "Re: Re: deployment plan",
            "Fwd: contract renewal", "Lunch on Thursday?", "Minutes and action items",
            "Reminder: timesheets due Friday", "Re: travel arrangements",
            "New comment on issue #{n}", "Invoice {n}", "Password expiry notice",
            "Slides for tomorrow", "Re: question about your application", "Weekly update"]
SENTENCES = [
    "Thanks for sending this over so quickly.",
    "I had a look at the numbers and they mostly add up, apart from the travel line.",
    "Could you check whether the figures in section three are still current?",
    "Let's discuss the open points in our call on Thursday.",
    "I have attached the latest version with my comments.",
    "Please find the minutes of today's meeting below.",
    "The deadline has moved to the end of next week.",
    "We need a decision on the vendor before the end of the month.",
    "I am out of the office on Monday but reachable by phone.",
    "Sorry for the late reply, it has been a busy week.",
    "Could you forward this to the rest of the team?",
    "As discussed, here is the summary of the changes.",
    "The room is booked from ten to twelve.",
    "Let me know if anything is unclear or missing.",
    "I think we should keep the current plan and revisit it in a month.",
    "The client asked for a short update on the timeline.",
    "Both options work for me, you decide.",
    "Happy to help with the review if you need another pair of eyes.",
]
ATTACHMENTS = [("report.pdf", "application", "pdf"), ("scan_{n}.pdf", "application", "pdf"),
               ("IMG_{n}.jpg", "image", "jpeg"), ("budget.xlsx", "application",
               "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
               ("slides.pptx", "application",
                "vnd.openxmlformats-officedocument.presentationml.presentation"),
               ("contract_{n}.docx", "application",
                "vnd.openxmlformats-officedocument.wordprocessingml.document")]


def body_text(rng, lo=2, hi=12):
    """A mail's text: a greeting, a few paragraphs, a signature (0.3-3 kB)."""
    paras = [" ".join(rng.choice(SENTENCES) for _ in range(rng.randint(1, 5)))
             for _ in range(rng.randint(lo, hi))]
    name = rng.choice(["Anna", "Ben", "Chloe", "David", "Elena", "Sam"])
    return (rng.choice(["Hi,", "Hello,", f"Hi {name},", "Dear all,"]) + "\n\n"
            + "\n\n".join(paras) + "\n\n" + rng.choice(["Best,", "Thanks,", "Cheers,", "Regards,"])
            + "\nAlex\n")


def quoted(text):
    """text quoted as in a reply."""
    return "\n".join("> " + line for line in text.splitlines())


def compose(rng, sender, to, cc=(), subject=None, attach=0, html=False, reply_to=None,
            when=None):
    """A message as a mail client writes it (bytes): text (and an HTML
    part), and an attachment of attach bytes (incompressible, as a PDF or
    a JPEG is) when attach."""
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    if cc:
        m["Cc"] = ", ".join(cc)
    m["Subject"] = subject or rng.choice(SUBJECTS).format(n=rng.randint(1000, 99999))
    m["Date"] = format_datetime(datetime.fromtimestamp(when or time.time()).astimezone())
    domain = sender.split("@")[-1].rstrip(">")
    m["Message-ID"] = f"<{rng.getrandbits(64):016x}.{int(time.time())}@{domain}>"
    m["User-Agent"] = rng.choice(["Mozilla Thunderbird", "K-9 Mail", "Evolution 3.46.4"])
    text = body_text(rng)
    if reply_to:
        m["In-Reply-To"] = reply_to
        text += "\n" + quoted(body_text(rng, 1, 4))
    m.set_content(text)
    if html:
        paras = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
        # (the CSS clients and newsletters inline: a few hundred bytes to kB)
        style = "<style>" + "\np{font-family:sans-serif;margin:0 0 1em}" * rng.randint(1, 30)
        m.add_alternative(f"<html><head>{style}</style></head><body>{paras}</body></html>",
                          subtype="html")
    if attach:
        name, main, sub = rng.choice(ATTACHMENTS)
        m.add_attachment(rng.randbytes(attach), maintype=main, subtype=sub,
                         filename=name.format(n=rng.randint(1000, 9999)))
    return m.as_bytes(policy=email.policy.SMTP)     # CRLF lines, as on the wire


def incoming(rng, to, when=None):
    """A message from the world to the person: from a colleague (a few kB,
    sometimes with an attachment) or a newsletter or notification (HTML)."""
    if rng.random() < 0.35:
        return compose(rng, rng.choice(SENDERS_BULK), to, html=True, when=when)
    attach = int(loguniform(rng, 50 * KB, 500 * KB)) if rng.random() < 0.15 else 0
    cc = rng.sample(PEOPLE, rng.randint(1, 3)) if rng.random() < 0.3 else ()
    return compose(rng, rng.choice(PEOPLE), to, cc=cc, attach=attach, html=rng.random() < 0.5,
                   when=when)


_queued = itertools.count(1)    # this process's deliveries (unique maildir names)


def deliver(maildir, data, uid, gid, seen=False, when=None):
    """Put a message into a maildir as an MTA does (tmp/, then new/; old
    mail already read goes to cur/ with its Seen flag)."""
    now = time.time()
    name = (f"{int(when or now)}.M{int(now * 1e6) % 1000000}P{os.getpid()}Q{next(_queued)}"
            f".{MAIL_HOST}")
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.chown(tmp, uid, gid)
    if when:
        os.utime(tmp, (when, when))
    os.rename(tmp, os.path.join(maildir, "cur", name + ":2,S") if seen
              else os.path.join(maildir, "new", name))


# --- the submission server (server namespace) ------------------------------

SMTPD = r'''
import argparse, signal, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from labkit.apps.other_mail import deliver

ap = argparse.ArgumentParser()
for a in ("ip", "cert", "key", "user", "password", "maildir", "hostname"):
    ap.add_argument("--" + a)
for a in ("submission", "smtps", "uid", "gid"):
    ap.add_argument("--" + a, type=int)
a = ap.parse_args()


class Relay:
    """Mail to the person goes into their maildir; the rest would be
    relayed to the world, and is dropped."""
    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            if rcpt.lower() == a.user:
                deliver(a.maildir, envelope.original_content, a.uid, a.gid)
        print("accepted", len(envelope.original_content), "bytes for",
              len(envelope.rcpt_tos), "recipients", flush=True)
        return "250 2.0.0 Ok: queued"


def auth(server, session, envelope, mechanism, data):
    ok = (isinstance(data, LoginPassword) and data.login.decode() == a.user
          and data.password.decode() == a.password)
    return AuthResult(success=ok)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(a.cert, a.key)
common = dict(server_hostname=a.hostname, ident="ESMTP", authenticator=auth,
              auth_required=True, data_size_limit=50 * 1024 * 1024)
servers = [Controller(Relay(), hostname=a.ip, port=a.submission, tls_context=ctx,
                      require_starttls=True, **common),
           # (TLS from the start: AUTH needs no STARTTLS here)
           Controller(Relay(), hostname=a.ip, port=a.smtps, ssl_context=ctx,
                      auth_require_tls=False, **common)]
for s in servers:
    s.start()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("listening", flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    for s in servers:
        s.stop()
'''


class World(threading.Thread):
    """Mail from others arriving in the person's maildir, now and then."""

    def __init__(self, maildir, to, uid, gid, rng, seconds):
        super().__init__(daemon=True)
        self.maildir, self.to, self.uid, self.gid, self.rng = maildir, to, uid, gid, rng
        self.mean = rng.uniform(15, 90)           # s between two messages
        self.first = rng.uniform(3, min(60, seconds * 0.6))
        self.done = threading.Event()
        self.count = 0

    def run(self):
        wait = self.first
        while not self.done.wait(wait):
            deliver(self.maildir, incoming(self.rng, self.to), self.uid, self.gid)
            self.count += 1
            wait = self.rng.expovariate(1 / self.mean)

    def stop(self):
        self.done.set()
        if self.is_alive():
            self.join()


CLIENT = r'''
import argparse, imaplib, random, re, select, smtplib, ssl, time
from labkit.apps.other_mail import KB, PEOPLE, compose, loguniform

ap = argparse.ArgumentParser()
for name in ("server", "client", "ca", "user", "password"):
    ap.add_argument("--" + name)
for name in ("imap", "smtp", "idle", "poll", "up", "seed"):
    ap.add_argument("--" + name, type=int)
ap.add_argument("--seconds", type=float)
a = ap.parse_args()
rng = random.Random(a.seed)
T0 = time.monotonic()
END = T0 + a.seconds
ctx = ssl.create_default_context(cafile=a.ca)
ME = f"Alex <{a.user}>"
HEADERS = ("BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority "
           "X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)]")
imaplib.Commands["ID"] = ("NONAUTH", "AUTH", "SELECTED")


def log(*args):
    print(f"{time.monotonic() - T0:7.1f}", *args, flush=True)


def uids(data):
    """The UIDs in a UID FETCH answer."""
    found = []
    for item in data or []:
        head = item[0] if isinstance(item, tuple) else item
        m = re.search(rb"UID (\d+)", head or b"")
        if m:
            found.append(int(m.group(1)))
    return found


class Inbox:
    """The client's IMAP connection, INBOX selected: what it knows of it."""

    def __init__(self):
        self.imap = imaplib.IMAP4_SSL(a.server, a.imap, ssl_context=ctx, timeout=60)
        self.imap.login(a.user, a.password)
        self.imap._simple_command("ID", '("name" "Thunderbird" "version" "115.10.1")')
        self.imap.list('""', '"*"')
        self.imap.select("INBOX")
        # Flags of everything (the client has the old mail's headers cached),
        # headers of the newest few.
        known = uids(self.imap.uid("FETCH", "1:*", "(FLAGS)")[1])
        self.old = known[:-5]
        self.next = max(known, default=0) + 1
        self.imap.uid("FETCH", f"{known[-5] if len(known) >= 5 else 1}:*",
                      f"(UID RFC822.SIZE FLAGS {HEADERS})")
        log("synced", len(known), "messages")

    def new_mail(self):
        """Headers of the mail that came in since the last look: their UIDs."""
        got = [u for u in uids(self.imap.uid("FETCH", f"{self.next}:*",
                                             f"(UID RFC822.SIZE FLAGS {HEADERS})")[1])
               if u >= self.next]
        if got:
            self.next = max(got) + 1
            log("new mail", got)
        return got

    def idle(self, seconds):
        """IDLE for seconds, or until the server says new mail is there
        (True)."""
        tag = self.imap._new_tag()
        self.imap.send(tag + b" IDLE\r\n")
        line = self.imap.readline()
        if not line.startswith(b"+"):
            raise RuntimeError(f"IDLE refused: {line!r}")
        new, end = False, time.monotonic() + seconds
        while not new and time.monotonic() < end:
            ready, _, _ = select.select([self.imap.sock], [], [], end - time.monotonic())
            if ready:
                new = b"EXISTS" in self.imap.readline()
        self.imap.send(b"DONE\r\n")
        while not (line := self.imap.readline()).startswith(tag):
            new = new or b"EXISTS" in line
        self.imap.tagged_commands.pop(tag, None)
        return new

    def poll(self):
        """NOOP: True when the server says new mail is there."""
        self.imap.noop()
        return self.imap.response("EXISTS")[1] != [None]

    def open(self, uid):
        """The person opens a message: all of it (and it is read)."""
        self.imap.uid("FETCH", str(uid), "(UID RFC822.SIZE BODY[])")
        log("read", uid)

    def file(self, uid):
        """Read mail goes to the archive, or the trash."""
        self.imap.uid("MOVE", str(uid), rng.choice(["Archive", "Archive", "Trash"]))

    def sent(self, data, answered=None):
        """A copy of a sent message into Sent (and the one it answers flagged)."""
        self.imap.append("Sent", r"(\Seen)", imaplib.Time2Internaldate(time.time()), data)
        if answered:
            self.imap.uid("STORE", str(answered), "+FLAGS", r"(\Answered)")


def attachment_size():
    """An attachment of 50-500 kB, if the uplink carries it (and its copy
    to Sent) in a small part of the session."""
    size = int(loguniform(rng, 50 * KB, 500 * KB))
    if a.up:
        size = min(size, int(a.up * a.seconds * 0.08))
    return size if size >= 20 * KB else 0


def submit(box, answering=None):
    """Write and send a message (SMTP), then file it in Sent (IMAP)."""
    to = rng.sample(PEOPLE[:8], rng.choice([1, 1, 1, 2, 3]))
    cc = [ME] if rng.random() < 0.1 else []            # a copy to themselves
    attach = attachment_size() if rng.random() < 0.3 and not answering else 0
    data = compose(rng, ME, ", ".join(to), cc=cc, attach=attach,
                   html=rng.random() < 0.7,
                   subject=("Re: " + rng.choice(["your message", "budget", "the report"]))
                   if answering else None,
                   reply_to=f"<{answering}@example.org>" if answering else None)
    if a.smtp == 465:
        s = smtplib.SMTP_SSL(a.server, a.smtp, local_hostname=f"[{a.client}]", context=ctx,
                             timeout=60)
    else:
        s = smtplib.SMTP(a.server, a.smtp, local_hostname=f"[{a.client}]", timeout=60)
        s.starttls(context=ctx)
    s.login(a.user, a.password)
    s.sendmail(a.user, [t.split("<")[1].rstrip(">") for t in to + cc], data)
    s.quit()
    log("sent", len(data), "bytes", "(reply)" if answering else "")
    box.sent(data, answering)


def main():
    box = Inbox()
    # What the person will do: write a message or two, look at older mail,
    # read what comes in (below).  Events: (time, what, uid).
    events = []
    t = T0 + rng.uniform(0.1, 0.5) * a.seconds
    while t < END - 3:
        if rng.random() < 0.8:
            events.append((t, "write", None))
        t += rng.uniform(10, 30) + rng.expovariate(1 / (0.4 * a.seconds))   # writing takes a while
    for _ in range(rng.randint(0, 3)):
        if box.old:
            events.append((T0 + rng.uniform(2, a.seconds - 3), "open", rng.choice(box.old)))
    next_poll = T0 + a.poll
    while time.monotonic() < END - 1:
        now = time.monotonic()
        for ev in sorted(e for e in events if e[0] <= now):
            events.remove(ev)
            _, what, uid = ev
            if what == "write":
                submit(box)
            elif what == "open":
                box.open(uid)
                if rng.random() < 0.25:
                    events.append((time.monotonic() + rng.uniform(20, 90), "reply", uid))
                elif rng.random() < 0.3:
                    box.file(uid)
            elif what == "reply":
                submit(box, answering=uid)
        wake = min([e[0] for e in events] + [END - 1] + ([] if a.idle else [next_poll]))
        wait = max(0.0, wake - time.monotonic())
        if a.idle:
            new = box.idle(wait)
        else:
            time.sleep(wait)
            new = False
            if time.monotonic() >= next_poll:
                new = box.poll()
                next_poll = time.monotonic() + a.poll
        if new:
            for uid in box.new_mail():
                if rng.random() < 0.85:               # looked at soon, or later
                    events.append((time.monotonic() + rng.uniform(2, 40), "open", uid))
    box.imap.close()
    box.imap.logout()
    print("DONE", flush=True)


main()
'''


def _mailbox(home, rng, to, uid, gid):
    """The person's maildir with the mail they already have (read, most
    of it): what the client syncs (flags) at login."""
    maildir = os.path.join(home, "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub))
    now = time.time()
    n = int(loguniform(rng, 20, 300))
    for i in range(n):
        when = now - (n - i) * rng.uniform(600, 20000)
        deliver(maildir, incoming(rng, to, when), uid, gid, seen=i < n - 5 or rng.random() < 0.5,
                when=when)
    for d, _, _ in os.walk(home):
        os.chown(d, uid, gid)
    return maildir, n


class MailClient:
    CLASS = "other"
    NAME = "mail-smtp-imap"
    PACKAGES = ["dovecot-imapd", "python3-aiosmtpd", "python3"]
    SERVER_IPS = 1

    @staticmethod
    def _style(rng):
        """The client's ways: IMAP IDLE (most) or polling every so often;
        submission on 587 (most) or 465."""
        return {"idle": rng.random() < 0.7, "poll": rng.choice([30, 60, 120]),
                "smtp": rng.choice([SUBMISSION_PORT] * 3 + [SMTPS_PORT])}

    def run(self, env):
        rng = env.rng
        tls = lab_assets.tls(env.assets, env.server_ips)
        d = os.path.join(env.workdir, "mail")
        home = os.path.join(d, "home", "alex")
        os.makedirs(home)
        os.makedirs(os.path.join(d, "state"))
        # dovecot's mail processes run as nobody: they go through the workdir
        os.chmod(env.workdir, 0o711)
        uid, gid = 65534, 65534      # nobody, nogroup (the userdb's)
        user = f"alex@{DOMAIN}"
        password = "%016x" % rng.getrandbits(64)
        with open(os.path.join(d, "users"), "w") as f:
            f.write(f"{user}:{{PLAIN}}{password}::::::\n")
        conf = os.path.join(d, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(DOVECOT_CONF.format(d=d, ip=env.server_ip, port=IMAPS_PORT,
                                        cert=tls["cert"], key=tls["key"]))
        maildir, n_old = _mailbox(home, rng, f"Alex <{user}>", uid, gid)
        world = World(maildir, f"Alex <{user}>", uid, gid, random.Random(rng.getrandbits(32)),
                      env.seconds)
        smtpd = script(env, "mail_smtpd.py", SMTPD)
        client = script(env, "mail_client.py", CLIENT)
        logs = {s: os.path.join(env.workdir, f"mail-{s}.log")
                for s in ("imapd", "smtpd", "client")}
        _, up = link_rates(env)
        style = self._style(rng)
        env.log(f"{self.NAME}: {n_old} messages, IMAP {'IDLE' if style['idle'] else 'polling'}, "
                f"SMTP {style['smtp']}, mail in every ~{world.mean:.0f} s")
        procs = []
        try:
            procs.append(start_server(env, "dovecot", ["dovecot", "-F", "-c", conf], IMAPS_PORT,
                                      logs["imapd"]))
            procs.append(start_server(
                env, "aiosmtpd", ["/usr/bin/python3", smtpd, "--ip", env.server_ip,
                                  "--cert", tls["cert"], "--key", tls["key"], "--user", user,
                                  "--password", password, "--maildir", maildir,
                                  "--hostname", MAIL_HOST, "--submission", str(SUBMISSION_PORT),
                                  "--smtps", str(SMTPS_PORT), "--uid", str(uid), "--gid", str(gid)],
                SUBMISSION_PORT, logs["smtpd"], more_ports=[SMTPS_PORT]))
            world.start()
            seconds = max(5.0, env.remaining() - 2.0)
            run_client(env, "mail client",
                       ["/usr/bin/python3", client, "--server", env.server_ip,
                        "--client", env.client_ip,
                        "--imap", str(IMAPS_PORT), "--smtp", str(style["smtp"]),
                        "--ca", tls["ca"], "--user", user, "--password", password,
                        "--idle", str(int(style["idle"])), "--poll", str(style["poll"]),
                        "--up", str(up or 0), "--seed", str(rng.getrandbits(32)),
                        "--seconds", f"{seconds:.1f}"], logs["client"], seconds + 60, "DONE")
        finally:
            world.stop()
            stop(procs)
            keep_logs(*logs.values())
        return [{"proto": "tcp", "port": IMAPS_PORT, "label": "other"},
                {"proto": "tcp", "port": SUBMISSION_PORT, "label": "other"},
                {"proto": "tcp", "port": SMTPS_PORT, "label": "other"}]


APPS = [MailClient]
