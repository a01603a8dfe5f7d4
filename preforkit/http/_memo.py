"""Bounded memos for results computed from what clients and apps repeat.

The parser remembers the request lines, field lines and heads it checked; the
response writer, the header lines and status lines it encoded.  A hit is a
plain dict lookup at the call site; ``remember`` runs on a miss only.
"""

from __future__ import annotations


def remember(cache: dict, key, value, size: int) -> None:
    """Keep ``value`` under ``key``; a cache holding ``size`` entries starts again
    (memory stays bounded, and a hit pays for no bookkeeping)."""
    if len(cache) >= size:
        cache.clear()
    cache[key] = value


from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
