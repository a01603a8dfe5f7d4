"""``preforkit status|reload|stop|workers``: a real master, asked over its control socket."""

from __future__ import annotations

import json
import os
import pwd
import socket
import stat
import subprocess
import sys
import time

import pytest
import requests

from preforkit._common.control import default_path

from .wsclient import RawWebSocket

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = "tests.fixtures.fault_apps:handler"


def _preforkit(*args: str, user: str | None = None) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", user, "--"] if user else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "preforkit", *args],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def _status(socket_path: str) -> dict:
    result = _preforkit("status", "--json", "--control-socket", socket_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _wait_for(socket_path: str, predicate, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = _status(socket_path)
        if predicate(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


@pytest.fixture
def master(cli_server, tmp_path):
    pid_file = str(tmp_path / "master.pid")
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2", "--pid", pid_file)
    server.control_socket, server.pid_file = default_path(server.process.pid), pid_file
    assert server.wait_for(f"Control socket: {server.control_socket}", timeout=5)
    return server


def test_a_control_socket_where_it_is_told(cli_server, tmp_path):
    path = str(tmp_path / "ctl.sock")
    server = cli_server(APP, "-b", "127.0.0.1:0", "--control-socket", path)
    assert _status(path)["master"]["pid"] == server.process.pid
    off = cli_server(APP, "-b", "127.0.0.1:0", "--control-socket", "off")
    assert not os.path.exists(default_path(off.process.pid))


def test_status_shows_each_worker_and_its_connections(master):
    base = f"http://127.0.0.1:{master.port}"
    for _ in range(5):
        assert requests.get(base + "/", timeout=5).status_code == 200
    idle = socket.create_connection(("127.0.0.1", master.port))  # connected, no request yet
    poll = socket.create_connection(("127.0.0.1", master.port))
    poll.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")  # held: never answered
    ws = RawWebSocket(master.port, "/ws")
    try:
        answer = _wait_for(
            master.control_socket,
            lambda a: (
                sum(w["connections"]["held"] for w in a["workers"]) == 1
                and sum(w["connections"]["websocket"] for w in a["workers"]) == 1
                and sum(w["connections"]["idle"] for w in a["workers"]) >= 1
            ),
        )
        workers = answer["workers"]
        assert answer["master"]["pid"] == master.process.pid
        assert answer["master"]["app"] == APP
        assert len(workers) == 2
        totals = {state: sum(w["connections"][state] for w in workers) for state in workers[0]["connections"]}
        assert totals == {"idle": 1, "active": 0, "held": 1, "websocket": 1, "stream": 0}, totals
        assert sum(w["requests"] for w in workers) >= 6  # five GETs and the WebSocket handshake
        for worker in workers:
            assert worker["state"] == "ready"
            assert worker["rss"] > 1 << 20
            assert 0 <= worker["heartbeat"] < 3
        # the table: a header and one row per worker, found through the pid file
        table = _preforkit("status", "--pid", master.pid_file)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].startswith(f"master {master.process.pid} serving {APP}")
        assert lines[1].split() == [
            "PID", "AGE", "STATE", "UPTIME", "RSS", "IDLE", "ACTIVE", "HELD", "WS", "STREAM", "REQUESTS", "BEAT",
        ]  # fmt: skip
        assert sorted(int(line.split()[0]) for line in lines[2:]) == sorted(w["pid"] for w in workers)
    finally:
        idle.close()
        poll.close()
        ws.close()


def test_workers_reload_and_stop(master):
    path = master.control_socket
    more = _preforkit("workers", "+2", "--control-socket", path)
    assert more.returncode == 0, more.stderr
    assert more.stdout.strip() == "4 worker(s) wanted"
    assert len(_wait_for(path, lambda a: len(a["workers"]) == 4)["workers"]) == 4
    fewer = _preforkit("workers", "-3", "--control-socket", path)
    assert fewer.stdout.strip() == "1 worker(s) wanted"
    assert len(_wait_for(path, lambda a: len(a["workers"]) == 1)["workers"]) == 1
    before = {w["pid"] for w in _status(path)["workers"]}
    assert _preforkit("reload", "--control-socket", path).returncode == 0
    assert master.wait_for("Reload complete", timeout=15)
    after = _wait_for(path, lambda a: {w["pid"] for w in a["workers"]}.isdisjoint(before))
    assert {w["pid"] for w in after["workers"]}.isdisjoint(before)
    assert _preforkit("stop", "--pid", master.pid_file).returncode == 0
    master.process.wait(timeout=30)
    assert master.process.returncode == 0
    assert not os.path.exists(path)  # removed on exit


def test_bad_input_and_no_master_give_one_line(master, tmp_path):
    bad = _preforkit("workers", "3", "--control-socket", master.control_socket)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "preforkit: workers takes +N or -N (like +2 or -1), not '3'"
    for args in (
        ("--control-socket", str(tmp_path / "nothing.sock")),
        ("--pid", str(tmp_path / "nothing.pid")),
    ):
        gone = _preforkit("status", *args)
        assert gone.returncode == 1, gone
        assert len(gone.stderr.strip().splitlines()) == 1
        assert gone.stderr.startswith("preforkit: no master is running"), gone.stderr


SYSTEM_PYTHON = "/usr/bin/python3"  # the venv's interpreter may sit where another user cannot run it
RAW_CLIENT = """
import socket, sys
sock = socket.socket(socket.AF_UNIX)
try:
    sock.connect(sys.argv[1])
except PermissionError:
    print("permission denied")
    sys.exit()
try:  # the master may close before the request is even sent: refused all the same
    sock.sendall(b'{"command": "status"}\\n')
    print("answer:", sock.recv(65536) or "none")
except (BrokenPipeError, ConnectionResetError):
    print("answer: none")
"""


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(SYSTEM_PYTHON), reason="needs root and /usr/bin/python3")
def test_the_control_socket_is_refused_to_other_users(master):
    def as_nobody() -> str:
        command = ["runuser", "-u", "nobody", "--", SYSTEM_PYTHON, "-c", RAW_CLIENT, master.control_socket]
        result = subprocess.run(command, cwd="/", capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    pwd.getpwnam("nobody")
    mode = stat.S_IMODE(os.stat(master.control_socket).st_mode)
    assert mode == 0o600, oct(mode)
    assert as_nobody() == "permission denied"
    os.chmod(master.control_socket, 0o666)  # even when the file lets it in, the master checks who asks
    assert as_nobody() == "answer: none"
    assert master.wait_for(r"Control socket: refused pid \d+ of uid \d+", timeout=5)
