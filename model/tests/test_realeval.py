#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""model/realeval.py's arithmetic and rules on hand-made examples (no data, ~1 s):
the measures (precision, recall, F1, coverage, precision of class verdicts,
background false-positive rate) on a tiny table worked out by hand; the split
rule; direction-free flow keys; ndpi labels; the vtd-youtube conversion (and,
with --flowpic, that flowpic reads the converted CSV as one flow per session).

  test_realeval.py [--flowpic build/cli/flowpic]
"""
import argparse
import json
import lzma
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import realeval as R  # noqa: E402

FAILS = []


def check(what, got, want, tol=1e-9):
    ok = (got is None and want is None) or (
        got is not None and want is not None and
        (abs(got - want) <= tol if isinstance(want, float) else got == want))
    if not ok:
        FAILS.append(f"{what}: got {got!r}, want {want!r}")


def test_metrics():
    pairs = [("video", "video"), ("video", "video"), ("video", "unknown"), ("video", "chat"),
             ("chat", "chat"), ("other", "video"), ("other", "unknown"), ("other", "chat"),
             ("voip", "voip")]
    m = R.metrics(pairs)
    pc = m["per_class"]
    # video: TP 2, FP 1 (the other flow called video), FN 2 (unknown, chat)
    check("video tp", pc["video"]["tp"], 2)
    check("video fp", pc["video"]["fp"], 1)
    check("video fn", pc["video"]["fn"], 2)
    check("video precision", pc["video"]["precision"], 2 / 3)
    check("video recall", pc["video"]["recall"], 2 / 4)
    check("video f1", pc["video"]["f1"], 4 / 7)
    # chat: TP 1, FP 2 (a video flow, an other flow), FN 0
    check("chat precision", pc["chat"]["precision"], 1 / 3)
    check("chat recall", pc["chat"]["recall"], 1.0)
    check("chat f1", pc["chat"]["f1"], 0.5)
    check("voip f1", pc["voip"]["f1"], 1.0)
    # no flow and no verdict: undefined, not 0
    check("file_transfer precision", pc["file_transfer"]["precision"], None)
    check("file_transfer f1", pc["file_transfer"]["f1"], None)
    check("class items", m["class_items"], 6)
    check("other items", m["other_items"], 3)
    # 5 of the 6 class flows got a class (one unknown)
    check("coverage", m["coverage"], 5 / 6)
    # 7 class verdicts (other flows included), 4 right
    check("class verdicts", m["class_verdicts"], 7)
    check("precision", m["precision"], 4 / 7)
    # 2 of the 3 other flows got a class
    check("background fp", m["background_fp_rate"], 2 / 3)
    check("accuracy", m["accuracy"], 4 / 6)
    check("macro f1", m["macro_f1"], (4 / 7 + 0.5 + 1.0) / 3)
    check("confusion other->unknown", m["confusion"]["other"].get("unknown"), 1)
    # a class with flows but no right verdict has F1 0, not undefined
    m2 = R.metrics([("file_transfer", "chat"), ("other", "unknown")])
    check("ft f1 (no tp)", m2["per_class"]["file_transfer"]["f1"], 0.0)
    check("ft precision (no verdict)", m2["per_class"]["file_transfer"]["precision"], None)
    check("chat precision (only wrong)", m2["per_class"]["chat"]["precision"], 0.0)
    check("bg fp 0", m2["background_fp_rate"], 0.0)
    check("empty coverage", R.metrics([])["coverage"], None)
    check("bins", [R.bin_of(n) for n in (1, 4, 5, 19, 20, 99, 100, 499, 500, 10**6)],
          ["<5", "<5", "5-19", "5-19", "20-99", "20-99", "100-499", "100-499", ">=500", ">=500"])


def test_rules():
    k1 = R.flow_key("tcp", "10.0.0.1", 443, "10.0.0.2", "5000")
    k2 = R.flow_key(6, "10.0.0.2", "5000", "10.0.0.1", "443")
    check("flow key direction-free", k1, k2)
    check("ipv6 normalised", R.flow_key(17, "2001:db8:0::1", 1, "::2", 2),
          R.flow_key("udp", "::2", 2, "2001:db8::1", 1))
    check("key_str round trip", R.key_from_str(R.key_str(k1)), k1)
    check("requet A_ train", R.split_of("requet", "A_x.pcap.xz"), "train")
    check("requet B1 test", R.split_of("requet", "B1_x.pcap.xz"), "test")
    check("bittorrent test", R.split_of("bittorrent", "small_torrent.pcap.xz"), "test")
    check("g711a test", R.split_of("sip", "g711a.pcap"), "test")
    check("vtd 1080 held out", R.split_of("vtd-youtube", "1080_3",
                                          "youtube_1080_1080_merged_023.csv.xz"), "test")
    names = [f"f{i}.pcap" for i in range(400)]
    tr = [n for n in names if R.split_of("zeek", n) == "train"]
    check("split deterministic", tr, [n for n in names if R.split_of("zeek", n) == "train"])
    check("split about 70 % train", 0.6 < len(tr) / len(names) < 0.8, True)
    check("in_split all", R.in_split("all", "zeek", "x"), True)
    check("whatsapp chat", R.label_of("whatsapp-web", "TLS.WhatsAppFiles"), "chat")
    check("bittorrent ft", R.label_of("bittorrent", "BitTorrent"), "file_transfer")
    check("sip voip", R.label_of("sip", "RTP"), "voip")
    check("dns other", R.label_of("zeek", "DNS.Google"), "other")
    check("smb other", R.label_of("suricata", "SMBv23"), "other")
    check("http ambiguous", R.label_of("zeek", "HTTP"), "ambiguous")
    check("rtp outside sip ambiguous", R.label_of("zeek", "RTP"), "ambiguous")
    check("unknown unlabeled", R.label_of("suricata", "Unknown"), "unlabeled")


def test_vtd(flowpic):
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "youtube_480_480_merged_999.csv.xz")
        with lzma.open(src, "wt") as f:
            f.write("session,480_a\nrel_ts_us,len\n0,1292\n47,-1292\n2206,-82\n")
            f.write("session,480_b\nrel_ts_us,len\n0,-60\n1000000,100\n")
        out, sess = R.convert_vtd(src, tmp)
        check("sessions", sorted(sess), ["480_a", "480_b"])
        rows = [l.strip().split(",") for l in open(out) if l[0].isdigit()]
        check("rows", len(rows), 5)
        # uplink first: client -> server, size = 1292 - 42
        check("row0", rows[0][1:7], ["17", "10.0.0.2", "40000", "10.0.0.1", "443", "1250"])
        check("row1 downlink", rows[1][1:7], ["17", "10.0.0.1", "443", "10.0.0.2", "40000", "1250"])
        check("row1 time", rows[1][0], "1700000000.000047")
        check("row2 size", rows[2][6], "40")
        # second session starts 1000 s later, on the next port, server first
        check("row3", rows[3][0:7], ["1700001000.000000", "17", "10.0.0.1", "443", "10.0.0.2",
                                     "40001", "18"])
        if flowpic:
            r = subprocess.run([flowpic, "classify", "--json", "--quiet", out],
                               capture_output=True, text=True)
            fl = [o for o in map(json.loads, r.stdout.splitlines()) if o["type"] == "flow"]
            check("flowpic: one flow a session", len(fl), 2)
            keys = {R.key_str(R.flow_key(f["proto"], f["src"], f["sport"], f["dst"], f["dport"]))
                    for f in fl}
            check("flowpic: keys", keys, set(sess.values()))
            check("flowpic: packets", sorted(f["packets"] for f in fl), [2, 3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowpic", help="also classify the converted CSV with this CLI")
    args = ap.parse_args()
    test_metrics()
    test_rules()
    test_vtd(args.flowpic if args.flowpic and os.access(args.flowpic, os.X_OK) else None)
    for f in FAILS:
        print("FAIL", f)
    print("test_realeval:", "FAILED" if FAILS else "ok")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
