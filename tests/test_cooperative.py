"""What cooperates with gevent, what cannot and is said so, and what is caught when it blocks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import requests

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOT = os.path.dirname(os.path.dirname(FIXTURES))
APP = "tests.fixtures.legacy_apps:blocking"


def _run(code: str, tmp_path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_after_import_runs_once_the_module_has_executed(tmp_path):
    (tmp_path / "watched.py").write_text("VALUE = 1\n")
    out = _run(
        """
        import sys
        from preforkit._common.cooperative import after_import
        seen = []
        after_import("watched", lambda module: seen.append((module.VALUE, type(module.__loader__).__name__)))
        print("before", seen, "watched" in sys.modules)
        import watched
        import watched  # a second import runs nothing more
        print("after", seen)
        after_import("watched", lambda module: seen.append("already imported: at once"))
        print("late", seen[-1])
        """,
        tmp_path,
    )
    assert "before [] False" in out
    assert "after [(1, 'SourceFileLoader')]" in out  # the module's own loader once done
    assert "late already imported: at once" in out


def test_a_failing_callback_is_logged_and_the_import_still_works(tmp_path):
    (tmp_path / "psycopg2").mkdir()
    (tmp_path / "psycopg2" / "__init__.py").write_text("VALUE = 2\n")  # no .extensions: applying fails
    out = _run(
        """
        import logging
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=__import__("sys").stdout)
        from preforkit._common.cooperative import make_drivers_cooperative
        print("arranged", make_drivers_cooperative("Worker 1"))
        import psycopg2
        print("imported", psycopg2.VALUE)
        """,
        tmp_path,
    )
    assert "'psycopg2'" in out.splitlines()[0]
    assert "Worker 1: could not make psycopg2 cooperate with gevent" in out
    assert "imported 2" in out


def _env(*paths: str) -> dict:
    return {"PYTHONPATH": os.pathsep.join([*paths, ROOT])}


def test_psycopg2_is_made_cooperative_and_a_blocking_driver_is_named(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "1", env=_env(os.path.join(FIXTURES, "fake_mysqldb")))
    assert server.wait_for(r"mysqlclient \(MySQLdb\) cannot cooperate with gevent: .*PyMySQL", timeout=5)
    assert len(re.findall("cannot cooperate", server.output)) == 1  # one line, from the master
    assert server.wait_for(r"Worker \d+: C drivers that will cooperate with gevent once imported: psycopg2", timeout=5)
    answer = requests.get(f"http://127.0.0.1:{server.port}/wait-callback", timeout=10).text
    assert "_psycopg2_wait" in answer
    assert server.wait_for(r"Worker \d+: psycopg2: queries wait in the hub", timeout=5)


def test_no_monkey_patch_leaves_the_drivers_alone(cli_server):
    server = cli_server(
        APP, "-b", "127.0.0.1:0", "-w", "1", "--no-monkey-patch", env=_env(os.path.join(FIXTURES, "fake_mysqldb"))
    )
    assert requests.get(f"http://127.0.0.1:{server.port}/wait-callback", timeout=10).text == "None"
    output = server.stop()
    assert "cooperat" not in output, output


def test_a_blocking_c_call_is_caught_with_its_request_and_traceback(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "1", "--timeout", "2")
    base = f"http://127.0.0.1:{server.port}"
    first = requests.get(base + "/", timeout=10).text
    try:
        requests.get(base + "/block?seconds=30", timeout=20)
    except requests.ConnectionError:
        pass  # the worker was killed under it
    line = server.wait_for(r"is hung", timeout=10)
    assert line is not None, server.output
    assert "serving GET /block?seconds=30" in line, line
    # faulthandler's traceback names the app's line making the blocking call
    assert server.wait_for(r'legacy_apps\.py", line \d+ in blocking', timeout=10), server.output
    assert server.wait_for(rf"Worker {first} killed by SIGABRT", timeout=10), server.output
    replacement = requests.get(base + "/", timeout=10).text
    assert replacement != first
