"""BitTorrent: opentracker (its own config and whitelist) and two or three
aria2c seeders, each on its own server address and port and with its own
upload cap, in the server namespace; an aria2c leecher in the client
namespace downloads a private torrent (made with mktorrent) from them.  No
DHT, peer exchange or local peer discovery, no tracker but ours (aria2 has
no UPnP).  Seeders announce only at start and the tracker's interval is long,
so only the leecher opens peer connections: their server side is a seeder's
listen port."""
import hashlib
import os
import re
import shutil
import subprocess
import time

from labkit.apps.file_common import (MB, draw_name, draw_size, fit_size, link_rates,
                                     loguniform, make_file, pause, run_until)
from labkit.procs import last_line, start_server
from labkit.session import stop

TRACKER_PORT = 6969
PEER_PORTS = (6881, 6889)

OPENTRACKER_CONF = """\
listen.tcp {ip}:{port}
listen.udp {ip}:{port}
access.whitelist /whitelist.txt
tracker.rootdir {root}
tracker.user nobody
"""
# (opentracker reads its whitelist after the chroot to tracker.rootdir)

# What every aria2c here is told: nothing but our tracker and peers.
ARIA2_COMMON = ["--no-conf", "--enable-dht=false", "--enable-dht6=false",
                "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                "--disable-ipv6=true", "--check-certificate=false",
                "--file-allocation=none", "--auto-save-interval=0", "--summary-interval=0",
                "--console-log-level=warn", "--download-result=hide", "--quiet=true",
                "--allow-overwrite=true", "--bt-save-metadata=false"]


def _info_hash(torrent):
    """SHA-1 of the bencoded info dictionary of a .torrent file."""
    with open(torrent, "rb") as f:
        data = f.read()

    def skip(i):
        c = data[i:i + 1]
        if c == b"i":
            return data.index(b"e", i) + 1
        if c in (b"l", b"d"):
            i += 1
            while data[i:i + 1] != b"e":
                i = skip(i)
            return i + 1
        colon = data.index(b":", i)
        return colon + 1 + int(data[i:colon])

    i = 1                                   # inside the top dictionary
    while data[i:i + 1] != b"e":
        key_end = skip(i)
        key = data[data.index(b":", i) + 1:key_end]
        val_end = skip(key_end)
        if key == b"info":
            return hashlib.sha1(data[key_end:val_end]).hexdigest()
        i = val_end
    raise RuntimeError(f"no info dictionary in {torrent}")


def _piece_exp(size):
    """Piece size (2^n) as clients choose it: bigger pieces for bigger torrents."""
    if size < 64 * MB:
        return 18
    if size < 256 * MB:
        return 19
    return 20


class Aria2Torrent:
    CLASS = "file_transfer"
    NAME = "bittorrent-aria2"
    PACKAGES = ["opentracker", "aria2", "mktorrent", "curl"]
    SERVER_IPS = 3

    def run(self, env):
        rng = env.rng
        ot = os.path.join(env.workdir, "ot")
        os.makedirs(ot, mode=0o755)
        os.chmod(env.workdir, 0o711)
        self.whitelist = os.path.join(ot, "whitelist.txt")
        open(self.whitelist, "w").close()
        os.chmod(self.whitelist, 0o644)
        conf = os.path.join(ot, "opentracker.conf")
        with open(conf, "w") as f:
            f.write(OPENTRACKER_CONF.format(ip=env.server_ips[0], port=TRACKER_PORT,
                                            root=ot))
        self.ot_log = os.path.join(env.workdir, "opentracker.log")
        self.ot_conf = conf
        self.tracker = None
        try:
            self._person(env, rng)
        finally:
            stop([self.tracker])
        return [{"proto": "tcp", "port": TRACKER_PORT, "label": "control"},
                {"proto": "tcp", "port": list(PEER_PORTS), "label": "file_transfer"}]

    def _start_tracker(self, env):
        """(Re)start the tracker: it reads its whitelist at start."""
        stop([self.tracker])
        self.tracker = None
        self.tracker = start_server(env, "opentracker", ["opentracker", "-f", self.ot_conf],
                                    TRACKER_PORT, self.ot_log,
                                    cwd=os.path.dirname(self.ot_conf))

    def _wait_announced(self, env, info_hash, n):
        """Wait until the tracker knows n seeders of the torrent (a scrape from
        inside the server namespace: never on the client's wire), so the
        leecher's first announce gets them all."""
        q = "".join(f"%{info_hash[k:k + 2]}" for k in range(0, 40, 2))
        url = f"http://{env.server_ips[0]}:{TRACKER_PORT}/scrape?info_hash={q}"
        out = os.path.join(env.workdir, "scrape")
        end = time.monotonic() + 15
        got = b""
        while time.monotonic() < end:
            env.run_server(["curl", "-s", "-m", "2", "-o", out, url], check=False)
            try:
                with open(out, "rb") as f:
                    got = f.read()
            except OSError:
                got = b""
            m = re.search(rb"8:completei(\d+)e", got)
            if m and int(m.group(1)) >= n:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the tracker has not seen {n} seeders (scrape: {got[:80]!r})")

    def _make_torrent(self, env, rng, size):
        """A data file or folder of about size bytes and its private torrent."""
        data = os.path.join(env.workdir, "seed")
        shutil.rmtree(data, ignore_errors=True)
        os.makedirs(data)
        stem = draw_name(rng, "d").rsplit(".", 1)[0]
        if rng.random() < 0.5:
            target = make_file(os.path.join(data, draw_name(rng, rng.choice(
                ["iso", "mkv", "tar.xz", "zip", "img"]))), size)
        else:
            target = os.path.join(data, stem)
            n = rng.randint(2, 8)
            w = [rng.random() + 0.1 for _ in range(n)]
            for x in w:
                make_file(os.path.join(target, draw_name(rng, rng.choice(
                    ["mkv", "flac", "mp4", "jpg", "pdf", "bin"]))), max(4096, int(size * x / sum(w))))
        torrent = os.path.join(env.workdir, f"{stem}.torrent")
        announce = f"http://{env.server_ips[0]}:{TRACKER_PORT}/announce"
        r = subprocess.run(["mktorrent", "-p", "-a", announce, "-l", str(_piece_exp(size)),
                            "-t", "1", "-o", torrent, target],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0 or not os.path.exists(torrent):
            raise RuntimeError(f"mktorrent failed: {last_line(r.stderr)}")
        return data, torrent

    def _person(self, env, rng):
        # The swarm's seeders: 2 or 3, each with its own uplink.
        n_seeders = rng.randint(2, 3)
        ips = env.server_ips[1:] + env.server_ips[:1]           # tracker's address last
        ports = rng.sample(range(PEER_PORTS[0], PEER_PORTS[1] + 1), n_seeders)
        uplinks = [int(loguniform(rng, 150_000, 4_000_000)) for _ in range(n_seeders)]
        total = sum(uplinks)
        # The person's downlink may be the limit (sometimes), else the seeders'.
        down_cap = int(total * rng.uniform(0.5, 0.9)) if rng.random() < 0.3 else 0
        rate = min(total, down_cap) if down_cap else total
        link_down = link_rates(env)[0]
        if link_down:
            rate = min(rate, int(link_down * 0.9))
        env.log(f"{self.NAME}: {n_seeders} seeders up {[u // 1000 for u in uplinks]} kB/s, "
                f"down cap {down_cap // 1000} kB/s")
        first = True
        while env.remaining() > 8:
            # A torrent that takes most of the time left (a few MB..400 MB).
            want = draw_size(rng, 5 * MB, 400 * MB)
            size = min(want, int(rate * env.remaining() * rng.uniform(0.6, 1.1)))
            size = fit_size(env, max(size, 2 * MB), rate)
            data, torrent = self._make_torrent(env, rng, size)
            info_hash = _info_hash(torrent)
            with open(self.whitelist, "w") as f:
                f.write(info_hash + "\n")
            self._start_tracker(env)
            seeders = []
            try:
                for ip, port, up in zip(ips, ports, uplinks):
                    seeders.append(env.server([
                        "aria2c", *ARIA2_COMMON, f"--interface={ip}", f"--listen-port={port}",
                        f"--dir={data}", "--bt-seed-unverified=true", "--check-integrity=false",
                        "--seed-ratio=0.0", f"--max-upload-limit={up}",
                        f"--max-overall-upload-limit={up}", torrent]))
                for port in ports:
                    env.wait_port(port)
                self._wait_announced(env, info_hash, n_seeders)
                got = os.path.join(env.workdir, "leech")
                args = ["aria2c", *ARIA2_COMMON, f"--listen-port={rng.randint(6881, 6999)}",
                        f"--dir={got}", "--seed-time=0", "--bt-stop-timeout=60",
                        f"--max-download-limit={down_cap}",
                        f"--max-overall-download-limit={down_cap}",
                        f"--max-upload-limit={int(loguniform(rng, 50_000, 1_000_000))}",
                        torrent]
                if first and rng.random() < 0.5:
                    args.insert(1, "--bt-require-crypto=true")   # a client that insists on MSE
                rc, err = run_until(env, "client", args, sig=2)   # SIGINT, as ^C
                if rc not in (0, None):
                    raise RuntimeError(f"aria2c leecher failed with exit {rc}: {last_line(err)}")
                for p in seeders:
                    if p.poll() is not None:
                        raise RuntimeError(f"an aria2c seeder exited with {p.returncode}")
            finally:
                stop(seeders)
                shutil.rmtree(os.path.join(env.workdir, "leech"), ignore_errors=True)
                shutil.rmtree(data, ignore_errors=True)
            first = False
            pause(env, loguniform(rng, 2, 15))


APPS = [Aria2Torrent]
