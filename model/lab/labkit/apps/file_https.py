"""HTTPS downloads and an upload: nginx (TLS with the lab certificate, a
WebDAV PUT location for uploads) in the server namespace, curl in the client
namespace, as a person fetching a few big files, sometimes two at once,
pausing between them, and uploading one (https-curl, https-curl-h2).

https-small is the other kind of HTTPS file traffic, and the commoner one:
an app syncing documents and photos (a cloud drive, a phone's photo
backup).  Its transfers are small (0.1-2 MB), come in batches when
something changed, often after a small listing request, with idle gaps of
seconds to a minute or more between batches; a batch goes on the
connection the last one left open (keep-alive) or on a new one.  Its client
is a Python script (http.client) in the client namespace, following a plan
the driver draws."""
import json
import os

from labkit import assets, nginx
from labkit.apps.file_common import (MB, Plan, draw_name, fit_size, loguniform, make_file,
                                     pause, run_until, unlink)
from labkit.procs import keep_logs, last_line, run_client, script
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


# The syncing app: follows the plan (JSON) batch by batch; a batch's
# requests go on one connection, kept for the next batch or closed after
# it.  A transfer still running at the deadline is cut (the session ends).
SYNC_CLIENT = r'''
import argparse, http.client, json, os, ssl, time

ap = argparse.ArgumentParser()
for a in ("server", "ca", "plan"):
    ap.add_argument("--" + a)
ap.add_argument("--port", type=int)
ap.add_argument("--seconds", type=float)
ap.add_argument("--start", type=float)
a = ap.parse_args()
T0 = time.monotonic()
deadline = T0 + a.seconds
ctx = ssl.create_default_context(cafile=a.ca)
CHUNK = 64 * 1024


def log(*args):
    print(f"{time.monotonic() - T0:7.1f}", *args, flush=True)


class Cut(Exception):
    """The session's time is up."""


def request(conn, op, path, size):
    if op == "put":
        conn.putrequest("PUT", path)
        conn.putheader("Content-Length", str(size))
        conn.putheader("Content-Type", "application/octet-stream")
        conn.endheaders()
        body = os.urandom(size)
        for i in range(0, size, CHUNK):
            if time.monotonic() >= deadline:
                raise Cut()
            conn.send(body[i:i + CHUNK])
    else:
        conn.request("GET", path)
    r = conn.getresponse()
    got = 0
    while True:
        if time.monotonic() >= deadline:
            raise Cut()
        d = r.read(CHUNK)
        if not d:
            break
        got += len(d)
    if r.status >= 400:
        raise RuntimeError(f"HTTP {r.status} for {op} {path}")
    return got


conn = None
try:
    time.sleep(a.start)
    for batch in json.loads(a.plan):
        if time.monotonic() >= deadline - 1:
            break
        if conn is None:
            conn = http.client.HTTPSConnection(a.server, a.port, context=ctx, timeout=30)
            log("connect")
        for item in batch["items"]:
            time.sleep(item["pause"])
            got = request(conn, item["op"], item["path"], item["size"])
            log(item["op"], item["path"], item["size"], got)
        if not batch["keep"]:
            conn.close()
            conn = None
            log("close")
        time.sleep(max(0.0, min(batch["after"], deadline - time.monotonic())))
except Cut:
    log("cut at the deadline")
finally:
    if conn:
        conn.close()
print("DONE", flush=True)
'''


class HttpsSmall(HttpsCurl):
    NAME = "https-small"
    PACKAGES = ["nginx", "openssl", "python3"]

    def _plan(self, env, rng, prefix):
        """Sync batches [{items, keep, after}] (after: idle seconds till the
        next) for about the session; makes the files the downloads fetch.
        Returns (batches, paths made)."""
        batches, made = [], []
        t = 0.0
        while t < env.seconds:
            items = []
            if rng.random() < 0.6:
                # What changed since the last sync: a small listing.
                name = f"changes-{len(batches)}.json"
                made.append(make_file(os.path.join(prefix, "www/files", name),
                                      int(loguniform(rng, 800, 12_000))))
                items.append({"op": "get", "path": f"/files/{name}",
                              "size": os.path.getsize(made[-1])})
            # A batch is one way: photos going up, or files coming down.
            op = "put" if rng.random() < 0.5 else "get"
            for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
                size = int(loguniform(rng, 0.1 * MB, 2 * MB))
                name = draw_name(rng, rng.choice(["jpg", "jpg", "heic", "pdf", "docx",
                                                  "xlsx", "png", "mp3"]))
                if op == "get":
                    made.append(make_file(os.path.join(prefix, "www/files", name), size))
                items.append({"op": op, "path": f"/{'files' if op == 'get' else 'upload'}"
                                                f"/{name}", "size": size})
            for k, item in enumerate(items):
                item["pause"] = 0.0 if k == 0 else round(rng.uniform(0.05, 1.5), 3)
            # Idle till the next batch: seconds, sometimes a minute or more.
            gap = loguniform(rng, 3.0, 45.0) if rng.random() < 0.85 else rng.uniform(45, 120)
            # The connection stays for the next batch (within the server's
            # keep-alive) or the app closes it once done.
            keep = gap < 60 and rng.random() < 0.5
            batches.append({"keep": keep, "items": items, "after": round(gap, 3)})
            # (the plan's clock: a batch takes a second or so on a good line)
            t += gap + sum(i["size"] for i in items) / 2e6
        return batches, made

    def _person(self, env, rng, prefix, ca):
        batches, made = self._plan(env, rng, prefix)
        n = sum(len(e["items"]) for e in batches)
        env.log(f"{self.NAME}: {len(batches)} batches, {n} requests, "
                f"{sum(i['size'] for e in batches for i in e['items']) / MB:.1f} MB planned")
        client = script(env, "sync_client.py", SYNC_CLIENT)
        log = os.path.join(env.workdir, "sync-client.log")
        seconds = max(1.0, env.remaining() - 0.5)
        try:
            run_client(env, "sync client",
                       ["/usr/bin/python3", client, "--server", env.server_ip,
                        "--port", str(PORT), "--ca", ca, "--plan", json.dumps(batches),
                        "--start", f"{rng.uniform(0.5, 4.0):.2f}",
                        "--seconds", f"{seconds:.1f}"], log, seconds + 40, "DONE")
        finally:
            keep_logs(log)
            unlink(*made)


APPS = [HttpsCurl, HttpsCurlH2, HttpsSmall]
