"""The Python part of serving one request, without the kernel: µs per request.

A real ``Connection`` and ``WorkerServer`` serve requests whose bytes are
already in the receive buffer, writing to a socket stand-in that takes every
byte (no syscalls), so what is left is exactly the Python the worker runs per
request: parse, request dict (or WSGI environ), the app, response head, body.
This is where the hot path's time goes that a loopback ``wrk`` run cannot
separate from the kernel's.

    python benchmarks/hotpath_bench.py                 # every scenario, 2 s each
    python benchmarks/hotpath_bench.py --profile hello # cProfile of one scenario
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import apps  # noqa: E402
from parser_bench import REQUEST as BROWSER  # noqa: E402

from preforkit.config import Config  # noqa: E402
from preforkit.worker._connection import NEXT, Connection  # noqa: E402
from preforkit.worker._server import WorkerServer  # noqa: E402
from preforkit.worker.wsgi import WSGIAdapter  # noqa: E402

WRK_HELLO = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
WRK_ECHO = (
    b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 4096\r\n"
    b"Content-Type: application/octet-stream\r\n\r\n" + b"x" * 4096
)
WRK_64K = b"GET /64k HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
SCENARIOS = {
    "hello": ("ring", WRK_HELLO),
    "browser-like hello": ("ring", BROWSER),
    "4 KB POST echo": ("ring", WRK_ECHO),
    "64 KB response": ("ring", WRK_64K),
    "WSGI hello": ("wsgi", WRK_HELLO),
    "WSGI 4 KB POST echo": ("wsgi", WRK_ECHO),
}


class Sink:
    """Stands in for the client socket: takes every byte at once."""

    def __init__(self) -> None:
        self.sent = 0

    def fileno(self) -> int:
        return 0

    def send(self, data) -> int:
        self.sent += len(data)
        return len(data)

    def recv(self, size: int) -> bytes:
        raise BlockingIOError  # never reached: every request is already buffered


def make_connection(interface: str) -> Connection:
    app = apps.ring if interface == "ring" else WSGIAdapter(apps.wsgi)
    server = WorkerServer(app, Config(), [])
    return Connection(Sink(), ("127.0.0.1", 40000), server, ("127.0.0.1", 8000, "http"))


def run(connection: Connection, request: bytes, count: int) -> None:
    buffer = connection.buffer
    serve = connection._serve_one
    for _ in range(count):
        buffer += request
        if serve(False) is not NEXT:
            raise SystemExit("the connection closed: the request was not served")


def measure(interface: str, request: bytes, seconds: float) -> float:
    connection = make_connection(interface)
    run(connection, request, 2000)  # warm caches
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        run(connection, request, 2000)
        count += 2000
    return (time.perf_counter() - started) / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--profile", metavar="SCENARIO", help="cProfile one scenario (e.g. hello)")
    args = parser.parse_args()
    if args.profile:
        interface, request = SCENARIOS[args.profile]
        connection = make_connection(interface)
        profile = cProfile.Profile()
        profile.runcall(run, connection, request, 100_000)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return 0
    print(f"{'scenario':<24} µs per request (Python only, no syscalls)")
    for name, (interface, request) in SCENARIOS.items():
        print(f"{name:<24} {measure(interface, request, args.seconds):6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
