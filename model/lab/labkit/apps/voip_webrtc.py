"""VoIP: a WebRTC audio call between two aiortc peers.

The callee runs in the server namespace: a small HTTPS signaling endpoint
(the lab certificate) takes the caller's SDP offer and returns its answer,
and later the caller's hang-up.  Both peers send a speech track
(voip_speech) as Opus over DTLS-SRTP, and drop what they receive.  ICE uses
host candidates only (an empty iceServers list: aiortc's default STUN
server is never asked), so media goes straight between the namespaces on
one bundled, rtcp-muxed UDP flow; the callee reports its media port, which
the driver returns as the "voip" selector.
"""
import json
import os
import time

from labkit import assets as lab_assets
from labkit.apps import voip_speech
from labkit.session import stop

SIGNAL_PORT = 8443

PEER = r'''
import argparse, asyncio, json, logging, os, signal, ssl, sys, time

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole, MediaPlayer


def opus_bitrate(bitrate):
    """aiortc leaves libopus at its default (about 100 kbit/s for 48 kHz
    stereo); browsers aim lower.  Set the encoder's target like they do."""
    if not bitrate:
        return
    import ctypes
    from aiortc.codecs import opus
    libopus = ctypes.CDLL("libopus.so.0")
    init = opus.OpusEncoder.__init__

    def patched(self):
        init(self)
        ptr = ctypes.c_void_p(int(opus.ffi.cast("uintptr_t", self.encoder)))
        libopus.opus_encoder_ctl(ptr, 4002, ctypes.c_int(bitrate))  # SET_BITRATE

    opus.OpusEncoder.__init__ = patched


def patient_consent():
    """aioice sends each consent check (RFC 7675) once and waits 0.5 s for
    the answer, so on a link with a longer round trip (satellite, EDGE)
    every check fails and the call is dropped after 30 s; browsers
    retransmit.  Let the checks be retransmitted as STUN does."""
    import random
    import aioice.ice as ice

    async def query_consent(self):
        failures = 0
        while True:
            await asyncio.sleep(ice.CONSENT_INTERVAL * (0.8 + 0.4 * random.random()))
            for pair in self._nominated.values():
                request = self.build_request(pair, nominate=False)
                try:
                    await pair.protocol.request(
                        request, pair.remote_addr,
                        integrity_key=self.remote_password.encode("utf8"),
                        retransmissions=3)
                    failures = 0
                except ice.stun.TransactionError:
                    failures += 1
                if failures >= ice.CONSENT_FAILURES:
                    self._query_consent_handle = None
                    return await self.close()

    ice.Connection.query_consent = query_consent


def pc_new():
    # No ICE servers at all: host candidates only, nothing outside is asked.
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def codec_prefs(pc, codec):
    from aiortc.rtcrtpsender import RTCRtpSender
    caps = RTCRtpSender.getCapabilities("audio")
    prefs = [c for c in caps.codecs if c.mimeType.lower() == "audio/" + codec]
    for t in pc.getTransceivers():
        if t.kind == "audio" and prefs:
            t.setCodecPreferences(prefs)


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return method, path, body


def response(status, body=b"", ctype="application/json"):
    return (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"Cache-Control: no-store\r\n\r\n").encode() + body


async def callee(a):
    done = asyncio.Event()
    pcs = []

    async def handle(reader, writer):
        try:
            while True:
                try:
                    method, path, body = await read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                if method == "POST" and path == "/call":
                    offer = json.loads(body)
                    pc = pc_new()
                    pcs.append(pc)
                    player = MediaPlayer(a.audio)
                    sink = MediaBlackhole()

                    @pc.on("track")
                    def on_track(track):
                        sink.addTrack(track)

                    @pc.on("connectionstatechange")
                    async def on_state():
                        print("STATE", pc.connectionState, flush=True)
                        if pc.connectionState in ("failed", "closed"):
                            done.set()

                    await pc.setRemoteDescription(RTCSessionDescription(**offer))
                    for t in pc.getTransceivers():
                        if t.kind == "audio":
                            pc.addTrack(player.audio)
                    await pc.setLocalDescription(await pc.createAnswer())
                    await sink.start()
                    ans = pc.localDescription
                    ports = sorted({int(l.split()[5]) for l in ans.sdp.splitlines()
                                    if l.startswith("a=candidate:")})
                    with open(a.status, "w") as f:
                        json.dump({"media_ports": ports}, f)
                    print("MEDIA", ports, flush=True)
                    writer.write(response("200 OK", json.dumps(
                        {"sdp": ans.sdp, "type": ans.type}).encode()))
                elif method == "POST" and path == "/hangup":
                    writer.write(response("200 OK", b"{}"))
                    await writer.drain()
                    done.set()
                    break
                else:
                    writer.write(response("404 Not Found", b"{}"))
                await writer.drain()
        finally:
            writer.close()

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    server = await asyncio.start_server(handle, a.bind, a.port, ssl=ctx)
    print("LISTENING", flush=True)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    await done.wait()
    server.close()
    for pc in pcs:
        await pc.close()


async def caller(a):
    ctx = ssl.create_default_context(cafile=a.ca)
    pc = pc_new()
    player = MediaPlayer(a.audio)
    sink = MediaBlackhole()
    failed = asyncio.Event()

    @pc.on("track")
    def on_track(track):
        sink.addTrack(track)

    @pc.on("connectionstatechange")
    async def on_state():
        print("STATE", pc.connectionState, flush=True)
        if pc.connectionState in ("failed", "closed"):
            failed.set()

    pc.addTrack(player.audio)
    codec_prefs(pc, a.codec)
    await pc.setLocalDescription(await pc.createOffer())
    reader, writer = await asyncio.open_connection(a.host, a.port, ssl=ctx,
                                                   server_hostname=a.host)

    async def post(path, obj):
        body = json.dumps(obj).encode()
        writer.write((f"POST {path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                      f"\r\n").encode() + body)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        n = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
             if l.lower().startswith(b"content-length:")][0]
        return json.loads(await reader.readexactly(n))

    answer = await post("/call", {"sdp": pc.localDescription.sdp,
                                  "type": pc.localDescription.type})
    await pc.setRemoteDescription(RTCSessionDescription(**answer))
    await sink.start()
    end = time.monotonic() + 15
    while pc.connectionState != "connected":
        if time.monotonic() > end or failed.is_set():
            print("FAILED connection", pc.connectionState, flush=True)
            sys.exit(3)
        await asyncio.sleep(0.1)
    print("CONNECTED", flush=True)
    try:
        await asyncio.wait_for(failed.wait(), timeout=a.seconds)
        print("FAILED during call", pc.connectionState, flush=True)
        sys.exit(4)
    except asyncio.TimeoutError:
        pass
    await post("/hangup", {})
    writer.close()
    await pc.close()
    print("HUNGUP", flush=True)


ap = argparse.ArgumentParser()
ap.add_argument("role")
ap.add_argument("--audio")
ap.add_argument("--bind")
ap.add_argument("--host")
ap.add_argument("--port", type=int)
ap.add_argument("--cert")
ap.add_argument("--key")
ap.add_argument("--ca")
ap.add_argument("--status")
ap.add_argument("--codec", default="opus")
ap.add_argument("--seconds", type=float, default=30)
ap.add_argument("--bitrate", type=int, default=0)
a = ap.parse_args()
opus_bitrate(a.bitrate)
patient_consent()
logging.basicConfig(level=logging.WARNING)
asyncio.run(callee(a) if a.role == "callee" else caller(a))
'''


class WebrtcAiortc:
    CLASS = "voip"
    NAME = "webrtc-aiortc"
    PACKAGES = ["python3-aiortc", "espeak-ng", "sox", "python3"]
    SERVER_IPS = 1
    CODEC = "opus"
    SRATE = 48000

    def run(self, env):
        tls = lab_assets.tls(env.assets, env.server_ips)
        src_a, src_b = voip_speech.session_tracks(env, self.SRATE, env.seconds + 20)
        script = os.path.join(env.workdir, "webrtc_peer.py")
        with open(script, "w") as f:
            f.write(PEER)
        status = os.path.join(env.workdir, "webrtc-status.json")
        logs = {s: os.path.join(env.workdir, f"webrtc-{s}.log") for s in ("server", "client")}
        # Each peer's Opus target, as a browser would pick (0: aiortc's default).
        rates = [env.rng.choice([24000, 32000, 32000, 40000, 48000, 0]) for _ in range(2)]
        procs = []
        try:
            with open(logs["server"], "w") as lf:
                srv = env.server(["/usr/bin/python3", script, "callee", "--audio", src_b,
                                  "--bind", env.server_ip, "--port", str(SIGNAL_PORT),
                                  "--cert", tls["cert"], "--key", tls["key"],
                                  "--status", status, "--bitrate", str(rates[1])],
                                 stdout=lf, stderr=lf)
            procs.append(srv)
            try:
                env.wait_port(SIGNAL_PORT, seconds=20)
            except RuntimeError:
                raise RuntimeError(f"aiortc callee did not start: {_tail(logs['server'])}")
            # The caller opens the app and presses call after a moment.
            time.sleep(env.rng.uniform(0.5, 2.0))
            talk = max(5.0, env.remaining() - 1.5)
            with open(logs["client"], "w") as lf:
                cli = env.client(["/usr/bin/python3", script, "caller", "--audio", src_a,
                                  "--host", env.server_ip, "--port", str(SIGNAL_PORT),
                                  "--ca", tls["ca"], "--codec", self.CODEC,
                                  "--seconds", f"{talk:.1f}", "--bitrate", str(rates[0])],
                                 stdout=lf, stderr=lf)
            procs.append(cli)
            try:
                rc = cli.wait(timeout=talk + 40)
            except Exception:
                raise RuntimeError("aiortc caller did not finish")
            if rc != 0 or "HUNGUP" not in _read(logs["client"]):
                raise RuntimeError(f"aiortc call failed: {_tail(logs['client'])}")
            try:
                srv.wait(timeout=5)
            except Exception:
                pass
        finally:
            stop(procs)
            if os.environ.get("FPLAB_KEEP_LOGS"):
                import shutil
                for f in logs.values():
                    if os.path.exists(f):
                        shutil.copy(f, os.environ["FPLAB_KEEP_LOGS"])
        try:
            with open(status) as f:
                ports = json.load(f)["media_ports"]
        except (OSError, ValueError, KeyError):
            raise RuntimeError("aiortc callee reported no media port")
        sel = [{"proto": "udp", "port": p, "label": "voip"} for p in ports]
        return sel + [{"proto": "tcp", "port": SIGNAL_PORT, "label": "control"}]


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _tail(path):
    lines = [l.strip() for l in _read(path).splitlines() if l.strip()]
    return " | ".join(lines[-3:]) or "no output"


APPS = [WebrtcAiortc]
