"""Helpers shared by the file_transfer drivers (file_*.py): random payload
files, a person's transfer rates and pauses, and running a client command
until it ends or the session's deadline comes.  No drivers here (servers
start through labkit.procs.start_server)."""
import math
import os
import signal
import subprocess
import time

MB = 1 << 20
MAX_FILE = 400 * MB      # no payload file is larger


def loguniform(rng, lo, hi):
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def draw_rate(rng, lo=300_000, hi=12_000_000):
    """A download rate in bytes/s a person's transfers get: 2.4 to 96 Mbit/s,
    log-uniform (the app-level cap, under whatever the link emulator allows)."""
    return int(loguniform(rng, lo, hi))


def link_rates(env):
    """The emulated link's (down, up) rates in bytes/s, None where unknown
    (a plain veth): a person's plan fits the line it runs on."""
    link = getattr(env.topo, "link", None) or {}
    return tuple(link[k] * 125 if link.get(k) else None for k in ("rate_down", "rate_up"))


def draw_size(rng, lo=3 * MB, hi=300 * MB):
    return int(loguniform(rng, lo, hi))


def fit_size(env, size, rate, slack=1.15):
    """size, but no more than what rate can move before the deadline (so a
    payload is never much bigger than what will be sent)."""
    room = int(rate * env.remaining() * slack) + MB
    return max(64 * 1024, min(size, room, MAX_FILE))


class Plan:
    """A person's transfers for a session: ops [(kind, size)] with kind "down"
    or "up", a pause after each, and a base download rate (bytes/s) chosen so
    that the plan takes about the session's time (within 250 kB/s..12 MB/s);
    uploads go at base * up_ratio (uplinks are slower)."""

    def __init__(self, env, n_down=(2, 5), n_up=1, down=(3 * MB, 300 * MB),
                 up=(2 * MB, 80 * MB), pause_p=0.5, pause=(1, 12), overhead=1.0,
                 lo=250_000, hi=12_000_000):
        rng = env.rng
        self.rng = rng
        link_down, self.link_up = link_rates(env)
        if link_down:                 # no plan for more than the line carries
            hi = min(hi, int(link_down * 0.9))
            lo = min(lo, hi // 2)
        self.down, self.pause_range, self.pause_p = down, pause, pause_p
        self.ops = [("down", draw_size(rng, *down)) for _ in range(rng.randint(*n_down))]
        for _ in range(n_up):
            self.ops.insert(rng.randint(0, len(self.ops)), ("up", draw_size(rng, *up)))
        self.up_ratio = rng.uniform(0.15, 1.0)
        self.pauses = [self.draw_pause() for _ in self.ops]
        left = env.remaining()
        busy = max(left - sum(self.pauses) - overhead * len(self.ops), left * 0.4)
        self.volume = sum(s if k == "down" else s / self.up_ratio for k, s in self.ops)
        self.base = int(min(hi, max(lo, self.volume / max(busy, 1.0))))
        # On a slow line no single transfer takes the whole session (a
        # download sometimes nearly does; an upload takes a part).
        up_rate = self.base * self.up_ratio
        if self.link_up:
            up_rate = min(up_rate, self.link_up * 0.9)
        for k, (kind, size) in enumerate(self.ops):
            cap = (self.base * left * rng.uniform(0.3, 1.0) if kind == "down"
                   else up_rate * left * rng.uniform(0.1, 0.35))
            self.ops[k] = (kind, max(256 * 1024, min(size, int(cap))))
        self.volume = sum(s for _, s in self.ops)

    def draw_pause(self):
        if self.rng.random() < self.pause_p:
            return loguniform(self.rng, *self.pause_range)
        return 0.5

    def rate(self, kind):
        """A transfer's rate: the base (or upload) rate, +-20 %."""
        r = self.base * (self.up_ratio if kind == "up" else 1.0)
        if kind == "up" and self.link_up:
            r = min(r, self.link_up * 0.9)
        return max(1000, int(r * self.rng.uniform(0.8, 1.2)))

    def extra(self):
        """One more download once the plan is done early."""
        return ("down", draw_size(self.rng, *self.down)), self.draw_pause()

    def describe(self):
        return (f"{len(self.ops)} transfers, {self.volume / MB:.0f} MB, "
                f"rate {self.base / 1e6:.2f} MB/s, up x{self.up_ratio:.2f}")


def make_file(path, size):
    """A file of size random (incompressible) bytes."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    chunk = 4 * MB
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n
    os.chmod(path, 0o644)
    return path


def unlink(*paths):
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def pause(env, seconds):
    """Sleep seconds, but not past the deadline."""
    time.sleep(max(0.0, min(seconds, env.remaining())))


def draw_name(rng, ext=None):
    stems = ["backup", "dataset", "release", "photos", "video", "archive", "build",
             "logs", "dump", "images", "music", "docs", "project", "export", "scan"]
    exts = ["tar.gz", "zip", "iso", "mp4", "tar.xz", "7z", "bin", "mkv", "tgz", "img"]
    return f"{rng.choice(stems)}-{rng.randrange(1, 9999):04d}.{ext or rng.choice(exts)}"


def run_until(env, side, args, deadline=None, sig=signal.SIGTERM, log_name=None):
    """Run a program in a namespace until it exits or the deadline (monotonic
    time, default the session's) passes; then signal it and wait.
    Returns (returncode or None if cut, stderr text)."""
    deadline = env.deadline if deadline is None else deadline
    popen = env.client if side == "client" else env.server
    p = popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
        return p.returncode, err or ""
    except subprocess.TimeoutExpired:
        p.send_signal(sig)
        try:
            _, err = p.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        return None, err or ""
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


APPS = []
