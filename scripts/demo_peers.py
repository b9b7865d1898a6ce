#!/usr/bin/python3
"""Small real peers for the demo capture (scripts/make-demo-capture.sh).

voip-server/voip-client: a UDP exchange shaped like a G.711 call, one
172-byte datagram (160 B of audio + 12 B RTP header) every 20 ms each way,
with talk spurts and silences.
chat-server/chat-client: a TCP connection carrying short messages typed in
bursts with pauses, as a person chatting would.
Seeded, so a capture can be made again with the same shape.
"""
import random
import socket
import sys
import time


def voip(role, host, port, seconds, seed):
    rng = random.Random(seed)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if role == "server":
        s.bind(("0.0.0.0", port))
        _, peer = s.recvfrom(2048)
    else:
        peer = (host, port)
        s.sendto(b"\x80" * 172, peer)
    s.setblocking(False)
    end = time.monotonic() + seconds
    talking, spurt_end = True, time.monotonic() + rng.uniform(1, 4)
    nxt = time.monotonic()
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= spurt_end:
            talking = not talking
            spurt_end = now + (rng.uniform(1, 4) if talking else rng.uniform(0.5, 2))
        # Silence suppression: a comfort-noise packet every 200 ms.
        if talking or int(now * 50) % 10 == 0:
            s.sendto(b"\x80" * (172 if talking else 13), peer)
        try:
            while True:
                s.recvfrom(2048)
        except BlockingIOError:
            pass
        nxt += 0.02
        time.sleep(max(0.0, nxt - time.monotonic()))


def chat(role, host, port, seconds, seed):
    rng = random.Random(seed)
    if role == "server":
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("0.0.0.0", port))
        ls.listen(1)
        c, _ = ls.accept()
    else:
        c = socket.create_connection((host, port))
    c.settimeout(0.05)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(rng.expovariate(1 / 3.0))
        if rng.random() < 0.5:
            words = rng.randint(1, 25)
            c.sendall(b"m" * (words * 6 + 40))
        try:
            c.recv(65536)
        except (socket.timeout, BlockingIOError):
            pass
    c.close()


if __name__ == "__main__":
    kind, role, host, port, seconds, seed = sys.argv[1:7]
    {"voip": voip, "chat": chat}[kind](role, host, int(port), float(seconds), int(seed))
