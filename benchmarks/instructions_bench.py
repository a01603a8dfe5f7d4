"""Instructions per request, counted by callgrind: a figure no noisy machine can blur.

    python benchmarks/instructions_bench.py                          # this checkout
    python benchmarks/instructions_bench.py --previous /tmp/old-main # and another, side by side
    python benchmarks/instructions_bench.py --pure-python --granian  # and its pure-Python path, and granian
    python benchmarks/instructions_bench.py --wsgi                   # and the same app through WSGI

The server (``preforkit.run_server``: one process, no master) runs under
``valgrind --tool=callgrind``; ApacheBench sends a first batch of requests,
``callgrind_control --dump`` writes the count so far (start-up included,
shutdown not), and the server stops.  The same
is done with a larger batch; the difference divided by the extra requests is
the cost of one request, start-up and shutdown cancelled out.  Scenarios:
keep-alive hello, the same with every request head different (a Python
client; the head memo cannot help), ``Connection: close`` hello, keep-alive
4 KB POST echo.

``--granian`` counts granian (one worker, WSGI, the same app) the same way:
its worker process, all of its threads (callgrind follows the fork; the
process with the most instructions is the worker).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from http_bench import free_port, wait_for_port  # noqa: E402

SERVER = "import apps; from preforkit import run_server; run_server(apps.{app}, port={port}, log_level='warning')"
GRANIAN = ["-m", "granian", "--interface", "wsgi", "--workers", "1", "--port", "{port}", "--log-level", "warning",
           "--no-ws", "apps:wsgi"]  # fmt: skip
NEW_HEADS = ["new heads"]  # not ab: _send_new_heads
NEW_HEAD = b"GET /?n=%d HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
SCENARIOS = {
    "hello keep-alive": ["-k", "-c", "10"],
    "hello keep-alive (every head new)": NEW_HEADS,
    "hello Connection: close": ["-c", "10"],
    "4 KB POST echo keep-alive": ["-k", "-c", "10", "-p", "{post}", "-T", "application/octet-stream"],
}
PATHS = {"4 KB POST echo keep-alive": "/echo"}


def instructions(target: dict, scenario: str, requests: int, post_file: str) -> int:
    """Total instructions of a server process that answered ``requests`` requests."""
    port = free_port()
    with tempfile.TemporaryDirectory() as out:
        out_file = os.path.join(out, "callgrind.out.%p")
        if target.get("granian"):
            command = [part.format(port=port) for part in GRANIAN]
        else:
            command = ["-c", SERVER.format(port=port, app=target.get("app", "ring"))]
        process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={out_file}",
             sys.executable, *command],
            cwd=HERE, env=dict(os.environ, PYTHONPATH=HERE + os.pathsep + target["root"], **target.get("env", {})),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        pids: list[str] = []
        try:
            wait_for_port(port, timeout=300)  # valgrind starts slowly on a busy machine
            if SCENARIOS[scenario] == NEW_HEADS:
                _send_new_heads(port, requests)
            else:
                args = [arg.format(post=post_file) for arg in SCENARIOS[scenario]]
                path = PATHS.get(scenario, "/")
                result = subprocess.run(
                    ["ab", "-q", "-n", str(requests), *args, f"http://127.0.0.1:{port}{path}"],
                    capture_output=True, text=True, timeout=600, check=False,
                )  # fmt: skip
                failed = re.search(r"Failed requests:\s+(\d+)", result.stdout)
                if failed is None or int(failed[1]):
                    raise RuntimeError(f"ab failed: {result.stdout[-500:]}{result.stderr[-500:]}")
            # Counted now, before any shutdown work (granian under valgrind may never finish its own).
            pids = [str(pid) for pid in _process_tree(process.pid)]
            subprocess.run(["callgrind_control", "--dump", *pids], capture_output=True, timeout=300, check=False)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=60)
            for pid in pids:  # granian's worker, if it outlived its parent
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        totals = []
        for name in os.listdir(out):
            if not name.endswith(".1"):  # the dump taken after the requests, not the one at exit
                continue
            with open(os.path.join(out, name)) as file:
                summary = re.search(r"^(?:summary|totals): (\d+)", file.read(), re.MULTILINE)
            if summary:
                totals.append(int(summary[1]))
        return max(totals)  # the process that served (granian: its worker, not the parent)


def _send_new_heads(port: int, requests: int, connections: int = 10) -> None:
    """Keep-alive hellos whose heads all differ (``/?n=<i>``): what the head memo cannot help.
    Ten connections, a request on each, then the ten responses, as ``ab -k -c 10`` batches them."""
    clients = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(connections)]
    try:
        sent = 0
        while sent < requests:
            batch = clients[: requests - sent]
            for client in batch:
                client.sendall(
                    b"GET /?n=%d HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n" % sent
                )
                sent += 1
            for client in batch:
                _read_response(client)
    finally:
        for client in clients:
            client.close()


def _read_response(client: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += client.recv(65536) or _closed()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected response {head[:80]!r}")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])
    while len(body) < length:
        body += client.recv(65536) or _closed()


def _closed() -> bytes:
    raise RuntimeError("the server closed the connection")


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (granian's worker is a child of its main process)."""
    found = [pid]
    for parent in found:
        try:
            for task in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{task}/children") as file:
                    found.extend(int(child) for child in file.read().split())
        except OSError:
            continue
    return found


def _cell(count: float | None, ours: float | None) -> str:
    """A table cell: the count, and its ratio to preforkit's when both were counted."""
    if count is None:
        return "not counted"
    return f"{count:,.0f}" if not ours else f"{count:,.0f} (x{count / ours:.2f})"


def per_request(target: dict, scenario: str, small: int, large: int, post_file: str) -> float:
    return (instructions(target, scenario, large, post_file) - instructions(target, scenario, small, post_file)) / (
        large - small
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--previous", metavar="DIR", help="another preforkit checkout to count beside this one")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=4000)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated scenario names")
    parser.add_argument("--pure-python", action="store_true", help="also this checkout with PREFORKIT_PURE_PYTHON=1")
    parser.add_argument("--wsgi", action="store_true", help="also this checkout serving the WSGI app")
    parser.add_argument("--granian", action="store_true", help="also granian, one worker, WSGI")
    args = parser.parse_args()
    scenarios = [name for name in SCENARIOS if name in args.scenarios.split(",")]
    targets = {"preforkit": {"root": ROOT}}
    if args.pure_python:
        targets["pure-python"] = {"root": ROOT, "env": {"PREFORKIT_PURE_PYTHON": "1"}}
    if args.wsgi:
        targets["wsgi"] = {"root": ROOT, "app": "wsgi"}
    if args.previous:
        targets["previous"] = {"root": os.path.abspath(args.previous)}
    if args.granian:
        targets["granian"] = {"root": ROOT, "granian": True}
    with tempfile.NamedTemporaryFile("wb", suffix=".bin") as post:
        post.write(b"x" * 4096)
        post.flush()
        rows = {}
        for scenario in scenarios:
            for name, target in targets.items():
                try:
                    rows[name, scenario] = per_request(target, scenario, args.small, args.large, post.name)
                except (RuntimeError, subprocess.TimeoutExpired) as error:  # one lost count, not the whole run
                    rows[name, scenario] = None
                    print(f"{name:11} {scenario:28} not counted: {error}", file=sys.stderr)
                    continue
                print(f"{name:11} {scenario:28} {rows[name, scenario]:,.0f} instructions/request", file=sys.stderr)
    print("\n| scenario | " + " | ".join(targets) + " |")
    print("|---|" + "---|" * len(targets))
    for scenario in scenarios:
        ours = rows["preforkit", scenario]
        cells = [_cell(rows[name, scenario], ours if name != "preforkit" else None) for name in targets]
        print(f"| {scenario} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
