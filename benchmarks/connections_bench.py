"""Many connections on one worker, default settings: memory per connection, and is a newcomer still served?

    python benchmarks/connections_bench.py                          # 10,000 idle + 10,000 held, all servers
    python benchmarks/connections_bench.py --connections 2000 --servers preforkit --kinds idle
    python benchmarks/connections_bench.py --servers preforkit,preforkit-wsgi --kinds idle

Each server runs ONE worker with its default settings (nothing tuned: no
--worker-connections, no raised limits) under the soft open-file limit that
shells and systemd give, 1024 (``--soft-limit``; the hard limit stays as the
machine has it).  For each kind of connection:

- ``idle``: N clients each send ``GET /`` and read the answer, then stay
  connected (idle keep-alive);
- ``held``: N clients each send ``GET /poll``, which the server holds (a long
  poll; preforkit's ``async_response``, a parked greenlet for gunicorn, an
  awaiting coroutine for uvicorn and granian).

It reports how many of the N were answered (idle) or accepted and held, how
many the server still keeps open when measured (gunicorn closes idle
keep-alive connections after 2 s by default), the RSS of the whole server
process tree before and after, the RSS added per open connection, and how
long a NEW client then waits for ``GET /`` (5 s cap: "none" means it got no
answer).  Clients run in this process, on CPU 1.
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
from longpoll_bench import tree_rss  # noqa: E402

SERVERS = {
    "preforkit": ["{python}", "-m", "preforkit", "longpoll_apps:ring", "-b", "127.0.0.1:{port}"],
    # WSGI: an idle connection keeps its last environ; measure it with --kinds idle
    # (a held WSGI request blocks a greenlet: that is gunicorn-gevent's shape, not preforkit's)
    "preforkit-wsgi": ["{python}", "-m", "preforkit", "longpoll_apps:wsgi", "-b", "127.0.0.1:{port}"],
    "gunicorn-gevent": ["{python}", "-m", "gunicorn", "-k", "gevent", "-b", "127.0.0.1:{port}", "longpoll_apps:wsgi"],
    "uvicorn": ["{python}", "-m", "uvicorn", "--port", "{port}", "--no-access-log", "longpoll_apps:asgi"],
    "granian": ["{python}", "-m", "granian", "--interface", "asgi", "--port", "{port}", "longpoll_apps:asgi"],
}  # fmt: skip

PATHS = {"idle": b"/", "held": b"/poll"}


def start(name: str, port: int, soft_limit: int, cpu: str) -> subprocess.Popen:
    command = [part.format(python=sys.executable, port=port) for part in SERVERS[name]]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft_limit, hard), hard))

    process = subprocess.Popen(
        ["taskset", "-c", cpu, *command],
        cwd=HERE,
        env=dict(os.environ, PYTHONPATH=HERE + os.pathsep + ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=limits,
    )
    wait_for_port(port)
    time.sleep(1)  # workers forked and serving
    return process


def open_clients(port: int, count: int, path: bytes, kind: str, seconds: float = 30) -> tuple[list, int]:
    """``count`` clients each send one request; returns (sockets, how many got an answer or look held)."""
    request = b"GET " + path + b" HTTP/1.1\r\nHost: bench\r\n\r\n"
    selector = selectors.DefaultSelector()
    sockets = []
    answered = 0
    for i in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE)
        sockets.append(sock)
        if i % 500 == 499:
            answered += _pump(selector, request, 0.05)  # keep the accept backlog from overflowing
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answered += _pump(selector, request, 0.5)
        if kind == "idle" and answered >= count:
            break
        if kind == "held" and not any(key.events & selectors.EVENT_WRITE for key in selector.get_map().values()):
            break
    return sockets, answered


def _pump(selector, request: bytes, timeout: float) -> int:
    """Send requests on connected sockets; count answers read.  Returns answers seen."""
    answers = 0
    for key, events in selector.select(timeout=timeout):
        sock = key.fileobj
        if events & selectors.EVENT_WRITE:
            try:
                sock.send(request)
            except OSError:
                selector.unregister(sock)
                continue
            selector.modify(sock, selectors.EVENT_READ)
        elif events & selectors.EVENT_READ:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            selector.unregister(sock)
            if data.startswith(b"HTTP/1.1 200"):
                answers += 1
    return answers


def newcomer_wait(port: int, cap: float = 5.0) -> float | None:
    """Seconds a new client waits for ``GET /`` (None: no answer within ``cap``)."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=cap) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = sock.recv(4096)
    except OSError:
        return None
    return time.monotonic() - started if data.startswith(b"HTTP/1.1 ") else None


def held_count(port: int) -> int | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /count HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        return int(data.rpartition(b"\r\n\r\n")[2])
    except (OSError, ValueError):
        return None


def measure(name: str, kind: str, count: int, soft_limit: int, cpu: str) -> dict:
    port = free_port()
    process = start(name, port, soft_limit, cpu)
    sockets: list = []
    try:
        before = tree_rss(process.pid)
        sockets, answered = open_clients(port, count, PATHS[kind], kind)
        if kind == "held":
            answered = held_count(port) or 0
        after = tree_rss(process.pid)
        still_open = sum(_is_open(sock) for sock in sockets)
        wait = newcomer_wait(port)
    finally:
        for sock in sockets:
            sock.close()
        stop(process)
    return {"ok": answered, "open": still_open, "before": before, "after": after, "wait": wait}


def _is_open(sock: socket.socket) -> bool:
    """The server has not closed this connection (nothing to read, no EOF)."""
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--servers", default="preforkit,gunicorn-gevent,uvicorn,granian")
    parser.add_argument("--kinds", default="idle,held")
    parser.add_argument("--soft-limit", type=int, default=1024, help="the servers' soft open-file limit")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the clients' own sockets
    os.sched_setaffinity(0, {int(args.client_cpu)})
    rows = []
    for kind in args.kinds.split(","):
        for name in args.servers.split(","):
            print(f"{kind}: {name} ...", file=sys.stderr, flush=True)
            result = measure(name, kind, args.connections, args.soft_limit, args.server_cpu)
            rows.append((kind, name, result))
            print(f"  {result}", file=sys.stderr, flush=True)
    print(
        f"\n{datetime.date.today()}, {args.connections} connections per kind, one worker, default settings, "
        f"soft open-file limit {args.soft_limit} (hard {hard}), server on CPU {args.server_cpu}\n"
    )
    print(
        "| kind | server | answered / held | still open | RSS before | RSS after | added per open connection "
        "| a new client waits |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for kind, name, r in rows:
        per = (r["after"] - r["before"]) / max(r["open"], 1) / 1024
        wait = "no answer in 5 s" if r["wait"] is None else f"{r['wait'] * 1000:.0f} ms"
        print(
            f"| {kind} | {name} | {r['ok']:,} | {r['open']:,} | {r['before'] / 2**20:.1f} MiB "
            f"| {r['after'] / 2**20:.1f} MiB | {per:.2f} KiB | {wait} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
