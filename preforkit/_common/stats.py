"""What each worker counts for ``--metrics-bind``, in its slot of the shared board.

Counters only grow; the worker writes them into its slot with each heartbeat
(and once more when it exits), the master reads them from there - it never
asks a worker's event loop.  Their names and order are defined here, for both sides.
"""

from __future__ import annotations

# Request durations: Prometheus's default histogram buckets (seconds); the last bucket is +Inf.
DURATION_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
COUNTERS = (
    *(f"status_{c}" for c in STATUS_CLASSES),
    "accepted",
    "shed",
    "ws_in",
    "ws_out",
    "pubsub_published",
    "pubsub_delivered",
    "pubsub_dropped",
    *(f"bucket_{i}" for i in range(len(DURATION_BOUNDS) + 1)),
)


class WorkerCounters:
    """A worker's counters (plain attributes on the hot path), packed for its slot."""

    __slots__ = ("accepted", "buckets", "duration_sum", "enabled", "pubsub", "shed", "statuses", "ws_in", "ws_out")

    def __init__(self, enabled: bool = False, pubsub: list | None = None) -> None:
        self.enabled = enabled  # count statuses and durations per request (--metrics-bind)
        self.statuses = [0] * 10  # by status // 100 (0..9; 1..5 are exported)
        self.accepted = 0
        self.shed = 0
        self.ws_in = 0
        self.ws_out = 0
        self.pubsub = [0, 0, 0] if pubsub is None else pubsub  # published, delivered, dropped
        self.buckets = [0] * (len(DURATION_BOUNDS) + 1)
        self.duration_sum = 0.0

    def values(self) -> tuple:
        return (
            *self.statuses[1:6],
            self.accepted,
            self.shed,
            self.ws_in,
            self.ws_out,
            *self.pubsub,
            *self.buckets,
            self.duration_sum,
        )


def as_dict(counts: list[int], duration_sum: float) -> dict:
    """The counters (in ``COUNTERS`` order) and the sum of durations as one dict."""
    result = dict(zip(COUNTERS, counts))
    result["duration_sum"] = duration_sum
    return result
