"""Which request a stalled event loop is stuck in, for the master's "hung" log line.

A call that does not yield to gevent (a C driver, ``ctypes``, a tight loop)
stops the heartbeat; after ``--timeout`` the master kills the worker with
SIGABRT and faulthandler prints where it was.  The traceback names the app's
line but not the request.  An OS thread of the worker (not a greenlet: the
hub is stuck) looks once a second: when the heartbeat is late it finds the
frame serving a request on the stuck thread and writes "GET /path" into the
worker's slot, where the master reads it.  Nothing is added to the hot path:
the request is read from that frame's locals, and only when the loop is stuck.

The thread never logs nor touches gevent: a logging lock may be held by the
stuck thread, and gevent objects belong to the hub's thread.
"""

from __future__ import annotations

import sys
import time
from types import FrameType

from gevent.monkey import get_original

_start_thread = get_original("_thread", "start_new_thread")
_sleep = get_original("time", "sleep")
_get_ident = get_original("_thread", "get_ident")


def watch(slot, interval: float, serving_code) -> None:
    """Start the watching thread for the calling (hub's) thread; ``serving_code`` is the
    code object of the function whose local ``head`` is the request being served."""
    _start_thread(_watch, (slot, interval, serving_code, _get_ident()))


def _watch(slot, interval: float, serving_code, thread_id: int) -> None:
    noted = False
    while True:
        _sleep(interval)
        late = time.monotonic() - slot.last_beat > 2 * interval
        if late and not noted:
            slot.note(describe(sys._current_frames().get(thread_id), serving_code))
            noted = True
        elif not late and noted:
            slot.note("")
            noted = False


def describe(frame: FrameType | None, serving_code) -> str:
    """ "serving GET /path" if a frame of ``serving_code`` is on the stack, else where the stack is."""
    top = frame
    while frame is not None:
        if frame.f_code is serving_code:
            head = frame.f_locals.get("head")
            if head is not None:
                return f"serving {head.method} {head.target}"
        frame = frame.f_back
    if top is None:
        return ""
    return f"outside a request, in {top.f_code.co_name} ({top.f_code.co_filename}:{top.f_lineno})"
