"""``--check-config`` and ``--print-config``: real processes, real exit statuses."""

from __future__ import annotations

import os
import subprocess
import sys

from preforkit.config import SETTINGS, make_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _preforkit(*args: str, env: dict | None = None, cwd: str = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "preforkit", *args],
        cwd=cwd, env={**os.environ, "PYTHONPATH": ROOT, **(env or {})},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_check_config_loads_the_app_and_exits_0():
    result = _preforkit("examples.django_app.wsgi:application", "--check-config", "-b", "127.0.0.1:9999")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "OK: examples.django_app.wsgi:application (wsgi interface), would listen at 127.0.0.1:9999"
    )


def test_check_config_names_the_first_problem_in_one_line(tmp_path):
    (tmp_path / "broken.py").write_text("def handler(request):\n    return {\n")  # a syntax error
    (tmp_path / "raising.py").write_text("import os\nos.environ['NOPE_' + 'KEY']\ndef handler(r): pass\n")
    (tmp_path / "settings.toml").write_text('workers = "many"\n')
    cases = {
        ("broken:handler",): "error while importing broken:handler: SyntaxError:",
        ("raising:handler",): "error while importing raising:handler: KeyError: 'NOPE_KEY' (",
        ("nothere:handler",): "cannot import 'nothere': no module named 'nothere'",
        ("examples.hello:nothing",): "module 'examples.hello' has no attribute 'nothing'",
        ("examples.hello",): "is not of the form MODULE:ATTR",
        ("examples.hello:handler", "-b", "127.0.0.1:http"): "'http' is not a port number",
        ("examples.hello:handler", "--certfile", "/nonexistent.pem"): "cannot load the TLS certificate",
        ("examples.hello:handler", "--config", str(tmp_path / "settings.toml")): "invalid value for workers",
    }
    for args, expected in cases.items():
        result = _preforkit(*args, "--check-config", env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (args, lines)
        assert lines[0].startswith("Error: "), (args, lines)
        assert expected in lines[0], (args, lines)
        assert "Traceback" not in result.stderr


def test_print_config_shows_each_source_and_loads_back(tmp_path):
    config_file = tmp_path / "preforkit.toml"
    config_file.write_text('max_body = "2M"\nkeepalive = 7\n')
    result = _preforkit(
        "examples.hello:handler", "--print-config", "--config", str(config_file), "--timeout", "9",
        env={"PREFORKIT_WORKERS": "3"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = {
        line.split()[0] if not line.startswith("#") else line.split()[1]: line for line in result.stdout.splitlines()
    }
    assert set(lines) == {setting.name for setting in SETTINGS}  # every setting, once
    assert lines["workers"].endswith("= 3  # environment variable PREFORKIT_WORKERS")
    assert lines["timeout"].endswith("= 9.0  # command line")
    assert lines["max_body"].endswith(f"= 2097152  # config file {config_file}")
    assert lines["keepalive"].endswith(f"= 7.0  # config file {config_file}")
    assert lines["graceful_timeout"].endswith("= 30.0  # default")
    # What it prints is a config file giving the same settings.
    printed = tmp_path / "printed.toml"
    printed.write_text(result.stdout)
    again, original = (
        make_config(file=str(printed), env={}),
        make_config(file=str(config_file), env={"PREFORKIT_WORKERS": "3"}, cli={"timeout": "9"}),
    )
    for setting in SETTINGS:
        assert getattr(again, setting.name) == getattr(original, setting.name), setting.name
