"""Value parsers for the settings: a str (from the CLI or environment) or a TOML value in, a typed value out.

Each raises ``ValueError`` with a message naming the bad value; ``Config.set``
adds the setting's name and where the value came from.
"""

from __future__ import annotations

import re
from typing import Any, Callable


def parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None


def parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None


_SIZE_RE = re.compile(r"(\d+)\s*([kmg]?)(i?b?)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(value: Any) -> int:
    """``8388608``, ``8M``, ``512k``, ``1G`` (binary units)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE_RE.fullmatch(str(value).strip())
    if match is None:
        raise ValueError(f"{value!r} is not a size (use bytes or a suffix: 512K, 8M, 1G)")
    return int(match[1]) * _SIZE_UNITS[match[2].lower()]


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (true/false)")


def parse_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def parse_optional_str(value: Any) -> str | None:
    return None if value is None else parse_str(value)


def parse_host_port(value: Any) -> str | None:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6), or None when unset."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:9100)")
    return text


def parse_str_list(value: Any) -> list[str]:
    """A list; from the environment, entries are separated by commas or spaces."""
    if isinstance(value, str):
        return [item for item in re.split(r"[,\s]+", value) if item]
    if isinstance(value, (list, tuple)):
        return [parse_str(item) for item in value]
    raise ValueError(f"{value!r} is not a list of strings")


def parse_octal(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value).strip(), 8)
    except ValueError:
        raise ValueError(f"{value!r} is not an octal number such as 022") from None


def parse_hook(value: Any) -> str | None:
    """A ``MODULE:FUNCTION`` path (resolved when the hook is first used)."""
    if value is None:
        return None
    from .._common.apps import AppLoadError, split_spec

    text = parse_str(value).strip()
    try:
        split_spec(text)
    except AppLoadError:
        raise ValueError(f"{value!r} is not MODULE:FUNCTION") from None
    return text


def parse_pubsub(value: Any) -> str:
    text = parse_str(value).strip()
    if text == "local" or text.startswith(("redis://", "rediss://", "unix://")):
        return text
    raise ValueError(f"{value!r} is not 'local' or a redis:// URL")


def choice(*options: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in options:
            raise ValueError(f"{value!r} is not one of {', '.join(options)}")
        return text

    return parse


def optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``parse``, or None for a missing value, an empty string or ``auto``."""

    def parse_optional(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
            return None
        return parse(value)

    return parse_optional


def at_least(parse: Callable[[Any], Any], minimum: float) -> Callable[[Any], Any]:
    def checked(value: Any) -> Any:
        result = parse(value)
        if result < minimum:
            raise ValueError(f"{value!r} is below the minimum {minimum}")
        return result

    return checked
