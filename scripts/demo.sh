#!/usr/bin/env bash
# The main job on its embedded defaults: install what is needed, build, then
# classify every flow of the bundled lab capture (data/lab-mix.pcap.xz: seven
# held-out lab sessions, voip, video, file_transfer, chat and browsing, on
# one link at once; data/lab-mix.md) with the embedded model, score the
# verdicts against the sessions' labels, and draw the FlowPic of its busiest
# flow to out/demo-flow.png.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
flowpic=$root/build/cli/flowpic
capture=$root/data/lab-mix.pcap.xz
mkdir -p "$root/out"
"$flowpic" classify "$capture"
echo
"$flowpic" classify -q --json "$capture" >"$root/out/demo-verdicts.jsonl"
/usr/bin/python3 "$root/tests/classify/score_labels.py" "$root/data/lab-mix.labels.jsonl" \
	<"$root/out/demo-verdicts.jsonl"
busiest=$(/usr/bin/python3 -c 'import json,sys
flows=[json.loads(l) for l in sys.stdin if l.startswith("{\"id\"")]
print(max(flows, key=lambda f: f["packets"])["id"])' <"$root/out/demo-verdicts.jsonl")
"$flowpic" render "$capture" --flow "$busiest" --block 0 -o "$root/out/demo-flow.png"
echo "verdicts as JSON lines in out/demo-verdicts.jsonl; FlowPic of flow $busiest in out/demo-flow.png"
