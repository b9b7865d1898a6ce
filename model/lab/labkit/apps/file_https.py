"""HTTPS downloads and an upload: nginx (TLS with the lab certificate, a
WebDAV PUT location for uploads) in the server namespace, curl in the client
namespace, as a person fetching a few big files, sometimes two at once,
pausing between them, and uploading one."""
import os

from labkit import assets, nginx
from labkit.apps.file_common import (Plan, draw_name, fit_size, make_file, pause, run_until,
                                     unlink)
from labkit.procs import last_line
from labkit.session import stop

PORT = 443

# The rest of the http block after labkit.nginx's HEAD.
NGINX_HTTP = """\
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    server {{
{tls}
        root {prefix}/www;
        location /files/ {{ }}
        location /upload/ {{
            dav_methods PUT DELETE;
            create_full_put_path on;
            client_max_body_size 0;
            client_body_buffer_size 1m;
        }}
    }}
}}
"""


class HttpsCurl:
    CLASS = "file_transfer"
    NAME = "https-curl"
    PACKAGES = ["nginx", "curl", "openssl"]
    SERVER_IPS = 1
    HTTP2 = False

    def run(self, env):
        rng = env.rng
        tls = assets.tls(env.assets, env.server_ips)
        prefix = nginx.prefix(env, "www/files", "www/upload")
        server = nginx.TLS_SERVER.format(ip=env.server_ip, port=PORT, h2=nginx.h2(self.HTTP2),
                                         cert=tls["cert"], key=tls["key"])
        srv = nginx.start(env, prefix, NGINX_HTTP.format(tls=server, prefix=prefix), PORT)
        try:
            self._person(env, rng, prefix, tls["ca"])
        finally:
            stop([srv])
        return [{"proto": "tcp", "port": PORT, "label": "file_transfer"}]

    # ---- the person ----
    def _curl(self, env, rate, extra):
        args = ["curl", "-sS", "--fail", "--cacert", self.ca, "--limit-rate", str(rate),
                "--max-time", str(max(1, int(env.remaining()) + 1))]
        args += ["--http2"] if self.HTTP2 else ["--http1.1"]
        return args + extra

    def _url(self, env, path):
        return f"https://{env.server_ip}:{PORT}/{path}"

    def _download(self, env, prefix, specs):
        """Download files (name, size, rate) at once, each its own curl."""
        procs, paths = [], []
        for name, size, rate in specs:
            path = make_file(os.path.join(prefix, "www/files", name), fit_size(env, size, rate))
            paths.append(path)
        errs = [os.path.join(env.workdir, f"curl{k}.err") for k in range(len(specs))]
        for (name, size, rate), path, err in zip(specs, paths, errs):
            with open(err, "w") as f:
                procs.append(env.client(self._curl(env, rate, ["-o", "/dev/null",
                                                                self._url(env, f"files/{name}")]),
                                        stderr=f))
        try:
            for p in procs:
                p.wait(timeout=env.remaining() + 10)
        finally:
            stop(procs)
            unlink(*paths)
        for p, err in zip(procs, errs):
            if p.returncode not in (0, 28):   # 28: cut at the deadline
                with open(err, errors="replace") as f:
                    raise RuntimeError(f"curl download failed with exit {p.returncode}: "
                                       f"{last_line(f.read())}")

    def _upload(self, env, prefix, name, size, rate):
        local = make_file(os.path.join(env.workdir, "client", name), fit_size(env, size, rate))
        try:
            rc, err = run_until(env, "client", self._curl(
                env, rate, ["-T", local, "-o", "/dev/null", self._url(env, f"upload/{name}")]),
                deadline=env.deadline + 5)
        finally:
            unlink(local, os.path.join(prefix, "www/upload", name))
        if rc not in (0, 28, None):
            raise RuntimeError(f"curl upload failed with exit {rc}: {last_line(err)}")

    def _person(self, env, rng, prefix, ca):
        self.ca = ca
        plan = Plan(env)
        env.log(f"{self.NAME}: {plan.describe()}")
        ops, i = plan.ops, 0
        while env.remaining() > 2:
            if i < len(ops):
                (kind, size), wait = ops[i], plan.pauses[i]
            else:                                   # plan done early: more downloads
                (kind, size), wait = plan.extra()
            i += 1
            if kind == "up":
                self._upload(env, prefix, draw_name(rng), size, plan.rate("up"))
            else:
                specs = [(draw_name(rng), size, plan.rate("down"))]
                if rng.random() < 0.25 and i < len(ops) and ops[i][0] == "down":
                    # two at once (the next planned file too), sharing the rate
                    specs.append((draw_name(rng), ops[i][1], plan.rate("down")))
                    specs = [(n, s, r // 2) for n, s, r in specs]
                    i += 1
                self._download(env, prefix, specs)
            pause(env, wait)


class HttpsCurlH2(HttpsCurl):
    NAME = "https-curl-h2"
    HTTP2 = True


APPS = [HttpsCurl, HttpsCurlH2]
