"""Small Ring handlers used by the end-to-end tests."""

from __future__ import annotations

import json
import pathlib
from http import HTTPStatus


def hello(request):
    return {"status": 200, "headers": {"Content-Type": "text/plain"}, "body": "Hello, World!"}


def echo_path(request):
    return {"status": 200, "body": request["uri"]}


def echo_body(request):
    body = request["body"].read() if request["body"] is not None else b""
    trailers = dict(request["body"].trailers) if request["body"] is not None else {}
    return {"status": 200, "headers": {"X-Trailers": json.dumps(trailers)}, "body": body}


def ignore_body(request):
    return {"status": 200, "body": "ignored"}


def request_dict(request):
    shown = {k: v for k, v in request.items() if k != "body"}
    shown["body"] = None if request["body"] is None else "stream"
    return {"status": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(shown)}


def by_path(request):
    """A handler per path, covering every body type the server supports."""
    path = request["uri"]
    if path == "/none":
        return {"status": 200}
    if path == "/str":
        return {"status": 200, "body": "h\u00e9llo \u2603"}
    if path == "/bytes":
        return {"status": 201, "body": b"\x00\x01bytes"}
    if path == "/gen":
        return {"status": 200, "body": (f"part{i};" for i in range(5))}
    if path == "/list":
        return {"status": 200, "body": [b"a", "b", b"", "c"]}
    if path == "/file":
        return {"status": 200, "body": open(__file__, "rb")}
    if path == "/path":
        return {"status": 200, "body": pathlib.Path(__file__)}
    if path == "/multi-header":
        return {"status": 200, "headers": {"Set-Cookie": ["a=1", "b=2"]}, "body": "ok"}
    if path == "/no-content":
        return {"status": 204}
    if path == "/not-modified":
        return {"status": 304, "headers": {"ETag": '"x"'}}
    if path == "/raise":
        raise RuntimeError("boom in handler")
    if path == "/not-a-response":
        return ["not", "a", "dict"]
    if path == "/bad-header":
        return {"status": 200, "headers": {"X-Evil": "a\r\nInjected: yes"}, "body": "no"}
    if path == "/head-answered":  # a handler answering HEAD itself, announcing the GET's length
        return {"headers": {"Content-Length": "1234"}, "body": b""}
    if path == "/enum-status":
        return {"status": HTTPStatus.CREATED, "body": "made"}
    if path == "/bad-status":
        return {"status": "200"}
    if path == "/bad-body":
        return {"status": 200, "body": 12345}
    if path == "/gen-fails-first":
        return {"status": 200, "body": _failing(0)}
    if path == "/gen-fails-later":
        return {"status": 200, "body": _failing(3)}
    if path == "/close":
        return {"status": 200, "headers": {"Connection": "close"}, "body": "bye"}
    if path == "/length-stream":
        return {"status": 200, "headers": {"Content-Length": "6"}, "body": iter([b"abc", b"def"])}
    return {"status": 404, "body": "not found"}


def _failing(after: int):
    for i in range(after):
        yield b"piece%d;" % i
    raise ValueError("generator failed")
