#!/usr/bin/python3
"""flowpic traffic lab: labeled captures of real applications in network
namespaces.  See model/lab/README.md.

  lab.py list                         the application drivers and their classes
  lab.py try APP [--seconds S]        one session of APP, then its labeled flows
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

from labkit.apps import all_apps  # noqa: E402
from labkit.labels import label_flow  # noqa: E402
from labkit.session import run_session  # noqa: E402
from labkit.topology import Topology  # noqa: E402


def default_flowpic():
    return os.path.join(ROOT, "build", "cli", "flowpic")


def default_linkem():
    return os.path.join(ROOT, "build", "model", "lab", "linkem", "linkem")


def log(msg):
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def flows_of(flowpic, pcap):
    out = subprocess.run([flowpic, "flows", "--json", "-q", pcap], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.startswith('{"id"')]


def cmd_list(args):
    for name, cls in sorted(all_apps().items()):
        print(f"{name:24} {cls.CLASS:14} {' '.join(cls.PACKAGES)}")


def cmd_try(args):
    apps = all_apps()
    if args.app not in apps:
        sys.exit(f"lab: no driver named {args.app} (see lab.py list)")
    app = apps[args.app]()
    os.makedirs(args.out, exist_ok=True)
    pcap = os.path.join(args.out, f"try-{app.NAME}.pcap")
    linkem = args.linkem if args.linkem and os.path.exists(args.linkem) else None
    profile = None
    rec = run_session(app, lambda: Topology(args.slot, app.SERVER_IPS, linkem=linkem),
                      pcap, args.seconds, args.seed, args.assets, profile, log)
    print(json.dumps(rec))
    for f in flows_of(args.flowpic, pcap):
        print(f"{label_flow(f, rec):14} {f['proto']} {f['src']}:{f['sport']} -> "
              f"{f['dst']}:{f['dport']} packets {f['packets']} bytes {f['bytes']} "
              f"duration {f['duration']:.1f}s")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flowpic", default=default_flowpic())
    ap.add_argument("--linkem", default=default_linkem())
    ap.add_argument("--assets", default=os.path.join(HERE, "assets"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    t = sub.add_parser("try")
    t.add_argument("app")
    t.add_argument("--seconds", type=float, default=20)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--slot", type=int, default=200)
    t.add_argument("--out", default="/tmp/fplab")
    args = ap.parse_args()
    {"list": cmd_list, "try": cmd_try}[args.cmd](args)


if __name__ == "__main__":
    main()
