"""A `greeter.Greeter` server written with Python grpcio, for interop tests.

Fulcrum's Rust tests start this script as a real gRPC peer that someone else
wrote: it serves SayHello, SayHelloStream and the standard health service, and
prints `LISTENING 127.0.0.1:PORT` once ready. It needs only grpcio and
grpcio-health-checking; the greeter messages are encoded by hand.
"""

import argparse
import os
import signal
import sys
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

MAX_STREAM = 10_000


def read_varint(data, pos):
    """Returns the varint at `pos` and the position after it."""
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift >= 64:
            raise ValueError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def read_fields(data):
    """Decodes a message into {field number: last value}; callers ignore unknown numbers."""
    fields, pos = {}, 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], pos = read_varint(data, pos)
        elif wire in (1, 5):  # fixed64 / fixed32: none of ours, skip
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            size, pos = read_varint(data, pos)
            fields[number] = bytes(data[pos:pos + size])
            pos += size
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(data):
            raise ValueError("truncated field")
    return fields


def write_varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def write_string(number, value):
    raw = value.encode("utf-8")
    return write_varint(number << 3 | 2) + write_varint(len(raw)) + raw if raw else b""


def decode_hello_request(data):
    return read_fields(data).get(1, b"").decode("utf-8")


def decode_stream_request(data):  # -> (name, count, interval_ms); uint32 keeps the low bits
    fields = read_fields(data)
    name = fields.get(1, b"").decode("utf-8")
    return name, fields.get(2, 0) & 0xFFFFFFFF, fields.get(3, 0) & 0xFFFFFFFF


def encode_reply(reply):  # (message, server) -> HelloReply
    message, server = reply
    return write_string(1, message) + write_string(2, server)


def rpc_ended(context):
    """An event set once the call is over, so sleeps end early on cancel or shutdown."""
    ended = threading.Event()
    if not context.add_callback(ended.set):
        ended.set()
    return ended


def greeter_handler(server_name, delay_s):
    def say_hello(name, context):
        if delay_s:
            rpc_ended(context).wait(delay_s)  # the reply is dropped if the call ended
        return (f"Hello, {name}!", server_name)

    def say_hello_stream(request, context):
        name, count, interval_ms = request
        if count > MAX_STREAM:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"count {count} is more than {MAX_STREAM} replies; ask for fewer")
        ended = rpc_ended(context)
        for _ in range(count):
            if ended.wait(interval_ms / 1000):
                return
            yield (f"Hello, {name}!", server_name)

    return grpc.method_handlers_generic_handler("greeter.Greeter", {
        "SayHello": grpc.unary_unary_rpc_method_handler(
            say_hello, request_deserializer=decode_hello_request,
            response_serializer=encode_reply),
        "SayHelloStream": grpc.unary_stream_rpc_method_handler(
            say_hello_stream, request_deserializer=decode_stream_request,
            response_serializer=encode_reply),
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--not-serving", action="store_true", help="report NOT_SERVING")
    parser.add_argument("--exit-after", type=float, help="stop after this many seconds")
    parser.add_argument("--delay-ms", type=int, default=0, help="sleep before each SayHello")
    args = parser.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")  # raises if it cannot bind
    server.add_generic_rpc_handlers((greeter_handler(f"127.0.0.1:{port}", args.delay_ms / 1000),))

    health_servicer = health.HealthServicer(
        experimental_non_blocking=True,
        experimental_thread_pool=futures.ThreadPoolExecutor(max_workers=2))
    status = (health_pb2.HealthCheckResponse.NOT_SERVING if args.not_serving
              else health_pb2.HealthCheckResponse.SERVING)
    for service in ("", "greeter.Greeter"):
        health_servicer.set(service, status)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin():  # os.read, not sys.stdin: a daemon thread must not hold its lock
        while os.read(sys.stdin.fileno(), 4096):
            pass
        stop.set()  # the test dropped our stdin pipe: it is done with us

    server.start()
    print(f"LISTENING 127.0.0.1:{port}", flush=True)
    threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait(args.exit_after)
    server.stop(grace=0.5).wait()


if __name__ == "__main__":
    main()
