#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""model/captures.py on a folder laid out as a researcher would bring it:
classes from folders and from ISCX-style names, unlabeled and broken files
left out with one line each, whole captures on one side of the split.

  test_captures.py --flowpic build/cli/flowpic
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEMO = os.path.join(ROOT, "data", "demo.pcap.xz")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowpic", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in")
        layout = {"voip/session-a.pcap.xz": "voip", "misc/vpn_skype_audio1.pcap.xz": "voip",
                  "misc/youtube2.pcap.xz": "video", "misc/ftps_down_1a.pcap.xz": "file_transfer",
                  "misc/hangouts_chat_4b.pcap.xz": "chat", "misc/email1a.pcap.xz": None}
        for rel in layout:
            os.makedirs(os.path.join(src, os.path.dirname(rel)), exist_ok=True)
            shutil.copy(DEMO, os.path.join(src, rel))
        with open(os.path.join(src, "misc", "broken_chat.pcap"), "w") as f:
            f.write("not a capture\n")
        out = os.path.join(tmp, "out")
        r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "model", "captures.py"), src,
                            "--out", out, "--flowpic", args.flowpic, "--test-frac", "0.4"],
                           capture_output=True, text=True)
        print(r.stderr, end="")
        assert r.returncode == 0, "captures.py failed"
        assert "misc/email1a.pcap.xz: no class" in r.stderr, "unlabeled file not reported"
        assert "misc/broken_chat.pcap: flowpic export failed" in r.stderr, "bad file not reported"
        seen = {}
        for split in ("train", "test_session"):
            path = os.path.join(out, split + ".csv")
            if not os.path.exists(path):
                continue
            for row in csv.DictReader(open(path)):
                assert row["session"] not in seen or seen[row["session"]][1] == split, \
                    "%s on both sides of the split" % row["session"]
                seen[row["session"]] = (row["class"], split)
                assert int(row["block"]) >= 0 and row["class"] == layout[row["session"]], row
        want = {k for k, v in layout.items() if v}
        assert set(seen) == want, "labeled captures %s, expected %s" % (sorted(seen), sorted(want))
        assert len({s for _, s in seen.values()}) == 2, "expected both splits to be used"
        # A rules file replaces the built-in rules; a bad line is one clear error.
        rules = os.path.join(tmp, "rules")
        with open(rules, "w") as f:
            f.write("# mine\nemail browsing\n(unclosed video\n")
        r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "model", "captures.py"), src,
                            "--out", out, "--flowpic", args.flowpic, "--rules", rules],
                           capture_output=True, text=True)
        assert r.returncode != 0 and ":3: bad regular expression" in r.stderr, r.stderr
    print("test_captures: ok (%d captures labeled, unlabeled and broken ones left out)" % len(want))


if __name__ == "__main__":
    sys.exit(main())
