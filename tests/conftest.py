from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

import preforkit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def serve():
    """``serve(handler, **options)`` starts a background server; stopped after the test."""
    servers = []

    def start(handler, **options):
        server = preforkit.serve(handler, port=0, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(timeout=2)


class CLIServer:
    """A ``preforkit`` process started from the command line on a free port."""

    def __init__(self, args, env=None, cwd=ROOT):
        full_env = dict(os.environ, PYTHONUNBUFFERED="1")
        full_env.update(env or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "preforkit", *args],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.port = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            match = re.search(r"Listening at http://[^ ]+:(\d+)", line)
            if match:
                self.port = int(match[1])
                return
            if "Listening at unix:" in line:
                return
        self.stop()
        raise RuntimeError("server did not start:\n" + "".join(self.lines))

    def stop(self, timeout: float = 10) -> str:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        self.lines.append(out or "")
        return "".join(self.lines)


@pytest.fixture
def cli_server():
    started = []

    def start(*args, env=None, cwd=ROOT):
        server = CLIServer(list(args), env=env, cwd=cwd)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
