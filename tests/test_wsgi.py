"""WSGI apps unchanged: real Flask and Django, PEP 3333 details, blocking legacy code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

import preforkit
from preforkit.worker.wsgi import FileWrapper

from .conftest import ROOT

FRAMEWORKS = {
    "flask": ("examples.flask_app:app", "Hello from Flask on preforkit\n"),
    "django": ("examples.django_app.wsgi:application", "Hello from Django on preforkit\n"),
}


@pytest.fixture(params=sorted(FRAMEWORKS))
def framework(request, cli_server):
    spec, greeting = FRAMEWORKS[request.param]
    server = cli_server(spec, "-b", "127.0.0.1:0")
    assert server.wait_for("using the wsgi interface")
    return f"http://127.0.0.1:{server.port}", greeting, server, request.param


def test_framework_routes_json_forms_streams_errors(framework):
    base, greeting, server, name = framework
    assert requests.get(base + "/", timeout=5).text == greeting
    assert requests.get(base + "/users/7", timeout=5).json() == {"id": 7}
    assert requests.get(base + "/users/700", timeout=5).status_code == 404
    assert requests.get(base + "/nowhere", timeout=5).status_code == 404
    got = requests.post(base + "/json", json={"a": [1, 2]}, timeout=5).json()
    assert got == {"received": {"a": [1, 2]}, "method": "POST"}
    upload = requests.post(
        base + "/form", data={"name": "x"}, files={"file": ("data.bin", b"\x00" * 5000)}, timeout=5
    ).json()
    assert upload == {"fields": {"name": "x"}, "file": {"name": "data.bin", "size": 5000}}
    with requests.get(base + "/stream", stream=True, timeout=5) as response:
        assert response.headers.get("Transfer-Encoding") == "chunked"
        assert response.text == "line 0\nline 1\nline 2\n"
    assert requests.get(base + "/error", timeout=5).status_code == 500
    head = requests.head(base + "/", timeout=5)
    assert head.status_code == 200
    assert head.content == b""
    if name == "flask":  # Flask sets Content-Length; Django sends none without CommonMiddleware
        assert head.headers["Content-Length"] == str(len(greeting))
    else:
        assert "Content-Length" not in head.headers
    assert server.wait_for("a bug in the view")


def _environ(port: int, path: str, headers: dict) -> dict:
    return requests.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=5).json()


def test_environ_matches_gunicorn(cli_server):
    ours = cli_server("tests.fixtures.wsgi_apps:environ_dump", "-b", "127.0.0.1:0")
    app = "tests.fixtures.wsgi_apps:environ_dump"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gevent", "-b", "127.0.0.1:0", app],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        port = None
        for _ in range(50):
            line = process.stdout.readline()
            if "Listening at" in line:
                port = int(line.split("Listening at: http://127.0.0.1:")[1].split()[0])
                break
        assert port, "gunicorn did not start"
        path = "/a%20b/c?x=1&y=%2F"
        headers = {"X-Custom": "1", "X_Spoofed": "2", "Cookie": "a=1", "Content-Type": "text/x"}
        theirs = _environ(port, path, headers)
        mine = _environ(ours.port, path, headers)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    server_specific = {
        "SERVER_SOFTWARE", "REMOTE_PORT", "SERVER_PORT", "HTTP_HOST", "gunicorn.socket", "wsgi.early_hints",
        "wsgi.errors", "wsgi.input", "wsgi.file_wrapper",
    }  # fmt: skip
    for key in sorted(set(theirs) | set(mine)):
        if key in server_specific or key.startswith("preforkit."):
            continue
        assert mine.get(key) == theirs.get(key), key
    assert "HTTP_X_SPOOFED" not in mine
    assert mine["SERVER_SOFTWARE"].startswith("preforkit/")


def test_pep3333_details_in_process(serve):
    closed = threading.Event()
    written = []

    class Result:
        def __init__(self, items):
            self.items = items

        def __iter__(self):
            return iter(self.items)

        def close(self):
            closed.set()

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/write":
            write = start_response("200 OK", [("Content-Type", "text/plain")])
            write(b"written ")
            return Result([b"then iterated"])
        if path == "/exc-info":
            start_response("200 OK", [])
            try:
                raise ValueError("late")
            except ValueError:
                start_response("500 Internal Server Error", [("X-Replaced", "yes")], sys.exc_info())
            return [b"replaced"]
        if path == "/file":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return environ["wsgi.file_wrapper"](open(__file__, "rb"))
        if path == "/chunked-input":
            data = environ["wsgi.input"].read()
            written.append(environ.get("wsgi.input_terminated"))
            start_response("200 OK", [])
            return [data]
        if path == "/head":  # answers HEAD itself, announcing the GET's length
            start_response("200 OK", [("Content-Length", "1234")])
            return [] if environ["REQUEST_METHOD"] == "HEAD" else [b"x" * 1234]
        if path == "/root":
            start_response("200 OK", [])
            return [f"{environ['SCRIPT_NAME']}|{environ['PATH_INFO']}".encode()]
        start_response("404 Not Found", [])
        return [b""]

    server = serve(app, root_path="/mount")
    base = f"http://127.0.0.1:{server.port}"
    response = requests.get(base + "/write", timeout=5)
    assert response.text == "written then iterated"
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert closed.wait(5)
    replaced = requests.get(base + "/exc-info", timeout=5)
    assert (replaced.status_code, replaced.headers.get("X-Replaced")) == (500, "yes")
    with open(__file__, "rb") as file:
        assert requests.get(base + "/file", timeout=5).content == file.read()
    chunks = (piece for piece in [b"chunk", b"ed"])
    assert requests.post(base + "/chunked-input", data=chunks, timeout=5).content == b"chunked"
    assert written == [True]
    head = requests.head(base + "/head", timeout=5)
    assert (head.status_code, head.headers["Content-Length"], head.content) == (200, "1234", b"")
    assert len(requests.get(base + "/head", timeout=5).content) == 1234
    assert requests.get(base + "/mount/x/y", timeout=5).status_code == 404
    assert requests.get(base + "/mount/root", timeout=5).text == "/mount|/root"


def test_iterable_closed_when_client_disconnects(serve):
    closed = threading.Event()
    started = threading.Event()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])

        def generate():
            try:
                started.set()
                for _ in range(100000):
                    yield b"x" * 65536
            finally:
                closed.set()

        return generate()

    server = serve(app)
    response = requests.get(f"http://127.0.0.1:{server.port}/", stream=True, timeout=5)
    next(response.iter_content(1024))
    assert started.wait(5)
    response.close()
    assert closed.wait(10)


def test_file_wrapper_iterates_without_fileno():
    import io

    wrapper = FileWrapper(io.BytesIO(b"abc" * 10), blksize=7)
    assert b"".join(wrapper) == b"abc" * 10


def test_forwarded_headers_only_from_trusted_proxies(serve):
    def app(request):
        return {"body": json.dumps([request["remote_addr"], request["scheme"]])}

    trusted = serve(app)  # 127.0.0.1 is trusted by default
    url = f"http://127.0.0.1:{trusted.port}/"
    # Walked from the right: trusted proxies are skipped, the first untrusted hop is the client.
    headers = {"X-Forwarded-For": "203.0.113.7, 127.0.0.1", "X-Forwarded-Proto": "https"}
    assert requests.get(url, headers=headers, timeout=5).json() == ["203.0.113.7", "https"]
    headers = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7", "X-Forwarded-Proto": "https"}
    assert requests.get(url, headers=headers, timeout=5).json() == ["203.0.113.7", "https"]
    forwarded = {"Forwarded": 'for="[2001:db8::1]:4711";proto=https'}
    assert requests.get(url, headers=forwarded, timeout=5).json() == ["2001:db8::1", "https"]
    untrusted = serve(app, forwarded_allow_ips=["10.9.9.9"])
    url = f"http://127.0.0.1:{untrusted.port}/"
    assert requests.get(url, headers=headers, timeout=5).json() == ["127.0.0.1", "http"]


@pytest.fixture
def slow_upstream():
    """A local upstream that answers after 1 s (preforkit async, so it holds many)."""

    def handler(request):
        return preforkit.async_response(lambda respond: threading.Timer(1.0, respond, args=({"body": "slow"},)).start())

    server = preforkit.serve(handler, port=0)
    yield server.port
    server.stop(timeout=2)


def _concurrently(url: str, count: int) -> tuple[float, list[int]]:
    statuses: list[int] = []
    lock = threading.Lock()

    def one():
        status = requests.get(url, timeout=60).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=one) for _ in range(count)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    return time.monotonic() - started, statuses


@pytest.mark.parametrize("path", ["/sleep", "/urllib", "/socket"])
def test_blocking_legacy_app_is_concurrent_on_one_worker(cli_server, slow_upstream, path):
    server = cli_server(
        "tests.fixtures.wsgi_apps:legacy", "-b", "127.0.0.1:0", "-w", "1",
        env={"UPSTREAM_PORT": str(slow_upstream)},
    )  # fmt: skip
    elapsed, statuses = _concurrently(f"http://127.0.0.1:{server.port}{path}", 50)
    assert statuses == [200] * 50
    assert elapsed < 10, f"50 one-second requests took {elapsed:.1f} s on one worker"


def test_without_monkey_patching_the_worker_is_serial(cli_server):
    server = cli_server("tests.fixtures.wsgi_apps:legacy", "-b", "127.0.0.1:0", "-w", "1", "--no-monkey-patch")
    elapsed, statuses = _concurrently(f"http://127.0.0.1:{server.port}/sleep", 3)
    assert statuses == [200] * 3
    assert elapsed >= 2.9, "time.sleep blocks the whole worker when it is not patched"


def test_workers_env_multiprocess(cli_server):
    server = cli_server("tests.fixtures.wsgi_apps:environ_dump", "-b", "127.0.0.1:0", "-w", "2")
    environ = requests.get(f"http://127.0.0.1:{server.port}/", timeout=5).json()
    assert environ["wsgi.multiprocess"] is True
    assert environ["wsgi.multithread"] is True
    assert os.environ.get("PREFORKIT_WORKERS") is None


def test_websocket_from_a_flask_view(cli_server):
    import asyncio

    from websockets.asyncio.client import connect

    server = cli_server("examples.flask_app:app", "-b", "127.0.0.1:0")

    async def client():
        async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            await ws.send("through flask")
            assert await ws.recv() == "through flask"

    asyncio.run(asyncio.wait_for(client(), 20))


def test_requests_leave_no_reference_cycles():
    """Every request's objects are freed by reference counting, not left to the
    cyclic collector (an environ closure once made each WSGI request a cycle)."""
    import gc
    import socket as socket_module

    from preforkit.config import Config
    from preforkit.worker._connection import NEXT, Connection
    from preforkit.worker._server import WorkerServer
    from preforkit.worker.wsgi import WSGIAdapter

    def wsgi_app(environ, start_response):
        data = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(data)))])
        return [data]

    def ring_app(request):
        return {"status": 200, "body": request["body"].read()}

    request = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    for app in (WSGIAdapter(wsgi_app), ring_app):
        server_end, client_end = socket_module.socketpair()
        with server_end, client_end:
            server_end.setblocking(False)
            connection = Connection(server_end, ("127.0.0.1", 1), WorkerServer(app, Config(), []), ("h", 80, "http"))
            gc.collect()
            gc.disable()
            try:
                for _ in range(50):
                    connection.buffer += request
                    assert connection._serve_one(False) is NEXT
                    assert client_end.recv(65536).endswith(b"\r\n\r\nhello")
                assert gc.collect() == 0
            finally:
                gc.enable()


def test_bodiless_input_and_repeated_headers(serve):
    """A bodiless request's ``wsgi.input`` is at its end whatever an earlier
    request did to it; repeated header fields arrive joined with ", " (RFC 9110
    §5.3), and a name with "_" is left out."""
    import socket as socket_module

    def app(environ, start_response):
        stream = environ["wsgi.input"]
        seen = [stream.read(), stream.read(5), stream.readline(), stream.readlines(), list(stream)]
        if environ["PATH_INFO"] == "/close":
            stream.close()
        keys = ("HTTP_X_DUP", "CONTENT_TYPE", "HTTP_X_UNDER", "HTTP_X_ONE")
        body = json.dumps([repr(seen), *(environ.get(key) for key in keys)]).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    server = serve(app)
    with socket_module.create_connection(("127.0.0.1", server.port), timeout=5) as client:
        heads = (
            b"GET /close HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET /again HTTP/1.1\r\nHost: h\r\nX-Dup: a\r\nX-One: 1\r\nx-dup: b\r\n"
            b"Content-Type: text/a\r\nX_Under: c\r\n\r\n"
        )
        client.sendall(heads)
        received = b""
        while received.count(b"\r\n\r\n") < 2 or not received.endswith(b"]"):
            chunk = client.recv(65536)
            assert chunk, received
            received += chunk
    bodies = [json.loads(part.split(b"\r\n\r\n", 1)[1]) for part in received.split(b"HTTP/1.1 ")[1:]]
    empty = repr([b"", b"", b"", [], []])
    assert bodies[0] == [empty, None, None, None, None]
    assert bodies[1] == [empty, "a, b", "text/a", None, "1"]


def test_start_response_rules():
    """PEP 3333: a second call needs exc_info; exc_info after the head went out
    re-raises the app's error; before it, the new status replaces the old."""
    from preforkit.worker.wsgi import WSGIAdapter

    def twice(environ, start_response):
        start_response("200 OK", [])
        start_response("404 Not Found", [])
        return [b""]

    with pytest.raises(AssertionError, match="second time"):
        WSGIAdapter(twice)({})

    def late_error(environ, start_response):
        start_response("200 OK", [("X-A", "1")])
        yield b"first"
        try:
            raise ValueError("late")
        except ValueError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    response = WSGIAdapter(late_error)({})
    assert (response["status"], response["headers"]) == (200, [("X-A", "1")])
    pieces = iter(response["body"])
    assert next(pieces) == b"first"
    with pytest.raises(ValueError, match="late"):
        next(pieces)

    def written_then_error(environ, start_response):
        write = start_response("200 OK", [])
        write(b"w")
        try:
            raise KeyError("after write")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b""]

    with pytest.raises(KeyError, match="after write"):
        WSGIAdapter(written_then_error)({})

    def empty(environ, start_response):
        start_response("204 No Content", [])
        return []

    assert WSGIAdapter(empty)({}) == {"status": 204, "headers": [], "body": b""}


def test_repeated_head_gets_an_environ_of_its_own(serve):
    """The worker remembers environs for heads sent again: each request still gets
    its own body and connection entries, and what an app changes stays in its copy."""
    import socket as socket_module

    def app(environ, start_response):
        seen = [environ["PATH_INFO"], environ["QUERY_STRING"], environ.get("HTTP_X_N")]
        seen += [environ["wsgi.input"].read().decode(), environ.get("app.mark"), environ["REMOTE_PORT"]]
        environ["app.mark"] = "seen"
        environ["PATH_INFO"] = "/changed"
        environ["wsgi.input"] = None
        body = json.dumps(seen).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    def exchange(client, requests_sent: list[bytes]) -> list:
        client.sendall(b"".join(requests_sent))
        received = b""
        while received.count(b"HTTP/1.1 200 OK") < len(requests_sent) or not received.endswith(b"]"):
            chunk = client.recv(65536)
            assert chunk, received
            received += chunk
        return [json.loads(part.split(b"\r\n\r\n", 1)[1]) for part in received.split(b"HTTP/1.1 ")[1:]]

    server = serve(app)
    post = b"POST /a HTTP/1.1\r\nHost: h\r\nX-N: %s\r\nContent-Length: 3\r\n\r\n%s"
    requests_sent = [post % (b"1", b"one"), post % (b"1", b"two"), post % (b"1", b"six"), post % (b"2", b"thr")]
    requests_sent.append(b"GET /a?q=1 HTTP/1.1\r\nHost: h\r\n\r\n")
    with (
        socket_module.create_connection(("127.0.0.1", server.port), timeout=5) as first,
        socket_module.create_connection(("127.0.0.1", server.port), timeout=5) as second,
    ):
        bodies = exchange(first, requests_sent)
        again = exchange(second, [post % (b"2", b"ten")])  # the head kept for /a, on another connection
        one, other = str(first.getsockname()[1]), str(second.getsockname()[1])
    assert bodies == [
        ["/a", "", "1", "one", None, one],
        ["/a", "", "1", "two", None, one],
        ["/a", "", "1", "six", None, one],
        ["/a", "", "2", "thr", None, one],
        ["/a", "q=1", None, "", None, one],
    ]
    assert again == [["/a", "", "2", "ten", None, other]]


def test_client_address_and_port_from_each_source(serve):
    """Each connection's REMOTE_ADDR and REMOTE_PORT are its own client's, whichever
    loopback address it comes from and in whatever order (the compiled accept path
    formats an IPv4 address once per worker and reuses the text)."""
    import socket as socket_module

    def app(environ, start_response):
        body = f"{environ['REMOTE_ADDR']} {environ['REMOTE_PORT']}".encode()
        start_response("200 OK", [("Content-Length", str(len(body))), ("Connection", "close")])
        return [body]

    server = serve(app)
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.1", "127.0.0.3"):
        address = ("127.0.0.1", server.port)
        with socket_module.create_connection(address, timeout=5, source_address=(source, 0)) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            received = b""
            while chunk := client.recv(65536):
                received += chunk
            host, port = client.getsockname()
        assert received.split(b"\r\n\r\n", 1)[1].decode() == f"{host} {port}"


def test_server_name_from_host_repeated_or_not():
    """The host part of Host (an IPv6 literal keeps its brackets), the listener's without
    one; a Host value seen before gives the same answer as the first time."""
    from preforkit.worker.wsgi import server_name

    for _ in range(2):
        assert server_name("example.com:8080", "0.0.0.0") == "example.com"
        assert server_name("[::1]:8000", "0.0.0.0") == "[::1]"
        assert server_name("example.com", "0.0.0.0") == "example.com"
        assert server_name("example.org:80", "0.0.0.0") == "example.org"
        assert server_name(None, "10.0.0.1") == "10.0.0.1"
        assert server_name("", "10.0.0.1") == "10.0.0.1"


def test_an_environ_is_kept_from_its_targets_second_sighting_on():
    """A target asked for once leaves nothing behind; asked again, its environ is kept, and
    a kept environ whose fields came from another parse takes this one's (shared with the
    parser's memo), so later requests match it by identity."""
    from preforkit.http import HeadParser
    from preforkit.worker import wsgi

    environs = wsgi.ConnectionEnvirons(remote_port=1, server_port=2, listener_host="127.0.0.1")
    raw = b"GET /sighted-%d HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n" % os.getpid()
    target = raw.split(b" ")[1].decode()
    elsewhere, here = HeadParser(), HeadParser()
    environs.make(elsewhere.parse(raw)[0], None, "127.0.0.1", "http")
    assert target not in wsgi._KNOWN_ENVIRONS
    environs.make(elsewhere.parse(raw)[0], None, "127.0.0.1", "http")
    kept = wsgi._KNOWN_ENVIRONS[target]
    assert kept[1]["PATH_INFO"] == target
    assert kept[1]["HTTP_X_A"] == "1"
    for _ in range(3):  # the third parse comes from this parser's memo
        head = here.parse(raw)[0]
        environ = environs.make(head, None, "127.0.0.1", "http")
        assert environ["HTTP_X_A"] == "1"
        assert environ is not wsgi._KNOWN_ENVIRONS[target][1]
    assert wsgi._KNOWN_ENVIRONS[target][0][0][0] is head.fields[0]
    assert wsgi._KNOWN_ENVIRONS[target][1] is kept[1]
