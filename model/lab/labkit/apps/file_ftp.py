"""FTP: vsftpd (its own config: standalone in the foreground, anonymous
downloads and uploads into incoming/, passive data ports in a fixed range)
in the server namespace, and lftp in the client namespace as a person
getting several files and putting one or two, in one session with pauses."""
import os
import pwd

from labkit.apps.file_common import (Plan, draw_name, fit_size, link_rates, make_file,
                                     run_until, unlink)
from labkit.procs import last_line, start_server
from labkit.session import stop

PORT = 21
PASV = (40000, 40049)

VSFTPD_CONF = """\
listen=YES
listen_ipv6=NO
background=NO
listen_address={ip}
listen_port={port}
anonymous_enable=YES
no_anon_password=YES
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=NO
anon_other_write_enable=NO
anon_umask=022
anon_root={root}
ftp_username={ftp_user}
nopriv_user=nobody
secure_chroot_dir={empty}
pasv_enable=YES
pasv_min_port={pmin}
pasv_max_port={pmax}
port_enable=NO
connect_from_port_20=NO
dirmessage_enable=NO
xferlog_enable=YES
vsftpd_log_file={log}
dual_log_enable=NO
use_localtime=YES
hide_ids=YES
ssl_enable=NO
seccomp_sandbox=NO
isolate_network=NO
max_clients=20
idle_session_timeout=600
data_connection_timeout=120
"""


class FtpLftp:
    CLASS = "file_transfer"
    NAME = "ftp-lftp"
    PACKAGES = ["vsftpd", "lftp"]
    SERVER_IPS = 1

    def run(self, env):
        root = os.path.join(env.workdir, "ftp")
        incoming = os.path.join(root, "incoming")
        empty = os.path.join(env.workdir, "empty")
        for d in (root, incoming, empty):
            os.makedirs(d, mode=0o755)
        # anonymous sessions run as the ftp user, chrooted to a root-owned
        # folder; they write only to incoming/.
        try:
            ftp_user = pwd.getpwnam("ftp")
        except KeyError:
            ftp_user = pwd.getpwnam("nobody")
        os.chown(incoming, ftp_user.pw_uid, ftp_user.pw_gid)
        os.chmod(env.workdir, 0o711)
        conf = os.path.join(env.workdir, "vsftpd.conf")
        log = os.path.join(env.workdir, "vsftpd.log")
        with open(conf, "w") as f:
            f.write(VSFTPD_CONF.format(ip=env.server_ip, port=PORT, root=root,
                                       ftp_user=ftp_user.pw_name, empty=empty,
                                       pmin=PASV[0], pmax=PASV[1], log=log))
        srv = start_server(env, "vsftpd", ["vsftpd", conf], PORT,
                           os.path.join(env.workdir, "vsftpd.err"))
        try:
            self._person(env, root, incoming)
        finally:
            stop([srv])
        return [{"proto": "tcp", "port": PORT, "label": "control"},
                {"proto": "tcp", "port": list(PASV), "label": "file_transfer"}]

    def _person(self, env, root, incoming):
        rng = env.rng
        local = os.path.join(env.workdir, "client")
        os.makedirs(local)
        plan = Plan(env, n_down=(2, 6), n_up=rng.randint(1, 2), overhead=0.5)
        env.log(f"{self.NAME}: {plan.describe()}")
        ops, i = plan.ops, 0
        while env.remaining() > 3:
            # One lftp session runs the rest of the plan (or, once done, a
            # few more downloads), pausing between transfers.
            if i < len(ops):
                batch = [(ops[j], plan.pauses[j]) for j in range(i, len(ops))]
            else:
                batch = [plan.extra() for _ in range(rng.randint(1, 3))]
            i += len(batch)
            down, up = plan.rate("down"), plan.rate("up")
            # lftp paces uploads with many small writes, which Nagle merges
            # into full-size segments only over a real round trip: on a
            # plain veth (no emulated link) uploads go unpaced instead.
            up_limit = up if link_rates(env)[1] else 0
            script = ["set cmd:fail-exit yes", "set ftp:ssl-allow no",
                      "set ftp:passive-mode yes", "set ftp:prefer-epsv no",
                      "set net:max-retries 2", "set net:timeout 15",
                      "set net:reconnect-interval-base 2", "set xfer:clobber yes",
                      f"set net:limit-rate {down}:{up_limit}",
                      # no bursts from rate saved up during pauses
                      f"set net:limit-max {max(65536, min(down, up) // 8)}",
                      f"open -u anonymous,anonymous@ ftp://{env.server_ip}:{PORT}"]
            made = []
            # Files are sized for the time left when the session starts, the
            # plan's pauses and the earlier transfers taken off.
            t = env.remaining()
            for (kind, size), wait in batch:
                name = draw_name(rng)
                rate = down if kind == "down" else up
                room = max(0.0, t)
                size = max(64 * 1024, min(size, int(rate * room * 1.15) + 2**20))
                size = fit_size(env, size, rate)
                t -= size / rate + wait + 0.5
                if kind == "down":
                    made += [make_file(os.path.join(root, name), size),
                             os.path.join(local, name)]
                    script.append(f"get {name} -o {os.path.join(local, name)}")
                else:
                    made += [make_file(os.path.join(local, name), size),
                             os.path.join(incoming, name)]
                    script.append(f"put {os.path.join(local, name)} -o incoming/{name}")
                script.append(f"sleep {max(1, round(wait))}")
                # a downloaded file is not kept on disk past its transfer
                if kind == "down":
                    script.append(f"!rm -f {os.path.join(local, name)}")
            script.append("bye")
            sfile = os.path.join(env.workdir, "lftp.script")
            with open(sfile, "w") as f:
                f.write("\n".join(script) + "\n")
            try:
                rc, err = run_until(env, "client", ["lftp", "-f", sfile])
            finally:
                unlink(*made)
            if rc not in (0, None):
                raise RuntimeError(f"lftp failed with exit {rc}: {last_line(err)}")


APPS = [FtpLftp]
