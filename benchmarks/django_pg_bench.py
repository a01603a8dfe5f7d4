"""Django on PostgreSQL (psycopg2): preforkit against gunicorn, side by side in one run.

The app is ``examples/django_app`` with ``DATABASE_URL`` set; two views:
``/db/items/<id>`` (one indexed query) and ``/db/sleep?seconds=0.05`` (a 50 ms
``pg_sleep``: a slow query, where a cooperative driver matters).  A
PostgreSQL server is started for the run (``tests/postgres.py``); Django uses
psycopg2 (psycopg 3 is hidden), the driver psycogreen serves.

Servers (server pinned to CPU 0, ``wrk -t1 --latency`` to CPU 1, PostgreSQL free):
- ``preforkit``: one worker, ``CONN_MAX_AGE=60``; ``preforkit-age0``: the same with 0;
- ``gunicorn-gevent``: one ``-k gevent`` worker with psycogreen's
  ``patch_psycopg()`` in ``post_fork``, as its users do, ``CONN_MAX_AGE=0``;
  ``gunicorn-gevent-age60``: the same with 60 (a greenlet per client
  connection: keep-alive clients keep their database connection);
- ``gunicorn-sync``: ``-w 4`` sync workers, ``CONN_MAX_AGE=60``.

Prints a Markdown table: req/s, p99 latency, errors (socket errors + non-2xx)
and the server's peak RSS (master + workers, sampled every 0.1 s).

    python benchmarks/django_pg_bench.py --duration 10
    python benchmarks/django_pg_bench.py --servers preforkit,gunicorn-gevent --connections 50

Needs wrk, PostgreSQL (Debian packages) and pip install -e '.[test,bench]'.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from ab_bench import PeakRSS  # noqa: E402
from http_bench import free_port, stop, wait_for_port  # noqa: E402

from tests.postgres import PostgresServer  # noqa: E402

HIDE_PSYCOPG3 = os.path.join(ROOT, "tests", "fixtures", "hide_psycopg")
APP = "examples.django_app.wsgi:application"
GUNICORN_HOOK = """
def post_fork(server, worker):
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
"""

PREFORKIT = ["-m", "preforkit", APP, "-w", "1", "-b", "127.0.0.1:{port}", "--log-level", "warning"]
GUNICORN_GEVENT = ["-m", "gunicorn", "-k", "gevent", "-w", "1", "--worker-connections", "1000", "-c", "{hook}",
                   "-b", "127.0.0.1:{port}", "--log-level", "warning", APP]  # fmt: skip
# name -> (command after the interpreter, CONN_MAX_AGE)
SERVERS = {
    "preforkit": (PREFORKIT, 60),
    "preforkit-age0": (PREFORKIT, 0),
    "gunicorn-gevent": (GUNICORN_GEVENT, 0),
    "gunicorn-gevent-age60": (GUNICORN_GEVENT, 60),
    "gunicorn-sync": (["-m", "gunicorn", "-w", "4", "-b", "127.0.0.1:{port}", "--log-level", "warning", APP], 60),
}

SCENARIOS = {
    "indexed query": "/db/items/{item}",
    "50 ms pg_sleep": "/db/sleep?seconds=0.05",
}


def start(name: str, port: int, database_url: str, hook: str) -> subprocess.Popen:
    arguments, conn_max_age = SERVERS[name]
    command = ["taskset", "-c", "0", sys.executable, *(a.format(port=port, hook=hook) for a in arguments)]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([HIDE_PSYCOPG3, ROOT]),
        DATABASE_URL=f"{database_url}?conn_max_age={conn_max_age}",
    )
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wait_for_port(port)
    return process


def run_wrk(url: str, connections: int, duration: float) -> dict:
    command = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=False)
    output = result.stdout
    if "Requests/sec" not in output:
        raise RuntimeError(f"wrk failed ({' '.join(command)}):\n{output}{result.stderr}")
    errors = 0
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if match:
        errors = sum(int(x) for x in match.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),
        "p99_ms": float(p99[1]) * scale[p99[2]] if p99 else float("nan"),
        "errors": errors + (int(non2xx[1]) if non2xx else 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--servers", default=",".join(SERVERS))
    args = parser.parse_args()
    names = args.servers.split(",")
    unknown = [name for name in names if name not in SERVERS]
    if unknown:
        parser.error(f"unknown server(s): {', '.join(unknown)} (known: {', '.join(SERVERS)})")
    pg = PostgresServer(max_connections=300).start()
    rows = []
    with tempfile.NamedTemporaryFile("w", suffix=".py") as hook:
        hook.write(GUNICORN_HOOK)
        hook.flush()
        try:
            pg.query("CREATE TABLE preforkit_items (id int PRIMARY KEY, name text)")
            pg.query("INSERT INTO preforkit_items SELECT i, 'item ' || i FROM generate_series(1, 10000) i")
            for name in names:
                for scenario, path in SCENARIOS.items():
                    port = free_port()
                    process = start(name, port, pg.url, hook.name)
                    url = f"http://127.0.0.1:{port}{path.format(item=4242)}"
                    try:
                        run_wrk(url, args.connections, 1)  # warm-up: Django's first requests, connections made
                        sampler = PeakRSS(process.pid)
                        sampler.start()
                        result = run_wrk(url, args.connections, args.duration)
                        sampler.stop()
                        result["peak_mib"] = sampler.peak / 2**20
                        result["pg_connections"] = pg.client_connections()
                    finally:
                        stop(process)
                    rows.append((name, scenario, result))
                    print(f"  {name:16} {scenario:15} {result['rps']:8,.0f} req/s", file=sys.stderr, flush=True)
                    time.sleep(0.5)
        finally:
            pg.stop()
    print(f"\nwrk -t1 -c{args.connections} -d{args.duration:g}s --latency; server on CPU 0, wrk on CPU 1\n")
    print("| server | CONN_MAX_AGE | scenario | req/s | p99 | errors | peak RSS | PostgreSQL connections after |")
    print("|---|---|---|---|---|---|---|---|")
    for name, scenario, r in rows:
        print(
            f"| {name} | {SERVERS[name][1]} | {scenario} | {r['rps']:,.0f} | {r['p99_ms']:.1f} ms | {r['errors']} | "
            f"{r['peak_mib']:.1f} MiB | {r['pg_connections']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
