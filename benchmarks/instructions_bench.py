"""Instructions per request, counted by callgrind: a figure no noisy machine can blur.

    python benchmarks/instructions_bench.py                          # this checkout
    python benchmarks/instructions_bench.py --previous /tmp/old-main # and another, side by side

The server (``preforkit.run_server``: one process, no master) runs under
``valgrind --tool=callgrind``; ApacheBench sends a first batch of requests,
the server stops, and callgrind's total instruction count is read.  The same
is done with a larger batch; the difference divided by the extra requests is
the cost of one request, start-up and shutdown cancelled out.  Scenarios:
keep-alive hello, ``Connection: close`` hello, keep-alive 4 KB POST echo.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from http_bench import free_port, wait_for_port  # noqa: E402

SERVER = "import apps; from preforkit import run_server; run_server(apps.ring, port={port}, log_level='warning')"
SCENARIOS = {
    "hello keep-alive": ["-k", "-c", "10"],
    "hello Connection: close": ["-c", "10"],
    "4 KB POST echo keep-alive": ["-k", "-c", "10", "-p", "{post}", "-T", "application/octet-stream"],
}
PATHS = {"4 KB POST echo keep-alive": "/echo"}


def instructions(root: str, scenario: str, requests: int, post_file: str) -> int:
    """Total instructions of a server process that answered ``requests`` requests."""
    port = free_port()
    with tempfile.TemporaryDirectory() as out:
        out_file = os.path.join(out, "callgrind.out")
        process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", sys.executable, "-c",
             SERVER.format(port=port)],
            cwd=HERE, env=dict(os.environ, PYTHONPATH=HERE + os.pathsep + root),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_port(port, timeout=120)
            args = [arg.format(post=post_file) for arg in SCENARIOS[scenario]]
            path = PATHS.get(scenario, "/")
            result = subprocess.run(
                ["ab", "-q", "-n", str(requests), *args, f"http://127.0.0.1:{port}{path}"],
                capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            failed = re.search(r"Failed requests:\s+(\d+)", result.stdout)
            if failed is None or int(failed[1]):
                raise RuntimeError(f"ab failed: {result.stdout[-500:]}{result.stderr[-500:]}")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
        with open(out_file) as file:
            summary = re.search(r"^(?:summary|totals): (\d+)", file.read(), re.MULTILINE)
        return int(summary[1])


def per_request(root: str, scenario: str, small: int, large: int, post_file: str) -> float:
    return (instructions(root, scenario, large, post_file) - instructions(root, scenario, small, post_file)) / (
        large - small
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--previous", metavar="DIR", help="another preforkit checkout to count beside this one")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=4000)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated scenario names")
    args = parser.parse_args()
    scenarios = [name for name in SCENARIOS if name in args.scenarios.split(",")]
    targets = {"preforkit": ROOT}
    if args.previous:
        targets["previous"] = os.path.abspath(args.previous)
    with tempfile.NamedTemporaryFile("wb", suffix=".bin") as post:
        post.write(b"x" * 4096)
        post.flush()
        rows = {}
        for scenario in scenarios:
            for name, root in targets.items():
                rows[name, scenario] = per_request(root, scenario, args.small, args.large, post.name)
                print(f"{name:10} {scenario:28} {rows[name, scenario]:,.0f} instructions/request", file=sys.stderr)
    print("\n| scenario | " + " | ".join(targets) + " |")
    print("|---|" + "---|" * len(targets))
    for scenario in scenarios:
        cells = [f"{rows[name, scenario]:,.0f}" for name in targets]
        if "previous" in targets:
            cells[-1] += f" (x{rows['previous', scenario] / rows['preforkit', scenario]:.2f})"
        print(f"| {scenario} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
