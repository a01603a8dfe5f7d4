"""Response serialisation, driven by a table of cases."""

from __future__ import annotations

import re

import pytest

from preforkit.http import (
    CHUNKED,
    LENGTH,
    NO_BODY,
    UNTIL_CLOSE,
    LocalProtocolError,
    chunk,
    error_response,
    normalize_headers,
    serialize_head,
    status_line,
)

DATE = re.compile(rb"Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n")

# (status, headers, method, version, keep_alive, length) -> (framing, keep_alive, expected lines)
CASES = [
    ((200, {}, "GET", "1.1", True, 5), (LENGTH, True, [b"HTTP/1.1 200 OK", b"Content-Length: 5"])),
    ((200, {}, "GET", "1.1", True, None), (CHUNKED, True, [b"Transfer-Encoding: chunked"])),
    ((200, {}, "GET", "1.0", True, None), (UNTIL_CLOSE, False, [b"Connection: close"])),
    ((200, {}, "GET", "1.0", True, 3), (LENGTH, True, [b"Connection: keep-alive", b"Content-Length: 3"])),
    ((200, {}, "HEAD", "1.1", True, 42), (NO_BODY, True, [b"Content-Length: 42"])),
    ((204, {}, "GET", "1.1", True, 0), (NO_BODY, True, [b"HTTP/1.1 204 No Content"])),
    ((304, {}, "GET", "1.1", True, 0), (NO_BODY, True, [b"HTTP/1.1 304 Not Modified"])),
    ((101, {}, "GET", "1.1", True, 0), (NO_BODY, True, [b"HTTP/1.1 101 Switching Protocols"])),
    ((200, {"Connection": "close"}, "GET", "1.1", True, 1), (LENGTH, False, [b"Connection: close"])),
    ((200, {"Content-Length": "7"}, "GET", "1.1", True, None), (LENGTH, True, [b"Content-Length: 7"])),
    ((200, {"Content-Length": "99"}, "GET", "1.1", True, 2), (LENGTH, True, [b"Content-Length: 2"])),
    ((200, {"Transfer-Encoding": "gzip"}, "GET", "1.1", True, 2), (LENGTH, True, [b"Content-Length: 2"])),
    (
        (200, {"Set-Cookie": ["a=1", "b=2"]}, "GET", "1.1", True, 0),
        (LENGTH, True, [b"Set-Cookie: a=1", b"Set-Cookie: b=2"]),
    ),
    ((599, {}, "GET", "1.1", True, 0), (LENGTH, True, [b"HTTP/1.1 599 "])),
    ((200, [("X-A", "1"), ("X-A", "2")], "GET", "1.1", True, 0), (LENGTH, True, [b"X-A: 1", b"X-A: 2"])),
    ((200, {"X-N": 5}, "GET", "1.1", True, 0), (LENGTH, True, [b"X-N: 5"])),
]


@pytest.mark.parametrize(("args", "expected"), CASES)
def test_serialize_head(args, expected):
    status, headers, method, version, keep_alive, length = args
    framing, keep, lines = expected
    data, got_framing, got_keep, _ = serialize_head(
        status,
        normalize_headers(headers),
        method=method,
        http_version=version,
        keep_alive=keep_alive,
        body_length=length,
        server="preforkit",
    )
    assert (got_framing, got_keep) == (framing, keep)
    assert data.endswith(b"\r\n\r\n")
    head_lines = data.split(b"\r\n")
    for line in lines:
        assert line in head_lines or any(h.startswith(line) for h in head_lines), (line, data)
    assert DATE.search(data)
    assert b"Server: preforkit\r\n" in data
    assert data.count(b"Content-Length") + data.count(b"Transfer-Encoding") <= 1
    if status < 200 or status == 204:
        assert b"Content-Length" not in data


def test_server_header_off_and_app_override():
    data, _, _, _ = serialize_head(
        200, [], method="GET", http_version="1.1", keep_alive=True, body_length=0, server=None
    )
    assert b"Server:" not in data
    pairs = normalize_headers({"Server": "mine", "Date": "yesterday"})
    data, _, _, _ = serialize_head(
        200, pairs, method="GET", http_version="1.1", keep_alive=True, body_length=0, server="x"
    )
    assert data.count(b"Server:") == 1
    assert b"Server: mine" in data
    assert b"Date: yesterday" in data


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "a\r\nInjected: yes"},
        {"X-A": "a\nb"},
        {"X-A": "a\x00b"},
        {"Bad Name": "v"},
        {"Bad:Name": "v"},
        {"": "v"},
        {"X-A\r\n": "v"},
        {"X-A": ["ok", "bad\r\n"]},
        {"X-A": object()},
        {5: "v"},
        "not headers",
    ],
)
def test_invalid_headers_raise(headers):
    with pytest.raises(LocalProtocolError):
        normalize_headers(headers)


@pytest.mark.parametrize("status", [99, 1000, "200", 200.0, True, None])
def test_invalid_status(status):
    with pytest.raises(LocalProtocolError):
        status_line(status)


def test_chunk_framing():
    assert chunk(b"hello") == b"5\r\nhello\r\n"
    assert chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"


def test_error_response_closes():
    data = error_response(400, "bad things")
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close\r\n" in data
    assert data.endswith(b"\r\n\r\nbad things\n")


def test_serialize_head_checks_raw_app_headers_and_caches_only_checked_lines():
    def head(headers):
        data, _, _, _ = serialize_head(
            200, headers, method="GET", http_version="1.1", keep_alive=True, body_length=0, server=None
        )
        return data

    assert b"\r\nX-A: 1\r\nX-A: 2\r\n" in head({"X-A": ["1", "2"]})
    assert b"\r\nX-A: 1\r\n" in head({"X-A": "1"})
    assert b"\r\nX-A: 1\r\n" in head({"X-A": "1"})  # from the line cache
    for bad in ({"X-A": True}, {"X-A": "1\r\nEvil: 1"}, {"X-A\r\n": "1"}, {"X-A": "caf\u00e9\u20ac"}):
        with pytest.raises(LocalProtocolError):
            head(bad)
    assert b"Connection: close" in head({"Connection": "close"})
    assert b"Connection: close" not in head({"Connection": "keep-alive"})
