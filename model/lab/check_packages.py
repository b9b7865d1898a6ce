#!/usr/bin/python3
"""Test: every Debian package a lab driver lists in PACKAGES is in the `lab`
profile of scripts/install-deps.sh (CI builds a fresh machine from that script
alone; `install-deps.sh lab` sets up a lab host)."""
import ast
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
script = open(os.path.join(here, "..", "..", "scripts", "install-deps.sh")).read()
body = re.search(r"\nlab=\((.*?)\n\)", script, re.S).group(1)
installed = {w for line in body.splitlines() for w in line.split("#")[0].split()}
needed = {}
apps = os.path.join(here, "labkit", "apps")
for name in sorted(os.listdir(apps)):
    if not name.endswith(".py") or name.startswith("_"):
        continue
    tree = ast.parse(open(os.path.join(apps, name)).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "PACKAGES"
                                                 for t in node.targets):
            for elt in getattr(node.value, "elts", []):
                needed.setdefault(elt.value, name)
missing = sorted(p for p in needed if p not in installed)
for p in missing:
    print(f"FAIL {p} (needed by labkit/apps/{needed[p]}) is not in the lab profile of scripts/install-deps.sh")
print(f"{len(needed) - len(missing)} passed, {len(missing)} failed")
sys.exit(1 if missing else 0)
