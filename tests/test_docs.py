"""The project's docs stay true to the code."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_settings_table_is_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_table.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def _setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    commands = _setup_commands()
    assert len(commands) == 2
    assert "preforkit examples.hello:handler" in commands[0]
    test_command = commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci


def test_ci_fails_when_a_test_run_fails():
    """The line of .ci/run that runs the README's test command ends the script with an error
    when either test run fails (under set -e, a failure inside an && list would not)."""
    test_command = _setup_commands()[1]
    line = next(line for line in (ROOT / ".ci" / "run").read_text().splitlines() if test_command in line)
    line = line.replace("python -m pip install -e '.[test]'", "true")
    pure = "PREFORKIT_PURE_PYTHON=1 python -m pytest"
    for compiled_run, pure_run in (("false", "true"), ("true", "false")):
        probe = line.replace(pure, pure_run).replace("python -m pytest", compiled_run)
        result = subprocess.run(
            ["bash", "-c", f"set -euo pipefail\n{probe}\necho reached"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert result.returncode != 0, probe
        assert "reached" not in result.stdout, probe


def test_changelog_has_unreleased_or_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog")
    assert re.search(r"^## \[(Unreleased|\d+\.\d+\.\d+)\]", changelog, re.MULTILINE)


def test_docs_site_builds_strictly(tmp_path):
    """MkDocs (Material) builds docs/ with --strict: no broken link, no page left out of the nav."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "settings" / "index.html").exists()


def test_readme_links_into_the_docs():
    readme = (ROOT / "README.md").read_text()
    for page in re.findall(r"\]\((docs/[a-z_]+\.md)\)", readme):
        assert (ROOT / page).exists(), page
    assert "docs/settings.md" in readme


def test_plot_reads_the_newest_results_tables():
    """benchmarks/plot.py finds the tables it draws and reads their figures (the drawing needs matplotlib)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import plot
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    throughput = plot.first_table(text, ["server", "hello -c100"])
    assert throughput[1][0] == "preforkit"
    assert plot.number(throughput[1][1]) > 1000
    assert plot.number("86.2K (x1.10)") == 86200
    assert plot.number("56.2 MiB") == 56.2
    assert plot.number("10,000") == 10000
    connections = plot.first_table(text, ["kind", "server", "answered / held", "still open", "RSS before"])
    assert any(row[:2] == ["idle", "preforkit"] for row in connections)
