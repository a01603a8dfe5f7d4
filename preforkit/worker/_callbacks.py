"""Running the app's callbacks (on_receive, on_close...) outside the hub.

A callback may block (it may do I/O), so it cannot run in the hub itself;
but a new greenlet per callback is costly on Python 3.11+, where every
greenlet gets a fresh interpreter data stack from ``mmap`` and gives it back
with ``munmap`` when it ends.  So callbacks run in a few long-lived runner
greenlets that park in the hub between tasks:

- a task goes into one FIFO queue; if no runner is already on its way, one is
  woken (an idle one, else a new one);
- a runner that takes a task while others still wait first wakes another
  runner for them, so a callback that blocks never holds up the rest;
- at most ``IDLE_RUNNERS`` runners stay parked; the others end.

Tasks run in the order they were queued; one channel's events stay in order
because a channel has at most one dispatch task queued or running.
"""

from __future__ import annotations

import logging
from collections import deque

from gevent import get_hub
from gevent.event import Event
from greenlet import getcurrent, greenlet

log = logging.getLogger("preforkit.error")

IDLE_RUNNERS = 8


class CallbackRunner:
    def __init__(self) -> None:
        self.running = 0  # tasks queued or running
        self._tasks: deque = deque()
        self._idle: list[greenlet] = []  # parked runners
        self._waking = 0  # runners woken that have not looked at the queue yet
        self._all_done = Event()
        self._all_done.set()
        self._hub = get_hub()

    def spawn(self, function, *args) -> None:
        """Run ``function(*args)`` soon in a runner greenlet (call from the hub's thread)."""
        self.running += 1
        if self.running == 1:
            self._all_done.clear()
        self._tasks.append((function, args))
        if not self._waking:
            self._wake()

    def _wake(self) -> None:
        self._waking += 1
        runner = self._idle.pop() if self._idle else greenlet(self._serve, self._hub)
        self._hub.loop.run_callback(runner.switch)

    def _serve(self) -> None:
        tasks = self._tasks
        while True:
            self._waking -= 1
            while tasks:
                function, args = tasks.popleft()
                if tasks and not self._waking:
                    self._wake()  # the rest must not wait if this task blocks
                try:
                    function(*args)
                except Exception:
                    log.exception("Error in callback %r", function)
                finally:
                    self.running -= 1
                    if not self.running:
                        self._all_done.set()
            if len(self._idle) >= IDLE_RUNNERS:
                return
            self._idle.append(getcurrent())
            self._hub.switch()  # parked until _wake switches back here

    def join(self, timeout: float | None = None) -> bool:
        """Wait until no callback runs; False on timeout."""
        return self._all_done.wait(timeout)
