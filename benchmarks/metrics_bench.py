"""How long a Prometheus scrape of the master takes, with N workers under load.

    python benchmarks/metrics_bench.py --workers 8 --scrapes 200

Starts preforkit with ``--metrics-bind``, keeps ``wrk -c50`` on the app (CPU 1)
so the workers are busy, and times ``GET /metrics`` over fresh connections,
as Prometheus makes them.  Prints p50, p99 and the slowest scrape.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from http_bench import ROOT, free_port, stop, wait_for_port  # noqa: E402


def scrape(port: int) -> float:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        while sock.recv(65536):
            pass
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    port, metrics_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "preforkit", "apps:ring", "-b", f"127.0.0.1:{port}", "-w", str(args.workers),
         "--metrics-bind", f"127.0.0.1:{metrics_port}", "--log-level", "warning"],
        cwd=HERE, env=dict(os.environ, PYTHONPATH=HERE + os.pathsep + ROOT),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    wrk = None
    try:
        wait_for_port(port)
        wait_for_port(metrics_port)
        time.sleep(2)  # every worker booted
        seconds = args.scrapes * 0.05 + 10
        wrk = subprocess.Popen(
            ["taskset", "-c", "1", "wrk", "-t1", "-c50", f"-d{seconds:.0f}s", f"http://127.0.0.1:{port}/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1)
        times = sorted(scrape(metrics_port) for _ in range(args.scrapes))
    finally:
        if wrk is not None:
            wrk.kill()
            wrk.wait()
        stop(process)
    p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"{args.workers} workers under wrk -c50, {args.scrapes} scrapes: "
          f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
