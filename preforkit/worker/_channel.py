"""Channels: one object for WebSockets and streamed HTTP responses (http-kit's as-channel).

A handler returns ``as_channel(request, on_open=..., on_receive=..., ...)``.
On a WebSocket upgrade request the server completes the handshake and the
channel carries messages both ways; on any other request the channel streams
an HTTP response (chunked on HTTP/1.1).  ``ch.send`` is safe from any
greenlet or OS thread.

Like held async responses, an open channel costs no greenlet: reads and
writes are driven by io-watcher callbacks in the hub, and a greenlet exists
only while the app's callbacks run (``on_receive`` calls for one channel run
one after another, in order).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Callable

from gevent import get_hub
from gevent.monkey import get_original

from .._common.outbox import Outbox
from ._hub import call_in_hub

log = logging.getLogger("preforkit.error")

_allocate_lock = get_original("_thread", "allocate_lock")

OPEN, CLOSING, CLOSED = 0, 1, 2
CLIENT_GONE = "client gone"
SERVER_STOPPING = "server stopping"
PING_TIMEOUT = "ping timeout"
CLOSE_TIMEOUT = 5.0  # seconds to wait for the peer's close frame
INBOX_LIMIT = 256  # pending received messages before reading pauses
RECV_SIZE = 65536


class ChannelResponse:
    """What a handler returns to take the connection over as a channel."""

    __slots__ = ("on_close", "on_open", "on_ping", "on_receive", "subprotocols", "websocket")

    def __init__(self, websocket: bool, on_open, on_receive, on_ping, on_close, subprotocols) -> None:
        self.websocket = websocket
        self.on_open = on_open
        self.on_receive = on_receive
        self.on_ping = on_ping
        self.on_close = on_close
        self.subprotocols = tuple(subprotocols or ())


def as_channel(
    request: dict,
    *,
    on_open: Callable[[Channel], Any] | None = None,
    on_receive: Callable[[Channel, Any], Any] | None = None,
    on_ping: Callable[[Channel, bytes], Any] | None = None,
    on_close: Callable[[Channel, Any], Any] | None = None,
    subprotocols=None,
) -> ChannelResponse:
    """Take this request over as a channel (return the result from the handler).

    For a WebSocket request: ``on_open(ch)`` once the handshake is done,
    ``on_receive(ch, message)`` per message (``str`` for text, ``bytes`` for
    binary), ``on_ping(ch, payload)`` per ping (answered with a pong
    already), ``on_close(ch, status)`` exactly once with the close code or a
    named reason (``"client gone"``, ``"server stopping"``, ``"ping
    timeout"``).  ``subprotocols`` lists the ones the app speaks; the first
    one the client offers is chosen (``ch.subprotocol``).

    For any other request the channel streams an HTTP response: ``on_open``
    is called, the first ``ch.send(response_dict)`` sends the status and
    headers, later sends are body chunks, ``ch.close()`` ends the response.
    """
    return ChannelResponse(bool(request.get("websocket")), on_open, on_receive, on_ping, on_close, subprotocols)


class Channel:
    """Common machinery: thread-safe send queue, non-blocking writes, callbacks."""

    is_websocket = False

    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_close_after_flush",
        "_connection",
        "_dispatching",
        "_hub",
        "_inbox",
        "_lock",
        "_outbox",
        "_state",
        "_status",
        "_writing",
        "last_seen",
    )

    def __init__(self, connection, callbacks: ChannelResponse) -> None:
        self._connection = connection
        self._callbacks = callbacks
        self._hub = get_hub()
        self._lock = _allocate_lock()
        self._state = OPEN
        self._status = None  # what on_close will get
        self._outbox: Outbox | None = None  # encoded frames waiting for the socket (made on first need)
        self._writing = False  # the write watcher is armed
        self._close_after_flush = False
        self._inbox: deque | None = None  # events for the app's callbacks
        self._dispatching = False
        self.last_seen = time.monotonic()

    @property
    def is_open(self) -> bool:
        return self._state == OPEN

    def __repr__(self) -> str:
        kind = "WebSocket" if self.is_websocket else "stream"
        state = ("open", "closing", "closed")[self._state]
        return f"<{kind} channel {state} {self._connection.peer!r}>"

    # -- sending (any thread) ---------------------------------------------------------

    def _enqueue(self, data: bytes, close_after: bool = False, force: bool = False) -> bool:
        """Queue encoded bytes; flush from the hub.  False if closed or full."""
        with self._lock:
            if self._state == CLOSED or (self._state == CLOSING and not force):
                return False
            if self._outbox is None:
                self._outbox = Outbox(max_items=self._connection.server.config.ws_max_queue)
            if not self._outbox.push(data, force):
                return False
            if close_after:
                self._close_after_flush = True
        self._in_hub(self._flush)
        return True

    def _in_hub(self, function, *args) -> None:
        """Run ``function`` in the hub thread: now if we are in it, else via its loop."""
        call_in_hub(self._hub, function, *args)

    def _flush(self) -> None:
        """Write what the socket takes without blocking; arm the write watcher for the rest."""
        connection = self._connection
        if connection.closed:
            return
        with self._lock:
            outbox = self._outbox
            try:
                done = outbox is None or outbox.flush(connection.sock.send)
            except OSError:
                done = None
            if done is False:
                self._arm_writer()
                return
        if done is None:
            self._lost(CLIENT_GONE)
            return
        if not connection.flush_tls():
            self._arm_writer()  # TLS ciphertext still waiting for the socket
            return
        self._disarm_writer()
        if self._close_after_flush:
            self._finish_flushed()

    def _arm_writer(self) -> None:
        if not self._writing:
            self._writing = True
            watcher = self._connection.write_watcher()
            watcher.start(self._flush)

    def _disarm_writer(self) -> None:
        if self._writing:
            self._writing = False
            self._connection.write_watcher().stop()

    # -- receiving (in the hub) -------------------------------------------------------

    def _deliver(self, event) -> None:
        """Queue an event for the app's callbacks, run in order in one greenlet."""
        if self._inbox is None:
            self._inbox = deque()
        self._inbox.append(event)
        if len(self._inbox) > INBOX_LIMIT:
            self._connection.read_watcher().stop()  # backpressure until the app catches up
        if not self._dispatching:
            self._dispatching = True
            self._connection.server.pool.spawn(self._dispatch)

    def _dispatch(self) -> None:
        inbox = self._inbox
        callbacks = self._callbacks
        try:
            while inbox:
                kind, value = inbox.popleft()
                if len(inbox) == INBOX_LIMIT and self._state == OPEN:
                    self._connection.read_watcher().start(self._readable)
                callback = getattr(callbacks, kind)
                if callback is None:
                    continue
                try:
                    callback(self, value)
                except Exception:
                    log.exception("Error in %s of %r", kind, self)
        finally:
            self._dispatching = False

    def _readable(self) -> None:
        raise NotImplementedError

    # -- ending ----------------------------------------------------------------------

    def _lost(self, status) -> None:
        """The connection is gone: run on_close once, close the socket."""
        with self._lock:
            if self._state == CLOSED:
                return
            self._state = CLOSED
            self._outbox = None
        self._end(status)

    def _end(self, status) -> None:
        self._connection.server.channel_closed(self)
        self._connection.close()
        self._status = status
        self._deliver(("on_close", status))

    def _finish_flushed(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """The worker stops (called in the hub)."""
        raise NotImplementedError
