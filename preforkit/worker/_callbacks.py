"""Running the app's callbacks (on_receive, on_close...) in short-lived greenlets.

``gevent.spawn_raw`` greenlets are a fraction of the cost of full
``Greenlet`` objects; this counter lets a stopping worker wait until every
callback in flight has returned.
"""

from __future__ import annotations

import gevent
from gevent.event import Event


class CallbackRunner:
    def __init__(self) -> None:
        self.running = 0
        self._idle = Event()
        self._idle.set()

    def spawn(self, function, *args) -> None:
        self.running += 1
        self._idle.clear()
        gevent.spawn_raw(self._run, function, args)

    def _run(self, function, args) -> None:
        try:
            function(*args)
        finally:
            self.running -= 1
            if not self.running:
                self._idle.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until no callback runs; False on timeout."""
        return self._idle.wait(timeout)
