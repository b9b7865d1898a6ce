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
from labkit.procs import keep_logs, run_client, script, start_server
from labkit.session import stop

SIGNAL_PORT = 8443

PEER = r'''
import asyncio, json, logging, sys

from aiortc import RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole, MediaPlayer
from labkit import webrtc


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


async def callee(a):
    done = asyncio.Event()
    pcs = []

    async def on_request(method, path, body, writer):
        if method == "POST" and path == "/call":
            offer = json.loads(body)
            pc = webrtc.peer()
            pcs.append(pc)
            player = MediaPlayer(a.audio)
            sink = MediaBlackhole()
            webrtc.receive(pc, sink, done, echo=True)
            await pc.setRemoteDescription(RTCSessionDescription(**offer))
            for t in pc.getTransceivers():
                if t.kind == "audio":
                    pc.addTrack(player.audio)
            await pc.setLocalDescription(await pc.createAnswer())
            await sink.start()
            ans = pc.localDescription
            ports = webrtc.candidate_ports(ans.sdp)
            with open(a.status, "w") as f:
                json.dump({"media_ports": ports}, f)
            print("MEDIA", ports, flush=True)
            writer.write(webrtc.response("200 OK", json.dumps(
                {"sdp": ans.sdp, "type": ans.type}).encode()))
        elif method == "POST" and path == "/hangup":
            writer.write(webrtc.response("200 OK", b"{}"))
            await writer.drain()
            done.set()
            return False
        else:
            writer.write(webrtc.response("404 Not Found", b"{}"))
        return True

    await webrtc.serve(on_request, a.bind, a.port, a.cert, a.key, done)
    for pc in pcs:
        await pc.close()


async def caller(a):
    pc = webrtc.peer()
    player = MediaPlayer(a.audio)
    sink = MediaBlackhole()
    failed = asyncio.Event()
    webrtc.receive(pc, sink, failed, echo=True)
    pc.addTrack(player.audio)
    webrtc.codec_prefs(pc, "audio", a.codec)
    await pc.setLocalDescription(await pc.createOffer())
    request, writer = await webrtc.client(a.host, a.port, a.ca)

    async def post(path, obj):
        _, _, body = await request("POST", path, json.dumps(obj).encode(), "application/json")
        return json.loads(body)

    answer = await post("/call", {"sdp": pc.localDescription.sdp,
                                  "type": pc.localDescription.type})
    await pc.setRemoteDescription(RTCSessionDescription(**answer))
    await sink.start()
    if not await webrtc.connected(pc, failed):
        print("FAILED connection", pc.connectionState, flush=True)
        sys.exit(3)
    print("CONNECTED", flush=True)
    if not await webrtc.lasts(failed, a.seconds):
        print("FAILED during call", pc.connectionState, flush=True)
        sys.exit(4)
    await post("/hangup", {})
    writer.close()
    await pc.close()
    print("HUNGUP", flush=True)


ap = webrtc.arguments(["callee", "caller"], codec="opus")
ap.add_argument("--audio")
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
        peer = script(env, "webrtc_peer.py", PEER)
        status = os.path.join(env.workdir, "webrtc-status.json")
        logs = {s: os.path.join(env.workdir, f"webrtc-{s}.log") for s in ("server", "client")}
        # Each peer's Opus target, as a browser would pick (0: aiortc's default).
        rates = [env.rng.choice([24000, 32000, 32000, 40000, 48000, 0]) for _ in range(2)]
        srv = None
        try:
            srv = start_server(env, "aiortc callee",
                               ["/usr/bin/python3", peer, "callee", "--audio", src_b,
                                "--bind", env.server_ip, "--port", str(SIGNAL_PORT),
                                "--cert", tls["cert"], "--key", tls["key"],
                                "--status", status, "--bitrate", str(rates[1])],
                               SIGNAL_PORT, logs["server"], seconds=20)
            # The caller opens the app and presses call after a moment.
            time.sleep(env.rng.uniform(0.5, 2.0))
            talk = max(5.0, env.remaining() - 1.5)
            run_client(env, "aiortc caller",
                       ["/usr/bin/python3", peer, "caller", "--audio", src_a,
                        "--host", env.server_ip, "--port", str(SIGNAL_PORT),
                        "--ca", tls["ca"], "--codec", self.CODEC,
                        "--seconds", f"{talk:.1f}", "--bitrate", str(rates[0])],
                       logs["client"], talk + 40, "HUNGUP")
            try:
                srv.wait(timeout=5)
            except Exception:
                pass
        finally:
            stop([srv])
            keep_logs(*logs.values())
        try:
            with open(status) as f:
                ports = json.load(f)["media_ports"]
        except (OSError, ValueError, KeyError):
            raise RuntimeError("aiortc callee reported no media port")
        sel = [{"proto": "udp", "port": p, "label": "voip"} for p in ports]
        return sel + [{"proto": "tcp", "port": SIGNAL_PORT, "label": "control"}]


APPS = [WebrtcAiortc]
