"""Past capacity: twice as many clients as a worker holds, all at once; does every one get an answer?

    python benchmarks/capacity_bench.py                       # --worker-connections 200, 400 clients
    python benchmarks/capacity_bench.py --capacity 1000 --clients 3000

One preforkit worker with ``--worker-connections CAPACITY`` serves a handler
that takes 0.5 s (``GET /slow``, a cooperative sleep).  CLIENTS clients
connect and send it at once; each records the status it got and when.  Then,
the load gone, as many clients as the capacity send a request again: all of
them must be served.  Prints the counts of 200, 503 and no answer, and the
slowest answer of each kind.
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import selectors
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from http_bench import free_port, stop, wait_for_port  # noqa: E402


def burst(port: int, count: int, timeout: float = 10.0) -> list[tuple[int, float]]:
    """``count`` clients send ``GET /slow`` at once: (status or 0 for none, seconds) each."""
    request = b"GET /slow HTTP/1.1\r\nHost: bench\r\n\r\n"
    selector = selectors.DefaultSelector()
    started: dict[socket.socket, float] = {}
    replies: dict[socket.socket, bytes] = {}
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(request)
        sock.setblocking(False)
        started[sock] = time.monotonic()
        replies[sock] = b""
        selector.register(sock, selectors.EVENT_READ)
    results = []
    deadline = time.monotonic() + timeout
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            sock = key.fileobj
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            replies[sock] += data
            if b"\r\n\r\n" in replies[sock] or not data:
                selector.unregister(sock)
                head = replies[sock]
                status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
                results.append((status, time.monotonic() - started[sock]))
    results += [(0, timeout)] * len(selector.get_map())  # no answer at all
    for sock in started:
        sock.close()
    selector.close()
    return results


def summary(results: list[tuple[int, float]]) -> str:
    parts = []
    for status, label in ((200, "200"), (503, "503"), (0, "no answer")):
        times = [t for s, t in results if s == status]
        if times:
            parts.append(f"{label}: {len(times)} clients (slowest {max(times) * 1000:.0f} ms)")
    return ", ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capacity", type=int, default=200)
    parser.add_argument("--clients", type=int, default=400)
    parser.add_argument("--server-cpu", default="0")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = free_port()
    command = [
        sys.executable, "-m", "preforkit", "apps:ring", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
        "--worker-connections", str(args.capacity),
    ]  # fmt: skip
    process = subprocess.Popen(
        ["taskset", "-c", args.server_cpu, *command],
        cwd=HERE,
        env=dict(os.environ, PYTHONPATH=HERE + os.pathsep + ROOT),
        start_new_session=True,
    )
    try:
        wait_for_port(port)
        time.sleep(1)
        over = burst(port, args.clients)
        after = burst(port, args.capacity)
    finally:
        stop(process)
    print(f"\n{datetime.date.today()}, one worker, --worker-connections {args.capacity}, GET /slow (0.5 s)\n")
    print("| load | answers |")
    print("|---|---|")
    print(f"| {args.clients} clients at once | {summary(over)} |")
    print(f"| then {args.capacity} clients at once | {summary(after)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
