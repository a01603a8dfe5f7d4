"""WebSockets end to end: raw crafted frames, the websockets library, channels."""

from __future__ import annotations

import asyncio
import struct
import threading

import pytest
from websockets.asyncio.client import connect

from preforkit import as_channel

from .helpers import exchange
from .wsclient import RawWebSocket

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


class Recorder:
    """Channel callbacks that record what happened, with events to wait on."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.received: list = []
        self.pings: list = []
        self.statuses: list = []
        self.channels: list = []

    def handler(self, request):
        if not request["websocket"]:
            return {"body": "plain"}
        return as_channel(
            request,
            on_open=self.on_open,
            on_receive=self.on_receive,
            on_ping=lambda ch, payload: self.pings.append(payload),
            on_close=self.on_close,
            subprotocols=["chat.v1"],
        )

    def on_open(self, channel):
        self.channels.append(channel)
        self.opened.set()

    def on_receive(self, channel, message):
        self.received.append(message)
        if self.echo:
            channel.send(message)

    def on_close(self, channel, status):
        self.statuses.append(status)
        self.closed.set()


@pytest.fixture
def ws_server(serve):
    def start(recorder=None, **options):
        recorder = recorder or Recorder()
        server = serve(recorder.handler, **options)
        return server, recorder

    return start


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def test_echo_text_binary_fragmented_compressed(ws_server):
    server, recorder = ws_server()

    async def client():
        url = f"ws://127.0.0.1:{server.port}/any/path"
        async with connect(url, compression=None) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"
            await ws.send(["frag", "mented ", "text"])
            assert await ws.recv() == "fragmented text"
            await ws.send(b"x" * 200000)
            assert await ws.recv() == b"x" * 200000
        async with connect(url) as ws:
            assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
            for i in range(20):
                text = f"compressible message {i} " * 50
                await ws.send(text)
                assert await ws.recv() == text
            await ws.send([b"a" * 1000, b"b" * 1000])
            assert await ws.recv() == b"a" * 1000 + b"b" * 1000

    run(client())
    assert recorder.closed.wait(5)
    assert recorder.statuses[0] == 1000


def test_hundred_clients_hundred_messages(ws_server):
    server, recorder = ws_server(Recorder())

    async def one(index: int):
        async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            for i in range(100):
                message = f"client {index} message {i}"
                await ws.send(message)
                assert await ws.recv() == message

    async def all_clients():
        await asyncio.gather(*(one(index) for index in range(100)))

    run(all_clients())
    assert len(recorder.received) == 10000


def test_messages_arrive_in_order_per_connection(ws_server):
    server, recorder = ws_server(Recorder(echo=False))

    async def client():
        async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            for i in range(500):
                await ws.send(str(i))

    run(client())
    assert recorder.closed.wait(5)
    assert recorder.received == [str(i) for i in range(500)]


def test_subprotocol_and_plain_http_on_same_handler(ws_server):
    server, _ = ws_server()

    async def client():
        async with connect(f"ws://127.0.0.1:{server.port}/", subprotocols=["other", "chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v1"

    run(client())
    assert exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").endswith(b"plain")


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ("Sec-WebSocket-Version: 8\r\n", b"426"),
    ],
)
def test_handshake_refusals(ws_server, extra, status):
    server, _ = ws_server()
    request = (
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
    reply = exchange(server.port, request.encode())
    assert reply.startswith(b"HTTP/1.1 " + status)
    assert b"Sec-WebSocket-Version: 13" in reply


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: short\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n\r\n",
    ],
)
def test_malformed_handshakes_get_400(ws_server, request_bytes):
    server, _ = ws_server()
    assert exchange(server.port, request_bytes).startswith(b"HTTP/1.1 400 ")


def test_ping_answered_with_same_payload_and_reported(ws_server):
    server, recorder = ws_server()
    ws = RawWebSocket(server.port)
    assert ws.status_line == b"HTTP/1.1 101 Switching Protocols"
    ws.send(PING, b"are you there")
    assert ws.recv() == (True, PONG, b"are you there")
    ws.send(TEXT, b"after ping")
    assert ws.recv() == (True, TEXT, b"after ping")
    ws.close()
    assert recorder.closed.wait(5)
    assert recorder.pings == [b"are you there"]
    assert recorder.statuses == ["client gone"]


def test_fragments_with_interleaved_ping_over_the_wire(ws_server):
    server, _recorder = ws_server()
    ws = RawWebSocket(server.port)
    ws.send(TEXT, b"one ", fin=False)
    ws.send(PING, b"p")
    ws.send(CONTINUATION, b"two")
    assert ws.recv() == (True, PONG, b"p")
    assert ws.recv() == (True, TEXT, b"one two")
    ws.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (struct.pack("!BB", 0x81, 2) + b"hi", 1002),  # unmasked client frame
        (None, 1002),  # reserved opcode, built below
        ("rsv", 1002),
        ("long-ping", 1002),
        ("fragmented-ping", 1002),
        ("bad-utf8", 1007),
        ("split-code-point", 1007),
        ("close-1-byte", 1002),
        ("close-bad-code", 1002),
        ("close-bad-reason", 1007),
        ("too-big", 1009),
    ],
)
def test_protocol_failures_close_with_code(ws_server, frame, code):
    from .test_websocket_codec import client_frame

    crafted = {
        None: client_frame(0x3, b"x"),
        "rsv": client_frame(TEXT, b"x", rsv=0x20),
        "long-ping": client_frame(PING, b"x" * 126),
        "fragmented-ping": client_frame(PING, b"x", fin=False),
        "bad-utf8": client_frame(TEXT, b"\xc3\x28"),
        "split-code-point": client_frame(TEXT, b"\xe2\x82", fin=False) + client_frame(CONTINUATION, b"\x28"),
        "close-1-byte": client_frame(CLOSE, b"\x01"),
        "close-bad-code": client_frame(CLOSE, struct.pack("!H", 1004)),
        "close-bad-reason": client_frame(CLOSE, struct.pack("!H", 1000) + b"\xff\xfe"),
        "too-big": client_frame(BINARY, b"x" * 2048),
    }
    server, recorder = ws_server(max_ws_message=1024, ws_compression=False)
    ws = RawWebSocket(server.port)
    ws.send_raw(frame if isinstance(frame, bytes) else crafted[frame])
    assert ws.recv_close_code() == code
    assert ws.at_eof(), "after a failure the server closes TCP"
    ws.close()
    assert recorder.closed.wait(5)
    assert recorder.statuses == [code]


def test_clean_close_handshake_client_initiated(ws_server):
    server, recorder = ws_server()
    ws = RawWebSocket(server.port)
    ws.send(CLOSE, struct.pack("!H", 4000) + b"done")
    assert ws.recv() == (True, CLOSE, struct.pack("!H", 4000))
    assert ws.at_eof(), "the server closes TCP after the handshake"
    assert recorder.closed.wait(5)
    assert recorder.statuses == [4000]


def test_server_initiated_close_waits_for_the_peer(ws_server):
    recorder = Recorder()
    server, _ = ws_server(recorder)
    ws = RawWebSocket(server.port)
    assert recorder.opened.wait(5)
    recorder.channels[0].close(4001, "go away")
    assert ws.recv() == (True, CLOSE, struct.pack("!H", 4001) + b"go away")
    assert not recorder.closed.is_set()
    ws.send(CLOSE, struct.pack("!H", 4001))
    assert ws.at_eof()
    assert recorder.closed.wait(5)
    assert recorder.statuses == [4001]
    assert recorder.channels[0].send("late") is False


def test_send_from_plain_threads(ws_server):
    recorder = Recorder(echo=False)
    server, _ = ws_server(recorder)
    ws = RawWebSocket(server.port)
    assert recorder.opened.wait(5)
    channel = recorder.channels[0]
    threads = [threading.Thread(target=channel.send, args=(f"t{i}",)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = sorted(ws.recv()[2].decode() for _ in range(20))
    assert got == sorted(f"t{i}" for i in range(20))
    ws.close()


def test_full_queue_makes_send_return_false(ws_server):
    """A peer that never reads: sends fail once --ws-max-queue messages wait."""
    recorder = Recorder(echo=False)
    server, _ = ws_server(recorder, ws_max_queue=8)
    ws = RawWebSocket(server.port)
    ws.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
    assert recorder.opened.wait(5)
    channel = recorder.channels[0]
    results = [channel.send(b"x" * 65536) for _ in range(200)]
    assert results[0] is True
    assert results[-1] is False, "the queue is bounded"
    assert results.count(True) < 200
    ws.close()


def test_server_pings_and_drops_a_silent_peer(ws_server):
    server, recorder = ws_server(ws_ping_interval=0.2, ws_ping_timeout=0.3)
    ws = RawWebSocket(server.port)
    _, opcode, payload = ws.recv()
    assert opcode == PING
    ws.send(PONG, payload)  # answered: stays open
    _fin, opcode, _ = ws.recv()
    assert opcode == PING  # pinged again after the next idle interval
    assert recorder.closed.wait(5), "the unanswered ping drops the peer"
    assert recorder.statuses == ["ping timeout"]
    ws.close()


def test_graceful_stop_closes_with_1001(serve):
    recorder = Recorder()
    server = serve(recorder.handler)
    ws = RawWebSocket(server.port)
    assert recorder.opened.wait(5)
    stopper = threading.Thread(target=server.stop, kwargs={"timeout": 5})
    stopper.start()
    assert ws.recv_close_code() == 1001
    ws.send(CLOSE, struct.pack("!H", 1001))
    stopper.join(10)
    assert recorder.statuses == ["server stopping"]
    ws.close()


def test_frames_right_behind_the_handshake(ws_server):
    server, _recorder = ws_server()
    from .test_websocket_codec import client_frame

    ws = RawWebSocket.__new__(RawWebSocket)
    import socket

    ws.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    ws.buffer = b""
    ws.sock.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        + client_frame(TEXT, b"eager")
    )
    ws._read_until(b"\r\n\r\n")
    assert ws.recv() == (True, TEXT, b"eager")
    ws.close()


def test_a_blocked_callback_holds_up_no_other_channel(serve):
    """on_receive may block (it may do I/O); other channels' callbacks still run meanwhile."""
    import gevent.event

    release = gevent.event.Event()  # waited on and set inside the server's hub

    def on_receive(channel, message):
        if message == "block":
            release.wait(10)
            channel.send("unblocked" if release.is_set() else "timed out")
        else:
            release.set()
            channel.send("released")

    server = serve(lambda request: as_channel(request, on_receive=on_receive))

    async def clients():
        async with (
            connect(f"ws://127.0.0.1:{server.port}/") as blocked,
            connect(f"ws://127.0.0.1:{server.port}/") as other,
        ):
            await blocked.send("block")
            await other.send("release")
            assert await other.recv() == "released"
            assert await blocked.recv() == "unblocked"

    run(clients())


def test_callback_runners_are_reused_not_made_per_message():
    """A greenlet per callback costs an mmap + munmap of its interpreter stack on Python 3.11+."""
    import gevent
    from greenlet import getcurrent

    from preforkit.worker._pool import IDLE_RUNNERS, GreenletPool

    runner = GreenletPool()
    used = set()
    order = []

    def task(index):
        used.add(id(getcurrent()))
        order.append(index)
        if index == 3:
            raise RuntimeError("a failing callback is logged; the runner goes on")

    for index in range(1000):
        runner.spawn(task, index)
        if index % 10 == 0:
            gevent.sleep(0)
    assert runner.join(5)
    assert order == list(range(1000))
    assert len(used) <= IDLE_RUNNERS
