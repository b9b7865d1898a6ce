#!/usr/bin/env python3
"""Every field of flowpic.v1.Verdict is mirrored along the verdict's path.

Reads the Verdict message from proto/flowpic.proto (submessages FlowKey and
Span expanded to their leaf fields, e.g. "span.start_unix_ns"; those named in
WHOLE, the picture Cells, taken as one field) and checks,
for each leaf, that it is

  - a member of struct stream_verdict in stream/stream.h (the agent's copy),
  - set in stream/encode.c (the nanopb struct: m->seq, m->flow.src_port, ...),
  - read from the protobuf-c Verdict by each store: collector/store.c (shared
    by both) or the backend's own file (store_sqlite.c, store_pg.c),
  - a column of CREATE TABLE verdicts in both SQL schemas (store_sqlite.c and
    store_pg.c's schema_sql).

The places are listed in proto/flowpic.proto's "Mirrored in:" comment.
A new field must be added to all of them, or named below with the reason.

Before the real check the test proves it can fail (--no-self-check skips
this): a temporary copy of the proto with one extra field in Verdict and one
in Span must be reported missing everywhere, and a temporary schema without a
column must be reported.

Usage: test_verdict_mirror.py [--root SRC] [--no-self-check] [--self-check-only]
"""
import argparse
import os
import re
import shutil
import sys
import tempfile

# Fields stored under another name: proto leaf path -> SQL column.
COLUMN_NAME = {
    "class_name": "class",            # "class" reads better in queries
    "span.start_unix_ns": "start_ns",  # the span's start, ns since the epoch
}

# Fields deliberately not stored, with the reason (none today: every field of
# a verdict is a column).  E.g. "foo": "debug only, agent-local".
NOT_STORED = {}

# Submessages mirrored whole, not leaf by leaf, with the reason: one member
# of struct stream_verdict, m->NAME in stream/encode.c, ->NAME read by the
# stores, one column NAME.
WHOLE = {
    "cells": "a picture: struct stream_cells in stream_verdict, encoded once at submit; "
             "stored as its protobuf encoding in one nullable column (BLOB, BYTEA), read "
             "back by store_get_cells()",
}

# Fields deliberately not in struct stream_verdict, with the reason.
NOT_IN_STREAM_VERDICT = {
    "seq": "numbered by stream_submit() (the identity within the run), not the caller's",
}

# Fields that name the submessage itself rather than a leaf are expanded.
SCALARS = {"double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
           "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes"}

STORE_BACKENDS = ("collector/store_sqlite.c", "collector/store_pg.c")
STORE_SHARED = "collector/store.c"


def strip_proto_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def proto_messages(text):
    """{message name: [(label, type, name, number)]}, enums as a set of names."""
    text = strip_proto_comments(text)
    msgs, enums = {}, set(re.findall(r"\benum\s+(\w+)\s*\{", text))
    for m in re.finditer(r"\bmessage\s+(\w+)\s*\{([^{}]*)\}", text):
        fields = []
        for f in re.finditer(r"(?:(repeated|optional)\s+)?([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*[;\[]",
                             m.group(2)):
            fields.append((f.group(1) or "", f.group(2), f.group(3), int(f.group(4))))
        msgs[m.group(1)] = fields
    return msgs, enums


def verdict_leaves(proto_text):
    """[(path, leaf, parent or None, repeated)] of Verdict, submessages expanded."""
    msgs, enums = proto_messages(proto_text)
    if "Verdict" not in msgs or not msgs["Verdict"]:
        raise SystemExit("no message Verdict with fields in the proto")
    out = []
    for label, typ, name, _ in msgs["Verdict"]:
        if typ in SCALARS or typ in enums or (name in WHOLE and typ in msgs):
            out.append((name, name, None, label == "repeated"))
        elif typ in msgs:
            for sl, st, sn, _ in msgs[typ]:
                if not (st in SCALARS or st in enums):
                    raise SystemExit("Verdict.%s.%s: nested message %s: teach the test" %
                                     (name, sn, st))
                out.append(("%s.%s" % (name, sn), sn, name, sl == "repeated"))
        else:
            raise SystemExit("Verdict.%s: unknown type %s" % (name, typ))
    return out


def strip_c_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def c_string(text, var):
    """The concatenated literal of `static const char var[] = "..." "...";`."""
    m = re.search(r"\b%s\s*\[\]\s*=\s*((?:\s*\"(?:[^\"\\]|\\.)*\")+)\s*;" % re.escape(var),
                  strip_c_comments(text))
    if not m:
        return None
    return "".join(re.findall(r"\"((?:[^\"\\]|\\.)*)\"", m.group(1)))


def verdict_columns(c_text):
    """Column names of CREATE TABLE ... verdicts (...) in the file's schema_sql."""
    sql = c_string(c_text, "schema_sql")
    if sql is None:
        return None
    m = re.search(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?verdicts\s*\(", sql, re.I)
    if not m:
        return None
    depth, i, start, parts = 1, m.end(), m.end(), []
    while i < len(sql) and depth:
        c = sql[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if (c == "," and depth == 1) or depth == 0:
            parts.append(sql[start:i])
            start = i + 1
        i += 1
    cols = set()
    for p in parts:
        w = p.split()
        if w and w[0].upper() not in ("PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "CONSTRAINT"):
            cols.add(w[0].strip('"'))
    # Columns added later by ALTER TABLE count too.
    for a in re.finditer(r"ALTER\s+TABLE\s+verdicts\s+ADD\s+COLUMN\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                         r"(\w+)", sql, re.I):
        cols.add(a.group(1))
    return cols


def struct_members(c_text, struct):
    m = re.search(r"\bstruct\s+%s\s*\{(.*?)\n\};" % re.escape(struct), strip_c_comments(c_text),
                  re.S)
    if not m:
        return None
    names = set()
    for decl in m.group(1).split(";"):
        decl = re.sub(r"\[[^\]]*\]", "", decl)   # arrays
        decl = re.sub(r":\s*\d+", "", decl)       # bit-fields
        toks = [t.strip() for t in decl.split(",")]
        if not toks or not toks[0]:
            continue
        first = toks[0].split()
        if len(first) < 2:
            continue
        names.add(first[-1].lstrip("*"))
        for t in toks[1:]:
            if t:
                names.add(t.split()[-1].lstrip("*"))
    return names


def read(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        return f.read()


def check(proto_text, src):
    """Problems (list of lines); src: {relative path: text}."""
    problems = []
    leaves = verdict_leaves(proto_text)
    paths = {p for p, _, _, _ in leaves}
    for table, what in ((COLUMN_NAME, "COLUMN_NAME"), (NOT_STORED, "NOT_STORED"),
                        (NOT_IN_STREAM_VERDICT, "NOT_IN_STREAM_VERDICT"), (WHOLE, "WHOLE")):
        for k in table:
            if k not in paths:
                problems.append("%s names %s, not a field of Verdict (stale entry)" % (what, k))

    members = struct_members(src["stream/stream.h"], "stream_verdict")
    if members is None:
        problems.append("stream/stream.h: struct stream_verdict not found")
        members = set()
    encode = strip_c_comments(src["stream/encode.c"])
    shared = strip_c_comments(src[STORE_SHARED])
    backends = {b: strip_c_comments(src[b]) for b in STORE_BACKENDS}
    columns = {}
    for b in STORE_BACKENDS:
        columns[b] = verdict_columns(src[b])
        if not columns[b]:
            problems.append("%s: no CREATE TABLE verdicts in schema_sql" % b)
            columns[b] = set()

    for path, leaf, parent, repeated in leaves:
        # struct stream_verdict: flat, same leaf names.
        if path not in NOT_IN_STREAM_VERDICT and leaf not in members:
            problems.append("Verdict.%s: no member %s in struct stream_verdict (stream/stream.h)"
                            % (path, leaf))
        # nanopb: m->leaf or m->parent.leaf (repeated: also m->leaf_count).
        ref = (r"\bm->%s\b" % re.escape(leaf) if parent is None else
               r"\bm->%s\.%s\b" % (re.escape(parent), re.escape(leaf)))
        if not re.search(ref, encode):
            problems.append("Verdict.%s: not set in stream/encode.c (no %s)" %
                            (path, ref.replace("\\b", "").replace("\\", "")))
        elif repeated and not re.search(r"\bm->%s_count\b" % re.escape(leaf), encode):
            problems.append("Verdict.%s: repeated, but stream/encode.c sets no m->%s_count" %
                            (path, leaf))
        if path in NOT_STORED:
            continue
        # protobuf-c: ->leaf (repeated: ->n_leaf too), in store.c or the backend.
        ref = r"->%s\b" % re.escape(leaf)
        for b in STORE_BACKENDS:
            if not (re.search(ref, shared) or re.search(ref, backends[b])):
                problems.append("Verdict.%s: read neither in %s nor in %s (no ->%s)" %
                                (path, STORE_SHARED, b, leaf))
            elif repeated and not (re.search(r"->n_%s\b" % leaf, shared) or
                                   re.search(r"->n_%s\b" % leaf, backends[b])):
                problems.append("Verdict.%s: repeated, but %s/%s never read ->n_%s" %
                                (path, STORE_SHARED, b, leaf))
            col = COLUMN_NAME.get(path, leaf)
            if col not in columns[b]:
                problems.append("Verdict.%s: no column %s in the verdicts table of %s "
                                "(add it, or map it in COLUMN_NAME, or list it in NOT_STORED)"
                                % (path, col, b))
    return problems


FILES = ("stream/stream.h", "stream/encode.c", STORE_SHARED) + STORE_BACKENDS


def self_check(root, proto_text, src):
    """The check must fail on a proto with new fields, and on a schema missing a column."""
    ok = True
    tmp = tempfile.mkdtemp(prefix="verdict-mirror-")
    try:
        extra = re.sub(r"(message\s+Verdict\s*\{)", r"\1\n  uint32 selfcheck_extra = 99;",
                       proto_text, count=1)
        extra = re.sub(r"(message\s+Span\s*\{)", r"\1\n  uint64 selfcheck_span_extra = 98;",
                       extra, count=1)
        path = os.path.join(tmp, "flowpic.proto")
        with open(path, "w", encoding="utf-8") as f:
            f.write(extra)
        with open(path, encoding="utf-8") as f:
            problems = check(f.read(), src)
        for field in ("selfcheck_extra", "span.selfcheck_span_extra"):
            hits = [p for p in problems if p.startswith("Verdict.%s:" % field)]
            # stream.h, encode.c, 2 x store access, 2 x column.
            if len(hits) != 6:
                print("self-check FAILED: an extra field %s in a copy of the proto gave %d "
                      "problems, not 6:\n  %s" % (field, len(hits), "\n  ".join(problems)))
                ok = False
        others = [p for p in problems if "selfcheck_" not in p]
        if others:
            print("self-check: unrelated problems (reported by the real check below)")
        # A schema without the reason column.
        pg = src["collector/store_pg.c"]
        broken = dict(src)
        broken["collector/store_pg.c"] = re.sub(
            r"reason TEXT NOT NULL DEFAULT 'unspecified',", "", pg, count=1)
        broken["collector/store_pg.c"] = re.sub(r"ALTER TABLE verdicts ADD COLUMN[^;]*;", "",
                                                broken["collector/store_pg.c"], count=1)
        if broken["collector/store_pg.c"] == pg:
            print("self-check FAILED: could not remove the reason column from a copy of "
                  "store_pg.c's schema (schema changed? update the self-check)")
            ok = False
        else:
            hits = [p for p in check(proto_text, broken)
                    if p.startswith("Verdict.reason: no column reason") and "store_pg.c" in p]
            if len(hits) != 1:
                print("self-check FAILED: a store_pg.c schema without the reason column was "
                      "not reported")
                ok = False
    finally:
        shutil.rmtree(tmp)
    if ok:
        print("self-check: ok (extra proto fields and a missing column are caught)")
    return ok


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.path.normpath(os.path.join(here, "..", "..")),
                    help="the source tree (default: this file's ../..)")
    ap.add_argument("--proto", help="the .proto to check (default: ROOT/proto/flowpic.proto)")
    ap.add_argument("--no-self-check", action="store_true", help="only the real check")
    ap.add_argument("--self-check-only", action="store_true", help="only the self-check")
    args = ap.parse_args()

    proto_path = args.proto or os.path.join(args.root, "proto", "flowpic.proto")
    with open(proto_path, encoding="utf-8") as f:
        proto_text = f.read()
    src = {rel: read(args.root, rel) for rel in FILES}

    ok = True
    if not args.no_self_check:
        ok = self_check(args.root, proto_text, src) and ok
    if args.self_check_only:
        return 0 if ok else 1
    problems = check(proto_text, src)
    leaves = verdict_leaves(proto_text)
    if problems:
        print("%s: Verdict fields not mirrored (see its 'Mirrored in:' comment):" % proto_path)
        for p in problems:
            print("  " + p)
        ok = False
    else:
        print("ok: %d Verdict fields (%s) mirrored in stream.h, encode.c, both stores and "
              "both schemas" % (len(leaves), ", ".join(p for p, _, _, _ in leaves)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
