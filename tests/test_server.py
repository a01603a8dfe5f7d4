"""End to end over real sockets: framing, pipelining, errors, body types."""

from __future__ import annotations

import http.client
import io
import json
import logging
import pathlib
import shutil
import socket
import subprocess

import pytest

from . import apps
from .helpers import INVALID_DIR, exchange, load_http, read_response, recv_until_closed

INVALID = sorted(INVALID_DIR.glob("*.http"))


def get(port, path, method="GET", headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def test_hello(serve):
    server = serve(apps.hello)
    data = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: 13" in head
    assert b"\r\nServer: preforkit" in head
    assert b"\r\nDate: " in head
    assert body == b"Hello, World!"


def test_ten_pipelined_requests_in_one_write(serve):
    server = serve(apps.echo_path)
    requests = b"".join(b"GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(10))
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(requests)
        bodies = [read_response(sock)[2] for _ in range(10)]
    assert bodies == [b"/r%d" % i for i in range(10)]


def test_pipelined_post_bodies_stay_in_order(serve):
    server = serve(apps.echo_body)
    requests = b"".join(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nb%02d" % i
        + b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nc%d\r\n0\r\n\r\n" % (i % 10)
        for i in range(5)
    )
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(requests)
        bodies = [read_response(sock)[2] for _ in range(10)]
    expected = []
    for i in range(5):
        expected += [b"b%02d" % i, b"c%d" % (i % 10)]
    assert bodies == expected


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_malformed_input_gets_status_and_close(serve, path, caplog):
    status = int(path.stem.split("-")[0])
    server = serve(apps.echo_body)
    with caplog.at_level(logging.INFO, logger="preforkit"):
        reply = exchange(server.port, load_http(path))
    assert reply.startswith(b"HTTP/1.1 %d " % status), reply[:100]
    assert b"\r\nConnection: close\r\n" in reply
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a client's mistake"
    # The server is still there for a fresh connection.
    assert get(server.port, "/")[0].status == 200


def test_error_after_good_request_on_same_connection(serve):
    server = serve(apps.echo_path)
    reply = exchange(server.port, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    assert reply.count(b"HTTP/1.1 200 OK") == 1
    assert b"HTTP/1.1 400 Bad Request" in reply


def test_request_line_limit_from_options(serve):
    server = serve(apps.hello, limit_request_line=256)
    reply = exchange(server.port, b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 414 ")


def test_many_headers_431(serve):
    server = serve(apps.hello, limit_request_fields=10)
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(20))
    reply = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 431 ")


def test_max_body_content_length_413_before_reading(serve):
    server = serve(apps.echo_body, max_body="1K")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n")
        reply = recv_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 413 ")


def test_max_body_chunked_413(serve, caplog):
    server = serve(apps.echo_body, max_body="1K")
    chunks = b"200\r\n" + b"x" * 512 + b"\r\n"
    data = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks * 3 + b"0\r\n\r\n"
    with caplog.at_level(logging.INFO, logger="preforkit"):
        reply = exchange(server.port, data)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert not [r for r in caplog.records if r.exc_info]


def test_malformed_chunk_while_app_reads_is_400(serve):
    server = serve(apps.echo_body)
    data = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX"
    reply = exchange(server.port, data)
    assert reply.startswith(b"HTTP/1.1 400 ")


def test_chunked_request_with_trailers(serve):
    server = serve(apps.echo_body)
    data = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Sum: 9\r\n\r\n"
    )
    reply = exchange(server.port, data)
    assert reply.endswith(b"\r\n\r\nWikipedia")
    assert b'X-Trailers: {"x-sum": "9"}' in reply


def test_request_dict(serve):
    server = serve(apps.request_dict)
    _, data = get(server.port, "/p%20q?a=1&b=2", headers={"X-Custom": "v", "Content-Type": "text/x"})
    request = json.loads(data)
    assert set(request) == {
        "server_port",
        "server_name",
        "remote_addr",
        "uri",
        "query_string",
        "scheme",
        "request_method",
        "protocol",
        "headers",
        "body",
        "content_type",
        "content_length",
        "websocket",
    }
    assert request["server_port"] == server.port
    assert request["server_name"] == "127.0.0.1"
    assert request["remote_addr"] == "127.0.0.1"
    assert request["uri"] == "/p%20q"
    assert request["query_string"] == "a=1&b=2"
    assert request["scheme"] == "http"
    assert request["request_method"] == "GET"
    assert request["protocol"] == "HTTP/1.1"
    assert request["headers"]["x-custom"] == "v"
    assert request["content_type"] == "text/x"
    assert request["content_length"] is None
    assert request["body"] is None
    assert request["websocket"] is False


def test_request_dict_body_and_websocket_flag(serve):
    server = serve(apps.request_dict)
    _, data = get(server.port, "/", method="POST", body=b"abc")
    request = json.loads(data)
    assert (request["content_length"], request["body"], request["query_string"]) == (3, "stream", None)
    _, data = get(server.port, "/", headers={"Connection": "Upgrade", "Upgrade": "websocket"})
    assert json.loads(data)["websocket"] is True


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/none", 200, b""),
        ("/str", 200, "h\u00e9llo \u2603".encode()),
        ("/bytes", 201, b"\x00\x01bytes"),
        ("/gen", 200, b"part0;part1;part2;part3;part4;"),
        ("/list", 200, b"abc"),
        ("/file", 200, pathlib.Path(apps.__file__).read_bytes()),
        ("/path", 200, pathlib.Path(apps.__file__).read_bytes()),
        ("/length-stream", 200, b"abcdef"),
    ],
)
@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_body_types(serve, path, status, body, version):
    server = serve(apps.by_path)
    host = b"Host: x\r\n" if version == "1.1" else b""
    reply = exchange(
        server.port, b"GET %s HTTP/%s\r\n%sConnection: close\r\n\r\n" % (path.encode(), version.encode(), host)
    )
    head, _, got = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status)
    if path in ("/gen", "/list"):
        if version == "1.1":
            assert b"Transfer-Encoding: chunked" in head
            # De-chunk with http.client to check the framing is exact.
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
                got = read_response(sock)[2]
        else:
            assert b"Transfer-Encoding" not in head
            assert b"Content-Length" not in head
    else:
        assert b"Content-Length: %d\r\n" % len(body) in head + b"\r\n"
    assert got == body


def test_head_has_get_length_and_no_body(serve):
    server = serve(apps.by_path)
    for path, length in (
        ("/str", len("h\u00e9llo \u2603".encode())),
        ("/path", len(pathlib.Path(apps.__file__).read_bytes())),
        ("/head-answered", 1234),
    ):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(
                b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\nGET /bytes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                % path.encode()
            )
            reply = recv_until_closed(sock)
        first, _, rest = reply.partition(b"\r\n\r\n")
        assert b"Content-Length: %d" % length in first
        assert rest.startswith(b"HTTP/1.1 201 "), "HEAD response must have no body"


@pytest.mark.parametrize(("path", "status"), [("/no-content", 204), ("/not-modified", 304)])
def test_no_body_statuses(serve, path, status):
    server = serve(apps.by_path)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"GET %s HTTP/1.1\r\nHost: x\r\n\r\nGET /bytes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            % path.encode()
        )
        reply = recv_until_closed(sock)
    first, _, rest = reply.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 %d " % status)
    assert b"Transfer-Encoding" not in first
    assert rest.startswith(b"HTTP/1.1 201 ")


def test_an_int_enum_status_is_a_status(serve):
    server = serve(apps.by_path)
    response, body = get(server.port, "/enum-status")
    assert (response.status, body) == (201, b"made")


def test_list_header_values_repeat(serve):
    server = serve(apps.by_path)
    response, _ = get(server.port, "/multi-header")
    assert response.headers.get_all("Set-Cookie") == ["a=1", "b=2"]


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/raise", "boom in handler"),
        ("/not-a-response", "list ['not', 'a', 'dict'], not a response dict"),
        ("/bad-header", "CR, LF or NUL"),
        ("/bad-status", "invalid status '200'"),
        ("/bad-body", "the response body is int 12345"),
        ("/gen-fails-first", "generator failed"),
    ],
)
def test_app_errors_give_500_and_one_log(serve, caplog, path, logged):
    server = serve(apps.by_path)
    with caplog.at_level(logging.ERROR, logger="preforkit"):
        response, body = get(server.port, path)
    assert response.status == 500
    assert b"Injected" not in body
    assert "Injected" not in str(response.headers)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    text = errors[0].getMessage() + (str(errors[0].exc_info[1]) if errors[0].exc_info else "")
    assert logged in text
    assert get(server.port, "/bytes")[0].status == 201


def test_stream_failing_midway_truncates(serve, caplog):
    server = serve(apps.by_path)
    with (
        caplog.at_level(logging.ERROR, logger="preforkit"),
        socket.create_connection(("127.0.0.1", server.port)) as sock,
    ):
        sock.sendall(b"GET /gen-fails-later HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = recv_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert not reply.endswith(b"0\r\n\r\n"), "a failed stream must not look complete"
    assert len([r for r in caplog.records if r.exc_info]) == 1


@pytest.mark.parametrize("path", ["/length-stream", "/gen", "/path", "/str"])
def test_streams_keep_the_connection_alive(serve, path):
    server = serve(apps.by_path)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode() * 3)
        statuses = [read_response(sock)[0] for _ in range(3)]
        sock.sendall(b"GET /bytes HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == 201
    assert statuses == [200, 200, 200]


def test_app_connection_close_closes(serve):
    server = serve(apps.by_path)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = recv_until_closed(sock)
    assert reply.endswith(b"bye")
    assert b"Connection: close" in reply


def test_http10_keep_alive(serve):
    server = serve(apps.echo_path)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        _, headers, body = read_response(sock)
        assert headers["Connection"] == "keep-alive"
        sock.sendall(b"GET /two HTTP/1.0\r\n\r\n")
        reply = recv_until_closed(sock)
    assert body == b"/one"
    assert reply.endswith(b"/two")


def test_idle_keepalive_connection_closed(serve):
    server = serve(apps.hello, keepalive=0.3)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(sock)
        assert recv_until_closed(sock, timeout=5) == b""


def test_server_header_off(serve):
    server = serve(apps.hello, server_header="")
    response, _ = get(server.port, "/")
    assert response.headers.get("Server") is None
    server2 = serve(apps.hello, server_header="edge/1")
    assert get(server2.port, "/")[0].headers["Server"] == "edge/1"


class TestExpectContinue:
    HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"

    def test_continue_sent_when_app_reads(self, serve):
        server = serve(apps.echo_body)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(self.HEAD)
            assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(b"hello")
            status, _, body = read_response(sock)
        assert (status, body) == (200, b"hello")

    def test_no_continue_when_app_does_not_read(self, serve):
        server = serve(apps.ignore_body)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(self.HEAD)
            reply = recv_until_closed(sock)
        assert reply.startswith(b"HTTP/1.1 200 OK")
        assert b"100 Continue" not in reply
        assert b"Connection: close" in reply

    def test_never_to_http10(self, serve):
        server = serve(apps.echo_body)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello")
            reply = recv_until_closed(sock)
        assert reply.startswith(b"HTTP/1.1 200 OK")
        assert b"100 Continue" not in reply


def test_unread_body_is_drained_for_keep_alive(serve):
    server = serve(apps.ignore_body)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == 200
        assert read_response(sock)[0] == 200


def test_body_readline_and_iteration(serve):
    def lines(request):
        body = request["body"]
        first = body.readline()
        rest = list(body)
        return {"status": 200, "body": json.dumps([first.decode(), *[x.decode() for x in rest]])}

    server = serve(lines)
    _, data = get(server.port, "/", method="POST", body=b"one\ntwo\nthree")
    assert json.loads(data) == ["one\n", "two\n", "three"]


def test_body_is_a_raw_io_stream(serve):
    def reads(request):
        body = request["body"]
        if not isinstance(body, io.RawIOBase) or not body.readable() or body.seekable():
            return {"status": 500, "body": "not a readable raw stream"}
        if request["uri"] == "/buffered":
            data = io.BufferedReader(body).read()
        else:
            data = b"|".join(body.readlines())
            body.close()
            try:
                body.read()
            except ValueError:
                data += b" closed"
        return {"status": 200, "body": data}

    server = serve(reads)
    assert get(server.port, "/buffered", method="POST", body=b"x" * 100_000)[1] == b"x" * 100_000
    assert get(server.port, "/lines", method="POST", body=b"a\nb\n")[1] == b"a\n|b\n closed"


def test_the_worker_server_keeps_few_attributes():
    """CPython shares an instance dict's keys among instances only up to 30 keys; past that every
    ``server.x`` on the hot path becomes a slower lookup (measured: +1.6K instructions per
    ``Connection: close`` request at 30 attributes).  Group new state in an object of its own."""
    from preforkit._api import _config
    from preforkit.master._binding import bind
    from preforkit.worker import WorkerServer

    config = _config({"port": 0})
    sockets = [bind(address) for address in config.binds()]
    try:
        server = WorkerServer(lambda request: {}, config, sockets)
        assert len(vars(server)) < 30, sorted(vars(server))
    finally:
        for sock in sockets:
            sock.close()


def test_a_client_that_connects_before_the_accept_loop_runs_gets_no_nagle_delay():
    """The listener has TCP_NODELAY from its bind: a connection the kernel completes before any
    worker's accept loop has started (a worker starting up, a respawn) inherits it too."""
    from preforkit.master._binding import bind

    listener = bind("127.0.0.1:0")
    try:
        with socket.create_connection(listener.getsockname(), timeout=5):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        listener.close()


def test_accepted_connections_send_without_nagle_delay(serve):
    """TCP_NODELAY is set once on the listener, and every accepted connection has it (Linux
    copies it to accepted sockets): a streamed chunk never waits for the client's delayed ACK."""
    server = serve(apps.hello)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(client)[0] == 200
        (connection,) = server._worker.connections
        assert connection.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_closing_response_and_fin_arrive_together(serve, method):
    """The last response before a close goes out with MSG_MORE and then the FIN: they
    arrive in one segment, so the client receives 3 (SYN-ACK, the ACK of its request,
    response + FIN), not 4, and answers both with one ACK.  EOF follows the whole response."""
    import struct

    body = bytes(range(250)) * 4  # one segment

    def handler(request):
        return {"status": 200, "headers": {"Content-Type": "application/octet-stream"}, "body": body}

    server = serve(handler)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
        client.sendall(f"{method} / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".encode())
        received = recv_until_closed(client)
        info = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 144)
    head, _, got = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert f"content-length: {len(body)}".encode() in head.lower()
    assert got == (body if method == "GET" else b"")
    # struct tcp_info (linux/tcp.h): tcpi_bytes_received at 128 checks the layout, tcpi_segs_in at 140
    bytes_received, _segs_out, segs_in = struct.unpack_from("QII", info, 128)
    assert bytes_received == len(received) + 1  # the FIN counts one
    assert segs_in <= 3


class _RecordingSocket:
    """A connection's real socket, with the names of the send calls made on it recorded."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.calls: list[tuple[str, list[int]]] = []

    def __getattr__(self, name: str):
        attribute = getattr(self.sock, name)
        if name not in ("send", "sendmsg", "sendall"):
            return attribute

        def record(data, *args):
            self.calls.append((name, [len(part) for part in data] if name == "sendmsg" else [len(data)]))
            return attribute(data, *args)

        return record


def test_a_large_body_leaves_with_its_head_in_one_write(serve):
    """A bytes body of 64 KiB or more is not copied behind its head, nor written after
    it (a segment for the head alone, two syscalls): one sendmsg gathers both."""
    body = bytes(range(256)) * 1000

    def handler(request):
        return {"status": 200, "headers": {"Content-Type": "x/y"}, "body": body if request["uri"] == "/big" else b"ok"}

    server = serve(handler)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(client)[2] == b"ok"
        (connection,) = server._worker.connections  # idle now, waiting for the next request
        recorder = connection.sock = _RecordingSocket(connection.sock)
        client.sendall(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
        status, _, got = read_response(client)
    assert status == 200
    assert got == body
    (call,) = recorder.calls[:1]
    assert call[0] == "sendmsg"
    assert call[1][1] == len(body)
    assert sum(sum(sizes) for _, sizes in recorder.calls) == call[1][0] + len(body)


def test_pipelined_large_responses_to_a_slow_reader_arrive_whole(serve):
    """Gathered writes the kernel takes only in part (a small receive window, a reader
    that lags): each response's unwritten rest, head or body, follows in order."""
    bodies = [bytes([65 + i]) * (6_000_000 + 4099 * i) for i in range(4)]  # more than a send buffer holds

    def handler(request):
        return {"status": 200, "body": bodies[int(request["uri"][1:])]}

    server = serve(handler)
    with socket.socket() as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(("127.0.0.1", server.port))
        client.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(4)))
        got = [read_response(client) for _ in range(4)]
    assert [(status, body) for status, _, body in got] == [(200, body) for body in bodies]


@pytest.mark.skipif(not hasattr(socket, "TCP_DEFER_ACCEPT"), reason="TCP_DEFER_ACCEPT is Linux's")
def test_a_deferred_listener_wakes_for_a_connection_once_it_has_sent():
    """--defer-accept (on by default): accept wakes for a client once its first bytes are
    there, not for a bare connect; 0 turns it off (a bare connect wakes accept at once)."""
    import select

    from preforkit.config import Config
    from preforkit.master._binding import bind

    assert Config().defer_accept == 1
    deferred, plain = bind("127.0.0.1:0", defer_accept=1), bind("127.0.0.1:0", defer_accept=0)
    assert deferred.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) > 0
    assert plain.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) == 0
    with (
        deferred,
        plain,
        socket.create_connection(deferred.getsockname(), timeout=5) as quiet,
        socket.create_connection(plain.getsockname(), timeout=5) as bare,
    ):
        assert select.select([plain], [], [], 5)[0] == [plain]  # a bare connect: ready at once
        assert select.select([deferred], [], [], 0.3)[0] == []  # not before the client speaks
        quiet.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert select.select([deferred], [], [], 5)[0] == [deferred]
        client, _ = deferred.accept()
        with client:
            assert client.recv(100).startswith(b"GET / ")
        bare.close()


@pytest.mark.skipif(shutil.which("ss") is None, reason="reads the listen backlog with ss (iproute2)")
def test_serve_listens_with_the_backlog_it_is_given(serve):
    """The in-process API listened with the default backlog whatever it was given."""
    server = serve(apps.hello, backlog=77)
    listed = subprocess.run(["ss", "-Hltn", f"sport = :{server.port}"], capture_output=True, text=True, check=True)
    assert listed.stdout.split()[:3] == ["LISTEN", "0", "77"]  # state, queued, backlog


def test_a_gathered_write_that_finds_the_send_buffer_full_sends_head_then_body():
    """sendall_pair on a socket whose send buffer is full: nothing goes at first, then the
    whole head and the whole body follow in order as the peer reads."""
    import select
    import threading

    from preforkit.worker._transport import Transport

    class Writer(Transport):
        __slots__ = ("sock", "tls")

        def _wait_writable(self) -> None:
            if reader.ident is None:  # the first wait: the peer starts reading only now
                reader.start()
            assert select.select([], [self.sock], [], 5)[1], "never writable"

    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        filler = 0
        for _ in range(10_000):  # bounded: a socketpair buffer holds far less
            try:
                filler += ours.send(b"f" * 65536)
            except BlockingIOError:
                break
        writer = Writer()
        writer.sock, writer.tls = ours, False
        head, body = b"HEAD\r\n\r\n", bytes(range(256)) * 600
        received = bytearray()

        def read_all() -> None:
            theirs.settimeout(5)
            while len(received) < filler + len(head) + len(body):
                received.extend(theirs.recv(65536))

        reader = threading.Thread(target=read_all)
        with pytest.raises(BlockingIOError):
            ours.send(b"x")  # full: the first sendmsg takes nothing, not even the head
        writer.sendall_pair(head, body)
        reader.join(10)
    assert bytes(received) == b"f" * filler + head + body
