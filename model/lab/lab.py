#!/usr/bin/python3
"""flowpic traffic lab: labeled captures of real applications in network
namespaces, under emulated network profiles.  See model/lab/README.md.

  lab.py list                               drivers, their classes and packages
  lab.py packages                           Debian packages every driver needs
  lab.py try APP [--seconds S] [--profile P] one session of APP, then its labeled flows
  lab.py generate --out DIR [--minutes-per-class M] [--profiles P,..] [--seed S] [--jobs N]
                                            run a dataset's sessions (resumes where it stopped)
  lab.py release DIR --out REL              compact labeled samples + manifest + SHA256SUMS
  lab.py arrays REL [REL...] --out ARR [--res N] [--window S]
                                            training arrays through `flowpic export`
  lab.py stats REL                          sessions, flows, blocks, packets per class and profile
  lab.py examples REL --out DIR             one FlowPic per class as PNG (for docs/lab.md)
  lab.py smoke [--seconds S]                a few seconds of one driver per class, checked for shape

Examples:
  sudo model/lab/lab.py try baresip-opus --seconds 40 --profile lte-good
  sudo model/lab/lab.py generate --out /var/tmp/lab --minutes-per-class 60 --jobs 2
  model/lab/lab.py release /var/tmp/lab --out model/data/lab-v1
  model/lab/lab.py arrays model/data/lab-v1 --out /var/tmp/arrays --res 32
"""
import argparse
import collections
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

from labkit.apps import all_apps  # noqa: E402
from labkit.labels import label_flow  # noqa: E402
from labkit.plan import make_plan  # noqa: E402
from labkit.release import DamagedCapture, sha256sums, verify, write_session  # noqa: E402
from labkit.session import CLASSES, LAB_CLASSES, OTHER, run_session  # noqa: E402
from labkit.topology import Topology, close_all, remove_stale  # noqa: E402


def log(msg):
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(msg)
    sys.exit(1)


def flows_of(flowpic, path):
    out = subprocess.run([flowpic, "flows", "--json", "-q", path], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return [o for o in map(json.loads, out.splitlines()) if o["type"] == "flow"]


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def append_jsonl(path, obj, lock):
    with lock, open(path, "a") as f:
        f.write(json.dumps(obj, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def need_linkem(path):
    if not os.access(path, os.X_OK):
        die(f"no link emulator at {path}: build it (scripts/build.sh) or give --linkem")
    return path


def profiles_module():
    from labkit import profiles  # written with the link emulator
    return profiles


def prepare(args, app_classes):
    """Build the drivers' shared assets before sessions start, so no session
    spends its time on them."""
    for cls in sorted(set(app_classes), key=lambda c: c.NAME):
        if hasattr(cls, "prepare"):
            log(f"preparing assets of {cls.NAME}")
            cls.prepare(args.assets)


def one_session(args, app_cls, profile_name, seconds, seed, slot, pcap):
    profiles = profiles_module()
    app = app_cls()
    link = profiles.draw(profile_name, random.Random(seed)) if profile_name else None
    linkem = need_linkem(args.linkem) if link else None
    return run_session(app, lambda: Topology(slot, app_cls.SERVER_IPS, linkem=linkem, link=link),
                       pcap, seconds, seed, args.assets, link, log)


# ---- commands ----

def cmd_list(args):
    for name, cls in sorted(all_apps().items()):
        print(f"{name:24} {cls.CLASS:14} {' '.join(cls.PACKAGES)}")


def cmd_packages(args):
    pk = sorted({p for cls in all_apps().values() for p in cls.PACKAGES})
    print(" ".join(pk))


def cmd_try(args):
    apps = all_apps()
    if args.app not in apps:
        die(f"no driver named {args.app} (see lab.py list)")
    profiles = profiles_module() if args.profile else None
    if args.profile and args.profile not in profiles.names():
        die(f"no profile {args.profile}; profiles: {', '.join(profiles.names())}")
    os.makedirs(args.out, exist_ok=True)
    prepare(args, [apps[args.app]])
    pcap = os.path.join(args.out, f"try-{args.app}.pcap")
    rec = one_session(args, apps[args.app], args.profile, args.seconds, args.seed, args.slot, pcap)
    print(json.dumps(rec))
    for f in flows_of(args.flowpic, pcap):
        print(f"{label_flow(f, rec):14} {f['proto']} {f['src']}:{f['sport']} -> "
              f"{f['dst']}:{f['dport']} packets {f['packets']} bytes {f['bytes']} "
              f"duration {f['duration']:.1f}s")


def cmd_generate(args):
    apps = all_apps()
    wanted = set(args.classes.split(",")) if args.classes else set(CLASSES)
    if wanted - set(LAB_CLASSES):
        die(f"--classes: no class {', '.join(sorted(wanted - set(LAB_CLASSES)))}; "
            f"classes: {', '.join(LAB_CLASSES)}")
    by_class = collections.defaultdict(list)
    for name, cls in apps.items():
        if cls.CLASS in wanted and (not args.apps or name in args.apps.split(",")):
            by_class[cls.CLASS].append(name)
    if not by_class:
        die("no drivers selected")
    profiles = profiles_module()
    names = profiles.names() if args.profiles == "all" else args.profiles.split(",")
    for n in names:
        if n not in profiles.names():
            die(f"no profile {n}; profiles: {', '.join(profiles.names())}")
    need_linkem(args.linkem)
    os.makedirs(os.path.join(args.out, "pcaps"), exist_ok=True)
    spec = {"minutes_per_class": args.minutes_per_class, "profiles": names, "seed": args.seed,
            "apps": {c: sorted(a) for c, a in by_class.items()},
            "test_only": sorted(set(profiles.TEST_ONLY) & set(names))}
    spec_path = os.path.join(args.out, "plan.json")
    if os.path.exists(spec_path):
        with open(spec_path) as f:
            old = json.load(f)
        if old["spec"] != spec:
            die(f"{args.out} was planned with other arguments (see {spec_path}); "
                "use the same arguments to resume, or a new folder")
        plan = old["plan"]
    else:
        plan = make_plan(by_class, names, set(spec["test_only"]), args.minutes_per_class,
                         args.seed)
        with open(spec_path, "w") as f:
            json.dump({"spec": spec, "plan": plan}, f, indent=1)
    manifest = os.path.join(args.out, "manifest.jsonl")
    failures = os.path.join(args.out, "failures.jsonl")
    done = {r["id"] for r in read_jsonl(manifest)}
    if args.released:
        # Sessions already in a (committed) release need not run again: the
        # plan is a function of the arguments, so their ids match.
        done |= {r["id"] for r in read_jsonl(os.path.join(args.released, "manifest.jsonl"))}
    tries = collections.Counter(r["id"] for r in read_jsonl(failures))
    pending = [s for s in plan if s["id"] not in done and tries[s["id"]] <= args.retries]
    # Round-robin over the classes, so a run stopped early is still balanced.
    nth = collections.Counter()
    order = {}
    for s in pending:
        order[s["id"]] = (nth[s["class"]], s["class"])
        nth[s["class"]] += 1
    pending.sort(key=lambda s: order[s["id"]])
    skipped = sum(1 for s in plan if s["id"] not in done and tries[s["id"]] > args.retries)
    log(f"{len(plan)} sessions planned, {len(done)} done, {len(pending)} to run"
        + (f", {skipped} given up after {args.retries + 1} failures" if skipped else ""))
    prepare(args, [apps[s["app"]] for s in pending])
    work = queue.Queue()
    for s in pending:
        work.put(s)
    lock = threading.Lock()
    counts = collections.Counter()
    t0 = time.monotonic()

    def worker(slot):
        while True:
            try:
                s = work.get_nowait()
            except queue.Empty:
                return
            pcap = os.path.join(args.out, "pcaps", s["id"] + ".pcap")
            try:
                rec = one_session(args, apps[s["app"]], s["profile"], s["seconds"], s["seed"],
                                  slot, pcap)
                rec.update(id=s["id"], split=s["split"], seconds=s["seconds"])
                append_jsonl(manifest, rec, lock)
                counts["ok"] += 1
                state = "ok"
            except Exception as e:  # a session's failure is recorded, not fatal
                append_jsonl(failures, {"id": s["id"], "error": f"{type(e).__name__}: {e}",
                                        "time": time.time()}, lock)
                counts["failed"] += 1
                state = f"FAILED ({type(e).__name__}: {str(e)[:200]})"
            n = counts["ok"] + counts["failed"]
            log(f"[{n}/{len(pending)}] {s['id']} {s['profile']} {s['seconds']} s: {state} "
                f"({(time.monotonic() - t0) / 60:.1f} min)")

    threads = [threading.Thread(target=worker, args=(args.first_slot + i,))
               for i in range(args.jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log(f"done: {counts['ok']} sessions ok, {counts['failed']} failed (see {failures})")
    if counts["failed"]:
        sys.exit(3)


def cmd_release(args):
    """Add DIR's sessions to the release at --out (sessions already there stay)."""
    released = {r["id"]: r for r in read_jsonl(os.path.join(args.out, "manifest.jsonl"))}
    records = read_jsonl(os.path.join(args.dir, "manifest.jsonl"))
    if not records and not released:
        die(f"{args.dir}/manifest.jsonl has no sessions")
    os.makedirs(os.path.join(args.out, "sessions"), exist_ok=True)
    added = 0
    for rec in records:
        name = f"sessions/{rec['id']}.csv.xz"
        path = os.path.join(args.out, name)
        pcap = os.path.join(args.dir, "pcaps", rec["id"] + ".pcap")
        if rec["id"] in released and os.path.exists(path) and \
                os.path.getmtime(path) >= os.path.getmtime(pcap):
            continue
        try:
            kept, unlabeled = write_session(args.flowpic, pcap, rec, path)
        except DamagedCapture as e:
            log(f"left out: {e}; remove it from {args.dir}/manifest.jsonl to run it again")
            continue
        released[rec["id"]] = dict(rec, packets_labeled=kept, packets_unlabeled=unlabeled,
                                   file=name)
        added += 1
    with open(os.path.join(args.out, "manifest.jsonl"), "w") as f:
        for sid in sorted(released):
            f.write(json.dumps(released[sid], sort_keys=True) + "\n")
    names = [r["file"] for r in released.values()] + ["manifest.jsonl"]
    sha256sums(args.out, names)
    size = sum(os.path.getsize(os.path.join(args.out, n)) for n in names)
    log(f"{added} sessions added; {len(released)} sessions, {size / 1e6:.1f} MB in {args.out}")


def _flow_record(rec):
    return {"servers": rec["servers"], "flows": rec["flows"]}


def cmd_arrays(args):
    import numpy as np  # only this command needs it

    # Several releases make one set of arrays (e.g. lab-v1 and the sessions
    # of a later release); a session id may appear in only one of them.
    records, seen = [], {}
    skip_apps = set(filter(None, (args.skip_apps or "").split(",")))
    for rel in args.release:
        bad = verify(rel)
        if bad:
            die(f"{rel}: checksum mismatch for {', '.join(bad[:5])}")
        for rec in read_jsonl(os.path.join(rel, "manifest.jsonl")):
            if rec["id"] in seen:
                die(f"session {rec['id']} is in both {seen[rec['id']]} and {rel}")
            seen[rec["id"]] = rel
            if rec["app"] not in skip_apps:
                records.append(dict(rec, file=os.path.join(rel, rec["file"])))
    unknown = skip_apps - {r["app"] for rel in args.release
                           for r in read_jsonl(os.path.join(rel, "manifest.jsonl"))}
    if unknown:
        die(f"--skip-apps: no session of {', '.join(sorted(unknown))} in {' '.join(args.release)}")
    os.makedirs(args.out, exist_ok=True)
    pics = collections.defaultdict(list)
    meta = collections.defaultdict(list)
    common = ["--res", str(args.res), "--window", str(args.window)]
    other_labels = set(filter(None, (args.other_labels or "").split(",")))
    if args.hop:
        common += ["--hop", str(args.hop)]

    def exports(rec):
        """(copy, extra export flags) for one session: copy 0 is the plain
        export; the train split also gets --train-aug augmented copies and
        --train-hop overlapping blocks (held-out splits never do)."""
        if rec["split"] != "train":
            return [(0, [])]
        extra = ["--hop", str(args.train_hop)] if args.train_hop else []
        out = [(0, extra)]
        shape = (["--aug-size-jitter", str(args.aug_size_jitter)] if args.aug_size_jitter else []) \
            + (["--aug-mss", args.aug_mss] if args.aug_mss else [])
        drops = [args.aug_drop] * args.train_aug + list(args.aug_sparse or [])
        for k, drop in enumerate(drops, 1):
            out.append((k, extra + ["--aug-time-scale", args.aug_time_scale,
                                    "--aug-time-shift", str(args.window),
                                    "--aug-drop", str(drop),
                                    "--aug-seed", str(k)] + shape))
        return out

    with tempfile.TemporaryDirectory() as tmp:
        for i, rec in enumerate(records):
            prefix = os.path.join(tmp, "s")
            for copy, extra in exports(rec):
                subprocess.run([args.flowpic, "export", "-q",
                                rec["file"], "--format", "npy",
                                "--direction", args.direction, "-o", prefix]
                               + common + extra, check=True)
                arr = np.load(prefix + ".npy")
                with open(prefix + ".index.csv") as f:
                    rows = list(__import__("csv").DictReader(f))
                for row, pic in zip(rows, arr):
                    flow = {"proto": "tcp" if row["proto"] == "6" else "udp",
                            "src": row["src"], "sport": int(row["sport"]), "dst": row["dst"],
                            "dport": int(row["dport"])}
                    label = label_flow(flow, _flow_record(rec))
                    if label in other_labels or label == OTHER:
                        label = OTHER
                    elif label not in CLASSES:
                        continue
                    pics[rec["split"]].append(pic)
                    meta[rec["split"]].append([rec["id"], rec["app"], rec["profile"], label,
                                               row["flow"], row["block"], row["complete"],
                                               row["samples"], copy])
            log(f"[{i + 1}/{len(records)}] {rec['id']}")
    for split in sorted(pics):
        np.save(os.path.join(args.out, f"{split}.npy"), np.stack(pics[split]))
        with open(os.path.join(args.out, f"{split}.csv"), "w") as f:
            f.write("session,app,profile,class,flow,block,complete,samples,copy\n")
            for m in meta[split]:
                f.write(",".join(map(str, m)) + "\n")
        log(f"{split}: {len(pics[split])} pictures")
    with open(os.path.join(args.out, "arrays.json"), "w") as f:
        json.dump({k: getattr(args, k) for k in ("res", "window", "hop", "direction",
                                                  "train_hop", "train_aug", "aug_time_scale",
                                                  "aug_drop", "aug_sparse", "aug_size_jitter",
                                                  "aug_mss", "other_labels", "skip_apps")}, f)


def cmd_stats(args):
    records = read_jsonl(os.path.join(args.release, "manifest.jsonl"))
    by = {"class": collections.defaultdict(collections.Counter),
          "profile": collections.defaultdict(collections.Counter)}
    for rec in records:
        path = os.path.join(args.release, rec["file"])
        for f in flows_of(args.flowpic, path):
            label = label_flow(f, _flow_record(rec))
            if label not in LAB_CLASSES:
                continue
            for key, name in (("class", label), ("profile", rec["profile"])):
                c = by[key][name]
                c["flows"] += 1
                c["blocks"] += f["blocks"]
                c["packets"] += f["packets"]
        for key, name in (("class", rec["class"]), ("profile", rec["profile"])):
            by[key][name]["sessions"] += 1
            by[key][name]["seconds"] += rec["end"] - rec["start"]
    for key in ("class", "profile"):
        print(f"\n| {key} | sessions | minutes | flows | blocks | packets |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, c in sorted(by[key].items()):
            print(f"| {name} | {c['sessions']} | {c['seconds'] / 60:.1f} | {c['flows']} | "
                  f"{c['blocks']} | {c['packets']} |")


def cmd_examples(args):
    """For each class, the busiest complete block of a labeled flow, drawn as a PNG."""
    records = read_jsonl(os.path.join(args.release, "manifest.jsonl"))
    os.makedirs(args.out, exist_ok=True)
    best = {}
    for rec in records:
        path = os.path.join(args.release, rec["file"])
        for f in flows_of(args.flowpic, path):
            label = label_flow(f, _flow_record(rec))
            if label in CLASSES and f["blocks"] >= 2 and \
                    f["packets"] > best.get(label, (0,))[0]:
                best[label] = (f["packets"], path, f["flow_id"], rec)
    for cls in CLASSES:
        if cls not in best:
            log(f"no {cls} flow with a complete block")
            continue
        _, path, fid, rec = best[cls]
        png = os.path.join(args.out, f"{cls}.png")
        subprocess.run([args.flowpic, "render", "-q", path, "--flow", str(fid), "--block", "0",
                        "--res", str(args.res), "-o", png], check=True)
        print(f"{cls}: {png} ({rec['app']}, profile {rec['profile']}, session {rec['id']}, "
              f"flow {fid})")


def cmd_smoke(args):
    from labkit.smoke import check, packets_by_label

    apps = all_apps()
    chosen = {}
    for name in sorted(apps):
        chosen.setdefault(apps[name].CLASS, name)
    if args.apps:
        for name in args.apps.split(","):
            chosen[apps[name].CLASS] = name
    passed = failed = 0
    os.makedirs(args.out, exist_ok=True)
    prepare(args, [apps[n] for n in chosen.values()])
    for cls in CLASSES:
        if cls not in chosen:
            print(f"FAIL {cls}: no driver")
            failed += 1
            continue
        name = chosen[cls]
        pcap = os.path.join(args.out, f"smoke-{name}.pcap")
        try:
            rec = one_session(args, apps[name], args.profile, args.seconds, 1, args.slot, pcap)
            results = check(cls, packets_by_label(args.flowpic, pcap, rec))
        except Exception as e:
            results = [(False, f"session failed: {type(e).__name__}: {e}")]
        for ok, what in results:
            print(f"{'ok  ' if ok else 'FAIL'} {cls} ({name}): {what}", flush=True)
            passed += ok
            failed += not ok
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flowpic", default=os.path.join(ROOT, "build", "cli", "flowpic"))
    ap.add_argument("--linkem", default=os.path.join(ROOT, "build", "model", "lab", "linkem",
                                                     "linkem"))
    ap.add_argument("--assets", default=os.path.join(HERE, "assets"),
                    help="shared assets (certificates, media, sites), built on first use")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    sub.add_parser("packages")
    t = sub.add_parser("try")
    t.add_argument("app")
    t.add_argument("--seconds", type=float, default=30)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--profile", help="network profile (default: a plain veth, no emulation)")
    t.add_argument("--slot", type=int, default=200, help="1..250; parallel runs need distinct slots")
    t.add_argument("--out", default="/tmp/fplab")
    g = sub.add_parser("generate")
    g.add_argument("--out", required=True)
    g.add_argument("--minutes-per-class", type=float, default=60)
    g.add_argument("--profiles", default="all", help="comma-separated, or all")
    g.add_argument("--classes", help="comma-separated subset of " + ",".join(LAB_CLASSES)
                   + f" (default: the five; '{OTHER}' runs the background drivers)")
    g.add_argument("--apps", help="comma-separated subset of the drivers")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--jobs", type=int, default=2, help="sessions at once (default 2)")
    g.add_argument("--retries", type=int, default=1, help="tries again a failed session")
    g.add_argument("--first-slot", type=int, default=1,
                   help="slots FIRST..FIRST+jobs-1 (1..250): two generates at once need "
                   "slots apart")
    g.add_argument("--released", help="a release folder whose sessions count as done")
    r = sub.add_parser("release")
    r.add_argument("dir")
    r.add_argument("--out", required=True)
    a = sub.add_parser("arrays")
    a.add_argument("release", nargs="+", help="one or more release folders")
    a.add_argument("--out", required=True)
    a.add_argument("--res", type=int, default=32)
    a.add_argument("--window", type=float, default=60)
    a.add_argument("--hop", type=float)
    a.add_argument("--direction", default="both", choices=["both", "fwd", "rev", "split"])
    a.add_argument("--train-hop", type=float,
                   help="hop of the train split only: overlapping blocks, more pictures")
    a.add_argument("--train-aug", type=int, default=0,
                   help="augmented copies of the train split (flowpic export --aug-*)")
    a.add_argument("--aug-time-scale", default="0.5:1.5", help="with --train-aug")
    a.add_argument("--aug-drop", type=float, default=0.02, help="with --train-aug")
    a.add_argument("--aug-sparse", type=float, nargs="+", metavar="P",
                   help="more augmented copies of the train split, one per P, each leaving "
                   "out packets with probability P (e.g. 0.5 0.8 0.95: sparse real flows)")
    a.add_argument("--aug-size-jitter", type=int, default=0, metavar="BYTES",
                   help="augmented copies: packet sizes +- up to BYTES")
    a.add_argument("--aug-mss", metavar="MIN:MAX",
                   help="augmented copies: TCP payload re-cut at a segment size in [MIN, MAX]")
    a.add_argument("--skip-apps", help="comma-separated drivers whose sessions are left out "
                   "(to measure what they add)")
    a.add_argument("--other-labels", help="comma-separated flow labels of the manifest (e.g. "
                   "control: SIP, RTSP, FTP control, tracker, signaling flows) written as "
                   "class 'other' instead of being left out")
    s = sub.add_parser("stats")
    s.add_argument("release")
    e = sub.add_parser("examples")
    e.add_argument("release")
    e.add_argument("--out", required=True)
    e.add_argument("--res", type=int, default=64)
    m = sub.add_parser("smoke")
    m.add_argument("--seconds", type=float, default=10)
    m.add_argument("--profile", default="lan", help="network profile (default lan)")
    m.add_argument("--apps", help="comma-separated drivers to use instead of the first per class")
    m.add_argument("--slot", type=int, default=190)
    m.add_argument("--out", default="/tmp/fplab-smoke")
    args = ap.parse_args()
    if args.cmd == "smoke" and os.geteuid() != 0:
        log("smoke skipped: sessions create network namespaces, which needs root")
        sys.exit(77)
    if args.cmd in ("try", "generate") and os.geteuid() != 0:
        die("sessions create network namespaces: run as root")
    if args.cmd in ("try", "generate", "smoke"):
        stale = remove_stale()
        if stale:
            log(f"removed {len(stale)} namespaces left by lab runs that died: {' '.join(stale)}")

        def on_signal(signum, frame):
            log(f"signal {signum}: removing this run's namespaces")
            close_all()
            os._exit(130)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    if args.cmd in ("try", "release", "arrays", "stats", "examples", "smoke") and \
            not os.access(args.flowpic, os.X_OK):
        die(f"no flowpic at {args.flowpic}: build it (scripts/build.sh) or give --flowpic")
    {"list": cmd_list, "packages": cmd_packages, "try": cmd_try, "generate": cmd_generate,
     "release": cmd_release, "arrays": cmd_arrays, "stats": cmd_stats,
     "examples": cmd_examples, "smoke": cmd_smoke}[args.cmd](args)


if __name__ == "__main__":
    main()
