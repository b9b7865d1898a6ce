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
import json
import os
import subprocess
import sys
import time

if __name__ != "__main__":
    from labkit import assets as labassets
    from labkit.apps import video_abr
    from labkit.session import stop

SIGNAL_PORT = 8443

# stream name -> its video: a file of the footage (looped) or a live lavfi
# source (a camera: test picture with sensor noise)
STREAMS = {"live1": "v1.mp4", "live2": "v2.mp4",
           "cam1": "lavfi:testsrc2=s=640x360:r=30,noise=alls=10:allf=t",
           "cam2": "lavfi:testsrc2=s=960x540:r=25,noise=alls=6:allf=t"}


# ---------------------------------------------------------------- the peers

async def _read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return method, path, body


def _response(status, body=b"", ctype="application/sdp", extra=""):
    return (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"{extra}Cache-Control: no-store\r\n\r\n").encode() + body


def _codec_prefs(pc, codec):
    from aiortc.rtcrtpsender import RTCRtpSender
    caps = RTCRtpSender.getCapabilities("video")
    prefs = [c for c in caps.codecs if c.mimeType.lower() == "video/" + codec.lower()]
    prefs += [c for c in caps.codecs if c.mimeType.lower() == "video/rtx"]
    for t in pc.getTransceivers():
        if t.kind == "video" and prefs:
            t.setCodecPreferences(prefs)


async def server(a):
    import asyncio
    import signal
    import ssl
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer

    done = asyncio.Event()
    sessions = {}

    async def handle(reader, writer):
        try:
            while True:
                try:
                    method, path, body = await _read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                name = path.rsplit("/", 1)[-1]
                if method == "POST" and path.startswith("/whep/") and name in STREAMS:
                    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
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
                    ports = sorted({int(l.split()[5]) for l in ans.splitlines()
                                    if l.startswith("a=candidate:")})
                    sid = f"s{len(sessions) + 1}"
                    sessions[sid] = (pc, video, audio)
                    with open(a.status, "a") as f:
                        f.write(json.dumps({"session": sid, "ports": ports}) + "\n")
                    writer.write(_response("201 Created", ans.encode(),
                                           extra=f"Location: /whep/session/{sid}\r\n"))
                elif method == "DELETE" and path.startswith("/whep/session/"):
                    s = sessions.pop(name, None)
                    if s:
                        await s[0].close()
                    writer.write(_response("200 OK", ctype="text/plain"))
                else:
                    writer.write(_response("404 Not Found", ctype="text/plain"))
                await writer.drain()
        finally:
            writer.close()

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    srv = await asyncio.start_server(handle, a.bind, a.port, ssl=ctx)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    print("LISTENING", flush=True)
    await done.wait()
    srv.close()
    for pc, _, _ in sessions.values():
        await pc.close()


async def viewer(a):
    """Watch stream a.stream for a.seconds; exit 0 when done."""
    import asyncio
    import ssl
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaBlackhole

    ctx = ssl.create_default_context(cafile=a.ca)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sink = MediaBlackhole()
    failed = asyncio.Event()

    @pc.on("track")
    def on_track(track):
        sink.addTrack(track)

    @pc.on("connectionstatechange")
    async def on_state():
        if pc.connectionState in ("failed", "closed"):
            failed.set()

    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    _codec_prefs(pc, a.codec)
    await pc.setLocalDescription(await pc.createOffer())
    reader, writer = await asyncio.open_connection(a.host, a.port, ssl=ctx,
                                                   server_hostname=a.host)

    async def request(method, path, body=b""):
        writer.write((f"{method} {path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\n"
                      f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n"
                      f"\r\n").encode() + body)
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        hdr = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip()
               for l in head[1:] if ":" in l}
        data = await reader.readexactly(int(hdr.get("content-length", "0")))
        return head[0], hdr, data

    status, hdr, answer = await request("POST", f"/whep/{a.stream}",
                                        pc.localDescription.sdp.encode())
    if " 201 " not in status + " ":
        print(f"WHEP offer refused: {status}", file=sys.stderr)
        sys.exit(2)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.decode(), type="answer"))
    await sink.start()
    end = time.monotonic() + 15
    while pc.connectionState != "connected":
        if time.monotonic() > end or failed.is_set():
            print(f"ICE/DTLS did not connect: {pc.connectionState}", file=sys.stderr)
            sys.exit(3)
        await asyncio.sleep(0.1)
    try:
        await asyncio.wait_for(failed.wait(), timeout=a.seconds)
        print(f"connection lost: {pc.connectionState}", file=sys.stderr)
        sys.exit(4)
    except asyncio.TimeoutError:
        pass
    await request("DELETE", hdr.get("location", "/whep/session/none"))
    writer.close()
    await sink.stop()
    await pc.close()
    print("LEFT", flush=True)


def main():
    import argparse
    import asyncio
    import logging
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["server", "viewer"])
    ap.add_argument("--media")
    ap.add_argument("--bind")
    ap.add_argument("--host")
    ap.add_argument("--port", type=int)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--ca")
    ap.add_argument("--status")
    ap.add_argument("--stream")
    ap.add_argument("--codec", default="VP8")
    ap.add_argument("--seconds", type=float, default=30)
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
            with open(log, "w") as lf:
                srv = env.server(["/usr/bin/python3", me, "server", "--media", media,
                                  "--bind", env.server_ip, "--port", str(SIGNAL_PORT),
                                  "--cert", tls["cert"], "--key", tls["key"],
                                  "--status", status], stdout=lf, stderr=lf)
            procs.append(srv)
            try:
                env.wait_port(SIGNAL_PORT, seconds=20)
            except RuntimeError:
                raise RuntimeError(f"WHEP server did not start: {_tail(log)}")
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


def _tail(path):
    try:
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
    except OSError:
        lines = []
    return " | ".join(lines[-3:]) or "no output"


APPS = [WebrtcLive]

if __name__ == "__main__":
    main()
