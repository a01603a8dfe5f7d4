"""Legacy stacks on a real PostgreSQL: C drivers that cooperate, connections that do not leak.

Each test starts what it needs: a PostgreSQL server (``tests/postgres.py``),
preforkit with ONE worker, Django on psycopg2 or psycopg 3, SQLAlchemy, a
gRPC server.  Without the integrations, 50 concurrent ``pg_sleep(1)`` take
30 s and more on one worker (psycopg2 holds its only thread), and Django's
persistent connections pile up until PostgreSQL refuses clients.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from . import postgres

pytestmark = pytest.mark.skipif(postgres.available() is not None, reason=postgres.available() or "")

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
DJANGO = "examples.django_app.wsgi:application"
# Django prefers psycopg 3 when both are installed; hiding it makes Django use psycopg2.
DRIVERS = {"psycopg2": os.path.join(FIXTURES, "hide_psycopg"), "psycopg": None}


@pytest.fixture(scope="module")
def pg():
    server = postgres.PostgresServer(max_connections=300).start()
    try:
        server.query("CREATE TABLE preforkit_items (id int PRIMARY KEY, name text)")
        server.query("INSERT INTO preforkit_items SELECT i, 'item ' || i FROM generate_series(1, 1000) i")
        yield server
    finally:
        server.stop()


def _env(driver: str | None = None, **extra: str) -> dict:
    paths = [p for p in (DRIVERS.get(driver), os.path.dirname(FIXTURES)) if p]
    return {"PYTHONPATH": os.pathsep.join([*paths, os.path.dirname(os.path.dirname(FIXTURES))]), **extra}


def _concurrently(count: int, function) -> list:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(function, range(count)))


def _get(url: str, session=None):
    try:
        return (session or requests).get(url, timeout=60).status_code
    except requests.RequestException as exc:
        return type(exc).__name__


def _tally(results) -> dict:
    return {result: results.count(result) for result in set(results)}


@pytest.mark.parametrize(("driver", "options"), [("psycopg2", ()), ("psycopg", ()), ("psycopg2", ("--preload",))])
def test_fifty_slow_queries_share_one_worker(cli_server, pg, driver, options):
    server = cli_server(DJANGO, "-b", "127.0.0.1:0", "-w", "1", *options, env=_env(driver, DATABASE_URL=pg.url))
    base = f"http://127.0.0.1:{server.port}"
    assert requests.get(base + "/db/sleep?seconds=0", timeout=10).status_code == 200  # Django's first request
    started = time.monotonic()
    results = _concurrently(50, lambda _: _get(base + "/db/sleep?seconds=1"))
    elapsed = time.monotonic() - started
    assert results == [200] * 50, _tally(results)
    assert elapsed < 3, f"50 x pg_sleep(1) took {elapsed:.1f} s on one worker (serial: 50 s)"
    applied = {"psycopg2": "psycopg2: queries wait in the hub", "psycopg": "psycopg: waits through the patched"}
    assert server.wait_for(re.escape(applied[driver]), timeout=5), server.output


@pytest.mark.parametrize("conn_max_age", [0, 60])
@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_django_connections_stay_bounded(cli_server, pg, driver, conn_max_age):
    """2,000 requests at 50 concurrent: none fails, at most ~one server connection per concurrent request."""
    url = f"{pg.url}?conn_max_age={conn_max_age}"
    server = cli_server(DJANGO, "-b", "127.0.0.1:0", "-w", "1", env=_env(driver, DATABASE_URL=url))
    base = f"http://127.0.0.1:{server.port}"
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], pg.client_connections())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def client(_):
        with requests.Session() as session:
            return [_get(f"{base}/db/items/{i % 1000 + 1}", session) for i in range(40)]

    try:
        results = [result for chunk in _concurrently(50, client) for result in chunk]
    finally:
        done.set()
        sampler.join(10)
    assert results == [200] * 2000, _tally(results)
    left = pg.client_connections()
    assert peak[0] <= 55, f"{peak[0]} server connections at once for 50 concurrent requests"
    if conn_max_age:
        assert left <= 55, left  # kept for reuse, one per pooled greenlet
    else:
        assert left == 0, f"{left} connections left open with CONN_MAX_AGE=0"
    server.stop()
    assert _wait_until(lambda: pg.client_connections() == 0), "connections still open after the server stopped"


def _wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_sqlalchemy_queue_pool_under_fifty_concurrent(cli_server, pg):
    sqlalchemy_url = f"postgresql+psycopg2://{postgres.USER}@127.0.0.1:{pg.port}/postgres"
    server = cli_server(
        "tests.fixtures.legacy_apps:sqlalchemy_app", "-b", "127.0.0.1:0", "-w", "1",
        env=_env("psycopg2", SQLALCHEMY_URL=sqlalchemy_url),
    )  # fmt: skip
    base = f"http://127.0.0.1:{server.port}"
    started = time.monotonic()
    results = _concurrently(50, lambda _: _get(base + "/sleep?seconds=0.2"))
    elapsed = time.monotonic() - started
    assert results == [200] * 50, _tally(results)
    assert pg.client_connections() <= 10  # the pool's size: the other 40 requests waited for a connection
    # 50 x 0.2 s through 10 connections: five rounds, not fifty.
    assert elapsed < 5, elapsed


@pytest.fixture
def grpc_server():
    process = subprocess.Popen(
        [sys.executable, os.path.join(FIXTURES, "grpc_sleep_server.py")], stdout=subprocess.PIPE, text=True
    )
    try:
        yield f"127.0.0.1:{int(process.stdout.readline())}"
    finally:
        process.kill()
        process.wait()


def test_grpc_calls_share_one_worker(cli_server, grpc_server):
    server = cli_server(
        "tests.fixtures.legacy_apps:grpc_app", "-b", "127.0.0.1:0", "-w", "1", env=_env(GRPC_TARGET=grpc_server)
    )
    base = f"http://127.0.0.1:{server.port}"
    assert requests.get(base + "/?seconds=0", timeout=10).status_code == 200
    started = time.monotonic()
    results = _concurrently(50, lambda _: _get(base + "/?seconds=1"))
    elapsed = time.monotonic() - started
    assert results == [200] * 50, _tally(results)
    assert elapsed < 3, f"50 gRPC calls of 1 s took {elapsed:.1f} s on one worker"
    assert server.wait_for(r"grpc: init_gevent\(\)", timeout=5), server.output
