#!/usr/bin/python3
"""Both ends of the parity test's traffic (tests/agent/test_agent_parity.sh).

server IP SECS: a TCP sink (5001), a control port (5002: a connection there
    starts a 50 packets/s UDP stream from IP:5006 to the caller's 40006 for
    the given seconds), a UDP echo (5353) and a UDP sink (5004); exits after
    SECS.
client IP SECS CPU_A CPU_B: a paced TCP upload (200 kB/s in 16 kB writes:
    TSO super-packets when TSO is on), a UDP stream to 5004 at 50 packets/s
    that hops between the two CPUs every 50 packets (its packets leave from
    both CPUs), the reverse stream's receiver, and 30 short HTTP requests and
    30 UDP request/response pairs spread over the run.

Every loop is bounded by SECS; only the two given addresses are used.
"""
import os
import socket
import sys
import threading
import time
import urllib.request


def server(ip, secs):
    end = time.monotonic() + secs

    def tcp_sink():
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((ip, 5001))
        ls.listen(8)
        ls.settimeout(1)
        while time.monotonic() < end:
            try:
                c, _ = ls.accept()
            except socket.timeout:
                continue
            threading.Thread(target=drain, args=(c,), daemon=True).start()

    def drain(c):
        c.settimeout(2)
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass
        c.close()

    def control():
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((ip, 5002))
        ls.listen(4)
        ls.settimeout(1)
        while time.monotonic() < end:
            try:
                c, addr = ls.accept()
            except socket.timeout:
                continue
            want = int(c.recv(16) or b"0")
            c.close()
            threading.Thread(target=stream, args=(addr[0], want), daemon=True).start()

    def stream(peer, n_secs):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ip, 5006))
        t0 = time.monotonic()
        for i in range(n_secs * 50):
            s.sendto(i.to_bytes(4, "big") + bytes(196), (peer, 40006))
            time.sleep(max(0, t0 + (i + 1) * 0.02 - time.monotonic()))

    def udp(port, echo):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ip, port))
        s.settimeout(1)
        while time.monotonic() < end:
            try:
                data, addr = s.recvfrom(2048)
            except socket.timeout:
                continue
            if echo:
                s.sendto(data * 3, addr)

    for f, a in ((tcp_sink, ()), (control, ()), (udp, (5353, True)), (udp, (5004, False))):
        threading.Thread(target=f, args=a, daemon=True).start()
    print("listening", flush=True)
    while time.monotonic() < end:
        time.sleep(0.2)


def client(ip, secs, cpu_a, cpu_b):
    t0 = time.monotonic()

    def upload():
        s = socket.create_connection((ip, 5001))
        chunk = bytes(16384)
        n = 0
        while time.monotonic() - t0 < secs:
            s.sendall(chunk)
            n += 1
            time.sleep(max(0, t0 + n * 16384 / 200000 - time.monotonic()))
        s.close()

    def receiver():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 40006))
        s.settimeout(1)
        while time.monotonic() - t0 < secs + 2:
            try:
                s.recv(2048)
            except socket.timeout:
                pass

    def udp_stream():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 40004))
        for i in range(secs * 50):
            if i % 50 == 0:
                os.sched_setaffinity(0, {cpu_a if (i // 50) % 2 else cpu_b})
            s.sendto(i.to_bytes(4, "big") + bytes(156), (ip, 5004))
            time.sleep(max(0, t0 + (i + 1) * 0.02 - time.monotonic()))

    def short_flows():
        for i in range(30):
            try:
                urllib.request.urlopen("http://%s:8080/small.txt" % ip, timeout=2).read()
            except OSError as e:
                print("short http:", e, flush=True)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(1)
            u.sendto(bytes(40 + i), (ip, 5353))
            try:
                u.recv(2048)
            except socket.timeout:
                print("no echo", flush=True)
            u.close()
            time.sleep(secs / 40)

    threads = [threading.Thread(target=f) for f in (upload, receiver, udp_stream, short_flows)]
    for t in threads:
        t.start()
    c = socket.create_connection((ip, 5002))
    c.sendall(str(secs).encode())
    c.close()
    for t in threads:
        t.join()


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2], int(sys.argv[3]))
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
