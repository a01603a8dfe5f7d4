"""--metrics-bind: Prometheus metrics from the master, checked by promtool and scraped by a real Prometheus."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
import requests

from .wsclient import RawWebSocket

APP = "tests.fixtures.metrics_app:handler"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scrape(port: int) -> str:
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return response.text


def _samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def _wait_for_samples(port: int, predicate, timeout: float = 10.0) -> dict[str, float]:
    """Workers publish their counters with each heartbeat (about once a second)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = _samples(_scrape(port))
        if predicate(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


@pytest.fixture
def metrics_server(cli_server):
    port = _free_port()
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2", "--metrics-bind", f"127.0.0.1:{port}")
    server.metrics_port = port
    assert server.wait_for(rf"Metrics at http://127\.0\.0\.1:{port}/metrics", timeout=5)
    return server


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian package prometheus)")
def test_every_metric_counts_and_promtool_accepts_them(metrics_server):
    base = f"http://127.0.0.1:{metrics_server.port}"
    with requests.Session() as session:
        for path, times in (("/", 7), ("/missing", 3), ("/error", 2), ("/publish", 4)):
            for _ in range(times):
                session.get(base + path, timeout=5)
    poll = socket.create_connection(("127.0.0.1", metrics_server.port))
    poll.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
    ws = RawWebSocket(metrics_server.port, "/ws")
    try:
        for i in range(5):
            ws.send(0x1, f"m{i}".encode())
            assert ws.recv()[2] == f"m{i}".encode()
        samples = _wait_for_samples(
            metrics_server.metrics_port,
            lambda s: (
                s.get('preforkit_websocket_messages_total{direction="out"}') == 5
                and s.get('preforkit_requests_total{status="2xx"}') == 12
                and s.get('preforkit_connections{state="held"}') == 1
            ),
        )
        assert samples['preforkit_requests_total{status="2xx"}'] == 11  # 7 GETs + 4 publishes
        assert samples['preforkit_requests_total{status="4xx"}'] == 3
        assert samples['preforkit_requests_total{status="5xx"}'] == 2
        assert samples['preforkit_requests_total{status="1xx"}'] == 1  # the WebSocket's 101
        assert samples["preforkit_request_duration_seconds_count"] == 17
        assert samples['preforkit_request_duration_seconds_bucket{le="+Inf"}'] == 17
        assert samples["preforkit_request_duration_seconds_sum"] > 0
        assert samples['preforkit_connections{state="held"}'] == 1
        assert samples['preforkit_connections{state="websocket"}'] == 1
        assert samples["preforkit_requests_in_flight"] == 1
        assert samples["preforkit_connections_accepted_total"] == 3  # the session, the poll, the WebSocket
        assert samples["preforkit_connections_shed_total"] == 0
        assert samples['preforkit_websocket_messages_total{direction="in"}'] == 5
        assert samples['preforkit_pubsub_messages_total{outcome="published"}'] == 4
        assert samples['preforkit_pubsub_messages_total{outcome="delivered"}'] == 8  # to both workers
        assert samples['preforkit_workers{state="ready"}'] == 2
        assert len([k for k in samples if k.startswith("preforkit_worker_rss_bytes{")]) == 2
        assert any(k.startswith("preforkit_listen_backlog{") for k in samples)
        text = _scrape(metrics_server.metrics_port)
    finally:
        poll.close()
        ws.close()
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


def test_totals_survive_a_crashed_worker_and_restarts_are_counted(metrics_server):
    base = f"http://127.0.0.1:{metrics_server.port}"
    for _ in range(10):
        requests.get(base + "/", timeout=5)
    port = metrics_server.metrics_port
    before = _wait_for_samples(port, lambda s: s['preforkit_requests_total{status="2xx"}'] == 10)
    assert before['preforkit_requests_total{status="2xx"}'] == 10
    victim = int(re.findall(r"Booting worker (\d+)", metrics_server.output)[0])
    os.kill(victim, signal.SIGKILL)
    assert metrics_server.wait_for(rf"Worker {victim} killed by SIGKILL; replacing it", timeout=10)
    after = _wait_for_samples(port, lambda s: s['preforkit_worker_restarts_total{reason="crash"}'] == 1)
    assert after['preforkit_worker_restarts_total{reason="crash"}'] == 1
    assert after['preforkit_requests_total{status="2xx"}'] == 10  # the dead worker's requests still count
    assert f'preforkit_worker_rss_bytes{{worker="{victim}"}}' not in after


def test_not_found_and_bad_address(metrics_server, tmp_path):
    response = requests.get(f"http://127.0.0.1:{metrics_server.metrics_port}/other", timeout=5)
    assert response.status_code == 404
    result = subprocess.run(
        [sys.executable, "-m", "preforkit", APP, "-b", "127.0.0.1:0", "--metrics-bind", "127.0.0.1:notaport"],
        capture_output=True, text=True, timeout=30, cwd=os.path.dirname(os.path.dirname(__file__)),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: invalid value for metrics_bind from command line: '127.0.0.1:notaport' is not HOST:PORT"
        " (for example 127.0.0.1:9100)"
    ]
    busy = subprocess.run(
        [sys.executable, "-m", "preforkit", APP, "-b", "127.0.0.1:0", "--metrics-bind",
         f"127.0.0.1:{metrics_server.metrics_port}"],
        capture_output=True, text=True, timeout=30, cwd=os.path.dirname(os.path.dirname(__file__)),
    )  # fmt: skip
    assert busy.returncode == 2
    assert (
        busy.stderr.strip()
        .splitlines()[-1]
        .startswith(f"Error: cannot serve metrics at 127.0.0.1:{metrics_server.metrics_port}: [Errno 98]")
    ), busy.stderr


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed (Debian package)")
def test_a_real_prometheus_scrapes_the_request_count(metrics_server, tmp_path):
    prometheus_port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: preforkit\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{metrics_server.metrics_port}']\n"
    )
    prometheus = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{prometheus_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        sent = 25
        with requests.Session() as session:
            for _ in range(sent):
                assert session.get(f"http://127.0.0.1:{metrics_server.port}/", timeout=5).status_code == 200
        query = urllib.parse.urlencode({"query": "sum(preforkit_requests_total)"})
        deadline = time.monotonic() + 60
        value = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{prometheus_port}/api/v1/query?{query}", timeout=5) as r:
                    result = json.load(r)["data"]["result"]
                value = float(result[0]["value"][1]) if result else None
            except OSError:
                value = None  # Prometheus still starting
            if value == sent:
                break
            time.sleep(0.25)
        assert value == sent, f"Prometheus reports {value}, {sent} sent"
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
