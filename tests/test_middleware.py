"""preforkit.middleware over a real server."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from preforkit import async_response
from preforkit.middleware import (
    transform_response,
    wrap_content_type,
    wrap_cookies,
    wrap_head,
    wrap_params,
    wrap_static,
)


def echo_params(request):
    return {
        "body": json.dumps(
            {"query": request["query_params"], "form": request["form_params"], "params": request["params"]}
        )
    }


def test_wrap_params_query_and_form(serve):
    server = serve(wrap_params(echo_params))
    url = f"http://127.0.0.1:{server.port}/?a=1&b=x%20y&a=2&empty="
    got = requests.post(url, data={"c": "3", "b": "form"}, timeout=5).json()
    assert got["query"] == {"a": ["1", "2"], "b": "x y", "empty": ""}
    assert got["form"] == {"c": "3", "b": "form"}
    assert got["params"]["b"] == "form"


def test_wrap_params_leaves_body_readable(serve):
    server = serve(wrap_params(lambda request: {"body": request["body"].read()}))
    response = requests.post(f"http://127.0.0.1:{server.port}/", data={"k": "v"}, timeout=5)
    assert response.text == "k=v"


def test_wrap_cookies(serve):
    def handler(request):
        return {
            "body": json.dumps(request["cookies"]),
            "cookies": {
                "plain": "1",
                "session": {"value": "abc", "path": "/", "http_only": True, "max_age": 60, "same_site": "Lax"},
            },
        }

    server = serve(wrap_cookies(handler))
    response = requests.get(
        f"http://127.0.0.1:{server.port}/", headers={"Cookie": 'a=1; b="two words"; bad cookie; c=3'}, timeout=5
    )
    assert response.json() == {"a": "1", "b": "two words", "c": "3"}
    lines = response.raw.headers.getlist("Set-Cookie")
    assert "plain=1" in lines
    session = next(line for line in lines if line.startswith("session="))
    for part in ("session=abc", "Path=/", "HttpOnly", "Max-Age=60", "SameSite=Lax"):
        assert part in session


def test_wrap_content_type_plain_and_async(serve):
    def handler(request):
        if request["uri"] == "/later.json":
            return async_response(lambda respond: threading.Timer(0.05, respond, args=({"body": "{}"},)).start())
        if request["uri"] == "/typed.css":
            return {"headers": {"content-type": "text/x-mine"}, "body": "x"}
        return {"body": "x"}

    server = serve(wrap_content_type(handler))
    base = f"http://127.0.0.1:{server.port}"
    assert requests.get(base + "/page.html", timeout=5).headers["Content-Type"] == "text/html"
    assert requests.get(base + "/blob", timeout=5).headers["Content-Type"] == "application/octet-stream"
    assert requests.get(base + "/typed.css", timeout=5).headers["Content-Type"] == "text/x-mine"
    assert requests.get(base + "/later.json", timeout=5).headers["Content-Type"] == "application/json"


def test_wrap_head(serve):
    seen = []

    def handler(request):
        seen.append(request["request_method"])
        return {"body": "twelve bytes"}

    server = serve(wrap_head(handler))
    response = requests.head(f"http://127.0.0.1:{server.port}/", timeout=5)
    assert response.headers["Content-Length"] == "12"
    assert response.content == b""
    assert seen == ["GET"]


def test_transform_response_passes_none_through():
    assert transform_response(None, lambda r: 1 / 0) is None


@pytest.fixture
def static_server(serve, tmp_path):
    (tmp_path / "hello.txt").write_bytes(b"0123456789abcdefghij")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_text("<p>index</p>")
    (tmp_path.parent / "secret.txt").write_text("outside")
    fallback = lambda request: {"status": 404, "body": "fallback"}  # noqa: E731
    server = serve(wrap_static(fallback, tmp_path, prefix="/static"))
    return f"http://127.0.0.1:{server.port}/static"


def test_static_file_and_index(static_server):
    response = requests.get(static_server + "/hello.txt", timeout=5)
    assert response.status_code == 200
    assert response.content == b"0123456789abcdefghij"
    assert response.headers["Content-Type"] == "text/plain"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert requests.get(static_server + "/sub/", timeout=5).text == "<p>index</p>"


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/missing.txt", "/hello.txt%00"])
def test_static_falls_through(static_server, path):
    response = requests.get(static_server + path, timeout=5)
    assert (response.status_code, response.text) == (404, "fallback")


def test_static_conditional_requests(static_server):
    first = requests.get(static_server + "/hello.txt", timeout=5)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    again = requests.get(static_server + "/hello.txt", headers={"If-None-Match": etag}, timeout=5)
    assert again.status_code == 304
    assert again.content == b""
    since = requests.get(static_server + "/hello.txt", headers={"If-Modified-Since": modified}, timeout=5)
    assert since.status_code == 304
    other = requests.get(static_server + "/hello.txt", headers={"If-None-Match": '"other"'}, timeout=5)
    assert other.status_code == 200


@pytest.mark.parametrize(
    ("range_header", "status", "body", "content_range"),
    [
        ("bytes=0-3", 206, b"0123", "bytes 0-3/20"),
        ("bytes=10-", 206, b"abcdefghij", "bytes 10-19/20"),
        ("bytes=-5", 206, b"fghij", "bytes 15-19/20"),
        ("bytes=5-100", 206, b"56789abcdefghij", "bytes 5-19/20"),
        ("bytes=20-", 416, b"", "bytes */20"),
        ("bytes=0-1,5-6", 200, b"0123456789abcdefghij", None),
        ("items=0-1", 200, b"0123456789abcdefghij", None),
    ],
)
def test_static_ranges(static_server, range_header, status, body, content_range):
    response = requests.get(static_server + "/hello.txt", headers={"Range": range_header}, timeout=5)
    assert response.status_code == status
    assert response.content == body
    assert response.headers.get("Content-Range") == content_range
    if status == 206:
        assert response.headers["Content-Length"] == str(len(body))


def test_static_head_and_if_range(static_server):
    head = requests.head(static_server + "/hello.txt", timeout=5)
    assert head.headers["Content-Length"] == "20"
    assert head.content == b""
    stale = requests.get(static_server + "/hello.txt", headers={"Range": "bytes=0-1", "If-Range": '"old"'}, timeout=5)
    assert stale.status_code == 200
    fresh = requests.get(
        static_server + "/hello.txt", headers={"Range": "bytes=0-1", "If-Range": head.headers["ETag"]}, timeout=5
    )
    assert (fresh.status_code, fresh.content) == (206, b"01")
