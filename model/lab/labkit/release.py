"""The dataset's compact, committed form: per session, the labeled samples of
its flows as a samples CSV (docs/csv.md) with a `label` column, xz
compressed, plus the manifest and SHA-256 checksums.  flowpic reads these
files directly (extra columns are ignored), so training needs no pcap and
no second parser."""
import hashlib
import ipaddress
import lzma
import os
import subprocess

from labkit.labels import _port_in


class DamagedCapture(Exception):
    """A session's capture does not read to its end: left out of the release."""


def label_packet(proto, src, sport, dst, dport, record):
    servers = record["_servers"]
    if src in servers:
        port = sport
    elif dst in servers:
        port = dport
    else:
        return "unlabeled"
    for sel in record["flows"]:
        if sel["proto"] == proto and _port_in(port, sel):
            return sel["label"]
    return "unlabeled"


def write_session(flowpic, pcap, record, out_path):
    """Labeled samples CSV of one session; returns (rows kept, rows unlabeled)."""
    record = dict(record, _servers={str(ipaddress.ip_address(s)) for s in record["servers"]})
    p = subprocess.Popen([flowpic, "export", "-q", pcap], stdout=subprocess.PIPE, text=True)
    kept = unlabeled = 0
    with lzma.open(out_path + ".part", "wt", preset=9) as out:
        for line in p.stdout:
            if line.startswith("#"):
                out.write(line)
                continue
            if line.startswith("time,"):
                out.write(line.rstrip("\n") + ",label\n")
                continue
            f = line.split(",", 6)
            proto = "tcp" if f[1] == "6" else "udp"
            label = label_packet(proto, f[2], int(f[3]), f[4], int(f[5]), record)
            if label == "unlabeled":
                unlabeled += 1
                continue
            out.write(line.rstrip("\n") + "," + label + "\n")
            kept += 1
    if p.wait() != 0:
        os.unlink(out_path + ".part")
        raise DamagedCapture(f"{pcap}: flowpic export exit {p.returncode} (capture damaged?)")
    os.replace(out_path + ".part", out_path)
    return kept, unlabeled


def sha256sums(root, names):
    lines = []
    for name in sorted(names):
        h = hashlib.sha256()
        with open(os.path.join(root, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        lines.append(f"{h.hexdigest()}  {name}\n")
    with open(os.path.join(root, "SHA256SUMS"), "w") as f:
        f.writelines(lines)


def verify(root):
    """List of files whose checksum does not match (empty when all do)."""
    bad = []
    with open(os.path.join(root, "SHA256SUMS")) as f:
        for line in f:
            digest, name = line.split(None, 1)
            name = name.strip()
            h = hashlib.sha256()
            try:
                with open(os.path.join(root, name), "rb") as g:
                    for chunk in iter(lambda: g.read(1 << 20), b""):
                        h.update(chunk)
            except OSError:
                bad.append(name)
                continue
            if h.hexdigest() != digest:
                bad.append(name)
    return bad
