"""Draw the latest tables of benchmarks/RESULTS.md as PNG charts (matplotlib), for the README.

    python benchmarks/plot.py                 # writes benchmarks/throughput.png and benchmarks/connections_rss.png

- throughput.png: req/s per scenario per server, from the newest table whose header
  starts ``| server | hello -c100 |`` (``http_bench.py``);
- connections_rss.png: RSS of each server against the connections it holds open,
  from the newest ``| kind | server | answered / held | still open | RSS before |
  RSS after |`` table (``connections_bench.py``), idle keep-alive rows: before
  (no connection) and after (all of them open).

Needs the bench extras (matplotlib).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of ``text``, newest (first in the file) first, as rows of cells."""
    found, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(set(cell) <= set("-: ") for cell in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    if current:
        found.append(current)
    return found


def first_table(text: str, header_start: list[str]) -> list[list[str]]:
    for table in tables(text):
        if table[0][: len(header_start)] == header_start:
            return table
    raise SystemExit(f"no table with a header starting {' | '.join(header_start)} in RESULTS.md")


def number(cell: str) -> float | None:
    """``86.2K (x1.10)`` -> 86200; ``56.2 MiB`` -> 56.2; ``10,000`` -> 10000; else None."""
    match = re.match(r"\**([\d,.]+)\s*([KM](?!iB))?", cell)  # K, M: thousands, millions; MiB stays MiB
    if not match:
        return None
    value = float(match[1].replace(",", ""))
    return value * {None: 1, "K": 1e3, "M": 1e6}[match[2]]


def plot_throughput(text: str, path: str) -> None:
    import matplotlib.pyplot as plt

    table = first_table(text, ["server", "hello -c100"])
    scenarios = table[0][1:]
    servers = [row for row in table[1:] if row[0] != "previous" and row[0] != "previous-wsgi"]
    figure, axes = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(servers)
    for index, row in enumerate(servers):
        values = [(number(cell) or 0) / 1000 for cell in row[1:]]
        positions = [s + index * width for s in range(len(scenarios))]
        axes.bar(positions, values, width, label=row[0])
    axes.set_xticks([s + width * (len(servers) - 1) / 2 for s in range(len(scenarios))], scenarios, fontsize=8)
    axes.set_ylabel("thousand requests / s")
    axes.set_title("HTTP throughput, one worker each (benchmarks/http_bench.py)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def plot_connections(text: str, path: str) -> None:
    import matplotlib.pyplot as plt

    table = first_table(text, ["kind", "server", "answered / held", "still open", "RSS before", "RSS after"])
    figure, axes = plt.subplots(figsize=(7, 4))
    for row in table[1:]:
        if row[0] != "idle":
            continue
        server, still_open, before, after = row[1], number(row[3]), number(row[4]), number(row[5])
        if still_open is None or before is None or after is None:
            continue
        axes.plot([0, still_open], [before, after], marker="o", label=f"{server} ({row[2]} answered)")
    axes.set_xlabel("idle keep-alive connections held open")
    axes.set_ylabel("RSS, whole server (MiB)")
    axes.set_title("Memory against open connections (benchmarks/connections_bench.py)")
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    parser.add_argument("--out", default=HERE, help="directory for the PNG files")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    with open(args.results, encoding="utf-8") as file:
        text = file.read()
    plot_throughput(text, os.path.join(args.out, "throughput.png"))
    plot_connections(text, os.path.join(args.out, "connections_rss.png"))
    print(f"wrote {args.out}/throughput.png and {args.out}/connections_rss.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
