"""HTTP throughput of preforkit and its peers, side by side in one run.

Each server runs one worker pinned to CPU 0 (``taskset``); ``wrk -t1`` runs on
CPU 1.  Every server serves the same logic (``benchmarks/apps.py``).  Prints a
Markdown table with req/s, wrk's error count, and preforkit's ratio to each peer.

    python benchmarks/http_bench.py                      # all servers, all scenarios, 10 s each
    python benchmarks/http_bench.py --duration 3 --servers preforkit,gunicorn-gevent
    python benchmarks/http_bench.py --previous /tmp/old-main --servers preforkit,previous,previous-wsgi,preforkit-wsgi

``--rounds N`` runs everything N times (servers interleaved in each round) and
reports the median; beside req/s it reports the server's CPU time per request
(user + system of its process tree, from /proc), which a noisy machine blurs less,
and how busy wrk's CPU was: near 100%, the client set the pace and a ratio says
more about wrk than about the server.

``--previous DIR`` adds the servers ``previous`` and ``previous-wsgi``: preforkit
run from another checkout (say, the last ``main``), to compare a change side by side.

Needs wrk (Debian package) and the bench extras: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SERVERS = {
    "preforkit": ["{python}", "-m", "preforkit", "apps:ring", "-b", "127.0.0.1:{port}", "--log-level", "warning"],
    "preforkit-wsgi": ["{python}", "-m", "preforkit", "apps:wsgi", "-b", "127.0.0.1:{port}", "--log-level", "warning"],
    "preforkit-pure": ["{python}", "-m", "preforkit", "apps:ring", "-b", "127.0.0.1:{port}", "--log-level", "warning"],
    "preforkit-pure-wsgi": [
        "{python}", "-m", "preforkit", "apps:wsgi", "-b", "127.0.0.1:{port}", "--log-level", "warning",
    ],
    "previous": ["{python}", "-m", "preforkit", "apps:ring", "-b", "127.0.0.1:{port}", "--log-level", "warning"],
    "previous-wsgi": ["{python}", "-m", "preforkit", "apps:wsgi", "-b", "127.0.0.1:{port}", "--log-level", "warning"],
    "gunicorn-gevent": [
        "{python}", "-m", "gunicorn", "-k", "gevent", "-w", "1", "-b", "127.0.0.1:{port}",
        "--log-level", "warning", "--worker-connections", "2000", "apps:wsgi",
    ],
    "uvicorn": [
        "{python}", "-m", "uvicorn", "--http", "httptools", "--loop", "uvloop", "--workers", "1",
        "--port", "{port}", "--log-level", "warning", "--no-access-log", "apps:asgi",
    ],
    "granian": [
        "{python}", "-m", "granian", "--interface", "wsgi", "--workers", "1", "--port", "{port}",
        "--log-level", "warning", "--no-ws", "apps:wsgi",
    ],
}  # fmt: skip

# preforkit's pure-Python path (the compiled hot path is the default where it is built)
PURE_PYTHON = {"preforkit-pure", "preforkit-pure-wsgi"}

SCENARIOS = {
    "hello -c100": {"connections": 100, "path": "/"},
    "hello -c1000": {"connections": 1000, "path": "/"},
    "Connection: close -c50": {"connections": 50, "path": "/", "headers": ["Connection: close"]},
    "4 KB POST echo -c100": {"connections": 100, "path": "/echo", "lua": "post4k"},
    "64 KB response -c100": {"connections": 100, "path": "/64k"},
}

POST_LUA = """
wrk.method = "POST"
wrk.body = string.rep("x", 4096)
wrk.headers["Content-Type"] = "application/octet-stream"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def start(name: str, port: int, cpu: str, previous: str | None = None) -> subprocess.Popen:
    command = [part.format(python=sys.executable, port=port) for part in SERVERS[name]]
    root = ROOT
    if name.startswith("previous"):
        if not previous:
            sys.exit(f"{name} needs --previous DIR (a checkout of preforkit to compare with)")
        root = os.path.abspath(previous)
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + root)
    if name in PURE_PYTHON:
        env["PREFORKIT_PURE_PYTHON"] = "1"
    process = subprocess.Popen(
        ["taskset", "-c", cpu, *command],
        cwd=HERE,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(port)
    return process


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, 15)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, 9)
        except ProcessLookupError:
            pass
        process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants (a server's worker may be a child)."""
    total, pending = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as file:
                    pending.extend(int(child) for child in file.read().split())
        except (OSError, IndexError, ValueError):
            continue
    return total


def core_jiffies(cpu: str) -> tuple[int, int] | None:
    """(busy, total) clock ticks of one CPU since boot (``/proc/stat``); None if ``cpu`` is not one CPU."""
    with open("/proc/stat") as file:
        for line in file:
            if line.startswith(f"cpu{cpu} "):
                ticks = [int(value) for value in line.split()[1:9]]  # user nice system idle iowait irq softirq steal
                return sum(ticks) - ticks[3] - ticks[4], sum(ticks)
    return None


def busy_percent(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float:
    """How busy a CPU was between two ``core_jiffies`` samples, in % (NaN if unknown)."""
    if before is None or after is None or after[1] == before[1]:
        return float("nan")
    return 100 * (after[0] - before[0]) / (after[1] - before[1])


def run_wrk(port: int, scenario: dict, duration: float, cpu: str, lua_dir: str) -> tuple[float, int, int]:
    """Returns (requests/s, socket errors, non-2xx responses)."""
    command = ["taskset", "-c", cpu, "wrk", "-t1", f"-c{scenario['connections']}", f"-d{duration}s"]
    for header in scenario.get("headers", []):
        command += ["-H", header]
    if scenario.get("lua"):
        command += ["-s", os.path.join(lua_dir, scenario["lua"] + ".lua")]
    command.append(f"http://127.0.0.1:{port}{scenario['path']}")
    output = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=False).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])
    errors = 0
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if match:
        errors = sum(int(x) for x in match.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return rate, errors, int(non2xx[1]) if non2xx else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated scenario names")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    parser.add_argument("--previous", metavar="DIR", help="another preforkit checkout, served as 'previous'")
    parser.add_argument("--rounds", type=int, default=1, help="run everything N times; report medians")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))

    servers = args.servers.split(",")
    scenarios = [s for s in SCENARIOS if s in args.scenarios.split(",")] if args.scenarios else list(SCENARIOS)
    rounds: dict[tuple[str, str], list[tuple[float, int, int, float, float]]] = {}
    with tempfile.TemporaryDirectory() as lua_dir:
        with open(os.path.join(lua_dir, "post4k.lua"), "w") as file:
            file.write(POST_LUA)
        runs = [(scenario, name) for _ in range(args.rounds) for scenario in scenarios for name in servers]
        for done, (scenario, name) in enumerate(runs, 1):  # servers interleaved per scenario: drift hits all alike
            port = free_port()
            process = start(name, port, args.server_cpu, args.previous)
            try:
                # A short warm-up, then the measured run.
                run_wrk(port, SCENARIOS[scenario], 1, args.client_cpu, lua_dir)
                before, client_before = cpu_seconds(process.pid), core_jiffies(args.client_cpu)
                rate, errors, non2xx = run_wrk(port, SCENARIOS[scenario], args.duration, args.client_cpu, lua_dir)
                used = cpu_seconds(process.pid) - before
                client_busy = busy_percent(client_before, core_jiffies(args.client_cpu))
            finally:
                stop(process)
            micros = used / max(1.0, rate * args.duration) * 1e6
            rounds.setdefault((name, scenario), []).append((rate, errors, non2xx, micros, client_busy))
            print(f"[{done}/{len(runs)}] {name:19} {scenario:24} {rate:10.0f} req/s  {micros:6.1f} us CPU/request  "
                  f"wrk's CPU {client_busy:3.0f}% busy  errors {errors}  non-2xx {non2xx}",
                  file=sys.stderr, flush=True)  # fmt: skip

    results = {
        key: (
            statistics.median(run[0] for run in runs),
            sum(run[1] for run in runs),
            sum(run[2] for run in runs),
            statistics.median(run[3] for run in runs),
            statistics.median(run[4] for run in runs),
        )
        for key, runs in rounds.items()
    }
    median = f" (median of {args.rounds} rounds)" if args.rounds > 1 else ""
    print(f"\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {args.duration:g} s per run{median}, "
          f"server on CPU {args.server_cpu}, wrk -t1 on CPU {args.client_cpu}\n")  # fmt: skip
    print("Requests/s:\n")
    _table("server", servers, scenarios, results, 0, lambda value: f"{value / 1000:.1f}K", higher_is_better=True)
    print("\nServer CPU time per request (user + system, µs):\n")
    _table("server CPU µs/request", servers, scenarios, results, 3, "{:.1f}".format, higher_is_better=False)
    print("\nwrk's CPU, % busy (near 100: the client set the pace, not the server):\n")
    _table("wrk's CPU busy", servers, scenarios, results, 4, "{:.0f}%".format, higher_is_better=None)
    return 0


def _table(title: str, servers, scenarios, results, column: int, show, higher_is_better: bool | None) -> None:
    """One Markdown table (ratios to preforkit unless ``higher_is_better`` is None); plot.py draws
    the one titled ``server``."""
    print(f"| {title} | " + " | ".join(scenarios) + " |")
    print("|---|" + "---|" * len(scenarios))
    for name in servers:
        cells = []
        for scenario in scenarios:
            value = results[name, scenario][column]
            errors, non2xx = results[name, scenario][1:3]
            cell = show(value)
            if column == 0 and (errors or non2xx):
                cell += f" ({errors} err, {non2xx} non-2xx)"
            if higher_is_better is not None and name != "preforkit" and ("preforkit", scenario) in results and value:
                ours = results["preforkit", scenario][column]
                ratio = ours / value if higher_is_better else value / ours
                cell += f" (preforkit x{ratio:.2f})"
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
