"""preforkit.pubsub: in one process, across workers, across instances through Redis."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time

import psutil
import pytest
import requests

from preforkit import pubsub
from preforkit.worker._bus import MAX_MESSAGE, decode, encode

from .helpers import read_response

APP = "tests.fixtures.pubsub_apps:handler"


def test_encoding_roundtrip_and_limits():
    for message in ("text", b"\x00bytes", {"a": [1, 2]}, 42, None):
        assert decode(encode("topic", message)) == ("topic", message)
    with pytest.raises(ValueError, match="at most"):
        encode("topic", b"x" * (MAX_MESSAGE + 1))
    with pytest.raises(ValueError, match="JSON-able"):
        encode("topic", object())
    with pytest.raises(ValueError, match="topic"):
        encode("", "x")


def test_in_process_callback_and_iterator(serve):
    got = []
    arrived = threading.Event()

    def on_message(message):
        got.append(message)
        arrived.set()

    serve(lambda request: {"body": "ok"})  # a running hub delivers the messages
    subscription = pubsub.subscribe("unit", on_message)
    iterator = pubsub.subscribe("unit")
    try:
        threading.Thread(target=pubsub.publish, args=("unit", {"n": 1})).start()  # from a plain OS thread
        assert arrived.wait(5)
        assert got == [{"n": 1}]
    finally:
        subscription.close()
        iterator.close()


def _connect_polls(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        sock.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
        sockets.append(sock)
    return sockets


def test_400_long_polls_on_4_workers_get_one_message_exactly_once(cli_server):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "4", "--reuse-port")
    assert server.wait_for("Ready: 4 workers")
    workers = {child.pid for child in psutil.Process(server.process.pid).children()}
    clients = _connect_polls(server.port, 400)
    try:
        assert server.wait_for("held poll", count=400, timeout=30)
        requests.get(f"http://127.0.0.1:{server.port}/publish?flash", timeout=10)
        served_by = set()
        for sock in clients:
            status, _, body = read_response(sock)
            text, pid = body.decode().split()
            assert (status, text) == (200, "flash")
            served_by.add(int(pid))
            sock.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[2].startswith(b"pong"), "exactly once: nothing else came first"
    finally:
        for sock in clients:
            sock.close()
    assert served_by == workers, "the polls were spread over all four workers"


def test_replacement_worker_receives_later_messages(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2", "--reuse-port")
    assert server.wait_for("Ready: 2 workers")
    victim = min(child.pid for child in psutil.Process(server.process.pid).children())
    start = len(server.lines)
    os.kill(victim, signal.SIGKILL)
    assert server.wait_for(r"Worker \d+: using the ring interface", start=start)
    workers = {child.pid for child in psutil.Process(server.process.pid).children()}
    assert victim not in workers
    clients = _connect_polls(server.port, 40)
    try:
        assert server.wait_for("held poll", count=40, start=start, timeout=20)
        requests.get(f"http://127.0.0.1:{server.port}/publish?later", timeout=10)
        served_by = {int(read_response(sock)[2].split()[1]) for sock in clients}
    finally:
        for sock in clients:
            sock.close()
    assert served_by == workers, "the new worker subscribed again and got the message"


def test_websocket_chat_across_workers(cli_server):
    import asyncio
    import json

    from websockets.asyncio.client import connect

    server = cli_server("examples.ws_chat:handler", "-b", "127.0.0.1:0", "-w", "4", "--reuse-port")
    assert server.wait_for("Ready: 4 workers")
    url = f"ws://127.0.0.1:{server.port}/ws"

    async def clients():
        sockets = [await connect(url) for _ in range(12)]
        try:
            pids = {json.loads(await ws.recv())["worker"] for ws in sockets}
            await sockets[0].send("across workers")
            for ws in sockets:
                while json.loads(await ws.recv()).get("text") != "across workers":
                    pass
            return pids
        finally:
            for ws in sockets:
                await ws.close()

    pids = asyncio.run(asyncio.wait_for(clients(), 30))
    assert len(pids) > 1, "the clients were held by different workers"


REDIS = shutil.which("redis-server")


@pytest.fixture
def redis_server(tmp_path):
    if REDIS is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    class Redis:
        def __init__(self) -> None:
            self.port = port
            self.url = f"redis://127.0.0.1:{port}/0"
            self.process = None

        def start(self) -> None:
            self.process = subprocess.Popen(
                [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(tmp_path), "--enable-debug-command", "local"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            for _ in range(200):
                line = self.process.stdout.readline()
                if "Ready to accept connections" in line or not line:
                    break
            threading.Thread(target=self.process.stdout.read, daemon=True).start()

        def stop(self) -> None:
            if self.process is not None and self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=10)

    redis = Redis()
    redis.start()
    yield redis
    redis.stop()


def _poll_and_publish(servers, publisher_port: int, text: str, per_server: int = 5) -> list[str]:
    clients = []
    for server in servers:
        start = len(server.lines)
        socks = _connect_polls(server.port, per_server)
        assert server.wait_for("held poll", count=per_server, start=start, timeout=20)
        clients += socks
    try:
        requests.get(f"http://127.0.0.1:{publisher_port}/publish?{text}", timeout=10)
        return [read_response(sock)[2].decode().split()[0] for sock in clients]
    finally:
        for sock in clients:
            sock.close()


def test_two_instances_share_redis_and_survive_a_restart(cli_server, redis_server):
    one = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2", "--pubsub", redis_server.url)
    two = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2", "--pubsub", redis_server.url)
    for server in (one, two):
        assert server.wait_for("Ready: 2 workers")
        assert server.wait_for("subscribed to preforkit:pubsub")
    assert _poll_and_publish([one, two], one.port, "hello") == ["hello"] * 10

    start_one, start_two = len(one.lines), len(two.lines)
    redis_server.stop()
    assert one.wait_for("Redis subscription lost", start=start_one, timeout=15)
    redis_server.start()
    assert one.wait_for("Redis subscription back", start=start_one, timeout=30)
    assert two.wait_for("Redis subscription back", start=start_two, timeout=30)
    assert _poll_and_publish([one, two], two.port, "again") == ["again"] * 10


def test_a_stuck_worker_does_not_hold_up_the_others(cli_server):
    # A shared listening socket: while one worker spins, the other accepts every new connection.
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2")
    assert server.wait_for("Ready: 2 workers")
    spinning = threading.Thread(
        target=lambda: requests.get(f"http://127.0.0.1:{server.port}/spin?4", timeout=20), daemon=True
    )
    spinning.start()
    assert server.wait_for("spinning", timeout=10)
    # While one worker spins, 40 MiB are published: more than the 16 MiB the master keeps for it.
    assert requests.get(f"http://127.0.0.1:{server.port}/flood", timeout=20).text == "flooded"
    assert server.wait_for(r"pubsub: worker \d+ reads too slowly; \d+ messages dropped for it", timeout=20)
    clients = _connect_polls(server.port, 10)
    try:
        assert server.wait_for("held poll", count=10, timeout=20)
        requests.get(f"http://127.0.0.1:{server.port}/publish?still-flowing", timeout=20)
        assert {read_response(sock, timeout=20)[2].split()[0] for sock in clients} == {b"still-flowing"}
    finally:
        for sock in clients:
            sock.close()
    spinning.join(20)


def test_chat_example_with_two_instances_on_redis(cli_server, redis_server):
    one = cli_server("examples.chat:handler", "-b", "127.0.0.1:0", "-w", "2", "--pubsub", redis_server.url)
    two = cli_server("examples.chat:handler", "-b", "127.0.0.1:0", "-w", "2", "--pubsub", redis_server.url)
    for server in (one, two):
        assert server.wait_for("subscribed to preforkit:pubsub")
    sent = requests.post(f"http://127.0.0.1:{one.port}/send", data=b"across instances", timeout=10).json()
    got = requests.get(f"http://127.0.0.1:{two.port}/poll?since={sent['id'] - 1}", timeout=30).json()
    assert got[0]["text"] == "across instances"


def test_a_slow_redis_never_stalls_a_publishing_handler(cli_server, redis_server):
    """While Redis sleeps in DEBUG SLEEP, handlers that publish still answer at once; delivery resumes after."""
    import redis

    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2", "--pubsub", redis_server.url)
    assert server.wait_for("Ready: 2 workers")
    assert server.wait_for("subscribed to preforkit:pubsub")
    slept = threading.Event()

    def sleep_redis():
        redis.Redis(port=redis_server.port, socket_timeout=30).execute_command("DEBUG", "SLEEP", "4")
        slept.set()

    sleeper = threading.Thread(target=sleep_redis, daemon=True)
    sleeper.start()
    deadline = time.monotonic() + 5
    while True:  # wait until Redis is really asleep: a PING gets no answer
        assert time.monotonic() < deadline, "Redis never went to sleep"
        with socket.create_connection(("127.0.0.1", redis_server.port), timeout=2) as probe:
            probe.sendall(b"PING\r\n")
            probe.settimeout(0.2)
            try:
                probe.recv(64)
            except TimeoutError:
                break
        time.sleep(0.02)
    for i in range(20):
        assert requests.get(f"http://127.0.0.1:{server.port}/publish?during-{i}", timeout=10).text == "published"
    assert not slept.is_set(), "the publishes waited for Redis"
    sleeper.join(30)
    # Redis is back: what was published meanwhile arrives late (in order), then new messages do.
    seen = []
    for _ in range(25):
        seen = _poll_and_publish([server], server.port, "after")
        if seen == ["after"] * 5:
            break
        assert all(text == "after" or text.startswith("during-") for text in seen), seen
    assert seen == ["after"] * 5


def test_redis_killed_and_restarted_during_a_broadcast_storm(cli_server, redis_server):
    """Memory stays bounded on the master through the outage, delivery resumes, the gap and drops are logged."""
    import psutil

    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2", "--pubsub", redis_server.url)
    assert server.wait_for("Ready: 2 workers")
    assert server.wait_for("subscribed to preforkit:pubsub")
    master = psutil.Process(server.process.pid)
    rss_before = master.memory_info().rss
    stop = threading.Event()
    sent = [0]

    def storm():
        with requests.Session() as session:
            while not stop.is_set() and sent[0] < 20_000:
                session.get(f"http://127.0.0.1:{server.port}/publish?storm-{sent[0]}", timeout=10)
                sent[0] += 1

    storming = threading.Thread(target=storm, daemon=True)
    storming.start()
    try:
        start = len(server.lines)
        redis_server.stop()
        assert server.wait_for("Redis subscription lost", start=start, timeout=15)
        during = sent[0]
        assert server.wait_for("cannot publish to Redis", start=start, timeout=15)
        redis_server.start()
        assert server.wait_for(r"Redis subscription back after [\d.]+ s", start=start, timeout=30)
        assert server.wait_for(
            r"Redis publishing back after [\d.]+ s; \d+ messages were dropped", start=start, timeout=30
        )
        assert sent[0] > during, "the storm went on through the outage"
    finally:
        stop.set()
        storming.join(30)
    assert master.memory_info().rss - rss_before < 30 * 2**20
    seen = []
    for _ in range(50):
        seen = _poll_and_publish([server], server.port, "resumed")
        if seen == ["resumed"] * 5:
            break
    assert seen == ["resumed"] * 5
