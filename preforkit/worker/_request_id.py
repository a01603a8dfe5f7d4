"""``--request-id``: each request's id, passed through from ``X-Request-ID`` or made here.

An incoming id is kept when it is 1-200 visible ASCII characters (what proxies
and tracing systems send: UUIDs, hex, base64); anything else is replaced, so a
client cannot put spaces, quotes or control bytes into logs through it.
"""

from __future__ import annotations

import os
import re

HEADER = "X-Request-ID"
_ACCEPTED = re.compile(r"[!-~]{1,200}")


def request_id(headers: dict[str, str]) -> str:
    """The id for a request with these (lower-case keyed) headers."""
    given = headers.get("x-request-id")
    if given is not None and _ACCEPTED.fullmatch(given):
        return given
    return os.urandom(16).hex()


def with_request_id(pairs: object, value: str) -> object:
    """Response headers with ``X-Request-ID: value`` added, unless the app set one."""
    if not pairs:
        return [(HEADER, value)]
    items = list(pairs.items() if isinstance(pairs, dict) else pairs)  # type: ignore[attr-defined]
    for name, _ in items:
        if isinstance(name, str) and name.lower() == "x-request-id":
            return items
    items.append((HEADER, value))
    return items
