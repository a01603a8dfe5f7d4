"""The fault matrix: faults injected into running servers, and what was lost (127.0.0.1 only, bounded)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time

import psutil
import pytest
import requests

from .helpers import read_response

APP = "tests.fixtures.fault_apps:handler"


def _workers(server) -> set[int]:
    return {p.pid for p in psutil.Process(server.process.pid).children()}


def _pid_of(port: int, session: requests.Session | None = None) -> int:
    getter = session.get if session is not None else requests.get
    return int(getter(f"http://127.0.0.1:{port}/", timeout=5).text)


def _connection_on(port: int, pid: int, tries: int = 200) -> requests.Session:
    """A keep-alive session whose connection is served by worker ``pid``."""
    for _ in range(tries):
        session = requests.Session()
        if _pid_of(port, session) == pid:
            return session
        session.close()
    raise AssertionError(f"no connection landed on worker {pid}")


def test_sigkill_of_a_worker_cuts_only_its_own_clients(cli_server):
    """A streamed response, a held long poll and a WebSocket on the killed worker end with a
    clean close; a keep-alive client of the other worker is untouched; a replacement serves."""
    import websockets.sync.client

    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2")
    assert server.wait_for("Ready: 2 workers")
    port = server.port
    stream = socket.create_connection(("127.0.0.1", port), timeout=10)
    stream.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    received = b""
    while b"pid " not in received or b"\n" not in received.split(b"pid ", 1)[1]:
        received += stream.recv(4096)
    victim = int(received.split(b"pid ", 1)[1].split(b"\n", 1)[0])
    survivor = (_workers(server) - {victim}).pop()
    other = _connection_on(port, survivor)

    poll = None
    for _ in range(200):  # a long poll held by the victim
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        if int(read_response(sock)[2]) == victim:
            sock.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
            poll = sock
            break
        sock.close()
    assert poll is not None
    ws = None
    stack = contextlib.ExitStack()
    for _ in range(200):
        candidate = stack.enter_context(websockets.sync.client.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5))
        if candidate.recv(timeout=5) == f"pid {victim}":
            ws = candidate
            break
        candidate.close()
    assert ws is not None

    os.kill(victim, signal.SIGKILL)
    # The stream is cut: EOF without the final zero-length chunk.
    stream.settimeout(10)
    rest = b""
    while chunk := stream.recv(65536):
        rest += chunk
    assert not (received + rest).endswith(b"0\r\n\r\n")
    poll.settimeout(10)
    assert poll.recv(4096) == b""  # the held request: a TCP close, no response
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is None  # no close frame: the TCP connection ended
    # The other worker's client goes on as if nothing happened.
    assert _pid_of(port, other) == survivor
    assert server.wait_for("Booting worker", count=3, timeout=10)  # the replacement
    assert len(_workers(server)) == 2
    for sock in (stream, poll):
        sock.close()
    other.close()
    stack.close()


def test_a_stopped_worker_is_replaced_and_the_other_keeps_serving(cli_server):
    """SIGSTOP: its loop stops turning, --timeout replaces it; clients of the other worker see nothing."""
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2", "--timeout", "2")
    assert server.wait_for("Ready: 2 workers")
    victim, survivor = sorted(_workers(server))
    other = _connection_on(server.port, survivor)
    os.kill(victim, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 15
        served = 0
        while victim in _workers(server) and time.monotonic() < deadline:
            assert _pid_of(server.port, other) == survivor
            served += 1
            time.sleep(0.05)
        assert victim not in _workers(server), "the stopped worker was not replaced"
        assert served > 10
    finally:
        try:
            os.kill(victim, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert server.wait_for("Booting worker", count=3, timeout=10)
    other.close()


def test_recycling_at_max_worker_memory_loses_no_request(cli_server):
    """A limit below what a worker needs: it recycles every check (2 s), gracefully, under steady traffic."""
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2", "--max-worker-memory", "1M")
    assert server.wait_for("Ready: 2 workers")
    failures = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                with requests.Session() as session:
                    for _ in range(20):
                        response = session.get(f"http://127.0.0.1:{server.port}/", timeout=10)
                        if response.status_code != 200:
                            failures.append(response.status_code)
            except requests.RequestException as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        assert server.wait_for("Recycling worker", count=3, timeout=20), server.output[-2000:]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
    assert failures == []


def test_a_client_that_stops_reading_is_bounded_in_time_and_memory(cli_server):
    """A 64 MiB response to a client that reads nothing: --keepalive ends the stalled write."""
    server = cli_server(APP, "-b", "127.0.0.1:0", "--keepalive", "1")
    assert server.wait_for("Ready: 1 worker")
    (worker,) = _workers(server)
    rss_before = psutil.Process(worker).memory_info().rss
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        deadline = started + 15
        closed = False
        while time.monotonic() < deadline:  # the server gives up on the stalled write
            time.sleep(0.2)
            established = [
                c
                for c in psutil.Process(worker).net_connections(kind="tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == server.port
            ]
            if not established:
                closed = True
                break
        assert closed, "the stalled write was never ended"
        assert time.monotonic() - started < 10
    rss_after = psutil.Process(worker).memory_info().rss
    assert rss_after - rss_before < 80 * 2**20  # the body itself (64 MiB), not a copy per stall
    assert requests.get(f"http://127.0.0.1:{server.port}/", timeout=5).status_code == 200


def test_an_access_log_on_a_full_disk_does_not_stop_answers(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "--access-log", "/dev/full")
    for _ in range(20):
        assert requests.get(f"http://127.0.0.1:{server.port}/", timeout=5).status_code == 200
    assert len(_workers(server)) == 1
