"""The soak, one minute of it: mixed traffic, two reloads, nothing lost, memory flat.

The 30-minute run and its plot are in benchmarks/RESULTS.md (``benchmarks/soak.py --minutes 30``).
"""

from __future__ import annotations

import os
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


@pytest.mark.slow
def test_one_minute_of_mixed_traffic_with_reloads_loses_nothing():
    sys.path.insert(0, BENCHMARKS)
    try:
        import soak
    finally:
        sys.path.remove(BENCHMARKS)
    result = soak.soak(seconds=60, reload_every=20, plot=None)
    assert result["reloads"] == 2
    assert result["failed"] == 0, "\n".join(result["failures"] + ["server log:"] + result["server_log"])
    assert all(result["requests"].get(kind, 0) > 0 for kind in ("hello", "echo", "poll", "sse", "publish", "ws"))
    # Flat after warm-up; CI machines are noisy, so 10% here (the 30-minute run is held to 5%).
    assert result["growth_percent"] <= 10, result
