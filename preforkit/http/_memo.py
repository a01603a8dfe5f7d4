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


def seen_before(sightings: dict, key, size: int) -> bool:
    """Whether ``key`` was offered to ``sightings`` before (since it last started again).

    A memo that keeps a result from its second sighting on spends nothing on keys
    that come once (a crawler's URLs, a client varying a query), and these do not
    push out the keys that repeat.  Holds at most ``size`` keys (and no values).
    """
    if key in sightings:
        return True
    remember(sightings, key, None, size)
    return False


from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
