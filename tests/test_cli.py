"""The ``preforkit`` command line, as real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import requests

from preforkit import __version__

from .conftest import ROOT


def run_cli(*args, env=None, timeout=30):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "preforkit", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_serves(cli_server):
    server = cli_server("examples.hello:handler", "-b", "127.0.0.1:0")
    response = requests.get(f"http://127.0.0.1:{server.port}/", timeout=5)
    assert response.status_code == 200
    assert response.text == "Hello, World!"
    listening = [line for line in server.lines if "Listening at" in line]
    assert len(listening) == 1


def test_installed_entry_point_matches_module():
    exe = os.path.join(os.path.dirname(sys.executable), "preforkit")
    if not os.path.exists(exe):
        pytest.skip("the preforkit script is not installed in this environment")
    result = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, check=False)
    assert result.stdout.strip() == f"preforkit, version {__version__}"


def test_version_and_help():
    assert run_cli("--version").stdout.strip() == f"preforkit, version {__version__}"
    help_text = run_cli("--help").stdout
    for flag in ("--bind", "--workers", "--max-body", "--no-monkey-patch", "--config", "PREFORKIT_MAX_BODY"):
        assert flag in help_text


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nocolon", "is not of the form MODULE:ATTR"),
        ("no_such_module_xyz:handler", "no module named 'no_such_module_xyz'"),
        ("examples.hello:nothing", "has no attribute 'nothing'"),
        ("tests.fixtures.misc_app:NOT_CALLABLE", "is a int, not a callable"),
    ],
)
def test_bad_app_spec_exits_2_with_one_line(spec, message):
    result = run_cli(spec, "-b", "127.0.0.1:0")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "Error" in line or "Traceback" in line]
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        ("tests.fixtures.broken_app:handler", "this_module_does_not_exist_anywhere"),
        ("tests.fixtures.raising_app:handler", "the app module failed at import"),
    ],
)
def test_import_error_inside_app_shows_its_traceback(spec, shown):
    result = run_cli(spec, "-b", "127.0.0.1:0")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert shown in result.stderr
    assert spec.split(":")[0].replace(".", "/") in result.stderr


def test_bad_option_value_one_line():
    result = run_cli("examples.hello:handler", "--max-body", "lots")
    assert result.returncode == 2
    assert "max_body" in result.stderr
    assert "lots" in result.stderr
    result = run_cli("examples.hello:handler", env={"PREFORKIT_WORKERS": "zero"})
    assert result.returncode == 2
    assert "PREFORKIT_WORKERS" in result.stderr
    assert "Traceback" not in result.stderr


def test_address_in_use_is_one_line():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_cli("examples.hello:handler", "-b", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert "cannot listen on" in result.stderr
    assert "Traceback" not in result.stderr


def test_monkey_patching_default_and_opt_out(cli_server):
    patched = cli_server("tests.fixtures.misc_app:handler", "-b", "127.0.0.1:0")
    assert requests.get(f"http://127.0.0.1:{patched.port}/", timeout=5).text == "patched"
    plain = cli_server("tests.fixtures.misc_app:handler", "-b", "127.0.0.1:0", "--no-monkey-patch")
    assert requests.get(f"http://127.0.0.1:{plain.port}/", timeout=5).text == "unpatched"


def test_wsgi_app_detected(cli_server):
    server = cli_server("tests.fixtures.misc_app:wsgi_app", "-b", "127.0.0.1:0")
    assert requests.get(f"http://127.0.0.1:{server.port}/x%20y", timeout=5).text == "wsgi /x y"
    assert server.wait_for("using the wsgi interface")


def test_env_and_config_file_precedence(cli_server, tmp_path):
    config = tmp_path / "preforkit.toml"
    config.write_text('server_header = "from-file"\nmax_body = "1K"\n')
    server = cli_server(
        "examples.hello:handler",
        "-b",
        "127.0.0.1:0",
        "--config",
        str(config),
        env={"PREFORKIT_SERVER_HEADER": "from-env"},
    )
    response = requests.get(f"http://127.0.0.1:{server.port}/", timeout=5)
    assert response.headers["Server"] == "from-env"
    assert requests.post(f"http://127.0.0.1:{server.port}/", data=b"x" * 2000, timeout=5).status_code == 413
    cli = cli_server(
        "examples.hello:handler",
        "-b",
        "127.0.0.1:0",
        "--server-header",
        "from-cli",
        env={"PREFORKIT_SERVER_HEADER": "from-env", "PREFORKIT_CONFIG": str(config)},
    )
    assert requests.get(f"http://127.0.0.1:{cli.port}/", timeout=5).headers["Server"] == "from-cli"


def test_unix_socket_and_chdir(cli_server, tmp_path):
    (tmp_path / "unixapp.py").write_text("def handler(request):\n    return {'body': 'over unix'}\n")
    path = tmp_path / "s.sock"
    server = cli_server("unixapp:handler", "-b", f"unix:{path}", "--chdir", str(tmp_path))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.endswith(b"over unix")
    server.stop()


def test_access_log(cli_server, tmp_path):
    log = tmp_path / "access.log"
    server = cli_server("examples.hello:handler", "-b", "127.0.0.1:0", "--access-log", str(log))
    requests.get(f"http://127.0.0.1:{server.port}/a?b=1", headers={"User-Agent": "tester/1", "Referer": "r"}, timeout=5)
    server.stop()
    line = log.read_text().strip()
    assert line.startswith("127.0.0.1 - - [")
    assert '"GET /a?b=1 HTTP/1.1" 200 13 "r" "tester/1"' in line


def test_term_stops_cleanly(cli_server):
    server = cli_server("examples.hello:handler", "-b", "127.0.0.1:0")
    output = server.stop()
    assert server.process.returncode == 0
    assert "Traceback" not in output
