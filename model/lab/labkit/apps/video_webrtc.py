"""Live video over WebRTC, as a viewer of a low-latency live stream: a WHEP
style egress server (aiortc, this file run by /usr/bin/python3) in the
server namespace sends a live video (the video-abr footage looped, or a
camera-like lavfi test picture with noise, encoded by aiortc as VP8 or
H.264 at the rate its congestion control allows) and its audio (Opus) to each viewer that POSTs an SDP offer over
HTTPS (the lab certificate); an aiortc viewer in the client namespace
receives and decodes both.  ICE uses host candidates only (an empty
iceServers list), so media is one bundled, rtcp-muxed UDP flow.  Now and
then the viewer leaves and joins another stream (a new flow).

Flows: the UDP media flow is "video" (the server reports its ports), the
signaling (tcp/8443) "control".
"""
import asyncio
import json
import os
import subprocess
import sys
import time

if __name__ == "__main__":
    # Run as the peer in a namespace: labkit is in the lab's folder.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
else:
    from labkit import assets as labassets
    from labkit.apps import video_abr
    from labkit.procs import start_server
    from labkit.session import stop
from labkit import webrtc

SIGNAL_PORT = 8443

# stream name -> its video: a file of the footage (looped) or a live lavfi
# source (a camera: test picture with sensor noise)
STREAMS = {"live1": "v1.mp4", "live2": "v2.mp4",
           "cam1": "lavfi:testsrc2=s=640x360:r=30,noise=alls=10:allf=t",
           "cam2": "lavfi:testsrc2=s=960x540:r=25,noise=alls=6:allf=t"}


# ---------------------------------------------------------------- the peers

async def server(a):
    from aiortc import RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer

    done = asyncio.Event()
    sessions = {}

    async def on_request(method, path, body, writer):
        name = path.rsplit("/", 1)[-1]
        if method == "POST" and path.startswith("/whep/") and name in STREAMS:
            pc = webrtc.peer()
            src = STREAMS[name]
            if src.startswith("lavfi:"):
                video = MediaPlayer(src[6:], format="lavfi")
            else:
                video = MediaPlayer(os.path.join(a.media, src), loop=True)
            audio = MediaPlayer(os.path.join(a.media, "a.mp4"), loop=True)
            await pc.setRemoteDescription(RTCSessionDescription(
                sdp=body.decode(), type="offer"))
            pc.addTrack(video.video)
            pc.addTrack(audio.audio)
            await pc.setLocalDescription(await pc.createAnswer())
            ans = pc.localDescription.sdp
            sid = f"s{len(sessions) + 1}"
            sessions[sid] = (pc, video, audio)
            with open(a.status, "a") as f:
                f.write(json.dumps({"session": sid, "ports": webrtc.candidate_ports(ans)}) + "\n")
            writer.write(webrtc.response("201 Created", ans.encode(), ctype="application/sdp",
                                         extra=f"Location: /whep/session/{sid}\r\n"))
        elif method == "DELETE" and path.startswith("/whep/session/"):
            s = sessions.pop(name, None)
            if s:
                await s[0].close()
            writer.write(webrtc.response("200 OK", ctype="text/plain"))
        else:
            writer.write(webrtc.response("404 Not Found", ctype="text/plain"))
        return True

    await webrtc.serve(on_request, a.bind, a.port, a.cert, a.key, done)
    for pc, _, _ in sessions.values():
        await pc.close()


async def viewer(a):
    """Watch stream a.stream for a.seconds; exit 0 when done."""
    from aiortc import RTCSessionDescription
    from aiortc.contrib.media import MediaBlackhole

    pc = webrtc.peer()
    sink = MediaBlackhole()
    failed = asyncio.Event()
    webrtc.receive(pc, sink, failed)
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    webrtc.codec_prefs(pc, "video", a.codec)
    await pc.setLocalDescription(await pc.createOffer())
    request, writer = await webrtc.client(a.host, a.port, a.ca)
    status, hdr, answer = await request("POST", f"/whep/{a.stream}",
                                        pc.localDescription.sdp.encode(), "application/sdp")
    if " 201 " not in status + " ":
        print(f"WHEP offer refused: {status}", file=sys.stderr)
        sys.exit(2)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.decode(), type="answer"))
    await sink.start()
    if not await webrtc.connected(pc, failed):
        print(f"ICE/DTLS did not connect: {pc.connectionState}", file=sys.stderr)
        sys.exit(3)
    if not await webrtc.lasts(failed, a.seconds):
        print(f"connection lost: {pc.connectionState}", file=sys.stderr)
        sys.exit(4)
    await request("DELETE", hdr.get("location", "/whep/session/none"), b"", "application/sdp")
    writer.close()
    await sink.stop()
    await pc.close()
    print("LEFT", flush=True)


def main():
    import logging
    ap = webrtc.arguments(["server", "viewer"], codec="VP8")
    ap.add_argument("--media")
    ap.add_argument("--stream")
    a = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(server(a) if a.role == "server" else viewer(a))


# ---------------------------------------------------------------- the driver

class WebrtcLive:
    CLASS = "video"
    NAME = "video-webrtc-live"
    PACKAGES = ["python3-aiortc", "python3", "ffmpeg"]
    SERVER_IPS = 1

    @staticmethod
    def prepare(assets_dir):
        """Build the shared footage ahead of sessions."""
        video_abr.media_asset(assets_dir)

    def run(self, env):
        rng = env.rng
        media = video_abr.media_asset(env.assets)
        tls = labassets.tls(env.assets, env.server_ips)
        status = os.path.join(env.workdir, "whep-status.jsonl")
        log = os.path.join(env.workdir, "whep-server.log")
        me = os.path.abspath(__file__)
        procs = []
        views = 0
        try:
            procs.append(start_server(env, "WHEP server",
                                      ["/usr/bin/python3", me, "server", "--media", media,
                                       "--bind", env.server_ip, "--port", str(SIGNAL_PORT),
                                       "--cert", tls["cert"], "--key", tls["key"],
                                       "--status", status], SIGNAL_PORT, log, seconds=20))
            stream = rng.choice(sorted(STREAMS))
            codec = rng.choice(["VP8", "VP8", "H264"])
            while env.remaining() > 6:
                # one stream watched for a while, or to the end of the session
                watch = env.remaining() - 2
                if rng.random() < 0.35:
                    watch = min(watch, rng.uniform(15, 60))
                p = env.client(["/usr/bin/python3", me, "viewer", "--host", env.server_ip,
                                "--port", str(SIGNAL_PORT), "--ca", tls["ca"],
                                "--stream", stream, "--codec", codec,
                                "--seconds", f"{max(3.0, watch):.1f}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                procs.append(p)
                try:
                    out, err = p.communicate(timeout=watch + 30)
                except subprocess.TimeoutExpired:
                    raise RuntimeError("aiortc viewer did not finish")
                if p.returncode != 0 or "LEFT" not in out:
                    lines = [l for l in err.splitlines() if l.strip()] or [f"exit {p.returncode}"]
                    raise RuntimeError(f"aiortc viewer failed: {lines[-1][:300]}")
                views += 1
                stream = rng.choice([s for s in sorted(STREAMS) if s != stream])
                time.sleep(min(env.remaining(), rng.uniform(1, 5)))
            env.log(f"{self.NAME}: {views} views, codec {codec}")
        finally:
            stop(procs)
        ports = set()
        try:
            with open(status) as f:
                for line in f:
                    ports.update(json.loads(line)["ports"])
        except (OSError, ValueError, KeyError):
            pass
        if not ports:
            raise RuntimeError("WHEP server reported no media port")
        sel = [{"proto": "udp", "port": p, "label": "video"} for p in sorted(ports)]
        return sel + [{"proto": "tcp", "port": SIGNAL_PORT, "label": "control"}]


APPS = [WebrtcLive]

if __name__ == "__main__":
    main()
