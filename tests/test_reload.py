"""--reload: new workers when the source changes, with watchfiles and with polling; a broken edit keeps the old ones."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HIDE_WATCHFILES = os.path.join(ROOT, "tests", "fixtures", "hide_watchfiles")
APP = 'def handler(request):\n    return {"body": "%s"}\n'


def _write(path, text: str, stamp: list) -> None:
    """Write and move the modification time forward (coarse file systems, fast edits)."""
    path.write_text(text)
    stamp[0] += 2
    os.utime(path, (stamp[0], stamp[0]))


def _wait_for_body(port: int, expected: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    body = None
    while time.monotonic() < deadline:
        try:
            body = requests.get(f"http://127.0.0.1:{port}/", timeout=5).text
        except requests.ConnectionError:
            body = None
        if body == expected:
            return body
        time.sleep(0.1)
    return body


@pytest.mark.parametrize("backend", ["watchfiles", "polling"])
def test_edits_reload_and_a_broken_edit_keeps_the_old_workers(cli_server, tmp_path, backend):
    pytest.importorskip("watchfiles") if backend == "watchfiles" else None
    app = tmp_path / "reloadable.py"
    stamp = [time.time()]
    _write(app, APP % "version 1", stamp)
    paths = [str(tmp_path), ROOT] if backend == "watchfiles" else [HIDE_WATCHFILES, str(tmp_path), ROOT]
    server = cli_server(
        "reloadable:handler", "-b", "127.0.0.1:0", "--reload", "--reload-dir", str(tmp_path),
        cwd=str(tmp_path), env={"PYTHONPATH": os.pathsep.join(paths)},
    )  # fmt: skip
    assert server.wait_for(rf"--reload: watching {tmp_path} \(\*\.py; {backend}\)", timeout=5), server.output
    assert _wait_for_body(server.port, "version 1") == "version 1"
    _write(app, APP % "version 2", stamp)
    assert _wait_for_body(server.port, "version 2") == "version 2"
    start = len(server.lines)
    _write(app, 'def handler(request:\n    return {"body": "broken"}\n', stamp)
    line = server.wait_for(r"not reloading, a changed file does not compile", timeout=15, start=start)
    assert line is not None, server.output
    assert f"{app}, line 1" in line
    assert requests.get(f"http://127.0.0.1:{server.port}/", timeout=5).text == "version 2"  # the old workers serve
    _write(app, APP % "version 3", stamp)
    assert _wait_for_body(server.port, "version 3") == "version 3"


def test_include_and_exclude_patterns(cli_server, tmp_path):
    app = tmp_path / "reloadable.py"
    stamp = [time.time()]
    _write(app, APP % "version 1", stamp)
    (tmp_path / "skipped").mkdir()
    server = cli_server(
        "reloadable:handler", "-b", "127.0.0.1:0", "--reload", "--reload-dir", str(tmp_path),
        "--reload-include", "*.py", "--reload-include", "*.html", "--reload-exclude", "skipped",
        cwd=str(tmp_path), env={"PYTHONPATH": os.pathsep.join([HIDE_WATCHFILES, str(tmp_path), ROOT])},
    )  # fmt: skip
    assert _wait_for_body(server.port, "version 1") == "version 1"
    _write(tmp_path / "notes.txt", "not watched", stamp)
    _write(tmp_path / "skipped" / "ignored.py", "x = 1\n", stamp)
    _write(tmp_path / "page.html", "<p>watched</p>", stamp)
    line = server.wait_for(r"--reload: .* changed; reloading", timeout=15)
    assert line is not None, server.output
    assert "page.html" in line
    assert "notes.txt" not in line
    assert "ignored.py" not in line


def test_reload_and_preload_do_not_mix():
    result = subprocess.run(
        [sys.executable, "-m", "preforkit", "examples.hello:handler", "--reload", "--preload"],
        capture_output=True, text=True, timeout=30, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: --reload cannot be combined with --preload (the master would keep the old code)"
    ]
