"""WebSocket echo round-trips/s, server CPU per round-trip, and idle memory, side by side.

    python benchmarks/ws_bench.py                 # 100 connections x 200 round-trips, 64 B and 1 KB
    python benchmarks/ws_bench.py --idle 2000     # also RSS per idle connection

Every server runs one process pinned to CPU 0; the client (raw asyncio
frames, precomputed and masked, so the client is not the bottleneck) runs
on CPU 1.  No compression anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import socket
import subprocess
import sys
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SERVERS = {
    "preforkit": [
        "{python}", "-m", "preforkit", "ws_apps:ring", "-b", "127.0.0.1:{port}", "--log-level", "warning",
        "--no-ws-compression", "--worker-connections", "20000",
    ],
    "preforkit-pure": [  # the pure-Python path (PREFORKIT_PURE_PYTHON=1)
        "{python}", "-m", "preforkit", "ws_apps:ring", "-b", "127.0.0.1:{port}", "--log-level", "warning",
        "--no-ws-compression", "--worker-connections", "20000",
    ],
    "websockets": ["{python}", "ws_apps.py", "websockets", "{port}"],
    "uvicorn": [
        "{python}", "-m", "uvicorn", "--ws", "websockets", "--loop", "uvloop", "--http", "httptools",
        "--port", "{port}", "--log-level", "warning", "--ws-per-message-deflate", "false", "ws_apps:asgi",
    ],
    "aiohttp": ["{python}", "ws_apps.py", "aiohttp", "{port}"],
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def masked_text_frame(payload: bytes) -> bytes:
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    length = len(payload)
    extended = length.to_bytes(2, "big") if length >= 126 else b""
    head = bytes([0x81, 0x80 | min(length, 126)]) + extended
    return head + mask + masked


class EchoClient(asyncio.Protocol):
    def __init__(self, frame: bytes, reply_size: int, rounds: int, done: asyncio.Future) -> None:
        self.frame = frame
        self.reply_size = reply_size
        self.rounds = rounds
        self.done = done
        self.buffer = b""
        self.upgraded = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.done.set_exception(RuntimeError(self.buffer[:200]))
                return
            self.buffer = self.buffer[end + 4 :]
            self.upgraded = True
            if self.rounds == 0:
                self.done.set_result(None)
                return
            self.transport.write(self.frame)
        while len(self.buffer) >= self.reply_size:
            self.buffer = self.buffer[self.reply_size :]
            self.rounds -= 1
            if self.rounds == 0:
                if not self.done.done():
                    self.done.set_result(None)
                return
            self.transport.write(self.frame)


async def run_clients(port: int, connections: int, rounds: int, size: int, keep_open: bool = False):
    loop = asyncio.get_running_loop()
    payload = b"x" * size
    frame = masked_text_frame(payload)
    reply_size = (2 if size < 126 else 4) + size
    futures, transports = [], []
    started = time.perf_counter()
    for _ in range(connections):
        done = loop.create_future()
        transport, _ = await loop.create_connection(
            lambda done=done: EchoClient(frame, reply_size, rounds, done), "127.0.0.1", port
        )
        futures.append(done)
        transports.append(transport)
    await asyncio.wait_for(asyncio.gather(*futures), 300)
    elapsed = time.perf_counter() - started
    if not keep_open:
        for transport in transports:
            transport.close()
    return elapsed, transports


def tree(pid: int) -> list[psutil.Process]:
    process = psutil.Process(pid)
    return [process, *process.children(recursive=True)]


def cpu_seconds(pid: int) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in tree(pid))


def rss(pid: int) -> int:
    return sum(p.memory_info().rss for p in tree(pid))


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def measure(name: str, args) -> dict:
    port = free_port()
    command = [part.format(python=sys.executable, port=port) for part in SERVERS[name]]
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + ROOT)
    if name == "preforkit-pure":
        env["PREFORKIT_PURE_PYTHON"] = "1"
    process = subprocess.Popen(
        ["taskset", "-c", args.server_cpu, *command], cwd=HERE, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    result = {}
    try:
        wait_for_port(port)
        asyncio.run(run_clients(port, 10, 50, 64))  # warm-up
        for size in (64, 1024):
            before = cpu_seconds(process.pid)
            elapsed, _ = asyncio.run(run_clients(port, args.connections, args.rounds, size))
            cpu = cpu_seconds(process.pid) - before
            total = args.connections * args.rounds
            result[size] = (total / elapsed, cpu / total * 1e6)
        if args.idle:
            baseline = rss(process.pid)

            async def hold():
                _, transports = await run_clients(port, args.idle, 0, 64, keep_open=True)
                await asyncio.sleep(1)
                held = rss(process.pid)
                for transport in transports:
                    transport.close()
                return held

            result["idle"] = (asyncio.run(hold()) - baseline) / args.idle
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--idle", type=int, default=0, help="also measure RSS per idle connection with N open")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    os.sched_setaffinity(0, {int(args.client_cpu)})
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results = {}
    names = args.servers.split(",")
    for done, name in enumerate(names, 1):
        results[name] = measure(name, args)
        print(f"[{done}/{len(names)}]", name, results[name], file=sys.stderr, flush=True)
    print(
        f"\n{time.strftime('%Y-%m-%d')}, {args.connections} connections x {args.rounds} round-trips, "
        f"server on CPU {args.server_cpu}, client on CPU {args.client_cpu}\n"
    )
    idle = " | idle RSS/conn" if args.idle else ""
    print(f"| server | 64 B rt/s | 64 B server µs/rt | 1 KB rt/s | 1 KB server µs/rt{idle} |")
    print("|---|---|---|---|---|" + ("---|" if args.idle else ""))
    for name, r in results.items():
        cells = [f"{r[64][0]:,.0f}", f"{r[64][1]:.1f}", f"{r[1024][0]:,.0f}", f"{r[1024][1]:.1f}"]
        if args.idle:
            cells.append(f"{r['idle'] / 1024:.2f} KiB")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
