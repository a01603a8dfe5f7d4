"""The example apps, served by the real CLI."""

from __future__ import annotations

import socket
import threading
import time

import requests

from .helpers import read_response


def test_chat_long_poll_and_send(cli_server):
    server = cli_server("examples.chat:handler", "-b", "127.0.0.1:0")
    base = f"http://127.0.0.1:{server.port}"
    assert "<title>preforkit chat</title>" in requests.get(base + "/", timeout=5).text
    results = []

    def poller():
        results.append(requests.get(base + "/poll?since=0", timeout=20).json())

    threads = [threading.Thread(target=poller) for _ in range(5)]
    for thread in threads:
        thread.start()
    # Each poll is either held until the message or, if it arrives later, answered from the backlog.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as probe:
        probe.sendall(b"GET /poll?since=0 HTTP/1.1\r\nHost: x\r\n\r\n")
        sent = requests.post(base + "/send", data=b"hello room", timeout=5)
        assert sent.status_code == 201
        status, _, body = read_response(probe)
    assert status == 200
    assert b"hello room" in body
    for thread in threads:
        thread.join(timeout=20)
    assert len(results) == 5
    assert all(result[0]["text"] == "hello room" for result in results)
    # A poll that is behind gets the backlog at once.
    assert requests.get(base + "/poll?since=0", timeout=5).json()[0]["text"] == "hello room"
    assert requests.post(base + "/send", data=b"   ", timeout=5).status_code == 400


def test_clock_pushes_every_second(cli_server):
    server = cli_server("examples.clock:handler", "-b", "127.0.0.1:0")
    base = f"http://127.0.0.1:{server.port}"
    first = requests.get(base + "/poll", timeout=5).text
    second = requests.get(base + "/poll", timeout=5).text
    assert len(first) == len(second) == 8
    assert first != second
    started = time.monotonic()
    with requests.get(base + "/stream", stream=True, timeout=5) as response:
        lines = []
        for line in response.iter_lines():
            lines.append(line)
            if len(lines) == 3:
                break
    assert len(lines) == 3
    assert time.monotonic() - started >= 1.9


def test_ws_echo_example(cli_server):
    import asyncio

    from websockets.asyncio.client import connect

    server = cli_server("examples.ws_echo:handler", "-b", "127.0.0.1:0")

    async def client():
        async with connect(f"ws://127.0.0.1:{server.port}/anything") as ws:
            await ws.send("text")
            assert await ws.recv() == "text"
            await ws.send(b"\x01bin")
            assert await ws.recv() == b"\x01bin"

    asyncio.run(asyncio.wait_for(client(), 20))
    assert "WebSocket echo" in requests.get(f"http://127.0.0.1:{server.port}/", timeout=5).text


def test_ws_chat_example_broadcasts(cli_server):
    import asyncio
    import json

    from websockets.asyncio.client import connect

    server = cli_server("examples.ws_chat:handler", "-b", "127.0.0.1:0")
    url = f"ws://127.0.0.1:{server.port}/ws"

    async def clients():
        async with connect(url) as alice, connect(url) as bob:
            assert "connected to worker" in json.loads(await alice.recv())["system"]
            assert "connected to worker" in json.loads(await bob.recv())["system"]
            await bob.send("hi alice")
            for _ in range(5):
                message = json.loads(await alice.recv())
                if message.get("text") == "hi alice":
                    return True
        return False

    assert asyncio.run(asyncio.wait_for(clients(), 20))
    assert "<title>preforkit WebSocket chat</title>" in requests.get(f"http://127.0.0.1:{server.port}/", timeout=5).text
