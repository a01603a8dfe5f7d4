"""The server's own log: --error-log FILE, --log-format json, --log-config (JSON or TOML dictConfig)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = "examples.hello:handler"


def _wait_for_text(path, pattern: str, timeout: float = 15.0) -> str:
    """The file's text once ``pattern`` appears in it (bounded: fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if re.search(pattern, text):
            return text
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} never appeared in {path}:\n{text}")


@pytest.fixture
def quiet_server():
    """A server whose own log goes somewhere other than its output; stopped after the test."""
    processes = []

    def start(*args: str, env: dict | None = None) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "preforkit", *args],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT, **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=30)


def _port(text: str) -> int:
    return int(re.search(r"Listening at http://[^ ]+:(\d+)", text)[1])


def test_error_log_file_gets_the_log_and_follows_rotation(quiet_server, tmp_path):
    log = tmp_path / "error.log"
    process = quiet_server(APP, "-b", "127.0.0.1:0", "--error-log", str(log))
    text = _wait_for_text(log, r"Ready: 1 worker serving")
    assert "Listening at http://127.0.0.1:" in text
    assert requests.get(f"http://127.0.0.1:{_port(text)}/", timeout=5).status_code == 200
    os.rename(log, tmp_path / "error.log.1")  # what logrotate does
    os.kill(process.pid, signal.SIGTTIN)
    assert "SIGTTIN: 2 workers" in _wait_for_text(log, r"SIGTTIN: 2 workers")  # a new file, reopened by itself
    process.terminate()
    _, stderr = process.communicate(timeout=30)
    assert stderr == ""  # nothing went to stderr


def test_json_log_lines(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "--log-format", "json")
    server.wait_for("Ready: 1 worker serving", timeout=10)
    output = server.stop()
    records = [json.loads(line) for line in output.splitlines()]
    assert all(set(record) >= {"time", "level", "pid", "logger", "message"} for record in records)
    listening = next(r for r in records if r["message"].startswith("Listening at"))
    assert listening["level"] == "INFO"
    assert listening["logger"] == "preforkit.error"
    assert listening["pid"] == server.process.pid
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", listening["time"])
    assert any(r["pid"] != server.process.pid for r in records)  # the worker's own lines too


@pytest.mark.parametrize("kind", ["json", "toml"])
def test_log_config_dict_config(quiet_server, tmp_path, kind):
    log = tmp_path / "custom.log"
    if kind == "json":
        config = tmp_path / "logging.json"
        config.write_text(
            json.dumps(
                {
                    "version": 1,
                    "formatters": {"custom": {"format": "CUSTOM %(levelname)s %(message)s"}},
                    "handlers": {"file": {"class": "logging.FileHandler", "filename": str(log), "formatter": "custom"}},
                    "root": {"level": "INFO", "handlers": ["file"]},
                }
            )
        )
    else:
        config = tmp_path / "logging.toml"
        config.write_text(
            "version = 1\n"
            '[formatters.custom]\nformat = "CUSTOM %(levelname)s %(message)s"\n'
            f'[handlers.file]\nclass = "logging.FileHandler"\nfilename = "{log}"\nformatter = "custom"\n'
            '[root]\nlevel = "INFO"\nhandlers = ["file"]\n'
        )
    quiet_server(APP, "-b", "127.0.0.1:0", "--log-config", str(config))
    text = _wait_for_text(log, r"CUSTOM INFO Ready: 1 worker serving")
    assert re.search(r"^CUSTOM INFO Listening at http://127\.0\.0\.1:\d+", text, re.M)


def test_bad_log_settings_give_one_line(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "refused.json").write_text('{"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}')
    cases = {
        ("--log-config", str(tmp_path / "missing.json")): "cannot read the log config",
        ("--log-config", str(tmp_path / "broken.json")): "is not valid JSON",
        ("--log-config", str(tmp_path / "refused.json")): "was refused by logging.config.dictConfig",
        ("--error-log", str(tmp_path / "no" / "such" / "dir.log")): "cannot open the error log",
        ("--log-format", "xml"): "invalid value for log_format",
    }
    for args, expected in cases.items():
        result = subprocess.run(
            [sys.executable, "-m", "preforkit", APP, "-b", "127.0.0.1:0", *args],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (args, lines)
        assert expected in lines[0], (args, lines)


def test_a_hung_workers_traceback_goes_to_the_error_log(quiet_server, tmp_path):
    log = tmp_path / "error.log"
    quiet_server("tests.fixtures.legacy_apps:blocking", "-b", "127.0.0.1:0", "--timeout", "2", "--error-log", str(log))
    port = _port(_wait_for_text(log, r"Ready: 1 worker serving"))
    try:
        requests.get(f"http://127.0.0.1:{port}/block?seconds=30", timeout=20)
    except requests.ConnectionError:
        pass
    text = _wait_for_text(log, r'legacy_apps\.py", line \d+ in blocking')
    assert "serving GET /block?seconds=30" in text
