"""preforkit.serve and preforkit.run_server, in this process and in others."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import requests

import preforkit

from . import apps
from .conftest import ROOT


def test_serve_background_and_stop():
    server = preforkit.serve(apps.hello, port=0)
    url = f"http://127.0.0.1:{server.port}/"
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert requests.get(url, timeout=5).text == "Hello, World!"
    server.stop(timeout=2)
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("the server still answers after stop()")


def test_serve_as_context_manager_with_options():
    with preforkit.serve(apps.echo_body, port=0, max_body="10") as server:
        response = requests.post(f"http://127.0.0.1:{server.port}/", data=b"x" * 11, timeout=5)
        assert response.status_code == 413


def _run_script(code: str, timeout: float = 30) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def test_serve_in_a_gevent_program():
    """In a monkey-patched process serve() runs in the caller's hub."""
    process = _run_script(
        """
        from gevent import monkey; monkey.patch_all()
        import urllib.request, preforkit
        from tests import apps
        server = preforkit.serve(apps.hello, port=0)
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=5).read()
        server.stop(timeout=1)
        print("GOT", body.decode())
        """
    )
    out, _ = process.communicate(timeout=30)
    assert "GOT Hello, World!" in out, out


def test_run_server_blocks_until_sigterm():
    process = _run_script(
        """
        import logging, preforkit
        logging.basicConfig(level=logging.INFO)
        from tests import apps
        preforkit.run_server(apps.hello, bind=["127.0.0.1:0"])
        print("RETURNED")
        """
    )
    line = ""
    for _ in range(50):
        line = process.stdout.readline()
        if "Listening at" in line or not line:
            break
    port = int(line.rsplit(":", 1)[1])
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).text == "Hello, World!"
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=15)
    assert "RETURNED" in out
    assert process.returncode == 0
