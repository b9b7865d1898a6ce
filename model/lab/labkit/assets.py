"""Shared lab assets, made once per assets folder and reused by sessions:
a lab certificate authority, and per set of server addresses a server
certificate it signs, so TLS clients verify servers with the lab CA
(curl --cacert, ...).

Drivers that need media or page corpora build them under
assets/<their name>/ through ensure(), which runs a builder once even when
sessions run in parallel (a lock file).
"""
import fcntl
import os
import subprocess


def ensure(assets, name, builder):
    """Path of assets/<name>/, built by builder(path) once (under a lock)."""
    path = os.path.join(assets, name)
    os.makedirs(assets, exist_ok=True)
    with open(os.path.join(assets, f".{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(path, ".done")):
            os.makedirs(path, exist_ok=True)
            builder(path)
            open(os.path.join(path, ".done"), "w").close()
    return path


def _ssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def _build_ca(path):
    _ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "3650", "-subj", "/CN=flowpic lab CA", "-keyout", os.path.join(path, "ca.key"),
         "-out", os.path.join(path, "ca.pem"))


def _server_builder(ca_dir, ips):
    def build(path):
        key, csr, crt = (os.path.join(path, n) for n in ("server.key", "server.csr", "server.pem"))
        _ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-subj", "/CN=lab.flowpic.test", "-keyout", key, "-out", csr)
        ext = os.path.join(path, "san.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:lab.flowpic.test," + ",".join(f"IP:{ip}" for ip in ips)
                    + "\n")
        _ssl("x509", "-req", "-in", csr, "-CA", os.path.join(ca_dir, "ca.pem"),
             "-CAkey", os.path.join(ca_dir, "ca.key"), "-CAcreateserial", "-days", "3650",
             "-extfile", ext, "-out", crt)
    return build


def tls(assets, ips):
    """{'ca', 'cert', 'key'} paths: the lab CA, and a server certificate (EC
    P-256) naming exactly the session's server addresses `ips`, so the TLS
    handshake is the size a real site's is (one certificate listing every
    lab address would be 15 KB: a dozen full-size packets per handshake)."""
    ca_dir = ensure(assets, "tls-ca", _build_ca)
    ips = sorted(ips)
    path = ensure(assets, "tls-" + "-".join(ips), _server_builder(ca_dir, ips))
    return {"ca": os.path.join(ca_dir, "ca.pem"), "cert": os.path.join(path, "server.pem"),
            "key": os.path.join(path, "server.key")}
