"""Soak: mixed traffic for N minutes with a zero-downtime reload every minute; RSS sampled every second.

    python benchmarks/soak.py --minutes 30 --plot soak.png       # for RESULTS.md
    python benchmarks/soak.py --seconds 60                        # what CI runs (tests/test_soak.py)

One server, ``-w 2``, serving ``benchmarks/soak_app.py``.  Client threads on
127.0.0.1 keep up: hello, 4 KB POST echoes, long polls (answered 204 after a
second), WebSocket echoes, SSE streams of five events, pub/sub publishes.  The
master gets SIGHUP every ``--reload-every`` seconds.  The RSS of the master
and of every worker is sampled each second.

A failed request is any error or unexpected status, except what a reload
promises: a long poll answered ``503`` by a draining worker, and a WebSocket
closed by one ("server stopping") - those clients reconnect, as real ones do.
Prints the counts, failures, and the whole tree's RSS over the first and the
last minute after warm-up (growth in %); ``--plot FILE`` draws RSS over time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from http_bench import free_port, wait_for_port  # noqa: E402


def _client(kind: str, port: int, stop: threading.Event, counts: Counter, failures: list) -> None:
    import requests
    import websockets.sync.client

    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    payload = b"x" * 4096
    while not stop.is_set():
        try:
            if kind == "hello":
                ok = session.get(base + "/", timeout=10).status_code == 200
            elif kind == "echo":
                ok = session.post(base + "/echo", data=payload, timeout=10).content == payload
            elif kind == "poll":
                status = session.get(base + "/poll", timeout=10).status_code
                ok = status in (204, 503)  # 503: the worker drains for a reload
            elif kind == "sse":
                ok = session.get(base + "/sse", timeout=10).text.count("data:") == 5
            elif kind == "publish":
                ok = session.get(base + "/publish?soak", timeout=10).status_code == 200
            else:  # ws
                try:
                    with websockets.sync.client.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
                        for i in range(20):
                            ws.send(f"m{i}")
                            if ws.recv(timeout=10) != f"m{i}":
                                raise RuntimeError("wrong echo")
                    ok = True
                except websockets.exceptions.ConnectionClosed as exc:
                    ok = exc.rcvd is not None and exc.rcvd.code == 1001  # "server stopping": reconnect
        except Exception as exc:
            failures.append(f"{time.strftime('%H:%M:%S')} {kind}: {exc!r}")
            session = requests.Session()
            continue
        counts[kind] += 1
        if not ok:
            failures.append(f"{time.strftime('%H:%M:%S')} {kind}: unexpected answer")


def _rss(pid: int) -> dict[str, int]:
    import psutil

    root = psutil.Process(pid)
    sizes = {"master": root.memory_info().rss}
    for index, child in enumerate(root.children()):
        try:
            sizes[f"worker {index}"] = child.memory_info().rss
        except psutil.Error:
            pass
    return sizes


def soak(seconds: float, reload_every: float, plot: str | None) -> dict:
    port = free_port()
    server_log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - the server's lines, returned when something failed
    process = subprocess.Popen(
        [sys.executable, "-m", "preforkit", "soak_app:handler", "-b", f"127.0.0.1:{port}", "-w", "2"],
        cwd=HERE, env=dict(os.environ, PYTHONPATH=HERE + os.pathsep + ROOT),
        stdout=subprocess.DEVNULL, stderr=server_log, start_new_session=True,
    )  # fmt: skip
    stop = threading.Event()
    counts: Counter = Counter()
    failures: list[str] = []
    samples: list[tuple[float, int]] = []
    reloads = 0
    try:
        wait_for_port(port)
        time.sleep(1)
        kinds = ["hello", "echo", "poll", "poll", "sse", "publish", "ws"]
        threads = [threading.Thread(target=_client, args=(k, port, stop, counts, failures), daemon=True) for k in kinds]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        next_reload = started + reload_every
        while (now := time.monotonic()) - started < seconds:
            samples.append((now - started, sum(_rss(process.pid).values())))
            if now >= next_reload:
                os.kill(process.pid, signal.SIGHUP)
                reloads += 1
                next_reload += reload_every
            done = int(now - started)
            if done % 60 == 0 and len(samples) > 1:
                print(f"  {done // 60} min: {sum(counts.values())} requests, {len(failures)} failed, "
                      f"RSS {samples[-1][1] / 2**20:.1f} MiB", file=sys.stderr, flush=True)  # fmt: skip
            time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join(15)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    server_log.seek(0)
    log_lines = server_log.read().splitlines()
    server_log.close()
    warm = [rss for t, rss in samples if t >= min(60, seconds / 4)]
    window = max(1, min(60, len(warm) // 4))
    first, last = sum(warm[:window]) / window, sum(warm[-window:]) / window
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(8, 3.5))
        axes.plot([t / 60 for t, _ in samples], [rss / 2**20 for _, rss in samples], linewidth=1)
        axes.set_xlabel("minutes")
        axes.set_ylabel("RSS, master + 2 workers (MiB)")
        axes.set_title(f"preforkit soak: mixed traffic, SIGHUP every {reload_every:.0f} s")
        axes.set_ylim(bottom=0)
        figure.tight_layout()
        figure.savefig(plot, dpi=100)
    return {
        "seconds": seconds,
        "reloads": reloads,
        "requests": dict(counts),
        "failures": failures[:20],
        "failed": len(failures),
        # what the server said about its workers, to tell what a failure met (empty when none failed)
        "server_log": [line for line in log_lines if " [INFO] " not in line or "orker" in line][-60:]
        if failures
        else [],
        "rss_first_mib": round(first / 2**20, 1),
        "rss_last_mib": round(last / 2**20, 1),
        "growth_percent": round((last - first) / first * 100, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--reload-every", type=float, default=60)
    parser.add_argument("--plot", metavar="PNG")
    args = parser.parse_args()
    seconds = args.minutes * 60 if args.minutes else args.seconds
    print(json.dumps(soak(seconds, args.reload_every, args.plot), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
