"""Shape checks for the lab smoke test: after a few seconds of a class, its
labeled flows must exist and look like that class.  Each check names what
it measured, so a failure says what looked wrong.

Per session the labeled packets are read from `flowpic export` (one row per
packet), split by direction: "down" is server -> client.
"""
import statistics
import subprocess

from labkit.release import label_packet


def packets_by_label(flowpic, pcap, record):
    """label -> {"up": [(t, size)], "down": [(t, size)], "flows": set of 5-tuples}."""
    rec = dict(record, _servers=set(record["servers"]))
    out = subprocess.run([flowpic, "export", "-q", pcap], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    by = {}
    for line in out.splitlines():
        if line.startswith("#") or line.startswith("time,"):
            continue
        t, proto, src, sport, dst, dport, size = line.split(",")[:7]
        proto = "tcp" if proto == "6" else "udp"
        label = label_packet(proto, src, int(sport), dst, int(dport), rec)
        d = by.setdefault(label, {"up": [], "down": [], "flows": set()})
        d["down" if src in rec["_servers"] else "up"].append((float(t), int(size)))
        d["flows"].add((proto,) + tuple(sorted([(src, int(sport)), (dst, int(dport))])))
    return by


def _rate(pkts):
    if len(pkts) < 2:
        return 0.0
    span = pkts[-1][0] - pkts[0][0]
    return (len(pkts) - 1) / span if span > 0 else 0.0


def _median_size(pkts):
    return statistics.median(s for _, s in pkts) if pkts else 0


def _frac_full(pkts, full=1000):
    return sum(1 for _, s in pkts if s >= full) / len(pkts) if pkts else 0.0


def check(cls, by):
    """List of (ok, what) for the class's labeled traffic."""
    d = by.get(cls)
    if not d or not (d["up"] or d["down"]):
        return [(False, f"no packets labeled {cls}")]
    up, down = d["up"], d["down"]
    res = [(True, f"{len(d['flows'])} {cls} flow(s), {len(up)} up / {len(down)} down packets")]
    if cls == "voip":
        # Codec frames every 20-30 ms both ways, small payloads.
        res.append((_rate(up) >= 15 and _rate(down) >= 15,
                    f"steady packets both ways: {_rate(up):.0f} / {_rate(down):.0f} pps (>= 15)"))
        res.append((_median_size(up + down) < 400,
                    f"small payloads: median {_median_size(up + down)} B (< 400)"))
    elif cls == "file_transfer":
        big = max((up, down), key=lambda p: sum(s for _, s in p))
        small = down if big is up else up
        res.append((_frac_full(big) >= 0.6,
                    f"sustained full-size packets one way: {_frac_full(big):.0%} >= 1000 B (>= 60%)"))
        res.append((sum(s for _, s in big) >= 20 * max(1, sum(s for _, s in small)),
                    "bytes one way >= 20x the other"))
    elif cls == "video":
        res.append((sum(s for _, s in down) >= 10 * max(1, sum(s for _, s in up)),
                    "bytes down >= 10x up"))
        res.append((_frac_full(down) >= 0.4,
                    f"full-size packets down: {_frac_full(down):.0%} (>= 40%)"))
    elif cls == "chat":
        all_p = up + down
        res.append((_median_size(all_p) < 600, f"small messages: median {_median_size(all_p)} B (< 600)"))
        res.append((_rate(sorted(all_p)) < 20, f"sparse: {_rate(sorted(all_p)):.1f} pps (< 20)"))
    elif cls == "browsing":
        res.append((sum(s for _, s in down) >= 3 * max(1, sum(s for _, s in up)),
                    "bytes down >= 3x up"))
        res.append((len(down) >= 20, f"{len(down)} packets down (>= 20: pages with resources)"))
    return res
