"""The worker's greenlets: lent to a connection or a callback while app code runs.

A connection waiting for bytes (a new one, an idle keep-alive one, one
reading a request head), a held async response and an open channel all wait
on an io watcher of the hub, without a greenlet.  When there is work - a
request head to parse and a handler to call, an async response to write, a
WebSocket message for ``on_receive`` - it becomes a task here, run by one of
a few long-lived runner greenlets that park in the hub between tasks.  A new
greenlet per task would cost an interpreter data stack from ``mmap`` on
Python 3.11+ (and ``munmap`` when it ends), besides its own memory.

- a task goes into one FIFO queue; if no runner is already on its way, one is
  woken (an idle one, else a new one);
- a runner that takes a task while others still wait first wakes another
  runner for them, so a task that blocks (a handler sleeping, a slow write)
  never holds up the rest;
- at most ``IDLE_RUNNERS`` runners stay parked; the others end.

A reused greenlet must not carry one request's state into the next: every
task runs in a fresh ``contextvars.Context``, and the runner's gevent
``local`` values (what ``threading.local`` becomes under monkey-patching) are
dropped after each task that made any, so the next task starts empty -
except the values of the ``local`` objects given to ``keep_across_tasks``
(Django's per-thread database connections): those stay with the runner, as
they would with a thread of a threaded server, and are handed to their
``on_drop`` when the runner ends.
"""

from __future__ import annotations

import logging
import weakref
from collections import deque
from contextvars import Context
from typing import Any, Callable

from gevent import get_hub
from gevent.event import Event
from greenlet import getcurrent, greenlet

log = logging.getLogger("preforkit.error")

IDLE_RUNNERS = 64

# gevent.local keeps a greenlet's values under keys with this prefix in the
# greenlet's __dict__, and finds them by id(greenlet); the weak reference it
# holds to the greenlet carries the callback that forgets them.
_LOCAL_KEY_PREFIX = "_gevent_local_localimpl_"


# (local, on_drop) pairs: values a runner keeps from one task to the next.
_kept: list[tuple[Any, Callable[[dict], None]]] = []


def keep_across_tasks(storage: Any, on_drop: Callable[[dict], None]) -> None:
    """Let each runner keep its values of the gevent ``local`` ``storage`` between tasks;
    ``on_drop(values)`` runs in the runner when it ends (to close what they hold)."""
    _kept.append((storage, on_drop))


def _kept_values() -> list[tuple[Any, Callable[[dict], None], dict]]:
    """The current greenlet's values of the kept locals (copies)."""
    found = []
    for storage, on_drop in _kept:
        values = storage.__dict__
        if values:
            found.append((storage, on_drop, dict(values)))
    return found


class GreenletPool:
    def __init__(self, idle_runners: int = IDLE_RUNNERS) -> None:
        self.running = 0  # tasks queued or running
        self.idle_runners = idle_runners
        self._tasks: deque = deque()
        self._idle: list[greenlet] = []  # parked runners
        self._waking = 0  # runners woken that have not looked at the queue yet
        self._all_done: Event | None = None  # made by join(): only a joiner needs it set
        self._hub = get_hub()

    def spawn(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` soon in a runner greenlet (call from the hub's thread)."""
        self.running += 1
        self._tasks.append((function, args))
        if not self._waking:
            self._wake()

    def _wake(self) -> None:
        self._waking += 1
        runner = self._idle.pop() if self._idle else greenlet(self._serve, self._hub)
        self._hub.loop.run_callback(runner.switch)

    def _serve(self) -> None:
        tasks = self._tasks
        me = getcurrent()
        context = Context()  # empty; replaced once a task has set a variable in it
        while True:
            self._waking -= 1
            while tasks:
                function, args = tasks.popleft()
                if tasks and not self._waking:
                    self._wake()  # the rest must not wait if this task blocks
                try:
                    context.run(function, *args)
                except Exception:
                    log.exception("Error in %r", function)
                finally:
                    self.running -= 1
                    if not self.running and self._all_done is not None:
                        self._all_done.set()
                    if len(context):
                        context = Context()
                    if me.__dict__:
                        kept = _kept_values() if _kept else ()
                        forget_locals(me)
                        for storage, _, values in kept:
                            storage.__dict__.update(values)
            if len(self._idle) >= self.idle_runners:
                self._end(me)
                return
            self._idle.append(me)
            self._hub.switch()  # parked until _wake switches back here

    @staticmethod
    def _end(me: greenlet) -> None:
        """A runner that ends hands its kept values to their ``on_drop``."""
        if _kept and me.__dict__:
            for _, on_drop, values in _kept_values():
                try:
                    on_drop(values)
                except Exception:
                    log.exception("Error in %r", on_drop)
            forget_locals(me)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until no task runs; False on timeout."""
        if not self.running:
            return True
        if self._all_done is None:
            self._all_done = Event()
        self._all_done.clear()
        try:
            return self._all_done.wait(timeout)
        finally:
            self._all_done = None


def forget_locals(runner: greenlet) -> None:
    """Drop every gevent ``local`` value ``runner`` holds: the next access in it
    starts afresh (a ``local`` subclass's ``__init__`` runs again)."""
    namespace = runner.__dict__
    keys = [key for key in namespace if key.startswith(_LOCAL_KEY_PREFIX)]
    if not keys:
        return
    for ref in weakref.getweakrefs(runner):
        forget = ref.__callback__
        if forget is not None and type(forget).__name__ == "_greenlet_deleted":
            forget(None)
    for key in keys:
        del namespace[key]


from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
