"""``preforkit status|reload|stop|workers``: the running master, asked over its control socket."""

from __future__ import annotations

import glob
import json
import os
import sys

import click

from ._common.control import ControlError, ask, default_path, runtime_dir


def _locate(pid_file: str | None, control_socket: str | None) -> str:
    control_socket = control_socket or os.environ.get("PREFORKIT_CONTROL_SOCKET")
    if control_socket:
        return control_socket
    pid_file = pid_file or os.environ.get("PREFORKIT_PID")
    if pid_file:
        try:
            with open(pid_file, encoding="ascii") as file:
                pid = int(file.read().strip())
        except FileNotFoundError:
            raise ControlError(f"no master is running: no pid file {pid_file}") from None
        except (OSError, ValueError) as exc:
            raise ControlError(f"cannot read a pid from {pid_file}: {exc}") from None
        return default_path(pid)
    found = sorted(glob.glob(os.path.join(runtime_dir(), "preforkit-*.ctl")))
    if len(found) == 1:
        return found[0]
    where = "give --pid FILE or --control-socket PATH"
    if not found:
        raise ControlError(f"no master is running (no control socket in {runtime_dir()}); or {where}")
    raise ControlError(f"{len(found)} control sockets in {runtime_dir()} ({', '.join(found)}): {where}")


def _ask(options: dict, request: dict) -> dict:
    try:
        return ask(_locate(options["pid_file"], options["control_socket"]), request)
    except ControlError as exc:
        click.echo(f"preforkit: {exc}", err=True)
        sys.exit(1)


def _target(command):
    command = click.option("--pid", "pid_file", metavar="FILE", help="The master's pid file [env PREFORKIT_PID]")(
        command
    )
    return click.option(
        "--control-socket", metavar="PATH", help="The master's control socket [env PREFORKIT_CONTROL_SOCKET]"
    )(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def control() -> None:
    """Ask a running preforkit master."""


@control.command()
@_target
@click.option("--json", "as_json", is_flag=True, help="The whole answer as JSON")
def status(as_json: bool, **options) -> None:
    """One row per worker: pid, age, state, RSS, connections by state, requests, heartbeat."""
    answer = _ask(options, {"command": "status"})
    if as_json:
        answer.pop("ok", None)
        click.echo(json.dumps(answer, indent=1))
        return
    master = answer["master"]
    workers = answer["workers"]
    click.echo(
        f"master {master['pid']} serving {master['app']}, up {_duration(master['uptime'])}, "
        f"{len(workers)} of {master['workers_wanted']} worker(s)"
    )
    header = ("PID", "AGE", "STATE", "UPTIME", "RSS", "IDLE", "ACTIVE", "HELD", "WS", "STREAM", "REQUESTS", "BEAT")
    rows = [header]
    for w in workers:
        c = w["connections"]
        rows.append(
            (
                str(w["pid"]), str(w["age"]), w["state"], _duration(w["uptime"]),
                "-" if w["rss"] is None else f"{w['rss'] / 2**20:.1f}M",
                *(str(c[k]) for k in ("idle", "active", "held", "websocket", "stream")),
                str(w["requests"]), f"{w['heartbeat']:.1f}s",
            )
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@control.command()
@_target
def reload(**options) -> None:
    """Zero-downtime reload (what SIGHUP does)."""
    _ask(options, {"command": "reload"})
    click.echo("reloading")


@control.command()
@_target
def stop(**options) -> None:
    """Graceful stop (what SIGTERM does)."""
    _ask(options, {"command": "stop"})
    click.echo("stopping")


@control.command(context_settings={"ignore_unknown_options": True})
@_target
@click.argument("change", metavar="+N|-N")
def workers(change: str, **options) -> None:
    """N workers more or fewer (what N x SIGTTIN / SIGTTOU do)."""
    try:
        delta = int(change)
        if not change.startswith(("+", "-")) or delta == 0:
            raise ValueError
    except ValueError:
        click.echo(f"preforkit: workers takes +N or -N (like +2 or -1), not {change!r}", err=True)
        sys.exit(2)
    answer = _ask(options, {"command": "workers", "change": delta})
    click.echo(f"{answer['workers']} worker(s) wanted")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
