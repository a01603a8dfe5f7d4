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
    compare_httptools()


def per_call(function, data: bytes | list[bytes]) -> float:
    """µs per call, best of five rounds of 20,000 (on ``data`` each time, or on each of a list)."""
    datas = data if isinstance(data, list) else [data] * 20_000
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for each in datas:
            function(each)
        best = min(best, (time.perf_counter() - started) / len(datas))
    return best * 1e6


def each_new(data: bytes) -> list[bytes]:
    """20,000 copies of a request head, each with a target of its own (no memo helps)."""
    method, target, rest = data.split(b" ", 2)
    joiner = b"&" if b"?" in target else b"?"
    return [b"%s %s%sn=%d %s" % (method, target, joiner, index, rest) for index in range(20_000)]


def compare_httptools() -> None:
    """The head parsing alone: ours (every check included) against httptools (llhttp in C)
    with only the header list turned into the same lower-case dict, none of our checks."""
    try:
        import httptools
    except ImportError:
        print("httptools is not installed: no comparison")
        return

    class Collect:
        def __init__(self) -> None:
            self.raw: list = []

        def on_header(self, name: bytes, value: bytes) -> None:
            self.raw.append((name, value))

    collect = Collect()
    c_parser = httptools.HttpRequestParser(collect)

    def with_httptools(data: bytes):
        collect.raw = []
        c_parser.feed_data(data)
        headers = {}
        for name, value in collect.raw:
            headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        return c_parser.get_method(), c_parser.should_keep_alive(), headers

    cases = [("browser-like request", REQUEST), ("wrk request", WRK_REQUEST)]
    cases += [("browser-like, each new", each_new(REQUEST)), ("wrk, each new", each_new(WRK_REQUEST))]
    for name, data in cases:
        mine = per_call(HeadParser().parse, data)
        theirs = per_call(with_httptools, data)
        print(f"{name:22} head only: preforkit {mine:.2f} us (all checks), httptools {httptools.__version__} "
              f"{theirs:.2f} us (no checks)")  # fmt: skip


if __name__ == "__main__":
    main()
