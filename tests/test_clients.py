"""Real client libraries and tools against a live server."""

from __future__ import annotations

import http.client
import shutil
import subprocess

import pytest
import requests

from . import apps


def test_requests_session_keep_alive_and_bodies(serve):
    server = serve(apps.echo_body)
    url = f"http://127.0.0.1:{server.port}/"
    with requests.Session() as session:
        for i in range(20):
            response = session.post(url, data=b"x" * i)
            assert response.status_code == 200
            assert response.content == b"x" * i
        # A generator body is sent chunked by requests.
        response = session.post(url, data=(piece for piece in [b"ab", b"cd", b"ef"]))
        assert response.content == b"abcdef"
        response = session.post(url, json={"a": [1, 2]})
        assert response.json() == {"a": [1, 2]}


def test_requests_streaming_response(serve):
    server = serve(apps.by_path)
    response = requests.get(f"http://127.0.0.1:{server.port}/gen", stream=True, timeout=5)
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert b"".join(response.iter_content(None)) == b"part0;part1;part2;part3;part4;"


def test_http_client_large_body_roundtrip(serve):
    server = serve(apps.echo_body)
    payload = bytes(range(256)) * 4096  # 1 MiB
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("PUT", "/big", body=payload)
    response = conn.getresponse()
    assert response.read() == payload
    conn.request("PUT", "/again", body=b"small")
    assert conn.getresponse().read() == b"small"
    conn.close()


CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CURL, "-sS", "--max-time", "10", *args], capture_output=True, timeout=20, check=False)


@needs_curl
def test_curl_verbose_get(serve):
    server = serve(apps.hello)
    result = curl("-v", f"http://127.0.0.1:{server.port}/")
    assert result.returncode == 0
    assert result.stdout == b"Hello, World!"
    assert b"< HTTP/1.1 200 OK" in result.stderr


@needs_curl
def test_curl_http10_head_and_chunked_upload(serve):
    server = serve(apps.by_path)
    result = curl("--http1.0", "-i", f"http://127.0.0.1:{server.port}/gen")
    assert result.stdout.endswith(b"part0;part1;part2;part3;part4;")
    head = curl("-I", f"http://127.0.0.1:{server.port}/str").stdout
    assert b"Content-Length: 10" in head  # "h\u00e9llo \u2603" in UTF-8

    echo = serve(apps.echo_body)
    result = curl(
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        "chunked upload",
        f"http://127.0.0.1:{echo.port}/",
    )
    assert result.stdout == b"chunked upload"


@needs_curl
def test_curl_many_requests_one_connection(serve):
    server = serve(apps.echo_path)
    urls = [f"http://127.0.0.1:{server.port}/u{i}" for i in range(5)]
    result = curl("-v", *urls)
    assert result.stdout == b"/u0/u1/u2/u3/u4"
    assert result.stderr.count(b"Re-using existing connection") + result.stderr.count(b"Reusing existing") >= 4
