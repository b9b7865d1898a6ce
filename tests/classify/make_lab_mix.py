#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Make data/lab-mix.pcap.xz: a few held-out lab sessions of every class, as
if they ran at once on one link.

Only sessions of the lab's test_session split (never used for training or
model choices) that are in the release (model/data/lab-v1/manifest.jsonl).
Each capture is cut to 74 bytes a packet (headers: sizes come from the IP
length fields), shifted to start when the first one does, and session k's
addresses 10.a.0.h become 10.a.k.h so no two sessions share a 5-tuple and
every flow can be labeled from its addresses. Writes the capture, its
labels (data/lab-mix.labels.jsonl: one line per session, the lab's
selectors with the new addresses) for labkit.labels.label_flow().

    tests/classify/make_lab_mix.py [--lab /var/tmp/fplab-v1] [--out data]
"""
import argparse
import heapq
import json
import lzma
import os
import struct
import sys

SESSIONS = [
    "browsing-browse-h2-0005",
    "video-video-dash-h2-0008",
    "voip-baresip-g711-0000",
    "file_transfer-https-curl-0002",
    "file_transfer-ftp-lftp-0007",
    "chat-xmpp-prosody-0003",
    "chat-xmpp-prosody-0011",
]
SNAP = 74
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        sys.exit(f"{path}: not a little-endian pcap")
    nsec = magic == b"\x4d\x3c\xb2\xa1"
    linktype = struct.unpack_from("<I", data, 20)[0]
    off, recs = 24, []
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack_from("<IIII", data, off)
        if incl > 262144 or off + 16 + incl > len(data):
            print(f"{path}: damaged record at byte {off}: the rest left out", file=sys.stderr)
            break
        ts = sec * 10**9 + frac * (1 if nsec else 1000)
        recs.append((ts, data[off + 16:off + 16 + incl], orig))
        off += 16 + incl
    return linktype, recs


def ip_checksum(hdr):
    s = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def rewrite(frame, k):
    """10.a.0.h -> 10.a.k.h in an Ethernet/IPv4 frame (header checksum kept right)."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return frame
    ihl = (frame[14] & 15) * 4
    if len(frame) < 14 + ihl:
        return frame
    b = bytearray(frame)
    for o in (26, 30):
        if b[o] == 10 and b[o + 2] == 0:
            b[o + 2] = k
    b[24:26] = b"\0\0"
    b[24:26] = struct.pack("!H", ip_checksum(bytes(b[14:14 + ihl])))
    return bytes(b)


def new_addr(a, k):
    p = a.split(".")
    return f"{p[0]}.{p[1]}.{k}.{p[3]}" if p[0] == "10" and p[2] == "0" else a


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lab", default="/var/tmp/fplab-v1")
    ap.add_argument("--out", default=os.path.join(ROOT, "data"))
    args = ap.parse_args()
    lab = {json.loads(l)["id"]: json.loads(l) for l in open(os.path.join(args.lab, "manifest.jsonl"))}
    rel = {json.loads(l)["id"] for l in open(os.path.join(ROOT, "model/data/lab-v1/manifest.jsonl"))}
    streams, labels, t0, link = [], [], None, None
    for k, sid in enumerate(SESSIONS, 1):
        rec = lab[sid]
        if rec["split"] != "test_session" or sid not in rel:
            sys.exit(f"{sid}: not a released test_session session")
        lt, recs = read_pcap(os.path.join(args.lab, "pcaps", sid + ".pcap"))
        if link is None:
            link = lt
        elif lt != link:
            sys.exit(f"{sid}: link type {lt}, the others {link}")
        first = recs[0][0]
        if t0 is None:
            t0 = first
        streams.append([(ts - first + t0, i, k, rewrite(fr[:SNAP], k), orig)
                        for i, (ts, fr, orig) in enumerate(recs)])
        labels.append({"session": sid, "class": rec["class"], "app": rec["app"],
                       "profile": rec["profile"], "split": rec["split"], "seconds": rec["seconds"],
                       "client": new_addr(rec["client"], k),
                       "servers": [new_addr(s, k) for s in rec["servers"]],
                       "flows": rec["flows"], "packets": len(recs)})
    out = os.path.join(args.out, "lab-mix.pcap.xz")
    with lzma.open(out + ".part", "wb", preset=9 | lzma.PRESET_EXTREME) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, SNAP, link))
        for ts, _, _, fr, orig in heapq.merge(*streams):
            f.write(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(fr), orig) + fr)
    os.replace(out + ".part", out)
    with open(os.path.join(args.out, "lab-mix.labels.jsonl"), "w") as f:
        for l in labels:
            f.write(json.dumps(l, sort_keys=True) + "\n")
    print(f"{out}: {sum(len(s) for s in streams)} packets, {os.path.getsize(out) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
