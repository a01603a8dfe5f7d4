"""Microbenchmark of the sans-I/O hot path: parse one realistic request, build
the request dict, serialise the response head (after h11's bench).

    python benchmarks/parser_bench.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from preforkit.http import HeadParser, normalize_headers, serialize_head

REQUEST = (
    b"GET /api/items?page=2 HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: session=abcdef0123456789; theme=dark\r\n"
    b"\r\n"
)
WRK_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"


def one(parser: HeadParser, data: bytes) -> bytes:
    head, _ = parser.parse(data)
    pairs = normalize_headers({"Content-Type": "text/plain"})
    out, _, _, _ = serialize_head(
        200, pairs, method=head.method, http_version=head.http_version, keep_alive=True, body_length=13, server="x"
    )
    return out


def measure(data: bytes, seconds: float) -> float:
    parser = HeadParser()
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(1000):
            one(parser, data)
        count += 1000
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3)
    args = parser.parse_args()
    for name, data in (("browser-like request", REQUEST), ("wrk request", WRK_REQUEST)):
        rate = measure(data, args.seconds)
        print(f"{name:22} {rate:10.0f} parse+serialise/s  {1e6 / rate:6.2f} us each")


if __name__ == "__main__":
    main()
