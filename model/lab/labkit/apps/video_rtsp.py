"""Live video over RTSP: a GStreamer RTSP server (gst-rtsp-server through
python3-gi; this file run by /usr/bin/python3) in the server namespace
serves a few live "channels" (test patterns with motion, H.264 from x264 at
a constant bitrate and AAC audio, muxed in MPEG-TS over RTP as IPTV does);
in the client namespace ffmpeg plays them over RTSP with RTP/UDP, as a viewer
would, zapping from channel to channel now and then.

Flows: RTSP (tcp/8554) is "control", RTP (udp, even server ports of the pool)
"video", RTCP (the odd port above each) "control".
"""
import os
import signal
import subprocess
import sys
import time

if __name__ != "__main__":
    from labkit.session import stop

RTSP_PORT = 8554
RTP_LO, RTP_HI = 30000, 30009          # server's RTP/RTCP ports (pairs)

# name, videotestsrc pattern, width, height, video kbit/s, audio wave
CHANNELS = [
    ("news", "circular kt=2", 640, 360, 1200, "sine"),
    ("sports", "zone-plate kx2=20 ky2=20 kt=1", 854, 480, 2500, "pink-noise"),
    ("music", "zone-plate kt2=1 kx2=8 ky2=8 kxt=3", 854, 480, 1800, "ticks"),
    ("cam", "pinwheel", 1280, 720, 3000, "white-noise"),
    ("kids", "circular kt=1 kx=4 ky=4", 640, 360, 800, "triangle"),
]


def launch(pattern, w, h, kbps, wave):
    return (f"( videotestsrc is-live=true pattern={pattern} ! "
            f"video/x-raw,width={w},height={h},framerate=30/1 ! videoconvert ! "
            f"x264enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} "
            f"key-int-max=60 vbv-buf-capacity=1000 threads=1 ! h264parse config-interval=-1 ! "
            f"queue ! mpegtsmux name=mux alignment=7 ! rtpmp2tpay name=pay0 pt=33 "
            f"audiotestsrc is-live=true wave={wave} volume=0.3 ! audioconvert ! "
            f"audioresample ! audio/x-raw,rate=48000,channels=2 ! voaacenc bitrate=128000 ! "
            f"aacparse ! queue ! mux. )")


def serve(ip, port):
    """The RTSP server (runs in the server namespace)."""
    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(ip)
    server.set_service(str(port))
    pool = GstRtspServer.RTSPAddressPool()
    pool.add_range(GstRtspServer.RTSP_ADDRESS_POOL_ANY_IPV4,
                   GstRtspServer.RTSP_ADDRESS_POOL_ANY_IPV4, RTP_LO, RTP_HI, 0)
    mounts = server.get_mount_points()
    for name, pattern, w, h, kbps, wave in CHANNELS:
        f = GstRtspServer.RTSPMediaFactory()
        f.set_launch(launch(pattern, w, h, kbps, wave))
        f.set_shared(False)
        f.set_address_pool(pool)
        f.set_protocols(GstRtsp.RTSPLowerTrans.UDP)
        mounts.add_factory(f"/{name}", f)
    if server.attach(None) == 0:
        sys.exit(f"rtsp server cannot listen on {ip}:{port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda *_: loop.quit() or False)
    print("ready", flush=True)
    loop.run()


class RtspLive:
    CLASS = "video"
    NAME = "video-rtsp-live"
    PACKAGES = ["python3", "python3-gi", "gir1.2-gstreamer-1.0", "gir1.2-gst-rtsp-server-1.0",
                "gir1.2-gst-plugins-base-1.0",
                "gstreamer1.0-plugins-base", "gstreamer1.0-plugins-good",
                "gstreamer1.0-plugins-bad", "gstreamer1.0-plugins-ugly", "ffmpeg"]
    SERVER_IPS = 1

    def run(self, env):
        rng = env.rng
        srv = env.server(["/usr/bin/python3", os.path.abspath(__file__), "serve",
                          env.server_ip, str(RTSP_PORT)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        viewer = None
        try:
            try:
                env.wait_port(RTSP_PORT)
            except RuntimeError:
                srv.terminate()
                err = srv.communicate(timeout=5)[1].strip().splitlines() or ["no output"]
                raise RuntimeError(f"RTSP server did not start: {err[-1]}")
            channel = rng.randrange(len(CHANNELS))
            watched = 0
            while env.remaining() > 3:
                name = CHANNELS[channel][0]
                # a viewer stays on a channel from a few seconds to minutes
                stay = min(env.remaining(), rng.lognormvariate(3.0, 1.0) if watched else
                           rng.lognormvariate(3.4, 0.8))
                stay = max(stay, min(env.remaining(), 4.0))
                viewer = env.client(
                    ["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "udp",
                     "-timeout", "5000000", "-i", f"rtsp://{env.server_ip}:{RTSP_PORT}/{name}",
                     "-map", "0", "-c", "copy", "-f", "mpegts", "-y", "/dev/null"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                try:
                    viewer.wait(timeout=stay)
                    err = viewer.stderr.read().strip().splitlines() or [f"exit {viewer.returncode}"]
                    raise RuntimeError(f"ffmpeg stopped playing {name}: {err[-1]}")
                except subprocess.TimeoutExpired:
                    pass
                viewer.send_signal(signal.SIGINT)   # ffmpeg closes: RTSP TEARDOWN
                try:
                    viewer.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
                stop([viewer])
                viewer = None
                watched += 1
                # zapping: the next channel up or down, or one picked from the guide
                if rng.random() < 0.7:
                    channel = (channel + rng.choice([1, -1])) % len(CHANNELS)
                else:
                    channel = rng.randrange(len(CHANNELS))
                time.sleep(min(env.remaining(), rng.uniform(0.3, 2.5)))
            env.log(f"{self.NAME}: {watched} channel views")
        finally:
            stop([viewer, srv])
        sel = [{"proto": "tcp", "port": RTSP_PORT, "label": "control"}]
        for p in range(RTP_LO, RTP_HI, 2):
            sel += [{"proto": "udp", "port": p, "label": "video"},
                    {"proto": "udp", "port": p + 1, "label": "control"}]
        return sel


APPS = [RtspLive]

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("usage: video_rtsp.py serve IP PORT")
