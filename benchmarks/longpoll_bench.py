"""Memory of N held long-polls: preforkit vs gunicorn -k gevent, one worker each, same run.

    python benchmarks/longpoll_bench.py --connections 10000

Starts each server, measures the RSS of its whole process tree (master +
worker), opens N connections that each send GET /poll and wait, measures
again once the server reports N held, then releases them all.  Prints the
RSS added per held connection and the total.
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import socket
import subprocess
import sys
import time
import urllib.request

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SERVERS = {
    "preforkit": [
        "{python}", "-m", "preforkit", "longpoll_apps:ring", "-b", "127.0.0.1:{port}", "--log-level", "warning",
        "--worker-connections", "20000",
    ],
    "gunicorn-gevent": [
        "{python}", "-m", "gunicorn", "-k", "gevent", "-w", "1", "-b", "127.0.0.1:{port}", "--log-level", "warning",
        "--worker-connections", "20000", "--timeout", "300", "longpoll_apps:wsgi",
    ],
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as response:
        return response.read().decode()


def tree_pss(pid: int) -> int:
    """Proportional set size of the tree: pages the master and a forked worker share count once."""
    process = psutil.Process(pid)
    return sum(p.memory_full_info().pss for p in [process, *process.children(recursive=True)])


def tree_rss(pid: int) -> int:
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


def wait_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            get(port, "/count")
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def hold(port: int, count: int) -> list[socket.socket]:
    """Open ``count`` connections, each sending one poll; returns the sockets."""
    sockets = []
    selector = selectors.DefaultSelector()
    request = b"GET /poll HTTP/1.1\r\nHost: bench\r\n\r\n"
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE)
        sockets.append(sock)
        if len(sockets) % 500 == 0:  # keep the accept backlog from overflowing
            _send_ready(selector, request, wait=True)
    while selector.get_map():
        _send_ready(selector, request, wait=True)
    return sockets


def _send_ready(selector, request: bytes, wait: bool) -> None:
    deadline = time.monotonic() + 30
    while selector.get_map() and time.monotonic() < deadline:
        events = selector.select(timeout=1 if wait else 0)
        if not events:
            return
        for key, _ in events:
            key.fileobj.send(request)
            selector.unregister(key.fileobj)


def measure(name: str, count: int, cpu: str) -> dict:
    port = free_port()
    command = [part.format(python=sys.executable, port=port) for part in SERVERS[name]]
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + ROOT)
    process = subprocess.Popen(["taskset", "-c", cpu, *command], cwd=HERE, env=env, start_new_session=True)
    try:
        wait_ready(port)
        for _ in range(20):  # warm up the request path
            get(port, "/count")
        before = tree_rss(process.pid)
        sockets = hold(port, count)
        deadline = time.monotonic() + 120
        held = 0
        while time.monotonic() < deadline:
            held = int(get(port, "/count"))
            if held >= count:
                break
            time.sleep(0.2)
        after = tree_rss(process.pid)
        after_pss = tree_pss(process.pid)
        released = get(port, "/release")
        for sock in sockets:
            sock.close()
        return {"held": held, "before": before, "after": after, "after_pss": after_pss, "released": released}
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--server-cpu", default="0")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    results = {name: measure(name, args.connections, args.server_cpu) for name in args.servers.split(",")}
    print(f"\n{time.strftime('%Y-%m-%d')}, {args.connections} held long-polls, one worker each\n")
    print("| server | held | RSS before | RSS with all held | added per connection | PSS with all held |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        per = (r["after"] - r["before"]) / max(r["held"], 1)
        print(
            f"| {name} | {r['held']} | {r['before'] / 2**20:.1f} MiB | {r['after'] / 2**20:.1f} MiB "
            f"| {per / 1024:.2f} KiB | {r['after_pss'] / 2**20:.1f} MiB |"
        )
    if "preforkit" in results and "gunicorn-gevent" in results:
        p, g = results["preforkit"], results["gunicorn-gevent"]
        ratio = ((g["after"] - g["before"]) / max(g["held"], 1)) / max(
            (p["after"] - p["before"]) / max(p["held"], 1), 1
        )
        print(f"\ngunicorn -k gevent uses {ratio:.1f}x the memory per held connection")
    return 0


if __name__ == "__main__":
    sys.exit(main())
