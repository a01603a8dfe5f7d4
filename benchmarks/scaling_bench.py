"""Workers: throughput with 1 and 2 workers, how evenly the workers share the
load, and the per-worker connection cap.

    python benchmarks/scaling_bench.py [--duration 10]

On a 2-core machine the load generator shares the cores with the workers
(nothing is pinned here), so two workers cannot double one worker's figure:
the point is how much they add and that neither is starved.  For each
configuration it reports wrk's requests/s and errors, each worker's share of
the CPU time, and each worker's established connections sampled mid-run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import threading
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from http_bench import free_port, run_wrk, stop, wait_for_port  # noqa: E402

CLOSE = {"connections": 50, "path": "/", "headers": ["Connection: close"]}
CONFIGS = [
    # (label, preforkit options, wrk scenario)
    ("1 worker, hello -c100", ["-w", "1"], {"connections": 100, "path": "/"}),
    ("2 workers, hello -c100", ["-w", "2"], {"connections": 100, "path": "/"}),
    ("2 workers --reuse-port, hello -c100", ["-w", "2", "--reuse-port"], {"connections": 100, "path": "/"}),
    ("1 worker, Connection: close -c50", ["-w", "1"], CLOSE),
    ("2 workers, Connection: close -c50", ["-w", "2"], CLOSE),
    (
        "2 workers --worker-connections 300, hello -c1000",
        ["-w", "2", "--worker-connections", "300"],
        {"connections": 1000, "path": "/"},
    ),
]  # fmt: skip


def established(pid: int, port: int) -> int:
    return sum(
        1
        for conn in psutil.Process(pid).net_connections(kind="tcp")
        if conn.status == psutil.CONN_ESTABLISHED and conn.laddr and conn.laddr.port == port
    )


def measure(options: list[str], scenario: dict, duration: float) -> dict:
    port = free_port()
    command = [sys.executable, "-m", "preforkit", "apps:ring", "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    process = subprocess.Popen(
        [*command, *options], cwd=HERE, env=dict(os.environ, PYTHONPATH=HERE + os.pathsep + ROOT),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_port(port)
        workers = []
        deadline = time.monotonic() + 20
        expected = int(options[options.index("-w") + 1])
        while len(workers) < expected and time.monotonic() < deadline:
            workers = psutil.Process(process.pid).children()
            time.sleep(0.1)
        run_wrk(port, scenario, 1, "0,1", HERE)  # warm-up
        cpu_before = [sum(w.cpu_times()[:2]) for w in workers]
        samples: list[list[int]] = []

        def sample() -> None:
            time.sleep(duration / 2)
            samples.append([established(w.pid, port) for w in workers])

        sampler = threading.Thread(target=sample)
        sampler.start()
        rate, errors, non_2xx = run_wrk(port, scenario, duration, "0,1", HERE)
        sampler.join()
        cpu = [sum(w.cpu_times()[:2]) - before for w, before in zip(workers, cpu_before)]
    finally:
        stop(process)
    total_cpu = sum(cpu) or 1.0
    return {
        "rate": rate,
        "errors": errors + non_2xx,
        "cpu_share": [c / total_cpu for c in cpu],
        "connections": samples[0] if samples else [],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    rows = []
    for label, options, scenario in CONFIGS:
        result = measure(options, scenario, args.duration)
        rows.append((label, result))
        print(label, result, flush=True)
    cores = os.cpu_count()
    print(f"\n{datetime.date.today()}, {cores} cores shared by the workers and wrk -t1, {args.duration:g} s each\n")
    print("| configuration | req/s | errors | CPU share per worker | connections per worker (mid-run) |")
    print("|---|---|---|---|---|")
    for label, result in rows:
        shares = " / ".join(f"{share:.0%}" for share in result["cpu_share"])
        connections = " / ".join(str(count) for count in result["connections"])
        print(f"| {label} | {result['rate'] / 1000:.1f}K | {result['errors']} | {shares} | {connections} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
