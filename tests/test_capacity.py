"""Capacity: the open-file limit raised, connections by default, and nobody left waiting in silence.

At capacity a worker sheds idle keep-alive connections first; with none idle
it answers new clients 503 with Retry-After and Connection: close at once,
also when it has run out of file descriptors.
"""

from __future__ import annotations

import logging
import resource
import selectors
import socket
import threading
import time

import gevent
import pytest
import requests

from preforkit import async_response

from . import apps
from .helpers import read_response

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(autouse=True)
def _many_sockets():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def open_connections(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


def assert_busy_answer(sock: socket.socket) -> None:
    status, headers, _ = read_response(sock, timeout=2)
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert headers["Connection"] == "close"


def test_full_of_new_connections_answers_503_at_once(serve, caplog):
    server = serve(apps.hello, worker_connections=20)
    fresh = open_connections(server.port, 20)
    try:
        wait_until(lambda: len(server._worker.connections) == 20)
        with caplog.at_level(logging.WARNING, logger="preforkit.error"):
            for _ in range(5):
                with socket.create_connection(("127.0.0.1", server.port), timeout=5) as extra:
                    extra.sendall(REQUEST)
                    assert_busy_answer(extra)
        warnings = [r for r in caplog.records if "At capacity" in r.getMessage()]
        assert len(warnings) == 1, "logged at most once a minute"
        assert "--worker-connections" in warnings[0].getMessage()
        # The connections already held lose nothing.
        for sock in fresh:
            sock.sendall(REQUEST)
        assert [read_response(sock)[0] for sock in fresh] == [200] * 20
        # Now they are idle keep-alive connections: one makes room for a newcomer.
        assert requests.get(f"http://127.0.0.1:{server.port}/", timeout=5).status_code == 200
    finally:
        for sock in fresh:
            sock.close()


def test_held_long_polls_do_not_lock_new_clients_out(serve):
    waiting = []
    lock = threading.Lock()

    def poll(request):
        def hold(respond):
            with lock:
                waiting.append(respond)

        return async_response(hold)

    server = serve(poll, worker_connections=10)
    held = open_connections(server.port, 10)
    try:
        for sock in held:
            sock.sendall(REQUEST)
        wait_until(lambda: len(waiting) == 10)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as extra:
            extra.sendall(REQUEST)
            assert_busy_answer(extra)
        with lock:
            answered = [respond({"status": 200, "body": "event"}) for respond in waiting]
        assert answered == [True] * 10
        assert [read_response(sock)[0] for sock in held] == [200] * 10
    finally:
        for sock in held:
            sock.close()


def test_past_capacity_every_client_gets_an_answer(serve):
    """Twice as many clients as the capacity, all at once: each gets 200 or 503, none hangs."""

    def slow(request):
        gevent.sleep(0.3)
        return {"status": 200, "body": "done"}

    server = serve(slow, worker_connections=50)
    statuses = _burst(server.port, 100, timeout=10)
    assert len(statuses) == 100, "every client got an answer"
    assert set(statuses) <= {200, 503}
    assert statuses.count(200) >= 50
    assert statuses.count(503) >= 1
    # The load dropped: everyone is served again.
    assert _burst(server.port, 20, timeout=10) == [200] * 20


def _burst(port: int, count: int, timeout: float) -> list[int]:
    """``count`` clients connect and send a request at once; the status each got."""
    selector = selectors.DefaultSelector()
    replies: dict[socket.socket, bytes] = {}
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(REQUEST)
        sock.setblocking(False)
        replies[sock] = b""
        selector.register(sock, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    done: list[int] = []
    try:
        while len(done) < count and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                sock = key.fileobj
                try:
                    data = sock.recv(65536)
                except ConnectionError:
                    data = b""
                replies[sock] += data
                if b"\r\n\r\n" in replies[sock] or not data:
                    selector.unregister(sock)
                    head = replies[sock]
                    done.append(int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0)
    finally:
        for sock in replies:
            sock.close()
        selector.close()
    return sorted(done)


def _low_limits(soft: int, hard: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


def test_master_raises_the_open_file_limit_and_a_worker_holds_more_than_1024(cli_server, monkeypatch):
    """With the soft limit shells and systemd give (1024), default settings hold 1,500 clients."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4000:
        pytest.skip("the hard open-file limit is too low here")
    import subprocess

    real_popen = subprocess.Popen

    def popen_with_low_limit(*args, **kwargs):
        kwargs["preexec_fn"] = _low_limits(1024, hard)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen_with_low_limit)
    server = cli_server("examples.hello:handler", "-b", "127.0.0.1:0")
    monkeypatch.undo()
    assert f"soft 1024 raised to the hard limit {hard}" in server.output
    assert server.wait_for(rf"holds up to {hard * 3 // 4} connections")
    clients = open_connections(server.port, 1500)
    try:
        for sock in clients:
            sock.sendall(REQUEST)
        assert [read_response(sock)[0] for sock in clients] == [200] * 1500
        assert requests.get(f"http://127.0.0.1:{server.port}/", timeout=5).status_code == 200
    finally:
        for sock in clients:
            sock.close()
    assert "accept() failed" not in server.output
    assert "Out of file descriptors" not in server.output


def test_out_of_descriptors_new_clients_get_503_and_service_resumes(cli_server, monkeypatch):
    """A capacity above what the fd limit allows: accept() fails with EMFILE, yet clients hear 503."""
    import subprocess

    real_popen = subprocess.Popen

    def popen_with_low_limit(*args, **kwargs):
        kwargs["preexec_fn"] = _low_limits(64, 64)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen_with_low_limit)
    server = cli_server("examples.hello:handler", "-b", "127.0.0.1:0", "--worker-connections", "1000")
    monkeypatch.undo()
    held = open_connections(server.port, 80)  # about 50 fit in the worker's descriptors
    try:
        # Those the worker could not take are answered 503 at once; the others wait for a request.
        answered = _readable_within(held, 3.0)
        assert len(answered) >= 10
        for sock in answered:
            sock.settimeout(2)
            assert sock.recv(65536).startswith(b"HTTP/1.1 503 ")
        assert server.wait_for("Out of file descriptors")
        served = [sock for sock in held if sock not in answered]
        assert len(served) >= 20
        for sock in served:
            sock.sendall(REQUEST)
        assert [read_response(sock)[0] for sock in served] == [200] * len(served)
    finally:
        for sock in held:
            sock.close()

    def served_again() -> bool:
        return requests.get(f"http://127.0.0.1:{server.port}/", timeout=5).status_code == 200

    wait_until(served_again)
    assert len([line for line in server.lines if "Out of file descriptors" in line]) == 1


def _readable_within(socks: list[socket.socket], seconds: float) -> set[socket.socket]:
    selector = selectors.DefaultSelector()
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
    readable: set[socket.socket] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            readable.add(key.fileobj)
            selector.unregister(key.fileobj)
    selector.close()
    return readable


def test_a_listener_above_descriptor_1023_still_answers_at_capacity(serve):
    """The full-worker check used select(), which fails above fd 1023: the accept loop died."""
    import os

    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        server = serve(apps.hello, worker_connections=5)
        assert server._worker.listeners[0].fileno() > 1023
        fresh = open_connections(server.port, 5)
        try:
            wait_until(lambda: len(server._worker.connections) == 5)
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as extra:
                extra.sendall(REQUEST)
                assert_busy_answer(extra)
        finally:
            for sock in fresh:
                sock.close()
    finally:
        for fd in fillers:
            os.close(fd)
