from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import pytest

import preforkit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_report_header(config):
    """Which hot path this run tests: compiled (the default where built) or pure Python."""
    import importlib

    from preforkit import _accel

    for module in _accel.ACCELERATED:
        importlib.import_module(module)
    compiled = _accel.compiled_modules()
    if compiled:
        return f"preforkit: the compiled hot path ({len(compiled)} of {len(_accel.ACCELERATED)} modules compiled)"
    why = "PREFORKIT_PURE_PYTHON is set" if _accel.pure_python_requested() else "nothing compiled here"
    return f"preforkit: the pure-Python hot path ({why})"


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
    """A ``preforkit`` process started from the command line.

    Its combined output is collected by a thread; ``wait_for`` waits for a
    line matching a pattern (an event, not a sleep).
    """

    def __init__(self, args, env=None, cwd=ROOT, ready=r"Listening at", python=sys.executable):
        full_env = dict(os.environ, PYTHONUNBUFFERED="1")
        full_env.update(env or {})
        self.process = subprocess.Popen(
            [python, "-m", "preforkit", *args],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = None
        line = self.wait_for(ready, timeout=30)
        if line is None:
            self.stop()
            raise RuntimeError("server did not start:\n" + self.output)
        match = re.search(r"Listening at http://[^ ]+:(\d+)", "".join(self.lines))
        if match:
            self.port = int(match[1])

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 10, count: int = 1, start: int = 0) -> str | None:
        """Wait until ``count`` lines from line ``start`` on match ``pattern``; the last one."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines[start:] if regex.search(line)]
                if len(found) >= count:
                    return found[count - 1]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (not self._reader.is_alive() and self.process.poll() is not None):
                    return None
                self._changed.wait(min(remaining, 0.5))

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def stop(self, timeout: float = 15) -> str:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()
        self._reader.join(timeout=5)
        return self.output


@pytest.fixture
def cli_server():
    started = []

    def start(*args, env=None, cwd=ROOT, ready=r"Listening at", python=sys.executable):
        server = CLIServer(list(args), env=env, cwd=cwd, ready=ready, python=python)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
