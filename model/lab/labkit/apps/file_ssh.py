"""File transfers over SSH: OpenSSH's sshd (its own config, host key and
authorized key, root with key-only login, in the server namespace only) and,
in the client namespace, scp and sftp in batch mode (scp-sftp), or rsync
over ssh syncing directories both ways (rsync-ssh)."""
import os
import shutil
import subprocess

from labkit.apps.file_common import (MB, Plan, draw_name, draw_size, fit_size, make_file,
                                     pause, run_until, unlink)
from labkit.procs import last_line, start_server
from labkit.session import stop

PORT = 22

SSHD_CONF = """\
Port {port}
ListenAddress {ip}
HostKey {d}/host_ed25519
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
AllowUsers root
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTunnel no
PrintMotd no
PrintLastLog no
MaxStartups 20
Subsystem sftp internal-sftp
"""


def _keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "flowpic-lab",
                    "-f", path], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class SshServer:
    """sshd in the server namespace, for this session only."""

    def __init__(self, env):
        self.env = env
        self.dir = os.path.join(env.workdir, "ssh")
        os.makedirs(self.dir, mode=0o700)
        _keygen(os.path.join(self.dir, "host_ed25519"))
        self.key = os.path.join(self.dir, "id_ed25519")
        _keygen(self.key)
        shutil.copyfile(self.key + ".pub", os.path.join(self.dir, "authorized_keys"))
        self.conf = os.path.join(self.dir, "sshd_config")
        with open(self.conf, "w") as f:
            f.write(SSHD_CONF.format(port=PORT, ip=env.server_ip, d=self.dir))
        # sshd's compiled-in privilege separation directory (the Debian
        # service makes it at start; no service runs here).
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.log = os.path.join(self.dir, "sshd.log")
        self.proc = None

    def start(self):
        self.proc = start_server(self.env, "sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", self.conf],
                                 PORT, self.log)
        return self

    def stop(self):
        stop([self.proc])

    def ssh_opts(self):
        """Client options: this key only, no user config, no known hosts."""
        return ["-F", "/dev/null", "-i", self.key, "-o", "IdentitiesOnly=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]

    def ssh_command(self):
        """For rsync -e."""
        return " ".join(["ssh", "-p", str(PORT)] + self.ssh_opts())


def _check(rc, err, what):
    if rc not in (0, None):   # None: cut at the deadline
        raise RuntimeError(f"{what} failed with exit {rc}: {last_line(err)}")


class _OverSsh:
    """A driver whose person (_person(env, srv)) transfers files over this
    session's sshd."""
    CLASS = "file_transfer"
    SERVER_IPS = 1

    def run(self, env):
        srv = SshServer(env).start()
        try:
            self._person(env, srv)
        finally:
            srv.stop()
        return [{"proto": "tcp", "port": PORT, "label": "file_transfer"}]


class ScpSftp(_OverSsh):
    """A person fetching and sending files with scp, and with sftp (a batch
    of gets and puts in one session, pausing between them)."""
    NAME = "scp-sftp"
    PACKAGES = ["openssh-server", "openssh-client"]

    def _person(self, env, srv):
        rng = env.rng
        remote = os.path.join(env.workdir, "srv")     # the server's files
        local = os.path.join(env.workdir, "client")   # the person's files
        os.makedirs(remote)
        os.makedirs(local)
        host = f"root@{env.server_ip}"
        plan = Plan(env, n_down=(2, 5), n_up=rng.randint(1, 2), overhead=1.5)
        env.log(f"{self.NAME}: {plan.describe()}")
        legacy = rng.random() < 0.3                  # scp -O: the old scp protocol
        ops, i = plan.ops, 0
        while env.remaining() > 3:
            if i < len(ops):
                n = 1 if rng.random() < 0.5 else rng.randint(2, 3)   # scp or a sftp batch
                batch = [(ops[j], plan.pauses[j]) for j in range(i, min(i + n, len(ops)))]
            else:
                batch = [plan.extra()]
            i += len(batch)
            made = []
            try:
                if len(batch) == 1:
                    (kind, size), wait = batch[0]
                    name = draw_name(rng)
                    rate = plan.rate(kind)
                    if kind == "down":
                        made.append(make_file(os.path.join(remote, name),
                                              fit_size(env, size, rate)))
                        src, dst = f"{host}:{remote}/{name}", os.path.join(local, name)
                    else:
                        made.append(make_file(os.path.join(local, name),
                                              fit_size(env, size, rate)))
                        src, dst = made[-1], f"{host}:{remote}/{name}"
                    made.append(dst if kind == "down" else os.path.join(remote, name))
                    args = ["scp", "-q", "-P", str(PORT), "-l", str(max(8, rate * 8 // 1000))]
                    args += (["-O"] if legacy else []) + srv.ssh_opts() + [src, dst]
                    rc, err = run_until(env, "client", args)
                    _check(rc, err, "scp")
                else:
                    script = [f"cd {remote}", f"lcd {local}"]
                    rate = plan.rate("down")
                    for (kind, size), wait in batch:
                        name = draw_name(rng)
                        if kind == "down":
                            made.append(make_file(os.path.join(remote, name),
                                                  fit_size(env, size, rate)))
                            script.append(f"get {name}")
                        else:
                            made.append(make_file(os.path.join(local, name),
                                                  fit_size(env, size, plan.rate("up"))))
                            script.append(f"put {name}")
                        made += [os.path.join(local, name), os.path.join(remote, name)]
                        script.append(f"!sleep {wait:.1f}")
                    wait = 0.5
                    script.append("bye")
                    bfile = os.path.join(env.workdir, "sftp.batch")
                    with open(bfile, "w") as f:
                        f.write("\n".join(script) + "\n")
                    # sftp -l (kbit/s) caps both ways: the session's download rate
                    args = ["sftp", "-q", "-b", bfile, "-P", str(PORT),
                            "-l", str(max(8, rate * 8 // 1000))] + srv.ssh_opts() + [host]
                    rc, err = run_until(env, "client", args)
                    _check(rc, err, "sftp")
            finally:
                unlink(*made)
            pause(env, wait)


class RsyncSsh(_OverSsh):
    """A person syncing directories with rsync over ssh: pulling a project
    or data folder, pushing a backup, re-syncing after changing some files."""
    NAME = "rsync-ssh"
    PACKAGES = ["openssh-server", "openssh-client", "rsync"]

    def _tree(self, env, root, volume):
        """A folder of a few big files and some small ones, about volume bytes."""
        rng = env.rng
        os.makedirs(root, exist_ok=True)
        n_big = rng.randint(1, 6)
        n_small = rng.choice([0, rng.randint(3, 40)])
        small = [draw_size(rng, 4 * 1024, 2 * MB) for _ in range(n_small)]
        big_total = max(volume - sum(small), MB)
        weights = [rng.random() + 0.2 for _ in range(n_big)]
        for w in weights:
            make_file(os.path.join(root, draw_name(rng)), int(big_total * w / sum(weights)))
        sub = os.path.join(root, rng.choice(["docs", "src", "notes", "meta", "thumbs"]))
        for s in small:
            make_file(os.path.join(sub, f"{draw_name(rng, rng.choice(['txt', 'json', 'jpg', 'csv', 'py']))}"), s)

    def _rsync(self, env, srv, src, dst, kbytes, extra=()):
        args = ["rsync", "-a", "--rsync-path=/usr/bin/rsync", "-e", srv.ssh_command(),
                f"--bwlimit={kbytes}"] + self.flags + list(extra) + [src, dst]
        rc, err = run_until(env, "client", args, sig=2)   # SIGINT, as ^C
        if rc not in (0, None, 20):   # 20: killed by a signal (at the deadline)
            raise RuntimeError(f"rsync failed with exit {rc}: {last_line(err)}")

    def _person(self, env, srv):
        rng = env.rng
        remote = os.path.join(env.workdir, "srv")
        local = os.path.join(env.workdir, "client")
        host = f"root@{env.server_ip}"
        self.flags = []
        if rng.random() < 0.5:
            self.flags.append("--partial")
        if rng.random() < 0.25:
            self.flags.append("-z")
        # Folders instead of single files: one pull, one push, later re-syncs.
        plan = Plan(env, n_down=(1, 3), n_up=1, down=(10 * MB, 300 * MB), up=(5 * MB, 120 * MB),
                    overhead=2.0)
        env.log(f"{self.NAME}: {plan.describe()} {' '.join(self.flags)}")
        ops, i, pulled = plan.ops, 0, []
        while env.remaining() > 3:
            if i < len(ops):
                (kind, size), wait = ops[i], plan.pauses[i]
            elif pulled and rng.random() < 0.5:
                kind, size, wait = "resync", 0, plan.draw_pause()
            else:
                (kind, size), wait = plan.extra()
            i += 1
            rate = plan.rate("up" if kind in ("up", "resync") else "down")
            kbytes = max(1, rate // 1024)
            name = draw_name(rng, "d").rsplit(".", 1)[0]
            if kind == "down":
                self._tree(env, os.path.join(remote, name), fit_size(env, size, rate))
                self._rsync(env, srv, f"{host}:{remote}/{name}", local + "/", kbytes)
                pulled.append(name)
            elif kind == "up":
                self._tree(env, os.path.join(local, name), fit_size(env, size, rate))
                self._rsync(env, srv, os.path.join(local, name), f"{host}:{remote}/", kbytes)
            else:
                # change a few files of a pulled folder, then push the changes
                name = rng.choice(pulled)
                folder = os.path.join(local, name)
                files = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs)
                for path in rng.sample(files, min(len(files), rng.randint(1, 3))):
                    with open(path, "r+b") as f:
                        f.seek(0, 2)
                        end = f.tell()
                        n = min(end, int(rng.uniform(0.01, 0.3) * end) + 4096)
                        f.seek(rng.randrange(0, max(1, end - n)))
                        f.write(os.urandom(n))
                self._rsync(env, srv, folder, f"{host}:{remote}/", kbytes)
            # disk bound: a pushed backup and old pulled data go once used
            for d in os.listdir(local) if os.path.isdir(local) else []:
                if d not in pulled[-1:]:
                    shutil.rmtree(os.path.join(local, d), ignore_errors=True)
            pulled = pulled[-1:]
            for d in os.listdir(remote) if os.path.isdir(remote) else []:
                if d not in pulled:
                    shutil.rmtree(os.path.join(remote, d), ignore_errors=True)
            pause(env, wait)


APPS = [ScpSftp, RsyncSsh]
