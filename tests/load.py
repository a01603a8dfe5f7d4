"""wrk as a load generator for the tests (127.0.0.1 only, bounded in time)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

WRK = shutil.which("wrk")
needs_wrk = pytest.mark.skipif(WRK is None, reason="wrk is not installed (apt-get install wrk)")


class Wrk:
    """``wrk -t1 -cN -dS`` running in the background."""

    def __init__(self, port: int, path: str = "/", connections: int = 20, seconds: int = 5, headers=()) -> None:
        command = [WRK, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
        for header in headers:
            command += ["-H", header]
        command.append(f"http://127.0.0.1:{port}{path}")
        self.seconds = seconds
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def result(self) -> dict:
        out, _ = self.process.communicate(timeout=self.seconds + 30)
        requests = re.search(r"(\d+) requests in", out)
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        return {
            "requests": int(requests[1]) if requests else 0,
            "errors": sum(int(x) for x in errors.groups()) if errors else 0,
            "non2xx": int(non2xx[1]) if non2xx else 0,
            "output": out,
        }
