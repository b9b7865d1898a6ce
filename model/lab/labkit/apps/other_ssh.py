"""An administrator's interactive SSH login (background traffic, "other"):
the OpenSSH client on a pseudo-terminal, logged in to this session's sshd
(file_ssh.SshServer), typing commands key by key at a person's pace and
reading their output: ls, cat, grep, df, ps; tail -f of a service log that
grows meanwhile; top refreshing the screen; a file edited in vi; idle
stretches where only the client's keep-alives cross the link.

Such a session is neither chat nor file transfer, though it is small
packets both ways at human pace (each key is one packet out and its echo
one back): the open set's model must learn to reject it.

The remote shell runs as root in the server namespace, with HOME in the
session's workdir (sshd SetEnv), so its history, vi's state and the files
it works on stay there."""
import fcntl
import os
import pty
import random
import re
import struct
import subprocess
import termios
import threading
import time

from labkit.apps.file_ssh import PORT, SshServer
from labkit.procs import keep_logs, tail
from labkit.session import stop

HOST = "db1"      # the server's name in the prompt and the log

# A server's login banner (Debian's motd, printed by the login shell here:
# sshd runs without PAM).
MOTD = """\
Linux {host} 6.1.0-21-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.90-1 (2024-05-03) x86_64

The programs included with the Debian GNU/Linux system are free software;
the exact distribution terms for each program are described in the
individual files in /usr/share/doc/*/copyright.

Debian GNU/Linux comes with ABSOLUTELY NO WARRANTY, to the extent
permitted by applicable law.
"""

BASHRC = """\
HISTFILE="$HOME/.bash_history"
PS1='\\u@{host}:\\w\\$ '
export EDITOR=vi LESS=-R
alias ll='ls -alF'
alias la='ls -A'
alias l='ls -CF'
"""

BASH_PROFILE = """\
cd "$HOME"
cat "$HOME/.motd"
. "$HOME/.bashrc"
"""

CONFIG = """\
# {service} configuration
listen: 0.0.0.0:{port}
workers: {workers}
log_level: {level}

database:
  host: 10.0.3.{db}
  port: 5432
  name: {service}
  pool_size: {pool}
  timeout_s: 30

cache:
  backend: redis
  host: 127.0.0.1:6379
  ttl_s: {ttl}

storage:
  path: /srv/{service}/data
  max_upload_mb: {upload}

metrics:
  enabled: true
  endpoint: /metrics
  interval_s: 15
"""

PATHS = ["/api/v1/items", "/api/v1/users", "/api/v1/orders", "/api/v1/search", "/health",
         "/metrics", "/api/v1/items/{id}", "/api/v1/orders/{id}", "/static/app.js", "/login"]
WARNINGS = ["slow query ({ms} ms): SELECT * FROM orders WHERE user_id = $1",
            "connection pool near limit ({n}/{pool})",
            "retrying upstream request (attempt 2/3)",
            "cache miss rate above threshold: {pct}%"]
ERRORS = ["upstream timed out after 30000 ms", "database connection reset by peer",
          "failed to parse request body: unexpected EOF"]

PROMPT = re.compile(rb"root@" + HOST.encode() + rb":[^\r\n]*# $")


def log_line(rng, t):
    """One line of the service's log at time t (epoch seconds)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (t % 1 * 1000)
    worker = f"worker-{rng.randint(1, 8)}"
    r = rng.random()
    if r < 0.03:
        return f"{stamp} ERROR [{worker}] " + rng.choice(ERRORS)
    if r < 0.10:
        return f"{stamp} WARN  [{worker}] " + rng.choice(WARNINGS).format(
            ms=rng.randint(800, 9000), n=rng.randint(40, 50), pool=50, pct=rng.randint(20, 60))
    path = rng.choice(PATHS).format(id=rng.randint(1, 99999))
    method = "POST" if rng.random() < 0.2 else "GET"
    status = rng.choices([200, 201, 204, 304, 400, 404, 500], [70, 5, 3, 8, 3, 8, 1])[0]
    return (f"{stamp} INFO  [{worker}] {method} {path} {status} {rng.randint(1, 400)}ms "
            f"ip=10.0.{rng.randint(0, 9)}.{rng.randint(2, 254)}")


class ServiceLog(threading.Thread):
    """The server's service log, appended to meanwhile: a line every
    second or so, in bursts at times (what tail -f shows)."""

    def __init__(self, path, rng):
        super().__init__(daemon=True)
        self.path, self.rng = path, rng
        self.done = threading.Event()
        t = time.time() - 3 * 86400
        with open(path, "w") as f:        # the days before: grep and less have history
            for _ in range(rng.randint(400, 3000)):
                t += rng.expovariate(1 / 90)
                f.write(log_line(rng, t) + "\n")

    def run(self):
        mean = self.rng.uniform(0.4, 3.0)
        while not self.done.wait(self.rng.expovariate(1 / mean)):
            n = 1 if self.rng.random() < 0.8 else self.rng.randint(2, 12)
            with open(self.path, "a") as f:
                f.write("".join(log_line(self.rng, time.time()) + "\n" for _ in range(n)))

    def stop(self):
        self.done.set()
        if self.is_alive():
            self.join()


class Terminal:
    """The ssh client on a pseudo-terminal of rows x cols: keys go in, the
    screen's bytes come out (read all along, as a terminal emulator does)."""

    def __init__(self, env, args, rows, cols, log):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = env.client(args, stdin=slave, stdout=slave, stderr=slave,
                               start_new_session=True,
                               env=dict(os.environ, TERM="xterm-256color", LANG="C.UTF-8"))
        os.close(slave)
        self.log = open(log, "wb")
        self.screen = bytearray()         # output since the last mark()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:               # the ssh client is gone
                return
            if not data:
                return
            self.log.write(data)
            with self.lock:
                self.screen += data
                del self.screen[:-8192]

    def mark(self):
        with self.lock:
            self.screen.clear()

    def key(self, data):
        os.write(self.master, data.encode() if isinstance(data, str) else data)

    def wait_prompt(self, timeout):
        """Until the shell prompts again (True), or timeout seconds (False)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            with self.lock:
                if PROMPT.search(bytes(self.screen[-200:])):
                    return True
            time.sleep(0.05)
        return False

    def close(self):
        stop([self.proc])
        os.close(self.master)
        self.reader.join(timeout=2)
        self.log.close()


class Admin:
    """The person at the terminal: their typing speed, typos and pauses."""

    def __init__(self, env, term):
        self.env, self.term, self.rng = env, term, env.rng
        self.key_ms = self.rng.uniform(90, 200)    # their mean time per key
        self.typo_p = self.rng.uniform(0.005, 0.04)

    def left(self):
        return self.env.remaining() - 4.0     # kept for typing exit and logging out

    def pause(self, lo, hi):
        """A pause to read or think, lo..hi seconds (never past the end)."""
        time.sleep(max(0.0, min(self.rng.uniform(lo, hi), self.left())))

    def gap(self, ch, prev):
        """Seconds between two keys: slower after a word or a symbol."""
        g = self.rng.lognormvariate(0, 0.45) * self.key_ms / 1000
        if prev == " " or not ch.isalnum():
            g *= self.rng.uniform(1.2, 2.2)
        return min(max(g, 0.04), 1.5)

    def type(self, text, typos=True):
        """Type text key by key (typos: now and then a wrong key, erased;
        not in vi's command mode, where a key is a command)."""
        prev = ""
        for ch in text:
            time.sleep(self.gap(ch, prev))
            if typos and ch.isalpha() and self.rng.random() < self.typo_p:
                # a wrong key, seen, erased
                self.term.key(self.rng.choice("asdfghjklqwertyuiop"))
                time.sleep(self.rng.uniform(0.2, 0.7))
                self.term.key("\x7f")
                time.sleep(self.gap(ch, prev))
            self.term.key(ch)
            prev = ch

    def command(self, line, complete=None):
        """Type a command line and Enter; complete: a file name the person
        starts and finishes with Tab.  Returns once the prompt is back (or
        the command still runs: tail -f, top)."""
        self.pause(0.5, 3.0)
        self.type(line)
        for part in re.findall(r"[^/]+/?", complete or ""):
            if self.rng.random() < 0.6 and len(part) > 4:
                # the start of the name, then Tab (each part is unique
                # in its folder: bash completes it)
                self.type(part[:self.rng.randint(2, 3)])
                time.sleep(self.gap("\t", ""))
                self.term.key("\t")
                time.sleep(self.rng.uniform(0.2, 0.6))
            else:
                self.type(part)
        time.sleep(self.gap("\r", ""))
        self.term.mark()
        self.term.key("\r")

    def done(self, timeout=20):
        return self.term.wait_prompt(min(timeout, max(1.0, self.env.remaining() - 2)))

    def leave(self, key):
        """Leave a full-screen program (q) or a running one (^C): the key,
        again if the prompt does not come back (pressed too early)."""
        for _ in range(2):
            self.term.mark()
            self.term.key(key)
            if self.done(4):
                return


def _home(env, rng):
    """The admin's home on the server: shell start files, the banner, and
    the service's folder they look after."""
    home = os.path.join(env.workdir, "home")
    app = os.path.join(home, "app")
    os.makedirs(os.path.join(app, "releases"), exist_ok=True)
    os.makedirs(os.path.join(home, "logs"), exist_ok=True)
    for name, text in ((".bashrc", BASHRC), (".bash_profile", BASH_PROFILE), (".motd", MOTD)):
        with open(os.path.join(home, name), "w") as f:
            f.write(text.format(host=HOST))
    service = rng.choice(["orders", "billing", "catalog", "inventory", "gateway"])
    with open(os.path.join(app, "config.yaml"), "w") as f:
        f.write(CONFIG.format(service=service, port=rng.choice([8000, 8080, 9000]),
                              workers=rng.choice([2, 4, 8]), db=rng.randint(2, 50),
                              level=rng.choice(["info", "info", "debug"]),
                              pool=rng.choice([20, 50]), ttl=rng.choice([60, 300, 900]),
                              upload=rng.choice([10, 50, 100])))
    with open(os.path.join(app, "deploy.sh"), "w") as f:
        f.write("#!/bin/sh\nset -e\ncd /srv/app\ngit pull --ff-only\n"
                "./venv/bin/pip install -r requirements.txt\nsystemctl restart app\n")
    for v in range(rng.randint(2, 6)):
        with open(os.path.join(app, "releases", f"v1.{v}.{rng.randint(0, 9)}.tar.gz"), "wb") as f:
            f.write(os.urandom(rng.randint(10_000, 200_000)))
    return home, service


class SshInteractive:
    CLASS = "other"
    NAME = "ssh-interactive"
    PACKAGES = ["openssh-server", "openssh-client", "vim", "procps", "less"]
    SERVER_IPS = 1

    def run(self, env):
        rng = env.rng
        home, service = _home(env, rng)
        srv = SshServer(env)
        with open(srv.conf, "a") as f:
            # The remote shell's home in the workdir (sshd applies SetEnv
            # after setting HOME from the password file).
            f.write(f"SetEnv HOME={home}\n")
        rows, cols = rng.choice([(24, 80), (35, 120), (50, 160), (45, 190), (30, 100)])
        alive = rng.choice([15, 30, 60])     # ServerAliveInterval, s
        args = ["ssh", "-t", "-p", str(PORT)] + srv.ssh_opts() + [
            "-o", f"ServerAliveInterval={alive}", f"root@{env.server_ip}"]
        env.log(f"{self.NAME}: {rows}x{cols} terminal, keep-alive {alive} s")
        svc_log = ServiceLog(os.path.join(home, "logs", f"{service}.log"),
                             random.Random(rng.getrandbits(32)))
        tlog = os.path.join(env.workdir, "terminal.log")
        term = None
        srv.start()
        try:
            svc_log.start()
            term = Terminal(env, args, rows, cols, tlog)
            if not term.wait_prompt(30):
                raise RuntimeError(f"ssh login failed: {tail(tlog, srv.log, proc=term.proc)}")
            who = Admin(env, term)
            self._session(env, who, service)
            term.mark()
            who.type("exit\r")
            try:
                term.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass                      # logged out or not: the session is over
        finally:
            if term:
                term.close()
            svc_log.stop()
            srv.stop()
            keep_logs(tlog, srv.log)
        return [{"proto": "tcp", "port": PORT, "label": "other"}]

    def _session(self, env, who, service):
        rng = env.rng
        log = f"logs/{service}.log"
        tasks = {"look": 4, "read": 3, "tail": 2, "top": 2, "edit": 1.5, "idle": 1.5}
        first = True
        while who.left() > 2:
            task = "look" if first else rng.choices(list(tasks), list(tasks.values()))[0]
            first = False
            if task in ("read", "tail", "top", "edit") and who.left() < 15:
                task = "look"                              # no time left for it
            if task == "look":
                line = rng.choice(["ls", "ls -la", "ll", "ls -lh app/", "ls -lh app/releases/",
                                   "df -h", "free -m", "uptime", "w", "du -sh app/releases/*",
                                   "ps aux --sort=-%mem | head -15", "ss -tln",
                                   f"grep -c ERROR {log}", f"grep ERROR {log} | tail -20"])
                who.command(line)
                who.done()
                who.pause(1.5, 8.0)
                if rng.random() < 0.15:               # up arrow, Enter: once more
                    who.term.mark()
                    who.term.key("\x1b[A")
                    time.sleep(who.gap("\r", ""))
                    who.term.key("\r")
                    who.done()
                    who.pause(1.0, 5.0)
            elif task == "read":
                if rng.random() < 0.5:
                    who.command("cat ", complete="app/config.yaml")
                    who.done()
                    who.pause(4.0, 20.0)
                else:
                    who.command("less ", complete=log)
                    time.sleep(1.0)
                    for _ in range(rng.randint(1, 8)):     # a few pages, then quit
                        who.pause(2.0, 10.0)
                        who.term.key(rng.choice([" ", " ", "b", "G"]))
                    who.pause(1.0, 4.0)
                    who.leave("q")
            elif task == "tail":
                who.command(f"tail -{rng.choice(['f', 'f', 'n 50 -f'])} ", complete=log)
                who.pause(5.0, 30.0)                       # watching it come in
                who.leave("\x03")
            elif task == "top":
                who.command(rng.choice(["top", "top -d 1", "top -d 2"]))
                who.pause(2.0, 8.0)
                if rng.random() < 0.4:
                    who.term.key(rng.choice(["M", "P", "1", "c"]))   # sort, CPUs, commands
                    who.pause(2.0, 8.0)
                who.leave("q")
            elif task == "edit":
                self._edit(who, rng)
            else:
                who.pause(10.0, 45.0)                      # away: keep-alives only

    def _edit(self, who, rng):
        """vi on the config: move down, change a value or add a line, save
        (or think better of it and quit)."""
        who.command("vi ", complete="app/config.yaml")
        time.sleep(1.0)
        who.pause(1.0, 5.0)
        for _ in range(rng.randint(3, 18)):                # j, j, j ...
            who.term.key(rng.choice("jjjjk"))
            time.sleep(rng.uniform(0.08, 0.35))
        who.pause(0.5, 4.0)
        if rng.random() < 0.5:
            who.type(rng.choice(["/timeout\r", "/workers\r", "/pool\r", "/level\r"]))
            who.pause(0.5, 2.0)
            who.type("$b", typos=False)
            who.type("cw" + str(rng.choice([4, 8, 16, 60, 120])), typos=False)
        else:
            who.type("o", typos=False)
            who.type(rng.choice(["  retries: 3", "  keepalive_s: 75", "  read_only: false",
                                 "# TODO: raise after load test", "  max_connections: 200"]))
        who.term.key("\x1b")
        who.pause(1.0, 5.0)
        who.term.mark()
        who.type(":wq\r" if rng.random() < 0.85 else ":q!\r", typos=False)
        who.done(5)


APPS = [SshInteractive]
