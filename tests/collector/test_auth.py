#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Authentication: a wrong or missing token gets UNAUTHENTICATED and stores
nothing; with mutual TLS, a client without a certificate, or with one from
another CA, fails the handshake; the right certificate and token pass."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def main():
    binary = h.collector_binary()
    d = tempfile.mkdtemp(prefix="fpt-collector-auth-")
    try:
        pki = h.make_pki(d)
        path = os.path.join(d, "v.db")
        tokfile = os.path.join(d, "token")
        with open(tokfile, "w") as f:
            f.write("s3cret-token\n")
        c = h.Collector(binary, "sqlite:" + path, "--token-file", tokfile, token=False)
        b = [h.make_batch(n=5)]
        for tok in ("wrong", None, "s3cret-token-and-more", "s3cret-toke"):
            acks, code, det = h.stream(c.address, b, token=tok)
            assert code.name == "UNAUTHENTICATED" and not acks, (tok, code, det)
        acks, code, det = h.stream(c.address, b, token="s3cret-token")
        assert code.name == "OK" and acks[0].stored == 5, (code, det)
        k = c.stop()
        assert k["err_unauthenticated"] == 4 and k["verdicts_stored"] == 5, k
        assert h.sqlite_rows(path, "SELECT count(*) FROM verdicts") == [(5,)]

        # Mutual TLS.
        c = h.Collector(binary, "sqlite:" + path, token=None,
                        tls={"cert": pki["server"] + ".pem", "key": pki["server"] + ".key",
                             "client_ca": pki["ca"] + ".pem"})
        base = {"ca": pki["ca"] + ".pem", "name": "localhost"}
        b2 = [h.make_batch(agent_id="agent-mtls", n=7)]
        acks, code, det = h.stream(c.address, b2, tls=base, timeout=5)
        assert code.name == "UNAVAILABLE" and not acks, ("no client certificate", code, det)
        rogue = dict(base, cert=pki["rogue"] + ".pem", key=pki["rogue"] + ".key")
        acks, code, det = h.stream(c.address, b2, tls=rogue, timeout=5)
        assert code.name == "UNAVAILABLE" and not acks, ("certificate of another CA", code, det)
        good = dict(base, cert=pki["client"] + ".pem", key=pki["client"] + ".key")
        acks, code, det = h.stream(c.address, b2, tls=good)
        assert code.name == "OK" and acks[0].stored == 7, (code, det)
        k = c.stop()
        assert k["err_tls_handshake"] >= 2 and k["verdicts_stored"] == 7, k
        err = c.stderr()
        assert "TLS handshake failed" in err, err
        assert h.sqlite_rows(path, "SELECT count(*) FROM verdicts WHERE agent_id = 'agent-mtls'") \
            == [(7,)]
        print("auth: ok")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
