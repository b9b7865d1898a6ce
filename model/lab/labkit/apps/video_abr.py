"""Adaptive streaming video: nginx (TLS with the lab certificate, HTTP/1.1 or
HTTP/2) in the server namespace serves test footage packaged as HLS and DASH
(fragmented MP4, four video bitrates and one audio track, byte-range
segments of 2, 4 or 6 s); a player in the client namespace (this file run by
/usr/bin/python3) watches it as a person would.

The player behaves like a real one: a startup phase fetching as fast as it
can until the buffer holds its target, then on/off fetching (a segment when
the buffer has room for one), buffer-based bitrate adaptation (BBA: rate from
the buffer level between a reservoir and a cushion, capped by the measured
throughput), playback in real time (stalls when the buffer runs dry), on
persistent connections (HLS over HTTP/1.1: one for video and manifests, one
for audio, as a browser's player does; DASH over HTTP/2: one connection).
The viewer sometimes starts mid-way, sometimes seeks, and when a video ends
starts the next one after a short pause.

Two variants make the sparser and burstier video that real players make too:

- video-live-2s: a live channel with 2-s segments.  A packager thread in the
  driver publishes the footage, looped, as live HLS (each media playlist a
  sliding window gaining one segment every 2 s); the player joins a few
  segments behind the live edge, reloads the playlists once per segment and
  fetches each new segment as it appears: a short burst every 2 s from start
  to end, never a buffer fill followed by on/off.
- video-paused-lowrate: a viewer on a low rung (240p or 360p, chosen by hand
  or by a data saver) who pauses for 10-60 s at a time and seeks now and
  then.  The player fills its buffer during a pause and then fetches
  nothing, so whole 15-s stretches carry few packets or none.

Run as a script it is that player (see main()); it needs nothing but the
standard library (and httpx with h2 for HTTP/2).
"""
import json
import math
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

if __name__ != "__main__":
    from labkit import assets as labassets
    from labkit import nginx
    from labkit.procs import finish
    from labkit.session import stop

PORT = 443
ASSET = "video-abr"
DURATION = 120                 # s of footage (three scenes)
FPS = 30
GOP = 2                        # s: one fragment per GOP
# (width, height, video kbit/s)
LADDER = [(426, 240, 400), (640, 360, 900), (854, 480, 1800), (1280, 720, 3500)]
AUDIO_KBPS = 128
SEGMENTS = (2, 4, 6)           # segment lengths packaged (s)
LIVE_SEG = 2                   # s: the live channel's segment length (a packaged one)


# ---------------------------------------------------------------- the asset

def _boxes(data, start=0, end=None):
    """(type, offset, size, header) of the ISO BMFF boxes in data[start:end]."""
    end = len(data) if end is None else end
    off = start
    while off + 8 <= end:
        size = int.from_bytes(data[off:off + 4], "big")
        typ = data[off + 4:off + 8].decode("latin-1")
        hdr = 8
        if size == 1:
            size = int.from_bytes(data[off + 8:off + 16], "big")
            hdr = 16
        elif size == 0:
            size = end - off
        if size < hdr:
            break
        yield typ, off, size, hdr
        off += size


def _child(data, off, size, hdr, typ):
    for t, o, s, h in _boxes(data, off + hdr, off + size):
        if t == typ:
            return o, s, h
    raise ValueError(f"no {typ} box")


def _fragments(path):
    """init (offset, length), timescale, [(start s, offset, length)] of an fMP4."""
    with open(path, "rb") as f:
        data = f.read()
    top = list(_boxes(data))
    moov = next(b for b in top if b[0] == "moov")
    o, s, h = _child(data, moov[1], moov[2], moov[3], "trak")
    o, s, h = _child(data, o, s, h, "mdia")
    o, s, h = _child(data, o, s, h, "mdhd")
    p = o + h
    version = data[p]
    timescale = int.from_bytes(data[p + 12:p + 16] if version == 0 else data[p + 20:p + 24], "big")
    frags = []
    first_moof = None
    for i, (typ, off, size, hdr) in enumerate(top):
        if typ != "moof":
            continue
        if first_moof is None:
            first_moof = off
        to, ts, th = _child(data, off, size, hdr, "traf")
        do, ds, dh = _child(data, to, ts, th, "tfdt")
        p = do + dh
        if data[p] == 1:
            base = int.from_bytes(data[p + 4:p + 12], "big")
        else:
            base = int.from_bytes(data[p + 4:p + 8], "big")
        mdat = top[i + 1]
        assert mdat[0] == "mdat", "moof without mdat"
        frags.append((base / timescale, off, mdat[1] + mdat[2] - off))
    codec = "mp4a.40.2"
    k = data.find(b"avcC", moov[1], moov[1] + moov[2])
    if k > 0:
        codec = "avc1.%02x%02x%02x" % (data[k + 5], data[k + 6], data[k + 7])
    return (0, first_moof), frags, codec


def _segments(frags, total, seg):
    """Group fragments into segments of about seg s: [(t, d, offset, length)]."""
    groups = {}
    for t, off, length in frags:
        groups.setdefault(int((t + 0.25) // seg), []).append((t, off, length))
    out = []
    keys = sorted(groups)
    for n, k in enumerate(keys):
        g = groups[k]
        t = g[0][0]
        nxt = groups[keys[n + 1]][0][0] if n + 1 < len(keys) else total
        length = g[-1][1] + g[-1][2] - g[0][1]
        out.append((t, nxt - t, g[0][1], length))
    return out


def _build_media(path):
    scene = DURATION // 3
    graph = (
        f"testsrc2=s=1280x720:r={FPS}:d={scene}[s0];"
        f"mandelbrot=s=640x360:r={FPS}:maxiter=200,trim=duration={scene},"
        f"setpts=PTS-STARTPTS,scale=1280:720[s1];"
        f"life=s=320x180:mold=10:r={FPS}:ratio=0.1:death_color=#C83232:"
        f"life_color=#00ff00,trim=duration={scene},setpts=PTS-STARTPTS,"
        f"scale=1280:720:flags=neighbor[s2];"
        f"[s0][s1][s2]concat=n=3:v=1:a=0,format=yuv420p,noise=alls=8:allf=t,"
        f"split={len(LADDER)}" + "".join(f"[t{i}]" for i in range(len(LADDER))) + ";"
        + "".join(f"[t{i}]scale={w}:{h}[v{i}];" for i, (w, h, _) in enumerate(LADDER))
        + f"sine=f=220:beep_factor=3:d={DURATION}[sa];"
        f"anoisesrc=c=pink:a=0.08:d={DURATION}[sb];"
        f"[sa][sb]amix=inputs=2,aformat=channel_layouts=stereo:sample_rates=48000,asetnsamples=n=1024:p=0[a]")
    frag = ["-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4"]
    args = ["nice", "-n", "10", "ffmpeg", "-nostdin", "-v", "error", "-y",
            "-filter_complex", graph]
    for i, (w, h, kbps) in enumerate(LADDER):
        args += ["-map", f"[v{i}]", "-c:v", "libx264", "-preset", "ultrafast",
                 "-b:v", f"{kbps}k", "-maxrate", f"{int(kbps * 1.2)}k",
                 "-bufsize", f"{kbps * 2}k", "-g", str(GOP * FPS),
                 "-keyint_min", str(GOP * FPS), "-sc_threshold", "0", "-threads", "2",
                 "-an"] + frag + [os.path.join(path, f"v{i}.mp4")]
    args += ["-map", "[a]", "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-vn",
             "-frag_duration", str(GOP * 1_000_000),
             "-movflags", "+empty_moov+default_base_moof", "-f", "mp4",
             os.path.join(path, "a.mp4")]
    r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"ffmpeg could not make the footage: {r.stderr.strip()[-300:]}")
    tracks = []
    for i, (w, h, kbps) in enumerate(LADDER):
        init, frags, codec = _fragments(os.path.join(path, f"v{i}.mp4"))
        tracks.append(dict(id=f"v{i}", file=f"v{i}.mp4", init=init, frags=frags,
                           codec=codec, width=w, height=h,
                           bw=int(kbps * 1000 * 1.1)))
    init, frags, codec = _fragments(os.path.join(path, "a.mp4"))
    audio = dict(id="a", file="a.mp4", init=init, frags=frags, codec=codec,
                 bw=AUDIO_KBPS * 1000)
    for seg in SEGMENTS:
        _write_hls(path, tracks, audio, seg)
        _write_dash(path, tracks, audio, seg)


def _write_hls(path, tracks, audio, seg):
    def media(tr):
        segs = _segments(tr["frags"], DURATION, seg)
        lines = ["#EXTM3U", "#EXT-X-VERSION:7",
                 f"#EXT-X-TARGETDURATION:{math.ceil(max(s[1] for s in segs))}",
                 "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD",
                 "#EXT-X-INDEPENDENT-SEGMENTS",
                 f'#EXT-X-MAP:URI="{tr["file"]}",BYTERANGE="{tr["init"][1]}@0"']
        for t, d, off, length in segs:
            lines += [f"#EXTINF:{d:.3f},", f"#EXT-X-BYTERANGE:{length}@{off}", tr["file"]]
        lines.append("#EXT-X-ENDLIST")
        name = f"{tr['id']}_{seg}s.m3u8"
        with open(os.path.join(path, name), "w") as f:
            f.write("\n".join(lines) + "\n")
        return name

    master = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS",
              f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",'
              f'DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="{media(audio)}"']
    for tr in tracks:
        master += [f'#EXT-X-STREAM-INF:BANDWIDTH={tr["bw"] + audio["bw"]},'
                   f'AVERAGE-BANDWIDTH={int((tr["bw"] + audio["bw"]) / 1.1)},'
                   f'RESOLUTION={tr["width"]}x{tr["height"]},FRAME-RATE={FPS}.000,'
                   f'CODECS="{tr["codec"]},{audio["codec"]}",AUDIO="aud"', media(tr)]
    with open(os.path.join(path, f"master_{seg}s.m3u8"), "w") as f:
        f.write("\n".join(master) + "\n")


def _write_dash(path, tracks, audio, seg):
    def rep(tr, extra):
        segs = _segments(tr["frags"], DURATION, seg)
        ms = [(round(t * 1000), round(d * 1000)) for t, d, _, _ in segs]
        tl = "".join(f'<S t="{t}" d="{d}"/>' for t, d in ms)
        urls = "".join(f'<SegmentURL mediaRange="{off}-{off + length - 1}"/>'
                       for _, _, off, length in segs)
        return (f'<Representation id="{tr["id"]}" bandwidth="{tr["bw"]}" '
                f'codecs="{tr["codec"]}"{extra}><BaseURL>{tr["file"]}</BaseURL>'
                f'<SegmentList timescale="1000"><Initialization range="0-{tr["init"][1] - 1}"/>'
                f'<SegmentTimeline>{tl}</SegmentTimeline>{urls}</SegmentList></Representation>')

    video = "".join(rep(tr, f' width="{tr["width"]}" height="{tr["height"]}" '
                            f'frameRate="{FPS}"') for tr in tracks)
    mpd = (f'<?xml version="1.0" encoding="utf-8"?>\n'
           f'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
           f'profiles="urn:mpeg:dash:profile:isoff-main:2011" minBufferTime="PT{seg}S" '
           f'mediaPresentationDuration="PT{DURATION}S"><Period id="0">'
           f'<AdaptationSet id="0" contentType="video" mimeType="video/mp4" '
           f'segmentAlignment="true" startWithSAP="1">{video}</AdaptationSet>'
           f'<AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" lang="en" '
           f'segmentAlignment="true">{rep(audio, " audioSamplingRate=" + chr(34) + "48000" + chr(34))}'
           f'</AdaptationSet></Period></MPD>\n')
    with open(os.path.join(path, f"manifest_{seg}s.mpd"), "w") as f:
        f.write(mpd)


def media_asset(assets_dir):
    return labassets.ensure(assets_dir, ASSET, _build_media)


# ---------------------------------------------------------------- the server

# The rest of the http block after labkit.nginx's HEAD.
NGINX_HTTP = """\
    default_type application/octet-stream;
    types {{
        application/vnd.apple.mpegurl m3u8;
        application/dash+xml mpd;
        video/mp4 mp4;
    }}
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 75;
    keepalive_requests 10000;
    gzip on;
    gzip_types application/vnd.apple.mpegurl application/dash+xml;
    server {{
{tls}
        location /vod/ {{
            alias {media}/;
            add_header Access-Control-Allow-Origin *;
            add_header Cache-Control "max-age=3600";
        }}{live}
    }}
}}
"""

# The live channel's folder (LiveStream): playlists that change every
# segment, so caches may keep them for a second at most.
LIVE_LOCATION = """
        location /live/ {{
            alias {path}/;
            add_header Access-Control-Allow-Origin *;
            add_header Cache-Control "max-age=1";
        }}"""


def start_nginx(env, media, http2, live=None):
    """nginx serving the footage under /vod/ (and the live channel's folder
    live under /live/); returns its Popen and the TLS paths."""
    tls = labassets.tls(env.assets, env.server_ips)
    prefix = nginx.prefix(env)
    server = nginx.TLS_SERVER.format(ip=env.server_ip, port=PORT, h2=nginx.h2(http2),
                                     cert=tls["cert"], key=tls["key"])
    location = LIVE_LOCATION.format(path=live) if live else ""
    return nginx.start(env, prefix, NGINX_HTTP.format(tls=server, media=media, live=location),
                       PORT), tls


class LiveStream:
    """The footage as a live channel, published as a live packager does:
    every LIVE_SEG s each media playlist under path gains the next segment
    and drops its oldest (a sliding window), the footage looping with a
    discontinuity at each restart.  The segments stay byte ranges of the
    footage's files (linked into path); a thread of the driver's process
    writes the playlists, which nginx serves."""

    def __init__(self, media, path, rng):
        self.path = path
        os.makedirs(path)
        self.tracks = {}        # playlist name -> (media file, init range, segments)
        for name in sorted(os.listdir(media)):
            if name.endswith(f"_{LIVE_SEG}s.m3u8") and not name.startswith("master"):
                vod = os.path.join(os.path.abspath(media), name)
                with open(vod) as f:
                    pl = parse_hls_media(f.read(), vod)
                file = os.path.basename(pl["file"])
                self.tracks[name] = (file, pl["init"], pl["segs"])
                if not os.path.exists(os.path.join(path, file)):
                    os.symlink(pl["file"], os.path.join(path, file))
        shutil.copy(os.path.join(media, f"master_{LIVE_SEG}s.m3u8"),
                    os.path.join(path, "master.m3u8"))
        self.loop = min(len(t[2]) for t in self.tracks.values())   # segments per loop
        # EXT-X-TARGETDURATION: the longest segment, rounded (RFC 8216 4.3.3.1)
        self.target = max(round(s[1]) for t in self.tracks.values() for s in t[2])
        self.window = rng.choice([4, 5, 6, 8, 10])   # segments a playlist lists
        self.first = rng.randrange(1000, 100000)      # the channel has been on a while
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish_all, daemon=True)

    def publish(self, last):
        """Write every media playlist ending with segment number last."""
        first = last - self.window + 1
        for name, (file, init, segs) in self.tracks.items():
            lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{self.target}",
                     f"#EXT-X-MEDIA-SEQUENCE:{first}",
                     f"#EXT-X-DISCONTINUITY-SEQUENCE:{first // self.loop}",
                     "#EXT-X-INDEPENDENT-SEGMENTS",
                     f'#EXT-X-MAP:URI="{file}",BYTERANGE="{init[1]}@{init[0]}"']
            for seq in range(first, last + 1):
                k = seq % self.loop
                if k == 0 and seq != first:
                    lines.append("#EXT-X-DISCONTINUITY")
                _, d, off, length = segs[k]
                lines += [f"#EXTINF:{d:.3f},", f"#EXT-X-BYTERANGE:{length}@{off}", file]
            tmp = os.path.join(self.path, f".{name}")
            with open(tmp, "w") as f:
                f.write("\n".join(lines) + "\n")
            os.replace(tmp, os.path.join(self.path, name))   # never a half-written playlist

    def _publish_all(self):
        t0 = time.monotonic()
        n = 0
        while not self._stop.wait(max(0.0, t0 + (n + 1) * LIVE_SEG - time.monotonic())):
            n += 1
            self.publish(self.first + n)

    def start(self):
        self.publish(self.first)     # the playlists exist before nginx serves them
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


# ---------------------------------------------------------------- the drivers

class _AbrPlayer:
    CLASS = "video"
    SERVER_IPS = 1
    PACKAGES = ["ffmpeg", "nginx", "python3", "openssl"]
    KIND = "hls"
    HTTP2 = False
    SEGS = (4, 6)

    @staticmethod
    def prepare(assets_dir):
        """Build the shared footage (about a minute of ffmpeg) ahead of sessions."""
        media_asset(assets_dir)

    def stream(self, rng):
        """This session's (kind, HTTP/2, segment length in s)."""
        return self.KIND, self.HTTP2, rng.choice(self.SEGS)

    def viewer(self, rng):
        """The player's options for this session's viewer (none: the default one)."""
        return []

    def run(self, env):
        rng = env.rng
        media = media_asset(env.assets)
        kind, http2, seg = self.stream(rng)
        manifest = (f"master_{seg}s.m3u8" if kind == "hls" else f"manifest_{seg}s.mpd")
        srv, tls = start_nginx(env, media, http2)
        try:
            self.watch(env, tls, f"/vod/{manifest}", kind, http2)
        finally:
            stop([srv])
        return [{"proto": "tcp", "port": PORT, "label": "video"}]

    def watch(self, env, tls, path, kind, http2, options=None):
        """Run the player (this file) in the client namespace until the
        session's end; options: the player's own (default: the viewer's)."""
        rng = env.rng
        args = ["/usr/bin/python3", os.path.abspath(__file__),
                "--url", f"https://{env.server_ip}:{PORT}{path}",
                "--kind", kind, "--ca", tls["ca"],
                "--seconds", f"{env.remaining():.1f}",
                "--seed", str(rng.randrange(1 << 31))]
        if http2:
            args.append("--http2")
        args += self.viewer(rng) if options is None else options
        player = None
        try:
            player = env.client(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out = finish(player, "video player", env.remaining() + 1, 10)
            env.log(f"{self.NAME}: {path} {out}")
        finally:
            stop([player])


class HlsTlsPlayer(_AbrPlayer):
    NAME = "video-hls-tls"
    KIND = "hls"
    HTTP2 = False
    SEGS = (4, 6)


class DashH2Player(_AbrPlayer):
    NAME = "video-dash-h2"
    PACKAGES = _AbrPlayer.PACKAGES + ["python3-httpx", "python3-h2"]
    KIND = "dash"
    HTTP2 = True
    SEGS = (2, 4)


# s a browser keeps an idle connection to the video's host (minutes: it
# outlives a pause; nginx's keepalive_timeout, 75 s, ends it first).
BROWSER_KEEPALIVE = "300"


class LivePlayer(_AbrPlayer):
    """A live channel with 2-s segments watched near its live edge (see
    LiveStream and LiveViewer)."""
    NAME = "video-live-2s"
    PACKAGES = _AbrPlayer.PACKAGES + ["python3-httpx", "python3-h2"]

    def run(self, env):
        rng = env.rng
        media = media_asset(env.assets)
        # hls.js in a browser: HTTP/2 from most CDNs, HTTP/1.1 from some origins
        http2 = rng.random() < 0.6
        live = LiveStream(media, os.path.join(env.workdir, "live"), rng)
        srv = None
        try:
            live.start()
            srv, tls = start_nginx(env, media, http2, live=live.path)
            self.watch(env, tls, "/live/master.m3u8", "hls", http2,
                       ["--live", "--keepalive", BROWSER_KEEPALIVE])
        finally:
            stop([srv])
            live.stop()
        return [{"proto": "tcp", "port": PORT, "label": "video"}]


class PausedLowRatePlayer(_AbrPlayer):
    """A viewer on a low rung who pauses for 10-60 s now and then and seeks
    (HLS over HTTP/1.1 or DASH over HTTP/2, any packaged segment length)."""
    NAME = "video-paused-lowrate"
    PACKAGES = _AbrPlayer.PACKAGES + ["python3-httpx", "python3-h2"]

    def stream(self, rng):
        kind, http2 = rng.choice([("hls", False), ("dash", True)])
        return kind, http2, rng.choice(SEGMENTS)

    def viewer(self, rng):
        # 240p more often than 360p: a data saver, or a small window on a slow plan
        return ["--rung", str(rng.choice([0, 0, 1])), "--pauses",
                "--keepalive", BROWSER_KEEPALIVE]


APPS = [HlsTlsPlayer, DashH2Player, LivePlayer, PausedLowRatePlayer]


# ---------------------------------------------------------------- the player

UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/120.0 Safari/537.36")


class H1Client:
    """Persistent HTTP/1.1 connections over TLS, one per lane."""

    def __init__(self, host, port, ctx):
        import http.client
        self.http = http.client
        self.host, self.port, self.ctx = host, port, ctx
        self.conns = {}

    def get(self, path, rng=None, lane="main"):
        headers = {"User-Agent": UA, "Accept": "*/*", "Accept-Encoding": "gzip",
                   "Origin": f"https://{self.host}"}
        if rng:
            headers["Range"] = f"bytes={rng[0]}-{rng[0] + rng[1] - 1}"
        for attempt in range(3):
            conn = self.conns.get(lane)
            if conn is None:
                conn = self.http.HTTPSConnection(self.host, self.port, context=self.ctx,
                                                 timeout=20)
                self.conns[lane] = conn
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                if resp.getheader("Content-Encoding") == "gzip":
                    import gzip
                    body = gzip.decompress(body)
                if resp.status not in (200, 206):
                    raise RuntimeError(f"GET {path}: HTTP {resp.status}")
                return body
            except (OSError, self.http.HTTPException):
                conn.close()
                self.conns.pop(lane, None)
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")

    def close(self):
        for c in self.conns.values():
            c.close()


class H2Client:
    """One HTTP/2 connection (httpx with h2).  keepalive: s an idle
    connection is kept (None: httpx's 5 s, which closes it in any pause)."""

    def __init__(self, host, port, ctx, keepalive=None):
        import httpx
        self.httpx = httpx
        self.base = f"https://{host}:{port}"
        more = {} if keepalive is None else {"limits": httpx.Limits(keepalive_expiry=keepalive)}
        self.client = httpx.Client(http2=True, verify=ctx, timeout=20,
                                   headers={"User-Agent": UA, "Origin": self.base}, **more)

    def get(self, path, rng=None, lane="main"):
        headers = {}
        if rng:
            headers["Range"] = f"bytes={rng[0]}-{rng[0] + rng[1] - 1}"
        # A browser retries a request a stalled link timed out (a handover,
        # a long outage), as H1Client does; only failures take this path.
        for attempt in range(3):
            try:
                r = self.client.get(self.base + path, headers=headers)
                break
            except self.httpx.TransportError:
                if attempt == 2:
                    raise
        if r.status_code not in (200, 206):
            raise RuntimeError(f"GET {path}: HTTP {r.status_code}")
        if r.http_version != "HTTP/2":
            raise RuntimeError(f"server answered {r.http_version}, not HTTP/2")
        return r.content

    def close(self):
        self.client.close()


def _attrs(s):
    """HLS attribute list -> dict."""
    out, key, q, buf = {}, None, False, ""
    for ch in s + ",":
        if ch == '"':
            q = not q
        elif ch == "=" and not q and key is None:
            key, buf = buf, ""
        elif ch == "," and not q:
            if key is not None:
                out[key.strip()] = buf
            key, buf = None, ""
        else:
            buf += ch
    return out


def _join(base, rel):
    return rel if rel.startswith("/") else base.rsplit("/", 1)[0] + "/" + rel


def load_hls(http, path):
    """-> video reps, audio rep: dicts with bw, file, init, segs [(t, d, off, len)]
    (media playlists are loaded lazily through 'load')."""
    text = http.get(path).decode()
    video, audio = [], None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-MEDIA:"):
            a = _attrs(line.split(":", 1)[1])
            if a.get("TYPE") == "AUDIO" and "URI" in a:
                audio = {"bw": 128000, "playlist": _join(path, a["URI"])}
        elif line.startswith("#EXT-X-STREAM-INF:"):
            a = _attrs(line.split(":", 1)[1])
            video.append({"bw": int(a["BANDWIDTH"]), "res": a.get("RESOLUTION", ""),
                          "playlist": _join(path, lines[i + 1].strip())})
    video.sort(key=lambda r: r["bw"])
    if audio:
        audio["bw"] = 0
    return video, audio


def parse_hls_media(text, base):
    """An HLS media playlist (at path base) -> {file, init (offset, length),
    seq: its first segment's number, segs [(t, d, offset, length)]}."""
    out = {"file": None, "init": None, "seq": 0}
    segs, t, d = [], 0.0, None
    uri = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-MAP:"):
            a = _attrs(line.split(":", 1)[1])
            n, o = a["BYTERANGE"].split("@")
            out["file"] = _join(base, a["URI"])
            out["init"] = (int(o), int(n))
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            out["seq"] = int(line.split(":", 1)[1])
        elif line.startswith("#EXTINF:"):
            d = float(line.split(":", 1)[1].split(",")[0])
        elif line.startswith("#EXT-X-BYTERANGE:"):
            n, o = line.split(":", 1)[1].split("@")
            segs.append((t, d, int(o), int(n)))
            t += d
        elif line and not line.startswith("#"):
            uri = _join(base, line)
    out["segs"] = segs
    out["file"] = out["file"] or uri
    return out


def load_hls_media(http, rep, lane):
    pl = parse_hls_media(http.get(rep["playlist"], lane=lane).decode(), rep["playlist"])
    rep["segs"] = pl["segs"]
    rep["file"] = rep.get("file") or pl["file"]
    if pl["init"]:
        rep["init"] = pl["init"]
    return pl


def load_dash(http, path):
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    root = ET.fromstring(http.get(path))
    video, audio = [], None
    for aset in root.iterfind("d:Period/d:AdaptationSet", ns):
        kind = aset.get("contentType") or aset.get("mimeType", "").split("/")[0]
        reps = []
        for r in aset.iterfind("d:Representation", ns):
            sl = r.find("d:SegmentList", ns)
            scale = float(sl.get("timescale", "1"))
            a, b = sl.find("d:Initialization", ns).get("range").split("-")
            times = []
            for s in sl.iterfind("d:SegmentTimeline/d:S", ns):
                t0 = int(s.get("t", times[-1][0] + times[-1][1] if times else 0))
                for k in range(int(s.get("r", "0")) + 1):
                    times.append((t0 + k * int(s.get("d")), int(s.get("d"))))
            segs = []
            for (t, d), u in zip(times, sl.iterfind("d:SegmentURL", ns)):
                lo, hi = (int(x) for x in u.get("mediaRange").split("-"))
                segs.append((t / scale, d / scale, lo, hi - lo + 1))
            reps.append({"bw": int(r.get("bandwidth")),
                         "res": f"{r.get('width')}x{r.get('height')}",
                         "file": _join(path, r.find("d:BaseURL", ns).text.strip()),
                         "init": (int(a), int(b) - int(a) + 1), "segs": segs})
        reps.sort(key=lambda r: r["bw"])
        if kind == "video":
            video = reps
        elif kind == "audio":
            audio = reps[0]
    return video, audio


class Player:
    """An on-demand viewer.  rung: the rendition the viewer fixed (None:
    adaptive); pauses: the viewer pauses for 10-60 s now and then (and
    seeks more often)."""

    def __init__(self, http, kind, url_path, rng, deadline, rung=None, pauses=False):
        self.http, self.kind, self.path = http, kind, url_path
        self.rng, self.deadline = rng, deadline
        self.rung, self.pauses = rung, pauses
        self.tput = []              # recent video segment throughputs, bit/s
        self.stats = {"videos": 0, "segments": 0, "bytes": 0, "stalls": 0, "seeks": 0,
                      "reps": {}, "startup_s": []}
        # a viewer's player settings
        self.target = rng.choice([20, 24, 30, 30, 40, 50])     # buffer goal, s
        self.start_buf = rng.choice([2.0, 4.0, 6.0])          # to start playing, s
        self.reservoir = max(4.0, 0.2 * self.target)
        self.cushion = 0.5 * self.target
        self.seek_every = 90.0      # s of playing between seek thoughts, mean
        if pauses:
            self.stats["pauses"] = 0
            self.seek_every = 60.0

    # -- helpers
    def est(self):
        last = self.tput[-4:]
        return len(last) / sum(1 / x for x in last) if last else None

    def choose(self, reps, cur, buf, startup):
        if self.rung is not None:
            return min(self.rung, len(reps) - 1)
        bws = [r["bw"] for r in reps]
        est = self.est()
        if startup:
            if est is None:
                return cur
            ok = [i for i, b in enumerate(bws) if b <= 0.7 * est]
            return ok[-1] if ok else 0
        r, c = self.reservoir, self.cushion
        if buf <= r:
            f = bws[0]
        elif buf >= r + c:
            f = bws[-1]
        else:
            f = bws[0] + (bws[-1] - bws[0]) * (buf - r) / c
        cand = cur
        if cur + 1 < len(bws) and f >= bws[cur + 1]:
            cand = max(i for i, b in enumerate(bws) if b <= f)
            if est is not None:
                while cand > cur and bws[cand] > 0.85 * est:
                    cand -= 1
        elif cur > 0 and f < bws[cur - 1]:
            lower = [i for i, b in enumerate(bws) if b < f]
            cand = lower[-1] if lower else 0
        return cand

    def fetch(self, rep, seg, lane):
        t0 = time.monotonic()
        body = self.http.get(rep["file"], (seg[2], seg[3]), lane=lane)
        dt = max(1e-3, time.monotonic() - t0)
        self.stats["segments"] += 1
        self.stats["bytes"] += len(body)
        return len(body), dt

    def ensure_media(self, rep, lane):
        if self.kind == "hls" and "segs" not in rep:
            load_hls_media(self.http, rep, lane)

    # -- one video
    def watch(self):
        if self.kind == "hls":
            video, audio = load_hls(self.http, self.path)
        else:
            video, audio = load_dash(self.http, self.path)
        if not video:
            raise RuntimeError("manifest has no video")
        alane = "audio" if self.kind == "hls" else "main"
        est = self.est()
        cur = 0 if est is None and self.rung is None else self.choose(video, 0, 0, True)
        self.ensure_media(video[cur], "main")
        if audio:
            self.ensure_media(audio, alane)
        segs = video[cur]["segs"]
        duration = segs[-1][0] + segs[-1][1]
        segdur = max(s[1] for s in segs)
        self.stats["videos"] += 1

        def index_at(t):
            for i, s in enumerate(segs):
                if s[0] <= t < s[0] + s[1]:
                    return i
            return len(segs)

        pos = 0.0
        if self.rng.random() < 0.4:        # resumes or jumps into the video
            pos = segs[self.rng.randrange(0, max(1, len(segs) // 2))][0]
        vi = index_at(pos)
        ai = index_at(pos) if audio else None
        v_end = a_end = segs[vi][0] if vi < len(segs) else duration
        inited = set()
        playing, startup = False, True
        asked = time.monotonic()
        last = asked
        next_seek = last + self.rng.expovariate(1 / self.seek_every)
        # paused until then (playback stands still, the buffer still fills)
        paused_until = 0.0
        next_pause = last + self.rng.uniform(8, 40) if self.pauses else math.inf
        while True:
            now = time.monotonic()
            if playing:
                pos += max(0.0, now - max(last, paused_until))
            last = now
            end = min(v_end, a_end) if audio else v_end
            if now >= self.deadline:
                return False
            if pos >= duration - 0.05:
                return True
            if playing and pos >= end:
                pos = end
                playing, startup = False, True
                self.stats["stalls"] += 1
                asked = now
            buf = end - pos
            if not playing and (buf >= self.start_buf or end >= duration - 0.05):
                playing = True
                self.stats["startup_s"].append(round(now - asked, 2))
            if startup and buf >= self.target - segdur:
                startup = False
            if playing and now >= next_pause:
                self.stats["pauses"] += 1
                paused_until = now + self.rng.uniform(10, 60)
                next_pause = paused_until + self.rng.expovariate(1 / 40.0)
                next_seek = max(next_seek, paused_until)
            if playing and now >= next_seek:
                next_seek = now + self.rng.expovariate(1 / self.seek_every)
                if duration - pos > 30 and self.rng.random() < 0.6:
                    self.stats["seeks"] += 1
                    step = self.rng.choice([-30, -10, 10, 10, 30, 60])
                    pos = max(0.0, min(duration - 20, pos + step))
                    vi = index_at(pos)
                    pos = segs[vi][0]
                    ai = vi if audio else None
                    v_end = a_end = pos
                    playing, startup = False, True
                    asked = now
                    continue
            # what needs fetching: the track that lags most, if the buffer has room
            want = []
            if vi < len(segs) and (v_end - pos) + segdur <= self.target + 0.01 or \
                    (vi < len(segs) and v_end - pos < self.start_buf):
                want.append(("v", v_end))
            if audio and ai < len(audio["segs"]) and (
                    (a_end - pos) + segdur <= self.target + 0.01 or a_end - pos < self.start_buf):
                want.append(("a", a_end))
            if not want:
                wait = (min(v_end, a_end) if audio else v_end) - pos + segdur - self.target
                time.sleep(max(0.05, min(0.5, wait, self.deadline - now)))
                continue
            track = min(want, key=lambda w: w[1])[0]
            if track == "v":
                new = self.choose(video, cur, buf, startup)
                if new != cur:
                    cur = new
                self.ensure_media(video[cur], "main")
                rep = video[cur]
                if cur not in inited:
                    self.http.get(rep["file"], rep["init"], lane="main")
                    inited.add(cur)
                n, dt = self.fetch(rep, rep["segs"][vi], "main")
                if n > 30000:
                    self.tput.append(n * 8 / dt)
                label = rep["res"] or str(rep["bw"])
                self.stats["reps"][label] = self.stats["reps"].get(label, 0) + 1
                v_end = rep["segs"][vi][0] + rep["segs"][vi][1]
                vi += 1
            else:
                if "a" not in inited:
                    self.http.get(audio["file"], audio["init"], lane=alane)
                    inited.add("a")
                seg = audio["segs"][ai]
                self.fetch(audio, seg, alane)
                a_end = seg[0] + seg[1]
                ai += 1

    def run(self):
        while time.monotonic() < self.deadline:
            ended = self.watch()
            if not ended:
                break
            # the next video: the viewer looks around a little first
            time.sleep(max(0.0, min(self.rng.uniform(2, 10),
                                    self.deadline - time.monotonic())))


class Ewma:
    """hls.js's bandwidth average: weighted by download time, with a
    half-life in seconds, corrected for its zero start."""

    def __init__(self, half_life):
        self.alpha = 0.5 ** (1 / half_life)
        self.value = self.weight = 0.0

    def sample(self, weight, value):
        a = self.alpha ** weight
        self.value = a * self.value + (1 - a) * value
        self.weight += weight

    def get(self):
        return self.value / (1 - self.alpha ** self.weight) if self.weight else None


class LiveViewer:
    """A viewer of a live HLS channel, played as hls.js plays one: it joins
    `sync` segments behind the live edge, reloads the media playlists once
    per target duration (after half of one when nothing was new), fetches
    each segment as it appears, and picks the rendition from a throughput
    estimate (its few seconds of buffer leave nothing to base it on).  It
    jumps back to the live edge when it falls out of the playlist's window."""

    def __init__(self, http, url_path, rng, deadline):
        self.http, self.path, self.rng, self.deadline = http, url_path, rng, deadline
        self.sync = rng.choice([2, 3, 3, 3, 4])     # hls.js liveSyncDurationCount: 3
        self.cap = rng.choice([1, 2, 3, 3, 3])      # largest rung for the player's size
        self.fast, self.slow = Ewma(3.0), Ewma(9.0)
        self.stats = {"segments": 0, "bytes": 0, "stalls": 0, "jumps": 0, "reps": {},
                      "sync": self.sync}

    def pick(self, video):
        fast, slow = self.fast.get(), self.slow.get()
        est = 500e3 if fast is None else min(fast, slow)   # hls.js's default estimate
        ok = [i for i, r in enumerate(video) if r["bw"] <= 0.8 * est]
        return ok[-1] if ok else 0

    def fetch(self, track, seg, lane):
        if "inited" not in track:
            self.http.get(track["file"], track["init"], lane=lane)
            track["inited"] = True
        t0 = time.monotonic()
        body = self.http.get(track["file"], seg[2:4], lane=lane)
        dt = max(1e-3, time.monotonic() - t0)
        self.stats["segments"] += 1
        self.stats["bytes"] += len(body)
        return len(body), dt

    def reload(self, track, lane):
        """Load a media playlist: its segments by number; True if it had new ones."""
        pl = load_hls_media(self.http, track, lane)
        known = track.setdefault("known", {})
        new = max(known, default=-1) < pl["seq"] + len(pl["segs"]) - 1
        track["known"] = {pl["seq"] + i: seg for i, seg in enumerate(pl["segs"])}
        track["target"] = max((seg[1] for seg in pl["segs"]), default=LIVE_SEG)
        return new

    def run(self):
        video, audio = load_hls(self.http, self.path)
        video = video[:self.cap + 1]
        lanes = {"v": "main", "a": "audio"}
        tracks = {"v": video[self.pick(video)], "a": audio}
        for k in tracks:
            self.reload(tracks[k], lanes[k])
        edge = max(tracks["v"]["known"])
        nxt = {k: edge - self.sync + 1 for k in tracks}     # next segment number
        end = {k: 0.0 for k in tracks}                     # buffered to, s of stream
        pos, playing = 0.0, False
        last = time.monotonic()
        next_reload = last + tracks["v"]["target"]
        while True:
            now = time.monotonic()
            if now >= self.deadline:
                return
            if playing:
                pos += now - last
            last = now
            buffered = min(end.values())
            if playing and pos >= buffered:
                pos, playing = buffered, False
                self.stats["stalls"] += 1
            if not playing and buffered - pos >= LIVE_SEG:
                playing = True
            if now >= next_reload:
                new = False
                for k in tracks:
                    new = self.reload(tracks[k], lanes[k]) or new
                target = tracks["v"]["target"]
                next_reload = now + (target if new else target / 2)
            oldest = min(tracks["v"]["known"])
            if nxt["v"] < oldest:      # fell out of the window: back to the live edge
                self.stats["jumps"] += 1
                edge = max(tracks["v"]["known"])
                nxt = {k: edge - self.sync + 1 for k in tracks}
                pos = buffered = min(end.values())
                end = {k: pos for k in tracks}
                playing = False
            # the track that lags fetches first
            ready = [k for k in tracks if nxt[k] in tracks[k]["known"]]
            if not ready:
                time.sleep(max(0.01, min(0.25, next_reload - now, self.deadline - now)))
                continue
            k = min(ready, key=lambda k: end[k])
            track = tracks[k]
            seg = track["known"][nxt[k]]
            n, dt = self.fetch(track, seg, lanes[k])
            end[k] += seg[1]
            nxt[k] += 1
            if k == "v":
                if n > 16000:       # too small a download says little of the link
                    self.fast.sample(dt, n * 8 / dt)
                    self.slow.sample(dt, n * 8 / dt)
                label = track.get("res") or str(track["bw"])
                self.stats["reps"][label] = self.stats["reps"].get(label, 0) + 1
                better = video[self.pick(video)]
                if better is not track:     # switch: the new rendition's playlist first
                    self.reload(better, lanes["v"])
                    tracks["v"] = better


def main():
    import argparse
    ap = argparse.ArgumentParser(description="adaptive streaming player")
    ap.add_argument("--url", required=True)
    ap.add_argument("--kind", choices=["hls", "dash"], required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--http2", action="store_true")
    ap.add_argument("--live", action="store_true", help="a live HLS channel")
    ap.add_argument("--rung", type=int, help="fixed rendition (0: the lowest)")
    ap.add_argument("--pauses", action="store_true", help="the viewer pauses now and then")
    ap.add_argument("--keepalive", type=float,
                    help="s an idle HTTP/2 connection is kept (default: httpx's)")
    args = ap.parse_args()
    deadline = time.monotonic() + args.seconds
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from urllib.parse import urlsplit
    u = urlsplit(args.url)
    ctx = ssl.create_default_context(cafile=args.ca)
    if args.http2:
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        http = H2Client(u.hostname, u.port or 443, ctx, keepalive=args.keepalive)
    else:
        http = H1Client(u.hostname, u.port or 443, ctx)
    rng = random.Random(args.seed)
    if args.live:
        player = LiveViewer(http, u.path, rng, deadline)
    else:
        player = Player(http, args.kind, u.path, rng, deadline, rung=args.rung,
                        pauses=args.pauses)
    try:
        player.run()
    finally:
        http.close()
        s = player.stats
        if not args.live:
            s["target_s"] = player.target
        s["mbytes"] = round(s.pop("bytes") / 1e6, 1)
        print(json.dumps(s), flush=True)


if __name__ == "__main__":
    main()
