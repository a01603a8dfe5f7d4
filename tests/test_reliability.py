"""Defects found from outside (issue 17), each over a real socket."""

from __future__ import annotations

import socket
import time

import gevent
import pytest

from preforkit import async_response

from . import apps
from .helpers import read_response


def _ask(port: int, data: bytes, timeout: float = 3.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_response(sock, timeout=timeout)


def test_respond_with_a_non_dict_answers_500_at_once(serve, caplog):
    """respond(None) inside fn used to leave the connection hanging forever."""

    def handler(request):
        if request["uri"] == "/now":
            return async_response(lambda respond: respond(None))

        def later(respond):
            gevent.spawn_later(0.05, respond, "not a response")

        return async_response(later)

    server = serve(handler)
    for path in (b"/now", b"/later"):
        status, _, body = _ask(server.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 500
        assert body == b"Internal Server Error\n"
    assert sum("respond() needs a response dict" in r.getMessage() for r in caplog.records) == 2


def test_a_wsgi_app_closing_an_empty_input_breaks_no_later_request(serve):
    """Body-less requests shared one BytesIO as wsgi.input; closing it broke every later one."""

    def app(environ, start_response):
        data = environ["wsgi.input"].read()
        environ["wsgi.input"].close()
        start_response("200 OK", [("Content-Length", str(len(data)))])
        return [data]

    server = serve(app, interface="wsgi")
    for _ in range(3):
        status, _, _ = _ask(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 200


def test_bare_lf_line_ends_get_400_at_once(serve):
    """It waited for a CRLF until --header-timeout and answered 408."""
    server = serve(apps.hello, header_timeout=20)
    started = time.monotonic()
    status, _, _ = _ask(server.port, b"GET / HTTP/1.1\nHost: x\n\n")
    assert status == 400
    assert time.monotonic() - started < 2


def test_http_1_2_is_served_as_1_1(serve):
    """RFC 9110 §2.5: a higher minor version is served as the highest supported."""
    server = serve(apps.request_dict)
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as sock:
        sock.sendall(b"GET / HTTP/1.2\r\nHost: x\r\n\r\n")
        status, _, _ = read_response(sock)
        assert status == 200
        sock.sendall(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == 505


def test_fragments_duplicate_content_types_and_spaced_chunk_sizes_get_400(serve):
    server = serve(apps.echo_body)
    for request in (
        b"GET /p#frag HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /p?page=1#x HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: a/b\r\nContent-Type: c/d\r\nContent-Length: 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
    ):
        assert _ask(server.port, request)[0] == 400, request


def test_workers_stop_when_the_master_is_killed(cli_server):
    """SIGKILL of the master left its workers serving, re-parented to init."""
    import os
    import signal

    import psutil

    server = cli_server("examples.hello:handler", "-b", "127.0.0.1:0", "-w", "2")
    assert server.wait_for("Ready: 2 workers")
    workers = psutil.Process(server.process.pid).children()
    assert len(workers) == 2
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=5)
    _gone, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive, f"workers still running after the master died: {[p.pid for p in alive]}"
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    except ConnectionRefusedError:
        pass
    else:
        raise AssertionError("something still accepts on the port")


def test_publishes_while_redis_is_unreachable_are_bounded(caplog):
    """200,000 publishes of 1 KiB with Redis down grew the master by 212 MiB."""
    import os

    pytest.importorskip("redis")
    from preforkit.master._redis import OUTBOUND_LIMIT, RedisLink

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    wake_read, wake_write = os.pipe()
    link = RedisLink(f"redis://127.0.0.1:{port}/0", wake_write)
    try:
        body = b"x" * 1024
        for _ in range(200_000):
            link.publish(body)
            assert link.queued_bytes <= OUTBOUND_LIMIT
        assert link.dropped > 200_000 - OUTBOUND_LIMIT // 1024 - 100
        drop_lines = [r for r in caplog.records if "messages dropped so far" in r.getMessage()]
        assert 1 <= len(drop_lines) <= 250, "a storm logs a few lines, not one per message"
    finally:
        link.close()
        os.close(wake_read)
        os.close(wake_write)
