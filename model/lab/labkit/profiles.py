"""Named network profiles: the conditions a session's traffic crosses between
the client and the server, made by linkem in the router namespace.

A profile gives, per direction ("up" is client to server, "down" server to
client), a nominal one-way delay and jitter (ms), the jitter's correlation
time (ms), a random loss rate (%) and its mean burst length (frames; 0:
independent losses), a rate (kbit/s) and a bottleneck buffer expressed as
milliseconds of data at that rate (how buffers are usually described, and
what keeps a deep cellular buffer deep at any rate).  draw() turns a
profile into the linkem options for one session, varied around the nominal
values with the session's random.Random, so that two sessions of one profile
differ a little as two real connections do:

    link = draw("lte-good", env_rng)
    Topology(slot, linkem=path, link=link)   # --delay-ms-up 21.3 --rate-down ...

The delay is one-way, so a path's round-trip time (RTT) is delay_up +
delay_down plus whatever the hosts add.  Where a number follows a published
figure, the comment names it; the rest are typical values of the kind.

TEST_ONLY names the profiles reserved for the test split: sessions under
them are never trained on, so the test measures classification under network
conditions the model has not seen (each sits near training profiles, between
them or beyond them, rather than in a world of its own).
"""
import random

# linkem's accepted ranges (linkem --help); draw() keeps inside them.
_LIMITS = {
    "delay_ms": (0.0, 10000.0),
    "jitter_ms": (0.0, 10000.0),
    "jitter_corr_ms": (0.0, 100000.0),
    "loss": (0.0, 100.0),
    "loss_burst": (0.0, 1000.0),
    "rate": (0, 10000000),
    "queue": (1514, 268435456),
}
_QUEUE_MIN = 2 * 1514   # bytes: a buffer always takes two full-size frames


def _dir(delay, jitter, loss, rate, queue_ms, burst=0, corr=20):
    """One direction: delay and jitter in ms, loss in %, rate in kbit/s,
    buffer in ms at the rate, mean loss burst in frames (0: independent),
    correlation time of the jitter in ms (how long a delay excursion lasts:
    jitter comes from queues and radio scheduling, which change over
    milliseconds, not from frame to frame)."""
    return {"delay_ms": delay, "jitter_ms": jitter, "jitter_corr_ms": corr, "loss": loss,
            "loss_burst": burst, "rate": rate, "queue_ms": queue_ms}


def _link(note, delay, jitter, loss, rate, queue_ms, burst=0, corr=20, **extra):
    """A profile: both directions (_dir) from one set of values, where
    delay, jitter, rate and queue_ms may be an (up, down) pair; extra: more
    of the profile's keys (jitter_dist)."""
    def side(v, i):
        return v[i] if isinstance(v, tuple) else v
    prof = {s: _dir(side(delay, i), side(jitter, i), loss, side(rate, i), side(queue_ms, i),
                    burst=burst, corr=corr) for i, s in enumerate(("up", "down"))}
    return dict(prof, **extra, note=note)


# Sources for the figures quoted below:
#  [FCC]   FCC, Measuring Broadband America, fixed broadband reports (2016-2021):
#          idle round-trip latency by access technology, roughly fiber 10 ms,
#          cable 15-25 ms, DSL 25-45 ms, geostationary satellite ~600 ms.
#  [BB]    Gettys and Nichols, "Bufferbloat: Dark Buffers in the Internet",
#          CACM 55(1), 2012: hundreds of ms to seconds of buffering in home
#          routers and modems, worst upstream.
#  [CELL]  Jiang et al., "Tackling Bufferbloat in 3G/4G Networks", IMC 2012:
#          deep buffers in cellular networks, RTTs of seconds under load.
#  [LTE]   Huang et al., "A Close Examination of Performance and Power
#          Characteristics of 4G LTE Networks", MobiSys 2012; and the 4G/5G
#          latency medians of Opensignal and Ookla reports (2020s): 4G 30-60 ms,
#          5G 20-30 ms.
#  [SL]    Michel et al., "A First Look at Starlink Performance", IMC 2022:
#          median RTT ~40-50 ms, loss ~0.5% concentrated in bursts around the
#          periodic satellite reassignments.
#  [GEO]   Geostationary orbit 35 786 km: client -> satellite -> gateway and
#          back is 4 x 35 786 km / 299 792 km/s = 477 ms before any processing.
#  [WN]    WonderNetwork global ping statistics: London-New York ~70-75 ms,
#          London-Sydney ~250-270 ms, Frankfurt-Tokyo ~220-240 ms RTT.
#  [ITU]   ITU-T G.992.5 (ADSL2+: up to ~24 Mbit/s down, ~1 Mbit/s up),
#          G.993.2 (VDSL2), 3GPP HSPA and EDGE peak rates; practical rates are
#          well below the peaks.
PROFILES = {
    # Same switch: sub-millisecond, no loss; 1 Gbit/s (linkem's own speed
    # caps what actually passes).
    "lan": _link("wired LAN, server on the same segment", 0.2, 0.05, 0, 1000000, 2),
    # Home Wi-Fi on a fiber/cable line, nearby server: ~20 ms RTT [FCC] plus
    # a few ms of Wi-Fi contention.
    "wifi-good": _link("home Wi-Fi, good signal, idle channel", 10, 2, 0.1, (40000, 100000), 30),
    # Crowded channel: retransmissions show as jitter and short loss bursts,
    # and the access point's buffer bloats [BB].
    "wifi-congested": _link("shared Wi-Fi, busy channel, weak signal",
        22, 15, 1.5, (3000, 8000), (250, 200), burst=2, corr=10),
    # Public hotspot: thin shared backhaul, captive-portal-grade service.
    "wifi-public": _link("cafe or hotel Wi-Fi",
        30, 20, 1.0, (2000, 6000), (300, 250), burst=2, corr=10),
    # ADSL2+ [ITU]: 12/1 Mbit/s, interleaving puts RTT near 40 ms [FCC]; the
    # modem's upstream buffer is deep [BB].
    "dsl": _link("ADSL2+", 19, 2, 0.2, (1000, 12000), (400, 100)),
    # VDSL2 [ITU]: 50/10 Mbit/s, fast path: ~20 ms RTT [FCC].
    "vdsl": _link("VDSL2 street cabinet", 10, 1.5, 0.1, (10000, 50000), (200, 80)),
    # DOCSIS 3.0: ~20 ms RTT [FCC]; upstream request-grant scheduling adds
    # jitter, and cable modems are bloated upstream [BB].
    "cable": _link("DOCSIS 3.0 cable", 11, (4, 2), 0.1, (10000, 100000), (300, 80)),
    # FTTH/GPON: ~10 ms RTT to a nearby server [FCC].
    "fiber": _link("fiber to the home", 5, 0.5, 0.02, (100000, 300000), 40),
    # 4G, good coverage: 30-50 ms RTT [LTE]; the radio scheduler adds
    # jitter; cellular buffers are deep [CELL].
    "lte-good": _link("4G LTE, good signal", (21, 18), (6, 5), 0.1, (10000, 30000), 200),
    # 4G at the cell edge: low rate, retransmissions (jitter, burst loss),
    # very deep buffers [CELL].
    "lte-poor": _link("4G LTE, cell edge",
        (45, 40), (25, 20), 1.0, (800, 4000), (800, 600), burst=3, corr=40),
    # 5G non-standalone: 20-30 ms RTT [LTE].
    "5g": _link("5G NSA, good signal", (13, 12), 4, 0.05, (30000, 200000), 100),
    # HSPA [ITU]: a few Mbit/s at best, ~100-200 ms RTT, buffers of seconds
    # under load [CELL].
    "3g": _link("3G HSPA", (65, 60), 25, 0.5, (500, 2000), (1000, 800), burst=2, corr=50),
    # EDGE [ITU]: ~200/80 kbit/s in practice, RTT of 300-500 ms.
    "edge": _link("2.5G EDGE", (220, 180), (60, 50), 1.0, (80, 200), 1500, burst=2, corr=100),
    # Geostationary satellite: 477 ms of propagation alone [GEO], ~600 ms
    # RTT measured [FCC].
    "satellite-geo": _link("GEO satellite broadband", 300, 15, 0.5, (3000, 25000), (400, 300)),
    # Low Earth orbit constellation: ~45 ms RTT, bursty loss [SL].
    "satellite-leo": _link("LEO satellite (Starlink-like)",
        (23, 22), 8, 0.7, (12000, 100000), (150, 100), burst=6, corr=50),
    # Good access, server across the Atlantic: ~75 ms RTT [WN].
    "transatlantic": _link("fiber/cable access, server on the other side of the Atlantic",
        38, 1.5, 0.05, (40000, 100000), 60),
    # Good access, server half the world away: ~260 ms RTT [WN].
    "intercontinental": _link("long-haul, e.g. Europe to Australia",
        130, 3, 0.2, (20000, 50000), 60),
    # Evening peak: a saturated shared link upstream of the user, queues
    # full [BB], losses in short bursts.
    "congested": _link("peak-hour congestion", 45, 25, 2.0, (1000, 3000), 400, burst=2),
    # Independent random loss on an otherwise fine path.
    "lossy": _link("random loss, e.g. a bad cable or radio interference",
        20, 3, 3.0, (5000, 20000), 60),
    # The same average loss order, but in long bursts (Gilbert model).
    "bursty-loss": _link("loss in long bursts, e.g. fading or route flaps",
        25, 5, 2.0, (5000, 15000), 80, burst=8),
    # Rural line or a throttled data plan.
    "low-bandwidth": _link("512/256 kbit/s", 40, 10, 0.5, (256, 512), (600, 500)),
    # Fast downlink, a thin uplink behind a deep buffer [BB].
    "asymmetric-uplink": _link("50 Mbit/s down, 768 kbit/s up",
        15, 3, 0.1, (768, 50000), (800, 100)),
    # Moving vehicle: handovers make delay swing widely (uniform jitter) and
    # lose frames in bursts.
    "mobile-handover": _link("mobile in a car or train, frequent handovers",
        50, 40, 1.5, (2000, 8000), 300, burst=5, corr=150, jitter_dist="uniform"),
    # Corporate VPN: traffic hairpins through a distant concentrator.
    "enterprise-vpn": _link("office VPN to a remote gateway", 25, 2, 0.05, 50000, 50),
}

# Held out for the test split: each has training neighbours (vdsl: dsl and
# cable; 5g: lte-good; satellite-leo: satellite-geo and bursty-loss;
# wifi-public: wifi-congested; transatlantic: intercontinental and fiber).
TEST_ONLY = ["vdsl", "5g", "satellite-leo", "wifi-public", "transatlantic"]


def names():
    """Every profile name, sorted."""
    return sorted(PROFILES)


def train_names():
    """The profiles sessions of the training split may use."""
    return [n for n in names() if n not in TEST_ONLY]


def _clamp(v, key):
    lo, hi = _LIMITS[key]
    return min(hi, max(lo, v))


def _draw_dir(nominal, rtt_factor, rng):
    """One direction's linkem values, varied around the nominal ones."""
    d = dict(nominal)
    # The path length is shared by both directions (rtt_factor); each
    # direction then wanders a little on its own.
    delay = d["delay_ms"] * rtt_factor * rng.uniform(0.95, 1.05)
    jitter = d["jitter_ms"] * rng.uniform(0.7, 1.3)
    corr = d["jitter_corr_ms"] * rng.uniform(0.7, 1.3)
    loss = d["loss"] * rng.uniform(0.6, 1.4)
    burst = d["loss_burst"] * rng.uniform(0.8, 1.2) if d["loss_burst"] else 0
    if burst:
        burst = max(1.0, burst)
        loss = min(loss, 100.0 * burst / (1.0 + burst) * 0.9)   # Gilbert's limit
    # Access rates under-deliver more often than they over-deliver.
    rate = max(8, int(round(d["rate"] * rng.uniform(0.75, 1.1))))
    queue_s = d["queue_ms"] / 1000.0 * rng.uniform(0.7, 1.3)
    queue = int(round(rate * 125 * queue_s))        # kbit/s x 125 = bytes/s
    return {
        "delay_ms": round(_clamp(delay, "delay_ms"), 3),
        "jitter_ms": round(_clamp(jitter, "jitter_ms"), 3),
        "jitter_corr_ms": round(_clamp(corr, "jitter_corr_ms"), 2),
        "loss": round(_clamp(loss, "loss"), 4),
        "loss_burst": round(_clamp(burst, "loss_burst"), 2),
        "rate": int(_clamp(rate, "rate")),
        "queue": int(_clamp(max(_QUEUE_MIN, queue), "queue")),
    }


def draw(name, rng):
    """linkem parameters for one session of profile `name`, drawn with the
    session's random.Random: a dict of linkem options (key.replace('_', '-'))
    for both directions, plus "name" and "seed" (linkem's own random draws)."""
    if name not in PROFILES:
        raise KeyError(f"no network profile named {name!r} (have: {', '.join(names())})")
    prof = PROFILES[name]
    rtt_factor = rng.uniform(0.85, 1.15)
    out = {"name": name, "seed": rng.randrange(1, 2 ** 63),
           "jitter_dist": prof.get("jitter_dist", "normal")}
    for side in ("up", "down"):
        for key, value in _draw_dir(prof[side], rtt_factor, rng).items():
            out[f"{key}_{side}"] = value
    return out


def describe(name):
    """One line: the profile's nominal RTT, rates and loss."""
    p = PROFILES[name]
    up, down = p["up"], p["down"]
    return (f"{name:18} rtt {up['delay_ms'] + down['delay_ms']:6.1f} ms  "
            f"down {down['rate'] / 1000:8.3f} Mbit/s  up {up['rate'] / 1000:8.3f} Mbit/s  "
            f"loss {down['loss']:.2f}%{' bursty' if down['loss_burst'] else ''}"
            f"{'  [test]' if name in TEST_ONLY else ''}  {p['note']}")


if __name__ == "__main__":
    for n in names():
        print(describe(n))
    print(draw("lte-good", random.Random(1)))
