"""Background traffic: IoT telemetry over MQTT.  Not one of the five
classes: small periodic publishes on long-lived connections, the chatter of
sensors, meters and trackers that shares real networks with people's
traffic and must come out "unknown".

A mosquitto broker in the server namespace (foreground, its own config in
env.workdir, not the system service): MQTT over TLS on 8883 with the lab
certificate, and plain MQTT on 1883 that some older devices still use.  In
the client namespace, 3-10 devices (paho-mqtt), one connection each held for
the whole session: each publishes a small JSON reading every 1-30 s (its
own period, with jitter), QoS 0 or 1, MQTT keepalive 30-60 s, a retained
status now and then and a last will; some listen for commands.  One
dashboard connection subscribes to everything and now and then sends a
device a command, which it answers.

Labels: the broker's ports (tcp/8883 and tcp/1883) are "other".
"""
import json
import os
import time

from labkit import assets as lab_assets
from labkit.procs import keep_logs, run_client, script, start_server
from labkit.session import stop

TLS_PORT = 8883
PLAIN_PORT = 1883

MOSQUITTO_CONF = """\
# flowpic lab: one session's MQTT broker
user root
persistence false
per_listener_settings false
allow_anonymous true
log_dest stdout
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
max_keepalive 300

listener {tls_port} {ip}
cafile {ca}
certfile {cert}
keyfile {key}

listener {plain_port} {ip}
"""

# Runs in the client namespace: the devices and the dashboard, one paho
# client (one connection, its own network thread) each, paced by one loop.
CLIENTS = r'''
import heapq, json, random, sys, time
import paho.mqtt.client as mqtt

a = json.loads(sys.argv[1])
T0 = time.monotonic()
deadline = T0 + a["seconds"]


def log(*args):
    print(f"{time.monotonic() - T0:7.1f}", *args, flush=True)


class Sensor:
    # A device's sensors: values drifting in their range, as real ones do.
    def __init__(self, rng, kind, period):
        self.rng, self.kind, self.period, self.v = rng, kind, period, {}

    def walk(self, key, lo, hi, step, nd=1):
        v = self.v.get(key, self.rng.uniform(lo, hi))
        v = min(hi, max(lo, v + self.rng.gauss(0, step)))
        self.v[key] = v
        return round(v, nd)

    def reading(self):
        # The JSON fields a device of this kind sends.
        r, w = self.rng, self.walk
        if self.kind == "thermo":
            return {"t": w("t", 15, 28, 0.1), "h": w("h", 25, 70, 0.3),
                    "bat": int(w("bat", 20, 100, 0.02))}
        if self.kind == "power":
            watts = w("w", 80, 3500, 60)
            kwh = self.v.get("kwh", r.uniform(100, 9000)) + watts * self.period / 3.6e6
            self.v["kwh"] = kwh
            return {"w": watts, "v": w("v", 225, 240, 0.4), "a": round(watts / 230, 2),
                    "pf": w("pf", 0.8, 1.0, 0.01, 2), "kwh": round(kwh, 3)}
        if self.kind == "air":
            return {"co2": int(w("co2", 400, 1800, 15)), "pm25": w("pm25", 1, 60, 0.8),
                    "pm10": w("pm10", 2, 90, 1.0), "voc": int(w("voc", 50, 500, 8)),
                    "t": w("t", 17, 27, 0.1), "h": w("h", 25, 65, 0.3)}
        if self.kind == "door":
            if r.random() < 0.15:
                self.v["open"] = not self.v.get("open", False)
            return {"open": self.v.get("open", False), "bat": int(w("bat", 20, 100, 0.02)),
                    "tamper": False}
        if self.kind == "tracker":
            return {"lat": w("lat", 48.80, 48.90, 0.0004, 6),
                    "lon": w("lon", 2.25, 2.42, 0.0004, 6),
                    "spd": w("spd", 0, 90, 4), "hdg": int(w("hdg", 0, 359, 12)),
                    "sat": r.randint(5, 12), "hdop": w("hdop", 0.6, 3.0, 0.1)}
        # a machine on a factory floor
        self.v["cycles"] = self.v.get("cycles", r.randint(10000, 900000)) + r.randint(0, 3)
        return {"rpm": int(w("rpm", 900, 3000, 25)), "vib": w("vib", 0.1, 9, 0.2, 2),
                "temp": w("temp", 30, 85, 0.3), "state": r.choice(["run"] * 20 + ["idle"]),
                "cycles": self.v["cycles"]}


def client(spec, on_connect, will=None, on_message=None):
    # A paho client for spec, connecting in its own network thread and
    # reconnecting, as devices do, when the link drops.
    if spec["v5"]:
        c = mqtt.Client(client_id=spec["id"], protocol=mqtt.MQTTv5)
    else:
        c = mqtt.Client(client_id=spec["id"], clean_session=True, protocol=mqtt.MQTTv311)
    if spec["user"]:
        c.username_pw_set(spec["user"], spec["password"])
    if spec["tls"]:
        c.tls_set(ca_certs=a["ca"])
    if will:
        c.will_set(will[0], will[1], qos=1, retain=True)
    c.on_connect = on_connect
    if on_message:
        c.on_message = on_message
    c.reconnect_delay_set(1, 30)
    c.connect_async(a["server"], a["tls_port"] if spec["tls"] else a["plain_port"],
                    keepalive=spec["keepalive"])
    c.loop_start()
    return c


class Device:
    def __init__(self, spec):
        self.spec = spec
        self.name = spec["name"]
        self.rng = random.Random(spec["seed"])
        self.topic = f'{a["site"]}/{spec["kind"]}/{self.name}'
        self.sensor = Sensor(self.rng, spec["kind"], spec["period"])
        self.seq = 0
        self.boot = time.time() - self.rng.uniform(600, 30 * 86400)
        self.c = client(spec, self.on_connect, will=(self.topic + "/status", "offline"),
                        on_message=self.on_command)

    def on_connect(self, c, userdata, flags, rc, *more):
        log(self.name, "connected", rc)
        if self.spec["commands"]:
            c.subscribe(self.topic + "/cmd", qos=1)
        self.status()

    def on_command(self, c, userdata, msg):
        cmd = json.loads(msg.payload)
        if cmd.get("set") == "interval":
            self.spec["period"] = self.sensor.period = cmd["value"]
        c.publish(self.topic + "/ack", json.dumps({"id": cmd.get("id"), "ok": True}), qos=1)
        self.status()

    def status(self):
        r = self.rng
        st = {"online": True, "fw": self.spec["fw"], "uptime": int(time.time() - self.boot),
              "rssi": r.randint(-85, -45), "heap": r.randint(18000, 42000),
              "interval": self.spec["period"],
              "ip": "192.168.%d.%d" % (r.randint(0, 3), r.randint(20, 250))}
        self.c.publish(self.topic + "/status", json.dumps(st), qos=1, retain=True)

    def publish(self):
        self.seq += 1
        msg = dict(self.sensor.reading(), ts=int(time.time()), seq=self.seq)
        self.c.publish(self.topic + "/state", json.dumps(msg, separators=(",", ":")),
                       qos=self.spec["qos"])
        if self.seq % self.spec["status_every"] == 0:
            self.status()

    def next_wait(self):
        j = self.spec["jitter"]
        return max(0.2, self.spec["period"] * self.rng.uniform(1 - j, 1 + j))


class Dashboard:
    # Subscribed to the whole site; its user now and then commands a device.
    def __init__(self, spec):
        self.spec = spec
        self.received = 0
        self.c = client(spec, self.on_connect, on_message=self.on_message)

    def on_connect(self, c, userdata, flags, rc, *more):
        log("dashboard connected", rc)
        c.subscribe(a["site"] + "/#", qos=self.spec["qos"])

    def on_message(self, c, userdata, msg):
        self.received += 1


rng = random.Random(a["seed"])
board = Dashboard(a["dashboard"])
devices = []
for spec in a["devices"]:
    time.sleep(spec["delay"])   # devices come up one after another
    devices.append(Device(spec))

# Each device publishes on its own period, from here (paho's publish is
# thread-safe); commands go out every 20-120 s.
heap = [(time.monotonic() + d.rng.uniform(0.5, d.spec["period"]), i)
        for i, d in enumerate(devices)]
heapq.heapify(heap)
next_cmd = time.monotonic() + rng.uniform(10, 60)
listeners = [d for d in devices if d.spec["commands"]]
while True:
    t, i = heap[0]
    now = time.monotonic()
    if min(t, next_cmd, deadline) > now:
        time.sleep(min(t, next_cmd, deadline) - now)
    now = time.monotonic()
    if now >= deadline:
        break
    if now >= next_cmd:
        if listeners:
            d = rng.choice(listeners)
            cmd = ({"set": "interval", "value": round(rng.uniform(1, 30), 1)}
                   if rng.random() < 0.5 else {"get": "status"})
            cmd["id"] = rng.getrandbits(32)
            board.c.publish(d.topic + "/cmd", json.dumps(cmd), qos=1)
            log("command", d.name, cmd)
        next_cmd = now + rng.uniform(20, 120)
    if now >= t:
        heapq.heappop(heap)
        devices[i].publish()
        heapq.heappush(heap, (now + devices[i].next_wait(), i))

up = sum(1 for d in devices if d.c.is_connected())
log("devices connected at the end:", up, "of", len(devices),
    "- dashboard received", board.received)
for c in [d.c for d in devices] + [board.c]:
    c.disconnect()
    c.loop_stop()
if board.received == 0:
    print("FAILED: the dashboard received nothing", flush=True)
    sys.exit(3)
print("DONE", flush=True)
'''

# What the devices are; a site has a few kinds of them.
KINDS = ["thermo", "power", "air", "door", "tracker", "machine"]
FIRMWARE = ["1.0.7", "1.2.3", "2.0.1", "2.1.0-rc2", "3.4.12", "0.9.8"]
SITES = ["home", "plant1", "office-b", "farm", "warehouse7", "building3"]


def _device(rng, i, kind, site, arrival):
    """One device's spec: how it connects and how often it talks; it comes
    up `arrival` seconds (at most) after the one before."""
    # Periods 1-30 s, most devices on the slower side.
    period = round(min(30.0, max(1.0, 2 ** rng.uniform(0, 4.9))), 1)
    return {
        "name": f"{kind}-{i + 1:02d}-{rng.getrandbits(16):04x}",
        "id": f"{site}-{kind}-{rng.getrandbits(32):08x}",
        "kind": kind,
        "period": period,
        "jitter": rng.uniform(0.02, 0.25),
        "qos": rng.choice([0, 0, 1]),
        "keepalive": rng.choice([30, 30, 45, 60, 60]),
        # old firmware talks plain MQTT on 1883
        "tls": rng.random() < 0.75,
        "v5": rng.random() < 0.25,
        "user": f"dev{i + 1}" if rng.random() < 0.7 else "",
        "password": "%012x" % rng.getrandbits(48),
        "fw": rng.choice(FIRMWARE),
        "commands": rng.random() < 0.5,
        "status_every": rng.randint(10, 40),
        "delay": rng.uniform(0.1, arrival),
        "seed": rng.getrandbits(32),
    }


class MqttTelemetry:
    CLASS = "other"
    NAME = "mqtt-telemetry"
    PACKAGES = ["mosquitto", "python3-paho-mqtt", "python3"]
    SERVER_IPS = 1

    def run(self, env):
        rng = env.rng
        tls = lab_assets.tls(env.assets, env.server_ips)
        conf = os.path.join(env.workdir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(MOSQUITTO_CONF.format(ip=env.server_ip, tls_port=TLS_PORT,
                                          plain_port=PLAIN_PORT, ca=tls["ca"], cert=tls["cert"],
                                          key=tls["key"]))
        site = rng.choice(SITES)
        n = rng.randint(3, 10)
        kinds = rng.sample(KINDS, rng.randint(1, 3))
        # (the arrivals take at most a sixth of a short session)
        arrival = min(2.5, env.seconds / 6 / n)
        devices = [_device(rng, i, rng.choice(kinds), site, arrival) for i in range(n)]
        dashboard = dict(_device(rng, n, "dashboard", site, 0), tls=True,
                         qos=rng.choice([0, 1]), user="dashboard", keepalive=60)
        env.log(f"{self.NAME}: {site}, {n} devices " + " ".join(
            f"{d['kind']}/{d['period']}s/q{d['qos']}/{'tls' if d['tls'] else 'plain'}"
            for d in devices))
        clients = script(env, "mqtt_clients.py", CLIENTS)
        logs = {s: os.path.join(env.workdir, f"mqtt-{s}.log") for s in ("server", "client")}
        srv = None
        try:
            srv = start_server(env, "mosquitto", ["mosquitto", "-c", conf], TLS_PORT,
                               logs["server"], more_ports=[PLAIN_PORT])
            run_for = max(5.0, env.remaining() - 1.0)
            spec = {"server": env.server_ip, "tls_port": TLS_PORT, "plain_port": PLAIN_PORT,
                    "ca": tls["ca"], "site": site, "seed": rng.getrandbits(32),
                    "seconds": run_for, "devices": devices, "dashboard": dashboard}
            run_client(env, "mqtt devices", ["/usr/bin/python3", clients, json.dumps(spec)],
                       logs["client"], run_for + 60, "DONE")
            # the last DISCONNECTs and FINs reach the capture (which gets
            # frames from the kernel up to a second late)
            time.sleep(1.0)
        finally:
            stop([srv])
            keep_logs(*logs.values())
        return [{"proto": "tcp", "port": TLS_PORT, "label": "other"},
                {"proto": "tcp", "port": PLAIN_PORT, "label": "other"}]


APPS = [MqttTelemetry]
