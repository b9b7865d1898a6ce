"""VoIP: a SIP call between two baresip user agents, headless.

The caller runs in the client namespace, the callee (auto-answer) in the
server namespace; no registrar: the caller dials sip:bob@<server ip> over
UDP.  Each side's microphone is a speech track (voip_speech) played by
baresip's aufile module, its speaker the ALSA null device.  RTP and RTCP
use a fixed port range (rtcp_mux off: RTCP on the port above RTP); both
agents are driven through their ctrl_tcp module on the loopback of their
namespace (dial, hangup, mute), which the capture does not see.

Besides the two plain calls (baresip-opus, baresip-g711, 20 ms packets,
both people talking the whole time) two sparser kinds real captures are
full of: baresip-g711-ptime, G.711 as SIP trunks and desk phones send it,
at 20 or 30 ms a packet (33 packets/s of 240-byte payloads, not 50 of
160); and baresip-dtx, Opus with discontinuous transmission (usedtx=1)
where a person keeps the microphone muted for long stretches, as in a
conference call: a muted or silent side sends a comfort-noise frame every
400 ms instead of one every 20 ms, so RTP goes sparse for seconds.
"""
import os
import subprocess
import time

from labkit.apps import voip_speech
from labkit.procs import keep_logs, read, start_server, tail
from labkit.session import stop

SIP_PORT = 5060
RTP_PORTS = (16384, 16483)
CTRL_PORT = 4444

# Sends one ctrl_tcp command (a netstring of JSON) and prints the response;
# run inside a namespace with /usr/bin/python3 -c.
CTRL = r"""
import json, socket, sys, time
port, cmd, params = int(sys.argv[1]), sys.argv[2], sys.argv[3]
msg = json.dumps({"command": cmd, "params": params, "token": "lab"}).encode()
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(str(len(msg)).encode() + b":" + msg + b",")
buf = b""
end = time.time() + 5
while time.time() < end:
    try:
        d = s.recv(65536)
    except socket.timeout:
        break
    if not d:
        break
    buf += d
    while b":" in buf:
        n, rest = buf.split(b":", 1)
        if not n.isdigit() or len(rest) < int(n) + 1:
            break
        body, buf = rest[:int(n)], rest[int(n) + 1:]
        m = json.loads(body)
        if m.get("response"):
            print(json.dumps(m))
            sys.exit(0 if m.get("ok") else 1)
sys.exit(2)
"""

CONFIG = """\
poll_method		epoll
sip_listen		{ip}:{sip_port}
call_local_timeout	120
call_max_calls		1
audio_player		alsa,null
audio_source		aufile,{source}
audio_alert		alsa,null
ausrc_srate		{srate}
auplay_srate		{srate}
ausrc_channels		1
auplay_channels		1
audio_level		no
ausrc_format		s16
auplay_format		s16
auenc_format		s16
audec_format		s16
audio_buffer		20-160
rtp_tos			184
rtp_ports		{rtp_lo}-{rtp_hi}
rtcp_mux		no
jitter_buffer_delay	5-10
rtp_stats		no
dns_server		127.0.0.1:53
net_interface		{ifname}
module_path		/usr/lib/baresip/modules
module			{codec_module}
module			alsa.so
module			aufile.so
module_tmp		uuid.so
module_tmp		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:{ctrl_port}
{codec_params}
ringback_disabled	yes
menu_bell		no
statmode_default	off
"""


class BaresipCall:
    CLASS = "voip"
    NAME = None
    PACKAGES = ["baresip", "baresip-core", "espeak-ng", "sox", "libasound2", "python3"]
    SERVER_IPS = 1
    CODEC_MODULE = None
    SRATE = None
    ptime = 20        # ms of audio a packet; a driver may draw it (codecs())

    def codecs(self, env):
        """(audio_codecs account parameter, extra config lines)."""
        raise NotImplementedError

    def talk(self, env, cli, srv, logs):
        """The call, once established, until the session's time is up."""
        while env.remaining() > 0:
            self._check_call(cli, srv, logs)
            time.sleep(min(1.0, env.remaining()) or 0.01)

    def _check_call(self, cli, srv, logs):
        if cli.poll() is not None or srv.poll() is not None:
            raise RuntimeError("baresip exited during the call")
        if "terminated" in read(logs["client"]).split("Call established", 1)[1]:
            raise RuntimeError(f"call ended early: {tail(logs['client'], proc=cli)}")

    def _conf(self, env, side, ip, ifname, source, user, extra_acct, codecs, params):
        d = os.path.join(env.workdir, f"baresip-{side}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config"), "w") as f:
            f.write(CONFIG.format(ip=ip, sip_port=SIP_PORT, source=source, srate=self.SRATE,
                                  rtp_lo=RTP_PORTS[0], rtp_hi=RTP_PORTS[1],
                                  ifname=ifname, codec_module=self.CODEC_MODULE,
                                  ctrl_port=CTRL_PORT, codec_params=params))
        with open(os.path.join(d, "accounts"), "w") as f:
            f.write(f"<sip:{user}@{ip};transport=udp>;regint=0;pubint=0;mwi=no;"
                    f"audio_codecs={codecs};ptime={self.ptime}{extra_acct}\n")
        open(os.path.join(d, "contacts"), "w").close()
        return d

    def _ctrl(self, env, side, cmd, params=""):
        run = env.run_client if side == "client" else env.run_server
        r = run(["/usr/bin/python3", "-c", CTRL, str(CTRL_PORT), cmd, params],
                timeout=15, check=False)
        return r.returncode == 0, (r.stdout.strip() or r.stderr.strip())

    def _start(self, env, side, conf_dir, log):
        """baresip in a namespace, once its control port listens."""
        return start_server(env, "baresip", ["baresip", "-f", conf_dir], CTRL_PORT, log,
                            side=side, stdin=subprocess.DEVNULL)

    def run(self, env):
        topo = env.topo
        # The call lasts env.seconds; the tracks have some slack for set-up.
        src_a, src_b = voip_speech.session_tracks(env, self.SRATE, env.seconds + 20)
        codecs, params = self.codecs(env)
        srv_dir = self._conf(env, "server", env.server_ip, topo.server_if, src_b, "bob",
                             ";answermode=auto", codecs, params)
        cli_dir = self._conf(env, "client", env.client_ip, topo.client_if, src_a, "alice",
                             ";answermode=manual", codecs, params)
        logs = {s: os.path.join(env.workdir, f"baresip-{s}.log") for s in ("server", "client")}
        procs = []
        try:
            srv = self._start(env, "server", srv_dir, logs["server"])
            procs.append(srv)
            env.wait_port(SIP_PORT, proto="udp", side="server")
            cli = self._start(env, "client", cli_dir, logs["client"])
            procs.append(cli)
            # A person picks the contact and presses call after a moment.
            time.sleep(env.rng.uniform(0.5, 2.0))
            ok, out = self._ctrl(env, "client", "dial",
                                 f"sip:bob@{env.server_ip}:{SIP_PORT}")
            if not ok:
                raise RuntimeError(f"baresip dial failed: {out}")
            end = time.monotonic() + 15
            while time.monotonic() < end and "Call established" not in read(logs["client"]):
                if cli.poll() is not None or srv.poll() is not None:
                    raise RuntimeError("baresip exited during call set-up: "
                                       f"{tail(logs['client'], proc=cli)}")
                time.sleep(0.2)
            if "Call established" not in read(logs["client"]):
                raise RuntimeError("baresip call not established: "
                                   f"{tail(logs['client'], proc=cli)}")
            # Talk until the session's time is up, then one side hangs up.
            self.talk(env, cli, srv, logs)
            side = "client" if env.rng.random() < 0.6 else "server"
            self._ctrl(env, side, "hangup")
            time.sleep(1.0)
        finally:
            stop(procs)
            keep_logs(*logs.values())
        return [{"proto": "udp", "port": [RTP_PORTS[0], RTP_PORTS[1] + 1], "label": "voip"},
                {"proto": "udp", "port": SIP_PORT, "label": "control"}]


class BaresipOpus(BaresipCall):
    NAME = "baresip-opus"
    CODEC_MODULE = "opus.so"
    SRATE = 48000

    def codecs(self, env):
        # Opus as softphones set it: VBR, a bitrate cap the user's app picked.
        bitrate = env.rng.choice([16000, 20000, 24000, 28000, 32000])
        params = "\n".join([
            f"opus_bitrate\t\t{bitrate}",
            "opus_stereo\t\tno",
            "opus_sprop_stereo\tno",
            "opus_cbr\t\tno",
            f"opus_inbandfec\t\t{env.rng.choice(['yes', 'no'])}",
            "opus_dtx\t\tno",
            "opus_application\tvoip",
        ])
        return "opus/48000/2", params


class BaresipG711(BaresipCall):
    NAME = "baresip-g711"
    CODEC_MODULE = "g711.so"
    SRATE = 8000

    def codecs(self, env):
        # Both agents offer both laws; the caller's preferred one is used.
        return env.rng.choice(["pcmu,pcma", "pcma,pcmu"]), ""


class BaresipG711Ptime(BaresipG711):
    NAME = "baresip-g711-ptime"

    def codecs(self, env):
        # Trunks and desk phones often packetize G.711 at 30 ms (RTP
        # payload 240 bytes, 252 with its header); some at 20.
        codecs, params = super().codecs(env)
        self.ptime = env.rng.choice([20, 30])
        return codecs, params


# Opus DTX (RFC 7587 3.1.3): during silence the encoder's packets of one or
# two bytes need not be sent, and DTX senders (WebRTC, mobile apps) send
# none: only a comfort-noise frame every 400 ms.  baresip 1.0 sends them
# all, every 20 ms; this rule, loaded in both namespaces, drops them before
# they leave (and before the capture sees them), so the wire carries what a
# DTX sender sends.  (UDP length: 8 header + 12 RTP + 1..2 payload.)
DTX_DROP = f"""\
table inet dtx {{
  chain out {{
    type filter hook output priority 0; policy accept;
    udp sport {RTP_PORTS[0]}-{RTP_PORTS[1]} udp length 21-22 drop
  }}
}}
"""


class BaresipDtx(BaresipOpus):
    """Opus with DTX, and a person who mutes: a muted microphone sends
    digital silence, which DTX turns into a frame every 400 ms."""
    NAME = "baresip-dtx"
    PACKAGES = BaresipOpus.PACKAGES + ["nftables"]

    def run(self, env):
        rules = os.path.join(env.workdir, "dtx.nft")
        with open(rules, "w") as f:
            f.write(DTX_DROP)
        # (the rules go with the namespaces at the session's end)
        for run in (env.run_client, env.run_server):
            r = run(["nft", "-f", rules], timeout=10, check=False)
            if r.returncode != 0:
                raise RuntimeError(f"nft failed: {(r.stderr or r.stdout).strip()[:200]}")
        return super().run(env)

    def codecs(self, env):
        codecs, params = super().codecs(env)
        params = params.replace("opus_dtx\t\tno", "opus_dtx\t\tyes")
        # Who keeps the microphone muted: the caller listening in, the
        # callee, or both (a call both follow on speaker, talking now and then).
        self.muters = env.rng.choice([["client"], ["client"], ["server"],
                                      ["client", "server"]])
        return codecs, params

    def talk(self, env, cli, srv, logs):
        # Each muter's own schedule: long muted stretches, short unmuted
        # ones to say something; the first mute comes early in the call.
        rng = env.rng
        t0 = time.monotonic()
        plan = {}
        for side in self.muters:
            t, muted, toggles = t0 + rng.uniform(1.0, 8.0), False, []
            while t < env.deadline:
                toggles.append(t)
                muted = not muted
                t += (rng.uniform(10.0, 60.0) if muted else rng.uniform(3.0, 15.0))
            plan[side] = toggles
        events = sorted((t, side) for side, ts in plan.items() for t in ts)
        env.log(f"{self.NAME}: {len(events)} mute toggles by {'+'.join(self.muters)}")
        for at, side in events:
            while time.monotonic() < at and env.remaining() > 0:
                self._check_call(cli, srv, logs)
                time.sleep(max(0.01, min(1.0, at - time.monotonic(), env.remaining())))
            if env.remaining() <= 0:
                break
            ok, out = self._ctrl(env, side, "mute")
            if not ok:
                raise RuntimeError(f"baresip mute failed ({side}): {out}")
        super().talk(env, cli, srv, logs)


APPS = [BaresipOpus, BaresipG711, BaresipG711Ptime, BaresipDtx]
