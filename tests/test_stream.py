"""Streaming HTTP responses through a channel, and Server-Sent Events."""

from __future__ import annotations

import threading

import pytest
import requests

from preforkit import SSE_HEADERS, as_channel, sse_comment, sse_event

from .helpers import read_response, recv_until_closed


class Streams:
    def __init__(self) -> None:
        self.channels: list = []
        self.opened = threading.Condition()
        self.statuses: list = []
        self.closed = threading.Event()

    def handler(self, request):
        if request["uri"] == "/next":
            return {"body": "next"}

        def on_open(channel):
            with self.opened:
                self.channels.append(channel)
                self.opened.notify_all()

        def on_close(channel, status):
            self.statuses.append(status)
            self.closed.set()

        return as_channel(request, on_open=on_open, on_close=on_close)

    def wait_open(self, count: int = 1):
        with self.opened:
            assert self.opened.wait_for(lambda: len(self.channels) >= count, 10)
        return self.channels[count - 1]


def test_stream_chunks_from_another_thread_then_keep_alive(serve):
    import socket

    streams = Streams()
    server = serve(streams.handler)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        channel = streams.wait_open()
        assert not channel.is_websocket

        def produce():
            channel.send({"status": 200, "headers": {"Content-Type": "text/plain"}, "body": "first;"})
            for i in range(3):
                channel.send(f"chunk{i};")
            channel.close()

        threading.Thread(target=produce).start()
        status, headers, body = read_response(sock)
        assert (status, headers["Transfer-Encoding"], body) == (200, "chunked", b"first;chunk0;chunk1;chunk2;")
        assert read_response(sock)[2] == b"next", "the connection serves on after the stream"
    assert streams.closed.wait(5)
    assert streams.statuses == ["closed"]
    assert channel.send("late") is False


def test_stream_on_http10_is_close_delimited(serve):
    import socket

    streams = Streams()
    server = serve(streams.handler)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
        channel = streams.wait_open()
        channel.send("a")
        channel.send("b", close=True)
        reply = recv_until_closed(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert body == b"ab"


def test_client_leaving_a_stream_fires_on_close(serve):
    import socket

    streams = Streams()
    server = serve(streams.handler)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    channel = streams.wait_open()
    channel.send({"status": 200})
    sock.close()
    assert streams.closed.wait(5)
    assert streams.statuses == ["client gone"]


def test_sse_read_by_a_real_client(serve):
    streams = Streams()
    server = serve(streams.handler)
    result = {}

    def client():
        with requests.get(f"http://127.0.0.1:{server.port}/events", stream=True, timeout=10) as response:
            result["type"] = response.headers["Content-Type"]
            result["text"] = response.text

    reader = threading.Thread(target=client)
    reader.start()
    channel = streams.wait_open()
    channel.send({"status": 200, "headers": SSE_HEADERS})
    channel.send(sse_comment("heartbeat"))
    channel.send(sse_event("hello\nworld", event="greeting", id="1", retry=2000))
    channel.send(sse_event({"n": 2}), close=True)
    reader.join(10)
    assert result["type"].startswith("text/event-stream")
    assert result["text"] == (
        ": heartbeat\n\nevent: greeting\nid: 1\nretry: 2000\ndata: hello\ndata: world\n\ndata: {'n': 2}\n\n"
    )


def test_sse_field_checks():
    with pytest.raises(ValueError, match="line break"):
        sse_event("x", event="two\nlines")
    with pytest.raises(ValueError, match="needs data"):
        sse_event()
