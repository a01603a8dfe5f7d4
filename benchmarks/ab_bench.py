"""The seed's ``ab -n 500000 -c 10000 -k`` against a memory-capped server.

    python benchmarks/ab_bench.py                                   # preforkit, 500,000 requests, -c 10000
    python benchmarks/ab_bench.py --servers preforkit,gunicorn-gevent,uvicorn
    python benchmarks/ab_bench.py --defaults --servers preforkit,gunicorn-gevent,uvicorn,granian

``--defaults`` runs every server as a new user would: its default settings
and the soft open-file limit shells and systemd give (1024; ``--soft-limit``),
the hard limit as the machine has it.

Each server runs one worker pinned to CPU 0 and serves the 13-byte hello of
``benchmarks/apps.py``; ApacheBench runs on CPU 1 with keep-alive.  preforkit
runs with ``--max-worker-memory 128M`` (the master recycles a worker above
it), so the figure to watch is the peak RSS of the whole process tree,
sampled every 0.1 s, next to ab's failed requests.  Needs ``ab`` (Debian
package apache2-utils) and an open-file limit above the concurrency.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from http_bench import free_port, stop, wait_for_port  # noqa: E402
from longpoll_bench import tree_rss  # noqa: E402

SERVERS = {
    "preforkit": [
        "{python}", "-m", "preforkit", "apps:ring", "-b", "127.0.0.1:{port}", "--log-level", "warning",
        "--max-worker-memory", "128M", "--worker-connections", "{connections}", "--backlog", "4096",
    ],
    "gunicorn-gevent": [
        "{python}", "-m", "gunicorn", "-k", "gevent", "-w", "1", "-b", "127.0.0.1:{port}", "--log-level", "warning",
        "--worker-connections", "{connections}", "--backlog", "4096", "apps:wsgi",
    ],
    "uvicorn": [
        "{python}", "-m", "uvicorn", "--http", "httptools", "--loop", "uvloop", "--workers", "1", "--port", "{port}",
        "--log-level", "warning", "--no-access-log", "--backlog", "4096", "apps:asgi",
    ],
    "granian": [
        "{python}", "-m", "granian", "--interface", "wsgi", "--workers", "1", "--port", "{port}",
        "--log-level", "warning", "--no-ws", "--backlog", "4096", "apps:wsgi",
    ],
}  # fmt: skip

DEFAULT_SERVERS = {
    "preforkit": ["{python}", "-m", "preforkit", "apps:ring", "-b", "127.0.0.1:{port}", "--log-level", "warning"],
    "gunicorn-gevent": ["{python}", "-m", "gunicorn", "-k", "gevent", "-b", "127.0.0.1:{port}", "apps:wsgi"],
    "uvicorn": ["{python}", "-m", "uvicorn", "--port", "{port}", "--no-access-log", "apps:asgi"],
    "granian": ["{python}", "-m", "granian", "--interface", "wsgi", "--port", "{port}", "apps:wsgi"],
}  # fmt: skip


class PeakRSS(threading.Thread):
    """Samples the RSS of a process tree until stopped; ``peak`` is the highest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0  # the whole tree
        self.peak_process = 0  # the largest single process (for preforkit: the worker)
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.1):
            try:
                root = psutil.Process(self.pid)
                sizes = [p.memory_info().rss for p in [root, *root.children(recursive=True)]]
            except psutil.Error:
                continue
            self.peak = max(self.peak, sum(sizes))
            self.peak_process = max(self.peak_process, *sizes)

    def stop(self) -> None:
        self._done.set()
        self.join()


def run_ab(port: int, requests: int, concurrency: int, cpu: str) -> dict:
    command = ["taskset", "-c", cpu, "ab", "-q", "-k", "-r", "-s", "60", "-n", str(requests), "-c", str(concurrency)]
    output = subprocess.run([*command, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=900).stdout

    def field(name: str) -> float:
        match = re.search(rf"^{name}:\s+([\d.]+)", output, re.MULTILINE)
        return float(match[1]) if match else float("nan")

    non_2xx = re.search(r"^Non-2xx responses:\s+(\d+)", output, re.MULTILINE)
    return {
        "complete": int(field("Complete requests")),
        "failed": int(field("Failed requests")),
        "non_2xx": int(non_2xx[1]) if non_2xx else 0,
        "rps": field("Requests per second"),
        "seconds": field("Time taken for tests"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500_000)
    parser.add_argument("--concurrency", type=int, default=10_000)
    parser.add_argument("--servers", default="preforkit")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    parser.add_argument("--defaults", action="store_true", help="default settings, soft open-file limit 1024")
    parser.add_argument("--soft-limit", type=int, default=1024, help="the servers' soft limit with --defaults")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.concurrency + 1000
    if hard < needed:
        sys.exit(f"the open-file limit ({hard}) is below the {needed} this run needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))  # inherited by the server and ab

    rows = []
    for name in args.servers.split(","):
        port = free_port()
        commands = DEFAULT_SERVERS if args.defaults else SERVERS
        command = [
            part.format(python=sys.executable, port=port, connections=args.concurrency + 500) for part in commands[name]
        ]
        server_soft = min(args.soft_limit, hard) if args.defaults else max(soft, needed)
        with tempfile.TemporaryFile("w+") as log:
            process = subprocess.Popen(
                ["taskset", "-c", args.server_cpu, *command], cwd=HERE, start_new_session=True,
                env=dict(os.environ, PYTHONPATH=HERE + os.pathsep + ROOT), stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=lambda limit=server_soft: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard)),
            )  # fmt: skip
            try:
                wait_for_port(port)
                time.sleep(1)  # workers forked and serving
                idle_rss = tree_rss(process.pid)
                sampler = PeakRSS(process.pid)
                sampler.start()
                result = run_ab(port, args.requests, args.concurrency, args.client_cpu)
                sampler.stop()
            finally:
                stop(process)
            log.seek(0)
            recycled = len(re.findall(r"is over --max-worker-memory", log.read()))
        rows.append((name, result, idle_rss, sampler.peak, sampler.peak_process, recycled))
        print(f"{name:<16} {result}  peak RSS {sampler.peak / 2**20:.1f} MiB", flush=True)

    how = f"default settings, soft open-file limit {args.soft_limit}" if args.defaults else "tuned settings"
    print(f"\n{datetime.date.today()}, `ab -k -n {args.requests} -c {args.concurrency}`, server on CPU "
          f"{args.server_cpu}, ab on CPU {args.client_cpu}, one worker, {how}\n")  # fmt: skip
    print("| server | complete | failed | non-2xx | req/s | idle RSS | peak RSS, whole tree | peak RSS, largest "
          "process | worker recycles |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, result, idle_rss, peak, peak_process, recycled in rows:
        print(
            f"| {name} | {result['complete']:,} | {result['failed']:,} | {result['non_2xx']:,} | "
            f"{result['rps']:,.0f} | {idle_rss / 2**20:.1f} MiB | {peak / 2**20:.1f} MiB | "
            f"{peak_process / 2**20:.1f} MiB | {recycled} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
