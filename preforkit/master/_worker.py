"""The master's record of one worker process."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .._common.process import WorkerSlot


@dataclass
class Worker:
    """The master's record of one worker process."""

    pid: int
    age: int
    generation: int
    slot: WorkerSlot
    retiring: bool = False  # told to drain (TERM); a replacement may already run
    kill_at: float = 0.0  # SIGKILL if still alive then (0: not scheduled)
    reason: str = ""
    started: float = field(default_factory=time.monotonic)
    restart: str = ""  # why it is being replaced, for the metrics (hung, memory, reload, max_requests)
