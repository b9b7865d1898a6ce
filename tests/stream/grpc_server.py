#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A gRPC server of proto/flowpic.proto built with Debian's python3-grpcio,
for the stream's interop and fault tests: a generic stream-stream handler
for /flowpic.v1.Collector/Stream that checks every Batch, stores each
verdict once by its identity (agent_id, run_id, seq) in an append-only JSON
lines file (kept across restarts, like a collector's database) and
acknowledges each batch in order.

Usage: grpc_server.py --pyout DIR --store FILE [--port N] [--tls CERT KEY]
       [--client-ca CA] [--token T]
Prints "listening PORT" on stdout once it serves.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from concurrent import futures

import grpc


def load_proto(proto, pyout):
    os.makedirs(pyout, exist_ok=True)
    if not os.path.exists(os.path.join(pyout, "flowpic_pb2.py")):
        subprocess.run(["protoc", "-I", os.path.dirname(proto), "--python_out", pyout, proto],
                       check=True)
    sys.path.insert(0, pyout)
    import flowpic_pb2  # noqa: E402
    return flowpic_pb2


class Store:
    """Verdicts by identity, persisted so a restarted server still dedups."""

    def __init__(self, path):
        self.path = path
        self.seen = set()
        self.lock = threading.Lock()
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    try:
                        d = json.loads(line)
                    except ValueError:
                        continue  # a line cut by kill -9: not acknowledged either
                    self.seen.add((d["agent_id"], d["run_id"], d["seq"]))
        self.f = open(path, "a")

    def add(self, batch):
        stored = dups = 0
        with self.lock:
            lines = []
            for v in batch.verdicts:
                key = (batch.agent.agent_id, batch.agent.run_id, v.seq)
                if key in self.seen:
                    dups += 1
                    continue
                self.seen.add(key)
                stored += 1
                lines.append(json.dumps({
                    "agent_id": key[0], "run_id": key[1], "seq": key[2],
                    "batch": batch.sequence, "host": batch.agent.host,
                    "interface": v.interface, "src": v.flow.src_addr.hex(),
                    "dst": v.flow.dst_addr.hex(), "sport": v.flow.src_port,
                    "dport": v.flow.dst_port, "protocol": v.flow.protocol,
                    "direction": v.direction, "flow_id": v.flow_id, "stage": v.stage,
                    "start_unix_ns": v.span.start_unix_ns, "duration_ns": v.span.duration_ns,
                    "packets_fwd": v.span.packets_fwd, "packets_rev": v.span.packets_rev,
                    "bytes_fwd": v.span.bytes_fwd, "bytes_rev": v.span.bytes_rev,
                    "block_index": v.span.block_index, "blocks": v.span.blocks,
                    "class_name": v.class_name, "confidence": v.confidence,
                    "probs": list(v.probs), "model": batch.model.name,
                    "classes": list(batch.model.classes),
                    "counters": {c.name: c.value for c in batch.counters}}) + "\n")
            self.f.write("".join(lines))
            self.f.flush()
            os.fsync(self.f.fileno())
        return stored, dups


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                    "proto", "flowpic.proto"))
    ap.add_argument("--pyout", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--client-ca")
    ap.add_argument("--token")
    ap.add_argument("--log", help="batches received, one line each")
    args = ap.parse_args()

    pb = load_proto(os.path.abspath(args.proto), args.pyout)
    store = Store(args.store)
    log = open(args.log, "a") if args.log else None
    errors = []

    def stream(request_iterator, context):
        if args.token is not None:
            md = dict(context.invocation_metadata())
            if md.get("authorization") != "Bearer " + args.token:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "access token not accepted")
        last = 0
        for batch in request_iterator:
            problem = None
            if not batch.HasField("agent") or not batch.agent.agent_id:
                problem = "batch without agent identity"
            elif batch.sequence <= 0:
                problem = "batch sequence 0"
            elif any(v.seq == 0 for v in batch.verdicts):
                problem = "verdict without seq"
            elif any(len(v.flow.src_addr) not in (4, 16) for v in batch.verdicts):
                problem = "bad address length"
            if problem:
                errors.append(problem)
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
            stored, dups = store.add(batch)
            if log:
                log.write("%s %d %d %d %d %d\n" % (batch.agent.agent_id, batch.agent.run_id,
                                                   batch.sequence, len(batch.verdicts),
                                                   stored, dups))
                log.flush()
            last = batch.sequence
            yield pb.Ack(sequence=batch.sequence, stored=stored, duplicates=dups)
        del last

    handler = grpc.method_handlers_generic_handler("flowpic.v1.Collector", {
        "Stream": grpc.stream_stream_rpc_method_handler(
            stream, request_deserializer=pb.Batch.FromString,
            response_serializer=pb.Ack.SerializeToString)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    addr = "127.0.0.1:%d" % args.port
    if args.tls:
        with open(args.tls[0], "rb") as f:
            cert = f.read()
        with open(args.tls[1], "rb") as f:
            key = f.read()
        ca = None
        if args.client_ca:
            with open(args.client_ca, "rb") as f:
                ca = f.read()
        creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                            require_client_auth=ca is not None)
        port = server.add_secure_port(addr, creds)
    else:
        port = server.add_insecure_port(addr)
    if not port:
        print("cannot listen on %s" % addr, file=sys.stderr)
        return 1
    server.start()
    print("listening %d" % port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    done.wait()
    server.stop(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
