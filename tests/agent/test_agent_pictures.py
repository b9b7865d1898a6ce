#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The agent's --send-pictures to a real flowpic-collector (issue 14).

Replays a capture (data/lab-mix.pcap.xz) with `flowpic-agent --pcap ...
--collector ... --send-pictures` into a collector on SQLite, and checks:

  - every block verdict (early, block) is stored with a picture, every flow
    verdict (final) without (cells NULL); stream.pictures counts them all,
    nothing left out (pictures_too_big, pictures_no_room 0);
  - each stored picture, decoded from its protobuf bytes (axes and layout of
    proto/flowpic.proto, Cells), equals exactly the picture `flowpic export
    --format npy --direction D` gives for the same flow and block (D: the
    model's direction, split for the default model), and its rows, cols,
    dirs and window are the model's;
  - store_get_cells() (tests/collector/cells_tool.c) reads the same for a few;
  - without --send-pictures nothing is sent: every cells is NULL.

--measure also prints the cost (docs/stream.md, "Pictures"): the encoded
size of a block verdict with and without its picture (mean, p50, p99), the
HTTP/2 bytes the collector read, and the storage per verdict in SQLite (file
size / rows) and PostgreSQL (pg_total_relation_size / rows).

Usage: test_agent_pictures.py AGENT FLOWPIC COLLECTOR CELLS_TOOL CAPTURE [--measure]
"""
import csv
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "collector"))
import harness as h  # noqa: E402

PASS, FAIL = [], []


def check(cond, what):
    (PASS if cond else FAIL).append(what)
    print(("ok   " if cond else "FAIL ") + what)


def replay(agent, capture, address, agent_id, pictures, tmp):
    cmd = [agent, "--pcap", capture, "--collector", address, "--agent-id", agent_id]
    if pictures:
        cmd.append("--send-pictures")
    out = os.path.join(tmp, agent_id + ".out")
    with open(out, "w") as o:
        r = subprocess.run(cmd, stdout=o, stderr=subprocess.PIPE, text=True, timeout=300)
    counters = [json.loads(l)["counters"] for l in r.stderr.splitlines()
                if l.startswith('{"counters"')]
    return r.returncode, (counters[-1] if counters else {}), r.stderr


def dense(m, blob):
    """The stored Cells bytes -> (rows, cols, dirs, window_ns, planes x rows x cols list)."""
    c = m.Cells.FromString(blob)
    planes = 2 if c.dirs == m.PICTURE_DIRS_SPLIT else 1
    pic = [0] * (planes * c.rows * c.cols)
    at = 0
    for d, n in zip(c.index_delta, c.count):
        at += d
        pic[at] = n
    return c.rows, c.cols, c.dirs, c.window_ns, pic


def npy_u8(path):
    """A .npy of uint8 (what flowpic export writes): (shape, flat bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:6] == b"\x93NUMPY", path
    hlen = int.from_bytes(data[8:10], "little")
    header = data[10:10 + hlen].decode()
    assert "'|u1'" in header and "'fortran_order': False" in header, header
    shape = tuple(int(x) for x in header.split("'shape': (")[1].split(")")[0].split(",")
                  if x.strip())
    return shape, data[10 + hlen:]


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def varint_len(n):
    k = 1
    while n >= 128:
        n >>= 7
        k += 1
    return k


def verdict_sizes(m, db, agent_id):
    """Per block verdict: its encoded Verdict without and with the picture,
    rebuilt from the stored row (the fields the agent sent) plus the stored
    Cells bytes, each with its tag and length prefix in the Batch."""
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT seq, interface, src_addr, dst_addr, src_port, dst_port, protocol, direction,"
        " flow_id, stage, start_ns, duration_ns, packets_fwd, packets_rev, bytes_fwd,"
        " bytes_rev, block_index, blocks, class, confidence, probs, reason, cells"
        " FROM verdicts WHERE agent_id = ? AND stage IN ('early', 'block')",
        (agent_id,)).fetchall()
    con.close()
    import ipaddress
    without, with_ = [], []
    for r in rows:
        v = m.Verdict()
        v.seq = r[0]
        v.interface = r[1]
        v.flow.src_addr = ipaddress.ip_address(r[2]).packed
        v.flow.dst_addr = ipaddress.ip_address(r[3]).packed
        v.flow.src_port, v.flow.dst_port, v.flow.protocol = r[4], r[5], r[6]
        v.direction = {"outbound": 1, "inbound": 2}.get(r[7], 0)
        v.flow_id = r[8]
        v.stage = {"early": 1, "block": 2}[r[9]]
        v.span.start_unix_ns, v.span.duration_ns = r[10], r[11]
        v.span.packets_fwd, v.span.packets_rev = r[12], r[13]
        v.span.bytes_fwd, v.span.bytes_rev = r[14], r[15]
        v.span.block_index, v.span.blocks = r[16], r[17]
        v.class_name = r[18]
        v.confidence = r[19]
        v.probs.extend(json.loads(r[20]).values())
        v.reason = {"ok": 1, "other": 2, "sparse": 3}.get(r[21], 0)
        n = v.ByteSize()
        without.append(1 + varint_len(n) + n)
        if r[22] is not None:
            v.cells.CopyFrom(m.Cells.FromString(r[22]))
        n = v.ByteSize()
        with_.append(1 + varint_len(n) + n)
    return without, with_


def stats(xs):
    return "mean %.1f, p50 %d, p99 %d, max %d" % (sum(xs) / len(xs), percentile(xs, 50),
                                                 percentile(xs, 99), max(xs))


def sqlite_size(db):
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rows = con.execute("SELECT count(*) FROM verdicts").fetchone()[0]
    con.close()
    return os.path.getsize(db), rows


def encodings(m, blobs):
    """Mean bytes per picture of other encodings of the same pixels, to compare."""
    out = {"delta-coded indexes (sent)": [], "absolute indexes": [], "one interleaved run": [],
           "dense bytes": [], "bitmap + counts": []}
    for blob in blobs:
        c = m.Cells.FromString(blob)
        index, at = [], 0
        for d in c.index_delta:
            at += d
            index.append(at)
        head = len(blob) - sum(varint_len(x) for x in c.index_delta) - \
            sum(varint_len(x) for x in c.count) - \
            (2 + varint_len(sum(varint_len(x) for x in c.index_delta)) +
             varint_len(sum(varint_len(x) for x in c.count)) if index else 0)
        counts = sum(varint_len(x) for x in c.count)

        def packed(n):
            return 1 + varint_len(n) + n if n else 0
        planes = 2 if c.dirs == m.PICTURE_DIRS_SPLIT else 1
        npx = planes * c.rows * c.cols
        out["delta-coded indexes (sent)"].append(len(blob))
        out["absolute indexes"].append(head + packed(sum(varint_len(i) for i in index)) +
                                       packed(counts))
        out["one interleaved run"].append(head + packed(sum(varint_len(x) for x in
                                                           c.index_delta) + counts))
        out["dense bytes"].append(head + packed(npx))
        out["bitmap + counts"].append(head + packed((npx + 7) // 8) + packed(len(index)))
    for k, v in out.items():
        print("measure: encoding %-28s mean %.1f bytes per picture" % (k + ":", sum(v) / len(v)))


def measure(agent, capture, binary, tmp, m, runs=20):
    """Storage per verdict, with and without pictures: the capture replayed
    runs times (an agent id each) into fresh SQLite and PostgreSQL stores."""
    pg = h.PgServer()
    try:
        for name, pics in (("with", True), ("without", False)):
            db = os.path.join(tmp, "measure-%s.db" % name)
            pg.psql("DROP TABLE IF EXISTS verdicts CASCADE")
            for url in ("sqlite:" + db, pg.url):
                c = h.Collector(binary, url, token=None)
                for i in range(runs):
                    rc, k, err = replay(agent, capture, c.address, "m%d" % i, pics, tmp)
                    assert rc == 0, err
                c.stop()
            size, rows = sqlite_size(db)
            print("measure: sqlite %s pictures: %d bytes / %d verdicts = %.1f bytes per verdict"
                  % (name, size, rows, size / rows))
            size = int(pg.psql("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
                               " WHERE c.relname LIKE 'verdicts%' AND c.relkind = 'r'")[0][0])
            rows = int(pg.psql("SELECT count(*) FROM verdicts")[0][0])
            cells = pg.psql("SELECT coalesce(sum(octet_length(cells)), 0) FROM verdicts")[0][0]
            print("measure: postgresql %s pictures: %d bytes (tables, indexes, TOAST) / %d "
                  "verdicts = %.1f bytes per verdict; cells column %s bytes"
                  % (name, size, rows, size / rows, cells))
    finally:
        pg.stop()


def main():
    agent, flowpic, binary, tool, capture = sys.argv[1:6]
    measuring = "--measure" in sys.argv[6:]
    m = h.pb()
    with tempfile.TemporaryDirectory(prefix="fpt-agent-pictures-") as tmp:
        pic_db = os.path.join(tmp, "pictures.db")
        plain_db = os.path.join(tmp, "plain.db")

        c = h.Collector(binary, "sqlite:" + pic_db, token=None)
        rc, k, err = replay(agent, capture, c.address, "pics", True, tmp)
        kc = c.stop()
        check(rc == 0, "replay with --send-pictures: exit %d %s" % (rc, err[-300:] if rc else ""))
        con = sqlite3.connect(pic_db)
        rows = con.execute("SELECT flow_id, block_index, stage, seq, run_id, cells"
                           " FROM verdicts WHERE agent_id = 'pics'").fetchall()
        con.close()
        blocks = [r for r in rows if r[2] in ("early", "block")]
        finals = [r for r in rows if r[2] == "final"]
        check(blocks and finals and all(r[5] is not None for r in blocks)
              and all(r[5] is None for r in finals),
              "%d block verdicts with a picture, %d flow verdicts without"
              % (len(blocks), len(finals)))
        check(k.get("stream.pictures") == len(blocks) and k.get("stream.pictures_too_big") == 0
              and k.get("stream.pictures_no_room") == 0 and k.get("stream.acked") == len(rows),
              "counters: stream.pictures %s, too_big %s, no_room %s, acked %s"
              % (k.get("stream.pictures"), k.get("stream.pictures_too_big"),
                 k.get("stream.pictures_no_room"), k.get("stream.acked")))

        # The model's picture: the default model's is split, 32 x 32, 15 s.
        prefix = os.path.join(tmp, "x")
        r = subprocess.run([flowpic, "export", capture, "--format", "npy", "--direction",
                            "split", "-o", prefix, "-q"], capture_output=True, text=True)
        check(r.returncode == 0, "flowpic export --format npy --direction split: %s" % r.stderr)
        shape, data = npy_u8(prefix + ".npy")
        index = {(int(x["flow"]), int(x["block"])): int(x["pic"])
                 for x in csv.DictReader(open(prefix + ".index.csv"))}
        npix = shape[1] * shape[2] * shape[3]
        same, differ, missing = 0, [], []
        for flow, block, stage, seq, run, blob in blocks:
            rows_, cols, dirs, window, pic = dense(m, blob)
            if (flow, block) not in index:
                missing.append((flow, block))
                continue
            i = index[(flow, block)]
            want = list(data[i * npix:(i + 1) * npix])
            if (rows_, cols, dirs, window) == (shape[2], shape[3], 3, 15 * 10**9) and pic == want:
                same += 1
            else:
                differ.append((flow, block))
        check(shape[1] == 2 and not differ and not missing and same == len(blocks) == shape[0],
              "every stored picture (%d) = flowpic export's for its flow and block "
              "(shape %s; differ %s, missing %s)" % (same, shape, differ[:5], missing[:5]))

        # store_get_cells() on a few (the largest pictures among them).
        few = sorted(blocks, key=lambda r: -len(r[5]))[:3] + blocks[:2]
        ok = True
        for flow, block, stage, seq, run, blob in few:
            g = subprocess.run([tool, "get", "sqlite:" + pic_db, "pics", str(run), str(seq)],
                               capture_output=True, text=True)
            got = json.loads(g.stdout)
            _, _, _, _, pic = dense(m, blob)
            nz = [(i, n) for i, n in enumerate(pic) if n]
            ok = ok and g.returncode == 0 and list(zip(got["index"], got["count"])) == nz
        check(ok, "store_get_cells() reads the same pixels (%d verdicts, up to %d bytes)"
              % (len(few), len(few[0][5])))

        c = h.Collector(binary, "sqlite:" + plain_db, token=None)
        rc, k2, err = replay(agent, capture, c.address, "plain", False, tmp)
        kp = c.stop()
        nulls = h.sqlite_rows(plain_db, "SELECT count(*), count(cells) FROM verdicts")
        check(rc == 0 and nulls[0][0] == len(rows) and nulls[0][1] == 0
              and k2.get("stream.pictures") == 0,
              "without --send-pictures: %d verdicts, no picture stored or sent" % nulls[0][0])

        without, with_ = verdict_sizes(m, pic_db, "pics")
        blob_lens = [len(r[5]) for r in blocks]
        print("block verdicts: %d; Cells bytes: %s" % (len(blocks), stats(blob_lens)))
        print("block verdict on the wire without its picture: %s" % stats(without))
        print("block verdict on the wire with its picture:    %s" % stats(with_))
        print("HTTP/2 bytes read by the collector: with %d, without %d (+%.1f per block "
              "verdict)" % (kc["bytes_in"], kp["bytes_in"],
                            (kc["bytes_in"] - kp["bytes_in"]) / len(blocks)))
        if measuring:
            encodings(m, [r[5] for r in blocks])
            measure(agent, capture, binary, tmp, m)
    print("%d passed, %d failed" % (len(PASS), len(FAIL)))
    return 1 if FAIL else 0


if __name__ == "__main__":
    sys.exit(main())
