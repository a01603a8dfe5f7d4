"""Async responses: respond later, from any greenlet or thread, exactly once."""

from __future__ import annotations

import resource
import socket
import threading
import time

import pytest
import requests

from preforkit import async_response
from preforkit.middleware import transform_response

from .helpers import read_response, recv_until_closed


class Registry:
    """A long-poll registry as an app would keep one."""

    def __init__(self) -> None:
        self.waiting: set = set()
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.closed: list = []

    def add(self, respond) -> None:
        respond.on_close(self.drop)
        with self.arrived:
            self.waiting.add(respond)
            self.arrived.notify_all()

    def drop(self, respond) -> None:
        with self.arrived:
            self.waiting.discard(respond)
            self.closed.append(respond)
            self.arrived.notify_all()

    def wait_closed(self, count: int, timeout: float = 10) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.closed) >= count, timeout), len(self.closed)

    def wait_for(self, count: int, timeout: float = 20) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.waiting) >= count, timeout), len(self.waiting)

    def broadcast(self, response: dict) -> list[bool]:
        with self.lock:
            waiting, self.waiting = list(self.waiting), set()
        return [respond(response) for respond in waiting]


def poll_app(registry: Registry, **options):
    def handler(request):
        if request["uri"] == "/poll":
            return async_response(registry.add, **options)
        return {"body": "pong " + request["uri"]}

    return handler


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def test_thousand_long_polls_one_broadcast(serve):
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    registry = Registry()
    server = serve(poll_app(registry))
    clients = [connect(server.port) for _ in range(1000)]
    try:
        for sock in clients:
            sock.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
        registry.wait_for(1000)
        assert registry.broadcast({"body": "news"}) == [True] * 1000
        for sock in clients:
            status, _, body = read_response(sock)
            assert (status, body) == (200, b"news")
            # Exactly once: the next bytes on the socket belong to the next request.
            sock.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[2] == b"pong /after"
    finally:
        for sock in clients:
            sock.close()
    assert registry.broadcast({"body": "late"}) == []


def test_respond_from_plain_thread_after_half_a_second(serve):
    """The test process is not monkey-patched: a real OS thread answers."""

    def handler(request):
        def later(respond):
            threading.Timer(0.5, respond, args=({"body": "from a thread"},)).start()

        return async_response(later)

    server = serve(handler)
    started = time.monotonic()
    response = requests.get(f"http://127.0.0.1:{server.port}/", timeout=10)
    assert response.text == "from a thread"
    assert time.monotonic() - started >= 0.5


def test_respond_from_threadpool_with_monkey_patching(cli_server):
    server = cli_server("tests.fixtures.async_apps:threadpool", "-b", "127.0.0.1:0")
    response = requests.get(f"http://127.0.0.1:{server.port}/", timeout=10)
    assert response.text == "from the threadpool"


def test_respond_twice_second_is_false_and_nothing_extra(serve):
    registry = Registry()
    server = serve(poll_app(registry))
    with connect(server.port) as sock:
        sock.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
        registry.wait_for(1)
        respond = next(iter(registry.waiting))
        assert respond.is_open
        assert respond({"body": "first"}) is True
        assert respond({"body": "second"}) is False
        assert not respond.is_open
        assert read_response(sock)[2] == b"first"
        sock.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        rest = recv_until_closed(sock)
    assert b"second" not in rest
    assert rest.endswith(b"pong /next")
    assert rest.count(b"HTTP/1.1") == 1


def test_client_disconnect_fires_on_close(serve):
    registry = Registry()
    server = serve(poll_app(registry))
    closed = threading.Event()
    sock = connect(server.port)
    sock.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
    registry.wait_for(1)
    respond = next(iter(registry.waiting))
    respond.on_close(lambda r: closed.set())
    sock.close()
    assert closed.wait(10)
    assert registry.closed == [respond]
    assert not respond.is_open
    assert respond({"body": "too late"}) is False
    # on_close registered after the client left still runs, once.
    again = threading.Event()
    respond.on_close(lambda r: again.set())
    assert again.wait(10)


def test_client_reset_fires_on_close(serve):
    registry = Registry()
    server = serve(poll_app(registry))
    sock = connect(server.port)
    sock.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
    registry.wait_for(1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # RST
    registry.wait_closed(1)
    assert len(registry.closed) == 1


@pytest.mark.parametrize(
    ("options", "status", "body"),
    [
        ({"timeout": 0.2}, 504, b"Gateway Timeout: the application did not respond in time\n"),
        ({"timeout": 0.2, "timeout_response": {"status": 204}}, 204, b""),
    ],
)
def test_timeout(serve, options, status, body):
    registry = Registry()
    server = serve(poll_app(registry, **options))
    with connect(server.port) as sock:
        sock.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
        got_status, _, got_body = read_response(sock)
        assert (got_status, got_body) == (status, body)
        respond = next(iter(registry.waiting))
        assert respond({"body": "after the timeout"}) is False
        sock.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[2] == b"pong /next"


def test_three_long_polls_in_sequence_on_one_connection(serve):
    registry = Registry()
    server = serve(poll_app(registry))
    with connect(server.port) as sock:
        for i in range(3):
            sock.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
            registry.wait_for(1)
            assert registry.broadcast({"body": f"event {i}"}) == [True]
            assert read_response(sock)[2] == f"event {i}".encode()


def test_pipelined_requests_behind_async_wait_their_turn(serve):
    registry = Registry()
    server = serve(poll_app(registry))
    with connect(server.port) as sock:
        sock.sendall(
            b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        registry.wait_for(1)
        registry.broadcast({"body": "first"})
        bodies = [read_response(sock)[2] for _ in range(3)]
    assert bodies == [b"first", b"pong /second", b"pong /third"]


def test_respond_inside_fn_and_streaming_body(serve):
    def handler(request):
        return async_response(lambda respond: respond({"body": (piece for piece in ["a", "b", "c"])}))

    server = serve(handler)
    for _ in range(3):
        assert requests.get(f"http://127.0.0.1:{server.port}/", timeout=5).text == "abc"


def test_exception_in_fn_gives_500(serve):
    def handler(request):
        def broken(respond):
            raise RuntimeError("broken fn")

        return async_response(broken)

    server = serve(handler)
    assert requests.get(f"http://127.0.0.1:{server.port}/", timeout=5).status_code == 500


def test_transforming_middleware_applies_to_async_response(serve):
    registry = Registry()

    def add_header(response):
        return {**response, "headers": {**(response.get("headers") or {}), "X-Transformed": "yes"}}

    def wrap(handler):
        return lambda request: transform_response(handler(request), add_header)

    server = serve(wrap(poll_app(registry)))
    with connect(server.port) as sock:
        sock.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
        registry.wait_for(1)
        registry.broadcast({"body": "late"})
        _, headers, body = read_response(sock)
    assert headers["X-Transformed"] == "yes"
    assert body == b"late"


def test_stop_runs_on_close_and_answers_503(serve):
    registry = Registry()
    server = serve(poll_app(registry))
    sock = connect(server.port)
    sock.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
    registry.wait_for(1)
    respond = next(iter(registry.waiting))
    server.stop(timeout=5)
    reply = recv_until_closed(sock)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 503 ")
    assert b"Connection: close" in reply
    assert registry.closed == [respond]


def test_async_response_arguments_checked():
    with pytest.raises(TypeError):
        async_response("not callable")
    with pytest.raises(ValueError, match="timeout"):
        async_response(print, timeout=0)
