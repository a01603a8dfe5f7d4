"""Async responses: the handler returns now and answers later, from anywhere.

``async_response(fn)`` is what a handler returns; the worker calls
``fn(respond)`` at once.  ``respond(response)`` may then be called from any
greenlet, from a gevent threadpool thread or from a plain OS thread, exactly
once.  While a response is pending no greenlet waits for it: the connection
is parked as a socket, an io watcher (to notice the client leaving) and this
small ``Responder`` object.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from gevent import get_hub
from gevent.monkey import get_original

from ._hub import call_in_hub

log = logging.getLogger("preforkit.error")

# Real OS-level primitives even in a monkey-patched process: respond() may be
# called from threads that gevent does not know about.
_allocate_lock = get_original("_thread", "allocate_lock")
_LOCK = _allocate_lock()  # held only for a flag swap, never across I/O

PENDING, RESPONDED, CLOSED = 0, 1, 2

DEFAULT_TIMEOUT_RESPONSE = {
    "status": 504,
    "headers": {"Content-Type": "text/plain"},
    "body": b"Gateway Timeout: the application did not respond in time\n",
}
INTERNAL_ERROR = {"status": 500, "headers": {"Content-Type": "text/plain"}, "body": b"Internal Server Error\n"}
STOPPING_RESPONSE = {
    "status": 503,
    "headers": {"Content-Type": "text/plain", "Retry-After": "1"},
    "body": b"Service Unavailable: the server is restarting\n",
}


class AsyncResponse:
    """What a handler returns to answer later; see ``async_response``."""

    __slots__ = ("fn", "timeout", "timeout_response", "transforms")

    def __init__(self, fn: Callable[[Responder], Any], timeout: float | None, timeout_response: dict | None) -> None:
        if not callable(fn):
            raise TypeError(f"async_response needs a callable, not {type(fn).__name__}")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive")
        self.fn = fn
        self.timeout = timeout
        self.timeout_response = timeout_response
        self.transforms: list[Callable[[dict], dict]] = []

    def map(self, transform: Callable[[dict], dict]) -> AsyncResponse:
        """Apply ``transform`` to the response once it is delivered (middleware)."""
        self.transforms.append(transform)
        return self


def async_response(
    fn: Callable[[Responder], Any], *, timeout: float | None = None, timeout_response: dict | None = None
) -> AsyncResponse:
    """Answer this request later: ``fn(respond)`` is called right away.

    ``respond(response) -> bool`` sends the response dict the first time it
    reaches an open connection and returns True; later calls, or calls after
    the client left, return False and send nothing.  ``respond.is_open`` says
    whether the client still waits; ``respond.on_close(callback)`` runs
    ``callback(respond)`` once, in the worker's hub, if the client goes away
    before the response (or the worker stops).  After ``timeout`` seconds
    without a response the server sends ``timeout_response`` (default: 504).
    """
    return AsyncResponse(fn, timeout, timeout_response)


class Responder:
    """The ``respond`` callable handed to an async response's ``fn``."""

    __slots__ = ("__weakref__", "_callbacks", "_connection", "_hub", "_response", "_state", "_timer", "_transforms")

    def __init__(self, connection, transforms: list) -> None:
        self._connection = connection
        self._hub = get_hub()
        self._transforms = transforms
        self._state = PENDING
        self._response = None  # delivered before the connection was parked
        self._callbacks: list | None = None
        self._timer = None

    def __call__(self, response: dict) -> bool:
        """Send ``response``; True the first time, False ever after."""
        if not isinstance(response, dict):
            log.error("respond() needs a response dict, not %s: answering 500", type(response).__name__)
            response = INTERNAL_ERROR
        with _LOCK:
            if self._state != PENDING:
                return False
            self._state = RESPONDED
            if not self._connection.held:
                self._response = response  # still inside fn(): the connection picks it up
                return True
        self._schedule(self._deliver, response)
        return True

    @property
    def is_open(self) -> bool:
        """True while the client is connected and no response was sent."""
        return self._state == PENDING

    def on_close(self, callback: Callable[[Responder], Any]) -> None:
        """Run ``callback(respond)`` once if the client leaves before the response.

        Registered after the client left, it runs right away (in the hub).
        """
        with _LOCK:
            if self._state == PENDING:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
            closed = self._state == CLOSED
        if closed:
            self._schedule(self._run_callbacks, [callback])

    def __repr__(self) -> str:
        state = ("pending", "responded", "closed")[self._state]
        return f"<respond {state} {self._connection.peer!r}>"

    # -- used by the connection (in the hub's thread) -----------------------------

    def _finish(self, response: dict) -> dict:
        """Apply the middleware transforms registered with ``AsyncResponse.map``."""
        self._cancel_timer()
        try:
            for transform in self._transforms:
                response = transform(response)
        except Exception:
            log.exception("Error in a response transform of an async response")
            return INTERNAL_ERROR
        return response

    def _deliver(self, response: dict) -> None:
        """In a greenlet of the hub: transform and write the response."""
        self._connection.resume(self._finish(response))

    def _take_early_response(self):
        """After fn(): the response given inside it, or None (then park)."""
        with _LOCK:
            response, self._response = self._response, None
            if response is None and self._state == PENDING:
                self._connection.held = True
                return None
        return response

    def _start_timer(self, seconds: float, timeout_response: dict | None) -> None:
        self._timer = self._hub.loop.timer(seconds)
        self._timer.start(self._time_out, timeout_response)

    def _time_out(self, timeout_response: dict | None) -> None:
        with _LOCK:
            if self._state != PENDING:
                return
            self._state = RESPONDED
        response = DEFAULT_TIMEOUT_RESPONSE if timeout_response is None else timeout_response
        self._connection.server.pool.spawn(self._deliver, response)

    def _client_gone(self) -> bool:
        """The client left (or the worker stops): run on_close; False if too late."""
        with _LOCK:
            if self._state != PENDING:
                return False
            self._state = CLOSED
            callbacks, self._callbacks = self._callbacks, None
        self._cancel_timer()
        if callbacks:
            self._connection.server.pool.spawn(self._run_callbacks, callbacks)
        return True

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.close()
            self._timer = None

    def _run_callbacks(self, callbacks: list) -> None:
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("Error in an on_close callback")

    def _schedule(self, function, *args) -> None:
        """Run ``function(*args)`` in a pooled greenlet of the worker's hub (from any thread)."""
        call_in_hub(self._hub, self._connection.server.pool.spawn, function, *args)
