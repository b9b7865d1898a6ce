#!/usr/bin/python3
"""metrics_check.py - the checks of tests/deploy/test_metrics.sh, run inside
its network namespace: each program's /metrics read directly (HELP and TYPE
for every family, every counter of its JSON line there), then Prometheus'
values (GET /api/v1/query) against the JSON counters lines the programs
printed on SIGUSR1, the histograms, and the alert rules as Prometheus loaded
them.

Usage: metrics_check.py PROM_URL AGENT_METRICS_URL AGENT_LINE_FILE
                        COLLECTOR_METRICS_URL COLLECTOR_LINE_FILE
Prints ok/FAIL lines; exit 1 on any FAIL.
"""
import json
import re
import sys
import urllib.parse
import urllib.request

# Counters that move by themselves between the line and the scrape: each
# sweep (1 s), and the listener's own at every scrape.  Checked within a
# bound, not for equality.
TICKING = {"sweeps", "metrics_scrapes"}
TICK_SLACK = 40

fails = 0


def ok(msg):
    print("ok   " + msg)


def bad(msg):
    global fails
    fails += 1
    print("FAIL " + msg)


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


# The one name the mechanical rule cannot give: "stream.rejected" would be
# the agent's own "stream_rejected" (docs/deploy.md, "Metrics").
RENAMED = {"stream.rejected": "stream_ring_full"}


def prom_name(prefix, name, gauge):
    n = prefix + re.sub(r"[^a-zA-Z0-9_:]", "_", RENAMED.get(name, name))
    if not gauge and not n.endswith("_total"):
        n += "_total"
    return n


def family(fams, prefix, name):
    """The family a counter of the line is served as, or None."""
    g, c = prom_name(prefix, name, True), prom_name(prefix, name, False)
    if g in fams and fams[g][0] == "gauge":
        return g
    if c in fams and fams[c][0] == "counter":
        return c
    return None


def parse_exposition(text):
    """{family: (type, help)}, {sample name with labels: value}; format errors."""
    fams, samples, errors = {}, {}, []
    helps = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, h = line[7:].partition(" ")
            helps[name] = h
        elif line.startswith("# TYPE "):
            name, _, t = line[7:].partition(" ")
            if name in fams:
                errors.append("family %s twice" % name)
            if name not in helps:
                errors.append("TYPE %s without HELP before it" % name)
            fams[name] = (t, helps.get(name, ""))
        elif line and not line.startswith("#"):
            m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)", line)
            if not m:
                errors.append("bad sample line %r" % line)
                continue
            samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    for s in samples:
        base = s.split("{")[0]
        fam = re.sub(r"_(bucket|sum|count)$", "", base)
        if base not in fams and fam not in fams:
            errors.append("sample %s without a family" % s)
    return fams, samples, errors


def check_direct(who, url, line, prefix):
    status, ctype, text = get(url)
    if status == 200 and ctype.startswith("text/plain; version=0.0.4"):
        ok("%s: GET /metrics 200, %s, %d bytes" % (who, ctype, len(text)))
    else:
        bad("%s: GET /metrics %s %s" % (who, status, ctype))
    fams, samples, errors = parse_exposition(text)
    if errors:
        bad("%s: exposition format: %s" % (who, "; ".join(errors[:5])))
    else:
        ok("%s: %d families, each with HELP and TYPE, %d samples" % (who, len(fams), len(samples)))
    missing, undocumented = [], []
    for name in line:
        fam = family(fams, prefix, name)
        if not fam:
            missing.append(name)
        elif "(docs/agent.md)" in fams[fam][1] or not fams[fam][1]:
            undocumented.append(name)
    if missing:
        bad("%s: counters of the JSON line not in /metrics: %s" % (who, missing))
    else:
        ok("%s: all %d counters of the JSON line are in /metrics" % (who, len(line)))
    if undocumented:
        bad("%s: counters without their own HELP: %s" % (who, undocumented))
    return fams


def query(prom, q):
    status, _, text = get(prom + "/api/v1/query?" + urllib.parse.urlencode({"query": q}))
    res = json.loads(text)["data"]["result"]
    return [float(r["value"][1]) for r in res]


def check_prom(who, prom, job, line, fams, prefix):
    equal, diff = 0, []
    for name, want in line.items():
        fam = family(fams, prefix, name)
        got = query(prom, '%s{job="%s"}' % (fam, job)) if fam else []
        if len(got) != 1:
            diff.append("%s: %d series" % (name, len(got)))
        elif name in TICKING:
            if not want <= got[0] <= want + TICK_SLACK:
                diff.append("%s: %g, line %d (moves by itself)" % (name, got[0], want))
        elif got[0] != want:
            diff.append("%s: prometheus %g, line %d" % (name, got[0], want))
        else:
            equal += 1
    if diff:
        bad("%s: Prometheus != JSON counters: %s" % (who, "; ".join(diff[:8])))
    else:
        ok("%s: Prometheus equals the JSON counters: %d equal, %d ticking within bounds" %
           (who, equal, len(line) - equal))


def hist(prom, job, name):
    count = query(prom, '%s_count{job="%s"}' % (name, job))
    total = query(prom, '%s_sum{job="%s"}' % (name, job))
    inf = query(prom, '%s_bucket{job="%s",le="+Inf"}' % (name, job))
    return (count or [None])[0], (total or [None])[0], (inf or [None])[0]


def main():
    prom, a_url, a_file, c_url, c_file = sys.argv[1:6]
    a_line = json.loads(open(a_file).read())["counters"]
    c_line = json.loads(open(c_file).read())["counters"]

    for job in ("flowpic-agent", "flowpic-collector"):
        up = query(prom, 'up{job="%s"}' % job)
        if up == [1.0]:
            ok("Prometheus scrapes %s (up 1)" % job)
        else:
            bad("Prometheus %s up: %s" % (job, up))
    a_fams = check_direct("agent", a_url, a_line, "flowpic_agent_")
    c_fams = check_direct("collector", c_url, c_line, "flowpic_collector_")
    check_prom("agent", prom, "flowpic-agent", a_line, a_fams, "flowpic_agent_")
    check_prom("collector", prom, "flowpic-collector", c_line, c_fams, "flowpic_collector_")

    # Histograms: one latency per block verdict; one store time per batch stored.
    n, s, inf = hist(prom, "flowpic-agent", "flowpic_agent_verdict_latency_seconds")
    # The 17 s stream's first block is judged when its 15 s window has passed.
    le10 = (query(prom, 'flowpic_agent_verdict_latency_seconds_bucket{le="10"}') or [None])[0]
    if n == a_line["verdicts_block"] and inf == n and n > 0 and le10 is not None and le10 < n:
        ok("agent verdict latency: %d observations = verdicts_block, mean %.2f s, %d over 10 s" %
           (n, s / n, n - le10))
    else:
        bad("agent verdict latency: count %s sum %s +Inf %s <=10 s %s, verdicts_block %d" %
            (n, s, inf, le10, a_line["verdicts_block"]))
    n, s, inf = hist(prom, "flowpic-agent", "flowpic_agent_stream_backlog_verdicts")
    if n and n >= 10 and inf == n:
        ok("agent stream backlog: %d samples (one per sweep), mean %.1f verdicts" % (n, s / n))
    else:
        bad("agent stream backlog: count %s sum %s +Inf %s" % (n, s, inf))
    n, s, inf = hist(prom, "flowpic-collector", "flowpic_collector_verdict_store_seconds")
    stored = c_line["batches"] - c_line["err_store_batch"]
    if n == stored and inf == n and n > 0 and 0 < s < 5 * n:
        ok("collector receipt-to-commit: %d observations = batches stored, mean %.1f ms" %
           (n, 1000 * s / n))
    else:
        bad("collector receipt-to-commit: count %s sum %s +Inf %s, batches stored %d" %
            (n, s, inf, stored))

    # The alert rules as Prometheus loaded and evaluated them.
    _, _, text = get(prom + "/api/v1/rules")
    rules = [r for g in json.loads(text)["data"]["groups"] for r in g["rules"]]
    unhealthy = [r["name"] for r in rules if r.get("health") != "ok"]
    firing = [r["name"] for r in rules if r.get("state") == "firing"]
    if len(rules) >= 10 and not unhealthy and not firing:
        ok("Prometheus loaded %d alert rules, all evaluate (health ok), none firing" % len(rules))
    else:
        bad("alert rules: %d loaded, unhealthy %s, firing %s" % (len(rules), unhealthy, firing))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
