"""--user / --group: bind a privileged port as root, serve as nobody (run as root)."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = "examples.hello:handler"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

# Once the server is nobody it still imports modules (the workers import the app, gevent loads
# parts lazily), so it must run on an interpreter and packages nobody can read: the venv's own
# interpreter may live under root's home (pyenv), the system's does not.
SYSTEM_PYTHON = "/usr/bin/python3"
SITE = [p for p in sys.path if p.endswith("site-packages") and p.startswith(ROOT)]
NOBODY_ENV = {"PYTHONPATH": os.pathsep.join([ROOT, *SITE])}


def _nobody_can_run_the_server() -> str | None:
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} is missing"
    probe = subprocess.run(
        ["runuser", "-u", "nobody", "--", SYSTEM_PYTHON, "-c", "import gevent, psutil, click, preforkit.master"],
        cwd="/", env={**os.environ, **NOBODY_ENV}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return None if probe.returncode == 0 else f"nobody cannot import the server here: {probe.stderr.strip()[-200:]}"


def _privileged_port() -> int:
    for port in range(900, 1000):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    pytest.skip("no free port below 1024")


def _uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as file:
        return int(re.search(r"^Uid:\s+(\d+)", file.read(), re.M)[1])


@pytest.fixture
def shared_dir():
    """A directory both root and nobody may write (tmp_path is root's alone)."""
    directory = tempfile.mkdtemp(prefix="preforkit-user-")
    os.chmod(directory, 0o777)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_bind_port_below_1024_as_root_serve_as_nobody(cli_server, shared_dir):
    why_not = _nobody_can_run_the_server()
    if why_not:
        pytest.skip(why_not)
    nobody = pwd.getpwnam("nobody")
    port = _privileged_port()
    pid_file = os.path.join(shared_dir, "master.pid")
    access_log = os.path.join(shared_dir, "access.log")
    server = cli_server(
        APP, "-b", f"127.0.0.1:{port}", "-w", "2", "--user", "nobody", "--pid", pid_file, "--access-log", access_log,
        env=NOBODY_ENV, python=SYSTEM_PYTHON,
    )  # fmt: skip
    assert server.wait_for(rf"Serving as nobody \(uid {nobody.pw_uid}, gid {nobody.pw_gid}\)", timeout=5)
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).text == "Hello, World!"
    workers = [int(pid) for pid in re.findall(r"Booting worker (\d+)", server.output)]
    assert _uid_of(server.process.pid) == nobody.pw_uid
    assert [_uid_of(pid) for pid in workers] == [nobody.pw_uid] * 2
    assert os.stat(pid_file).st_uid == nobody.pw_uid
    assert os.stat(access_log).st_uid == nobody.pw_uid
    status = subprocess.run(
        [sys.executable, "-m", "preforkit", "status", "--pid", pid_file],
        capture_output=True, text=True, timeout=30, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
    )  # fmt: skip
    assert status.returncode == 0, status.stderr  # root may ask a master that runs as nobody
    server.stop()
    assert server.process.returncode == 0
    assert not os.path.exists(pid_file)  # removed by the master, now nobody
    with open(access_log) as file:
        assert "GET / HTTP/1.1" in file.read()


def test_unknown_user_or_group_is_one_line():
    for args, expected in (
        (("--user", "no-such-user-here"), "Error: --user: no such user 'no-such-user-here'"),
        (("--user", "nobody", "--group", "no-such-group-here"), "Error: --group: no such group 'no-such-group-here'"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "preforkit", APP, "-b", "127.0.0.1:0", *args],
            capture_output=True, text=True, timeout=30, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines()[-1] == expected
        check = subprocess.run(
            [sys.executable, "-m", "preforkit", APP, "--check-config", *args],
            capture_output=True, text=True, timeout=30, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
        )  # fmt: skip
        assert check.returncode == 2
        assert check.stderr.strip() == expected
