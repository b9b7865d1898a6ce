"""aiortc peers of the WebRTC drivers (voip_webrtc, video_webrtc), the parts
they share: a peer connection with host candidates only, codec preferences,
the media ports an SDP offers, receiving media into a sink, and HTTP/1.1
signaling over TLS (the lab certificate) on one connection.

Imported by the peers the drivers run in the namespaces (with
/usr/bin/python3), never by the lab itself: aiortc is imported where used.
"""
import argparse
import asyncio
import signal
import ssl
import time


def arguments(roles, codec):
    """A peer's command line: its role (one of roles), the signaling end
    (--bind or --host, --port, --cert and --key or --ca), --status (where
    a server reports its media ports), --codec and --seconds; the peer adds
    its own options to the parser returned."""
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=roles)
    for name in ("bind", "host", "cert", "key", "ca", "status"):
        ap.add_argument(f"--{name}")
    ap.add_argument("--port", type=int)
    ap.add_argument("--codec", default=codec)
    ap.add_argument("--seconds", type=float, default=30)
    return ap


def peer():
    """A peer connection with no ICE servers at all: host candidates only,
    nothing outside the namespaces is asked."""
    from aiortc import RTCConfiguration, RTCPeerConnection
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def codec_prefs(pc, kind, codec):
    """Offer only codec for pc's kind ("audio", "video") transceivers (video
    with retransmissions, as browsers offer)."""
    from aiortc.rtcrtpsender import RTCRtpSender
    caps = RTCRtpSender.getCapabilities(kind)
    prefs = [c for c in caps.codecs if c.mimeType.lower() == f"{kind}/{codec.lower()}"]
    if kind == "video":
        prefs += [c for c in caps.codecs if c.mimeType.lower() == "video/rtx"]
    for t in pc.getTransceivers():
        if t.kind == kind and prefs:
            t.setCodecPreferences(prefs)


def candidate_ports(sdp):
    """The ports of an SDP's ICE candidates (the media flow's), sorted."""
    return sorted({int(l.split()[5]) for l in sdp.splitlines() if l.startswith("a=candidate:")})


def receive(pc, sink, ended, echo=False):
    """What pc receives goes to sink (a MediaBlackhole); ended (an
    asyncio.Event) is set when the connection fails or closes; echo: print
    each state change ("STATE ...")."""
    @pc.on("track")
    def on_track(track):
        sink.addTrack(track)

    @pc.on("connectionstatechange")
    async def on_state():
        if echo:
            print("STATE", pc.connectionState, flush=True)
        if pc.connectionState in ("failed", "closed"):
            ended.set()


async def connected(pc, ended, seconds=15):
    """Wait until pc is connected: False if it ends or seconds pass first."""
    end = time.monotonic() + seconds
    while pc.connectionState != "connected":
        if time.monotonic() > end or ended.is_set():
            return False
        await asyncio.sleep(0.1)
    return True


async def lasts(ended, seconds):
    """Wait seconds: True if the connection lasted (ended was not set)."""
    try:
        await asyncio.wait_for(ended.wait(), timeout=seconds)
        return False
    except asyncio.TimeoutError:
        return True


# ---------------------------------------------------------------- signaling

async def read_request(reader):
    """(method, path, body) of one HTTP/1.1 request."""
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


def response(status, body=b"", ctype="application/json", extra=""):
    """An HTTP/1.1 response; extra: more header lines, each ending in CRLF."""
    return (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"{extra}Cache-Control: no-store\r\n\r\n").encode() + body


async def serve(on_request, bind, port, cert, key, done):
    """Signaling over HTTPS on bind:port until done (an asyncio.Event, set
    by SIGTERM too) is set.  on_request(method, path, body, writer) writes
    its response and returns False to close that connection (after writing
    and draining it itself)."""
    async def handle(reader, writer):
        try:
            while True:
                try:
                    method, path, body = await read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                if not await on_request(method, path, body, writer):
                    break
                await writer.drain()
        finally:
            writer.close()

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    server = await asyncio.start_server(handle, bind, port, ssl=ctx)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    print("LISTENING", flush=True)
    await done.wait()
    server.close()


async def client(host, port, ca):
    """One HTTPS connection to the signaling server: (request, writer), where
    await request(method, path, body, ctype) gives (status line, headers
    with lower-case names, body)."""
    ctx = ssl.create_default_context(cafile=ca)
    reader, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)

    async def request(method, path, body, ctype):
        writer.write((f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                      f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                      f"\r\n").encode() + body)
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        hdr = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip()
               for l in head[1:] if ":" in l}
        data = await reader.readexactly(int(hdr.get("content-length", "0")))
        return head[0], hdr, data

    return request, writer
