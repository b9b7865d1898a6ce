"""Shared lab assets, made once per assets folder and reused by sessions:
a lab certificate authority and a server certificate for every lab server
address (10.0.0.0/8 is covered by listing each slot's addresses), so TLS
clients verify servers with the lab CA (curl --cacert, ...).

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


def _build_tls(path):
    def ssl(*args):
        subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    ca_key, ca = os.path.join(path, "ca.key"), os.path.join(path, "ca.pem")
    key, csr, crt = (os.path.join(path, n) for n in ("server.key", "server.csr", "server.pem"))
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj",
        "/CN=flowpic lab CA", "-keyout", ca_key, "-out", ca)
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=lab.flowpic.test",
        "-keyout", key, "-out", csr)
    # Every server address a session can have: 10.S.0.2-9 for slots 1..250.
    sans = ["DNS:lab.flowpic.test", "DNS:localhost"] + [
        f"IP:10.{s}.0.{h}" for s in range(1, 251) for h in range(2, 10)]
    ext = os.path.join(path, "san.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join(sans) + "\n")
    ssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "3650", "-extfile", ext, "-out", crt)


def tls(assets):
    """{'ca': ..., 'cert': ..., 'key': ...} paths of the lab TLS material."""
    path = ensure(assets, "tls", _build_tls)
    return {"ca": os.path.join(path, "ca.pem"), "cert": os.path.join(path, "server.pem"),
            "key": os.path.join(path, "server.key")}
