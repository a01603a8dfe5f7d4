"""Access logs whose lines a client cannot break or forge, and request ids end to end."""

from __future__ import annotations

import json
import re
import socket

import requests

from .helpers import read_response

# A User-Agent and Referer that try to close the quoted field / the JSON string and add fields or lines.
NASTY_AGENT = 'evil" 500 0 "-" "x\\'
NASTY_REFERER = '", "status": 200, "forged": "yes'


def _send(port: int, head: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        read_response(sock)


def _lines(server, log) -> list[str]:
    server.stop()
    return log.read_text(encoding="utf-8").splitlines()


def test_json_access_log_escapes_every_value(cli_server, tmp_path):
    log = tmp_path / "access.jsonl"
    server = cli_server(
        "examples.hello:handler", "-b", "127.0.0.1:0", "--access-log", str(log), "--access-log-format", "json"
    )
    _send(
        server.port,
        b"GET /p%22ath?q=%22x%22&y=\\ HTTP/1.1\r\nHost: x\r\nUser-Agent: " + NASTY_AGENT.encode()
        + b"\r\nReferer: " + NASTY_REFERER.encode() + b"\r\nX-Request-ID: abc\r\n\r\n",
    )  # fmt: skip
    _send(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: caf\xe9\r\n\r\n")  # obs-text
    lines = _lines(server, log)
    assert len(lines) == 2, lines
    first, second = (json.loads(line) for line in lines)
    assert set(first) == {
        "time", "remote_addr", "method", "path", "query", "protocol", "status", "bytes", "duration",
        "referer", "user_agent", "request_id", "pid",
    }  # fmt: skip
    assert first["user_agent"] == NASTY_AGENT
    assert first["referer"] == NASTY_REFERER
    assert "forged" not in first
    assert first["status"] == 200
    assert first["bytes"] == 13
    assert first["method"] == "GET"
    assert first["path"] == "/p%22ath"
    assert first["query"] == "q=%22x%22&y=\\"
    assert first["remote_addr"] == "127.0.0.1"
    assert first["request_id"] is None  # --request-id is off
    assert isinstance(first["duration"], float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", first["time"])
    assert second["user_agent"] == "caf\xe9"
    assert all(ord(c) < 128 for line in lines for c in line)  # non-ASCII escaped as \\uXXXX


def test_text_access_log_escapes_quotes_backslashes_and_bytes(cli_server, tmp_path):
    log = tmp_path / "access.log"
    server = cli_server("examples.hello:handler", "-b", "127.0.0.1:0", "--access-log", str(log))
    _send(
        server.port,
        b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: " + NASTY_AGENT.encode() + b"\r\nReferer: caf\xe9\r\n\r\n",
    )
    (line,) = _lines(server, log)
    assert line.endswith('"GET / HTTP/1.1" 200 13 "caf\\xe9" "evil\\" 500 0 \\"-\\" \\"x\\\\"'), line
    # exactly the six quotes of the three quoted fields are unescaped
    assert line.replace("\\\\", "").replace('\\"', "").count('"') == 6


def test_request_id_passes_through_or_is_made(cli_server, tmp_path):
    log = tmp_path / "access.jsonl"
    server = cli_server(
        "tests.fixtures.misc_app:request_id_echo", "-b", "127.0.0.1:0", "--request-id",
        "--access-log", str(log), "--access-log-format", "json",
    )  # fmt: skip
    base = f"http://127.0.0.1:{server.port}"
    given = requests.get(base, headers={"X-Request-ID": "trace-1234"}, timeout=5)
    assert given.headers["X-Request-ID"] == "trace-1234"
    assert given.text == "trace-1234"  # what the handler saw in request["request_id"]
    made = requests.get(base, timeout=5)
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    assert made.text == made.headers["X-Request-ID"]
    bad = requests.get(base, headers={"X-Request-ID": 'has space "quote"'}, timeout=5)
    assert re.fullmatch(r"[0-9a-f]{32}", bad.headers["X-Request-ID"])  # replaced, not logged as sent
    own = requests.get(base + "/own", timeout=5)
    assert own.headers["X-Request-ID"] == "set-by-app"  # the app's own header wins
    ids = [json.loads(line)["request_id"] for line in _lines(server, log)]
    assert ids == ["trace-1234", made.headers["X-Request-ID"], bad.headers["X-Request-ID"], own.text]


def test_request_id_in_the_wsgi_environ(cli_server):
    server = cli_server("tests.fixtures.misc_app:request_id_wsgi", "-b", "127.0.0.1:0", "--request-id")
    response = requests.get(f"http://127.0.0.1:{server.port}/", headers={"X-Request-ID": "w-1"}, timeout=5)
    assert response.text == "w-1"
    assert response.headers["X-Request-ID"] == "w-1"


def test_without_request_id_nothing_is_added(cli_server):
    server = cli_server("tests.fixtures.misc_app:request_id_echo", "-b", "127.0.0.1:0")
    response = requests.get(f"http://127.0.0.1:{server.port}/", headers={"X-Request-ID": "t"}, timeout=5)
    assert "X-Request-ID" not in response.headers
    assert response.text == "none"
