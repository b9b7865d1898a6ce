#!/usr/bin/env bash
# The main job on its embedded defaults: install what is needed, build, then
# list the flows of the bundled capture (data/demo.pcap.xz: real HTTP download,
# UDP call and TCP chat traffic between two network namespaces) and draw the
# FlowPic of its busiest flow to out/demo-flow.png.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
flowpic=$root/build/cli/flowpic
capture=$root/data/demo.pcap.xz
mkdir -p "$root/out"
"$flowpic" flows "$capture"
busiest=$("$flowpic" flows --json "$capture" |
	/usr/bin/python3 -c 'import json,sys
flows=[json.loads(l) for l in sys.stdin if l.startswith("{\"id\"")]
print(max(flows, key=lambda f: f["packets"])["id"])')
"$flowpic" render "$capture" --flow "$busiest" --block 0 -o "$root/out/demo-flow.png"
echo "FlowPic of flow $busiest written to out/demo-flow.png"
