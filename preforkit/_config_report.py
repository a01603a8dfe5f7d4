"""``--print-config`` and ``--check-config``: what the server would run with, and whether it can.

Both run instead of the server, in the process the command started: nothing is
bound, no worker is forked.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from .config import SETTINGS, Config


def _toml_value(value: Any) -> str | None:
    """``value`` as TOML, or None where TOML has no spelling (unset)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        items = [_toml_value(item) for item in value]
        return "[" + ", ".join(item for item in items if item is not None) + "]"
    if callable(value):
        value = f"{getattr(value, '__module__', '?')}:{getattr(value, '__qualname__', value)}"
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def print_config(config: Config, out=None) -> None:
    """Every setting's effective value and where it came from, as a TOML file one could load again."""
    out = out or sys.stdout
    width = max(len(setting.name) for setting in SETTINGS)
    for setting in SETTINGS:
        value = _toml_value(getattr(config, setting.name))
        source = config.source(setting.name)
        if value is None:
            print(f"# {setting.name:<{width}} (not set)  # {source}", file=out)
        else:
            print(f"{setting.name:<{width}} = {value}  # {source}", file=out)


class CheckFailed(Exception):
    """What ``check_config`` found wrong, in one line."""


def check_config(app_spec: str, config: Config) -> str:
    """Load what the server would load (addresses, TLS files, hooks, the app): a one-line summary,
    or ``CheckFailed`` with the first problem."""
    problem, interface = _check(app_spec, config)
    if problem:
        raise CheckFailed(problem)
    return f"OK: {app_spec} ({interface} interface), would listen at {', '.join(config.binds())}"


def _check(app_spec: str, config: Config) -> tuple[str | None, str]:
    import ssl

    from ._common.apps import AppLoadError, Hooks, load_app, split_spec
    from .master._binding import BindError, parse_address

    try:
        split_spec(app_spec)
        for address in config.binds():
            parse_address(address)
    except (AppLoadError, BindError) as exc:
        return str(exc), ""
    from .master._privileges import PrivilegeError, resolve

    try:
        resolve(config.user, config.group)
    except PrivilegeError as exc:
        return str(exc), ""
    if config.chdir:
        try:
            os.chdir(config.chdir)
        except OSError as exc:
            return f"cannot change to directory {config.chdir}: {exc.strerror}", ""
    if config.certfile:
        from ._common.tls import make_context

        try:
            make_context(config.certfile, config.keyfile, config.ca_certs)
        except (OSError, ssl.SSLError) as exc:
            return f"cannot load the TLS certificate or key: {exc}", ""
    for name in Hooks.NAMES:
        spec = getattr(config, name, None)
        if spec:
            try:
                load_app(spec)
            except AppLoadError as exc:
                return f"{name} hook: {exc}", ""
            except BaseException as exc:
                return f"{name} hook: error while importing {spec}: {_one_line(exc)}", ""
    if config.monkey_patch:
        from gevent import monkey

        monkey.patch_all()  # as a worker does before importing the app
    try:
        app = load_app(app_spec)
    except AppLoadError as exc:
        return str(exc), ""
    except BaseException as exc:  # the app's own import failed: SyntaxError, ImportError, SystemExit...
        return f"error while importing {app_spec}: {_one_line(exc)}", ""
    from .worker import prepare_app

    try:
        _, interface = prepare_app(app, config.interface)
    except Exception as exc:
        return f"{app_spec}: {_one_line(exc)}", ""
    return None, interface


def _one_line(exc: BaseException) -> str:
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}, line {exc.lineno})"
    else:
        traceback = exc.__traceback__
        while traceback is not None and traceback.tb_next is not None:
            traceback = traceback.tb_next
        if traceback is not None:
            where = f" ({traceback.tb_frame.f_code.co_filename}, line {traceback.tb_lineno})"
    message = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {message}{where}"
