#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The Kubernetes manifests (deploy/k8s), checked as far as a machine with no
cluster allows: `kubectl kustomize` composes them (when kubectl is here), and
the invariants the deployment depends on hold: the agent's capabilities are
the unit's (deploy/systemd/flowpic-agent.service) and nothing else, host
network, BTF and bpffs mounts, a hostPath spool made the agent user's by an
init container; every probe and named port exists; every Secret key a pod
reads is in the example Secret; the collector's volume claim exists.
Usage: check_k8s.py [SOURCE_ROOT]"""
import os
import re
import shutil
import subprocess
import sys

import yaml

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
k8s = os.path.join(root, "deploy", "k8s")
fails = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fails.append(what)


docs = []
for name in yaml.safe_load(open(os.path.join(k8s, "kustomization.yaml")))["resources"]:
    docs += [d for d in yaml.safe_load_all(open(os.path.join(k8s, name))) if d]
kinds = {(d["kind"], d["metadata"]["name"]): d for d in docs}
check(("DaemonSet", "flowpic-agent") in kinds and ("Deployment", "flowpic-collector") in kinds
      and ("Service", "flowpic-collector") in kinds, "the agent DaemonSet, collector Deployment and Service")
if shutil.which("kubectl"):
    r = subprocess.run(["kubectl", "kustomize", k8s], capture_output=True, text=True)
    check(r.returncode == 0 and r.stdout.count("\nkind: ") + r.stdout.startswith("kind: ")
          >= len(docs) - 1, "kubectl kustomize composes them (%s)" % r.stderr.strip()[:200])

unit = open(os.path.join(root, "deploy", "systemd", "flowpic-agent.service")).read()
unit_caps = sorted(c.replace("CAP_", "") for c in
                   re.search(r"^AmbientCapabilities=(.*)$", unit, re.M).group(1).split())
agent = kinds[("DaemonSet", "flowpic-agent")]["spec"]["template"]["spec"]
c = agent["containers"][0]
caps = c["securityContext"]["capabilities"]
check(caps.get("drop") == ["ALL"] and sorted(caps.get("add", [])) == unit_caps,
      "agent capabilities: drop ALL, add exactly the unit's %s" % unit_caps)
check(agent.get("hostNetwork") is True, "agent: hostNetwork")
check(c["securityContext"].get("allowPrivilegeEscalation") is False, "agent: no privilege escalation")
mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
vols = {v["name"]: v for v in agent["volumes"]}
check(mounts.get("/sys/kernel/btf") in vols and
      vols[mounts["/sys/kernel/btf"]]["hostPath"]["path"] == "/sys/kernel/btf", "agent: BTF mounted")
check(mounts.get("/sys/fs/bpf") in vols, "agent: bpffs mounted")
spool_args = [a for a in c["args"] if a.startswith("--spool-dir=")]
spool = spool_args[0].split("=", 1)[1] if spool_args else ""
spool_vol = next((n for p, n in mounts.items() if spool.startswith(p + "/")), None)
check(spool_vol and "hostPath" in vols[spool_vol], "agent: the spool %s is on a hostPath" % spool)
init = agent.get("initContainers", [])
check(any(spool in " ".join(i.get("command", [])) and "0700" in i.get("command", []) and
          "flowpic" in i.get("command", []) for i in init),
      "agent: an init container makes the spool flowpic's, 0700")

for kind, name in (("DaemonSet", "flowpic-agent"), ("Deployment", "flowpic-collector")):
    spec = kinds[(kind, name)]["spec"]["template"]["spec"]
    for ctr in spec["containers"]:
        ports = {p["name"] for p in ctr.get("ports", [])}
        for probe in ("readinessProbe", "livenessProbe"):
            pr = ctr.get(probe)
            if pr:
                port = next(iter(pr.values())).get("port")
                check(port in ports, "%s %s: probe port %r is a named port" % (name, probe, port))
secret = yaml.safe_load(open(os.path.join(k8s, "secret.example.yaml")))
keys = set(secret["stringData"])
used = set()
for d in docs:
    spec = d.get("spec", {}).get("template", {}).get("spec", {})
    for ctr in spec.get("containers", []):
        for a in ctr.get("args", []):
            m = re.match(r"--[a-z-]+=/etc/flowpic/tls/(\S+)$", a)
            if m:
                used.add(m.group(1))
check(used and used <= keys, "every Secret key the pods read is in secret.example.yaml (%s)"
      % sorted(used))
col = kinds[("Deployment", "flowpic-collector")]["spec"]["template"]["spec"]
claims = {v["persistentVolumeClaim"]["claimName"] for v in col["volumes"]
          if "persistentVolumeClaim" in v}
check(claims and all(("PersistentVolumeClaim", n) in kinds for n in claims),
      "collector: its volume claim is defined")
svc = kinds[("Service", "flowpic-collector")]["spec"]
check(svc["selector"] == kinds[("Deployment", "flowpic-collector")]["spec"]["selector"]["matchLabels"],
      "the Service selects the collector's pods")
sys.exit(1 if fails else 0)
