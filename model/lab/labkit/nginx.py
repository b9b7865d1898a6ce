"""nginx for one session: a private prefix in the workdir (its pid file,
logs and temporary files there), in the foreground in the server namespace.
A driver gives the rest of its http block (servers, locations, TLS);
start() writes the whole configuration and waits until nginx listens."""
import os

from labkit.procs import start_server

HEAD = """\
worker_processes 1;
user root;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
"""

# A TLS server's listen and certificate lines (the lab certificate): the
# {tls} line of a driver's server block.
TLS_SERVER = """\
        listen {ip}:{port} ssl{h2};
        server_name lab.flowpic.test;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;"""


def prefix(env, *dirs):
    """The session's nginx prefix, with tmp/ and dirs made below it."""
    path = os.path.join(env.workdir, "nginx")
    for d in ("tmp",) + dirs:
        os.makedirs(os.path.join(path, d), exist_ok=True)
    return path


def h2(http2):
    """The listen option for HTTP/2 (nginx 1.22: on the listen line)."""
    return " http2" if http2 else ""


def start(env, prefix, http, port, connections=256):
    """Write prefix/nginx.conf (HEAD, then http: the rest of the http block
    and its closing brace) and start nginx; returns its Popen once it
    listens on port, else raises with the error log's last lines."""
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(HEAD.format(prefix=prefix, connections=connections) + http)
    errlog = os.path.join(prefix, "error.log")
    return start_server(env, "nginx", ["nginx", "-p", prefix, "-c", conf, "-e", errlog,
                                       "-g", "daemon off;"], port, errlog)
