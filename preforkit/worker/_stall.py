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
    """ "serving GET /path" if the request is found on the stack, else where the stack is.

    The request is the local ``head`` of a frame of ``serving_code`` (the Python
    path), or, where that function runs compiled and has no frame, the Ring
    request or WSGI environ that the outermost frame (the app's) was given.
    """
    top = frame
    outermost = None
    while frame is not None:
        if frame.f_code is serving_code:
            head = frame.f_locals.get("head")
            if head is not None:
                return f"serving {head.method} {head.target}"
        outermost = frame
        frame = frame.f_back
    if top is None:
        return ""
    request = _request_in(outermost)
    if request is not None:
        return "serving " + request
    return f"outside a request, in {top.f_code.co_name} ({top.f_code.co_filename}:{top.f_lineno})"


def _request_in(frame: FrameType) -> str | None:
    """ "GET /path?query" from a Ring request or a WSGI environ among the frame's arguments."""
    code = frame.f_code
    local = frame.f_locals
    for name in code.co_varnames[: code.co_argcount]:
        value = local.get(name)
        if type(value) is not dict:
            continue
        if "request_method" in value and "uri" in value:  # a Ring request
            query = value.get("query_string")
            return f"{value['request_method']} {value['uri']}" + (f"?{query}" if query else "")
        if "REQUEST_METHOD" in value and "RAW_URI" in value:  # a WSGI environ
            return f"{value['REQUEST_METHOD']} {value['RAW_URI']}"
    return None
