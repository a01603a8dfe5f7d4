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
from ..http import (
    BINARY,
    CHUNKED,
    LAST_CHUNK,
    PING,
    PONG,
    TEXT,
    Close,
    FrameDecoder,
    LocalProtocolError,
    Message,
    Ping,
    Pong,
    WebSocketError,
    chunk,
    encode_close,
    encode_frame,
    serialize_head,
)
from ._hub import call_in_hub, get_ident

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


class WebSocketChannel(Channel):
    """A WebSocket connection after the handshake."""

    is_websocket = True

    __slots__ = ("_close_timer", "_decoder", "_deflate", "ping_sent", "subprotocol")

    def __init__(self, connection, callbacks: ChannelResponse, decoder: FrameDecoder, subprotocol) -> None:
        super().__init__(connection, callbacks)
        self._decoder = decoder
        self._deflate = decoder.deflate
        self._close_timer = None
        self.ping_sent = 0.0  # when an unanswered ping went out (0: none)
        self.subprotocol = subprotocol

    def send(self, data, close: bool = False) -> bool:
        """Send a message: ``str`` as text, ``bytes`` as binary.

        Returns False, sending nothing, when the channel is closed or its
        outgoing queue (``--ws-max-queue`` messages) is full: a peer that
        reads too slowly makes sends fail instead of growing memory without
        bound.  ``close=True`` closes the channel (code 1000) after the message.
        """
        if isinstance(data, str):
            opcode, payload = TEXT, data.encode("utf-8")
        elif isinstance(data, (bytes, bytearray, memoryview)):
            opcode, payload = BINARY, bytes(data)
        else:
            raise TypeError(f"send() takes str or bytes, not {type(data).__name__}")
        with self._lock:
            if self._state != OPEN:
                return False
            frame = self._encode(opcode, payload)
            direct = not self._outbox and not self._writing and get_ident() == self._hub.thread_ident
        # In the hub's thread with nothing queued: write now, without the queue.
        sent = self._send_now(frame) if direct else self._enqueue(frame)
        if sent and close:
            self.close()
        return sent

    def _send_now(self, frame: bytes) -> bool:
        try:
            written = self._connection.sock.send(frame)
        except BlockingIOError:
            written = 0
        except OSError:
            self._lost(CLIENT_GONE)
            return False
        if written < len(frame):
            with self._lock:
                if self._outbox is None:
                    self._outbox = Outbox(max_items=self._connection.server.config.ws_max_queue)
                self._outbox.push_front(memoryview(frame)[written:])
                self._arm_writer()
        elif not self._connection.flush_tls():
            self._arm_writer()
        return True

    def _encode(self, opcode: int, payload: bytes) -> bytes:
        deflate = self._deflate
        if deflate is not None and len(payload) > 32:
            return encode_frame(opcode, deflate.compress(payload), rsv1=True)
        return encode_frame(opcode, payload)

    def ping(self, payload: bytes = b"") -> bool:
        return self._enqueue(encode_frame(PING, payload[:125]))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the TCP connection closes when it completes."""
        with self._lock:
            if self._state != OPEN:
                return
            self._state = CLOSING
            self._status = code
        self._enqueue(encode_close(code, reason), force=True)
        self._in_hub(self._start_close_timer)

    def _start_close_timer(self) -> None:
        if self._close_timer is None and not self._connection.closed:
            self._close_timer = self._hub.loop.timer(CLOSE_TIMEOUT)
            self._close_timer.start(self._close_timed_out)

    def _close_timed_out(self) -> None:
        self._lost(self._status)

    def _readable(self) -> None:
        data = self._connection.recv_nowait()
        if data is None:
            return
        if not data:
            self._lost(self._status if self._state == CLOSING else CLIENT_GONE)
            return
        self.last_seen = time.monotonic()
        self.receive(data)

    def receive(self, data: bytes) -> None:
        """Decode bytes from the peer and act on every event (in the hub)."""
        try:
            events = self._decoder.feed(data)
        except WebSocketError as exc:
            self._fail(exc.code, str(exc))
            return
        for event in events:
            kind = type(event)
            if kind is Message:
                if self._state == OPEN:
                    self._deliver(("on_receive", event.data))
            elif kind is Ping:
                self._enqueue(encode_frame(PONG, event.payload), force=True)
                self._deliver(("on_ping", event.payload))
            elif kind is Pong:
                self.ping_sent = 0.0
            elif kind is Close:
                self._peer_closed(event)
                return

    def _peer_closed(self, event: Close) -> None:
        with self._lock:
            state = self._state
            if state == CLOSED:
                return
            self._state = CLOSING
        if state == OPEN:  # the peer started it: answer, then close TCP (we close first)
            self._status = event.code
            echo = 1000 if event.code == 1005 else event.code
            self._enqueue(encode_close(echo), close_after=True, force=True)
        else:  # we started it: the handshake is complete
            self._lost(self._status)

    def _fail(self, code: int, reason: str) -> None:
        log.debug("WebSocket %r failed: %s (%d)", self, reason, code)
        with self._lock:
            state = self._state
            if state != OPEN:
                if state == CLOSING:
                    self._lost(self._status)
                return
            self._state = CLOSING
        self._status = code
        self._enqueue(encode_close(code, reason[:100]), close_after=True, force=True)

    def _finish_flushed(self) -> None:
        self._lost(self._status)

    def _end(self, status) -> None:
        if self._close_timer is not None:
            self._close_timer.close()
            self._close_timer = None
        super()._end(status)

    def stop(self) -> None:
        """Worker stopping: close with 1001; on_close gets ``"server stopping"``."""
        self.close(1001, "server stopping")
        self._status = SERVER_STOPPING

    def check_ping(self, now: float, interval: float, timeout: float) -> None:
        """From the worker's sweeper: ping an idle peer, drop a silent one."""
        if self._state != OPEN:
            return
        if self.ping_sent:
            if timeout and now - self.ping_sent > timeout:
                log.info("WebSocket %r did not answer a ping in %.0f s; dropping it", self, timeout)
                self._lost(PING_TIMEOUT)
        elif now - self.last_seen > interval:
            self.ping_sent = now
            self.ping()


class StreamChannel(Channel):
    """A streamed HTTP response on a non-WebSocket request."""

    __slots__ = ("_framing", "_head", "_keep_alive", "_started")

    def __init__(self, connection, callbacks: ChannelResponse, head, keep_alive: bool) -> None:
        super().__init__(connection, callbacks)
        self._head = head
        self._keep_alive = keep_alive
        self._framing = CHUNKED
        self._started = False  # the response head went out

    def send(self, data, close: bool = False) -> bool:
        """The first send may be a response dict (status, headers, body); then
        ``str``/``bytes`` chunks.  ``close=True`` ends the response."""
        with self._lock:
            if self._state != OPEN:
                return False
            try:
                payload = self._encode(data, close)
            except (LocalProtocolError, TypeError) as exc:
                log.error("Invalid data sent on %r: %s", self, exc)
                return False
            if close:
                self._state = CLOSING
        return self._enqueue(payload, close_after=close, force=close)

    def _encode(self, data, last: bool) -> bytes:
        head = b""
        if not self._started:
            response = data if isinstance(data, dict) else {"status": 200, "body": data}
            status = response.get("status", 200)
            head, self._framing, self._keep_alive, _ = serialize_head(
                status,
                response.get("headers"),
                method=self._head.method,
                http_version=self._head.http_version,
                keep_alive=self._keep_alive and not self._connection.closing,
                body_length=None,
                server=self._connection.server.config.server_header,
            )
            self._started = True
            data = response.get("body") if isinstance(data, dict) else data
        if data is None:
            data = b""
        elif isinstance(data, str):
            data = data.encode("utf-8")
        elif not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"stream chunks are str or bytes, not {type(data).__name__}")
        body = b""
        if self._framing == CHUNKED:
            if data:
                body = chunk(bytes(data))
            if last:
                body += LAST_CHUNK
        elif self._framing != "none":
            body = bytes(data)
        return head + body

    def close(self) -> None:
        """End the response (sending the head first if nothing was sent)."""
        self.send(b"", close=True)

    def _readable(self) -> None:
        """Pipelined bytes are kept for after the stream; EOF means the client left."""
        connection = self._connection
        data = connection.recv_nowait()
        if data is None:
            return
        if not data:
            self._lost(CLIENT_GONE)
            return
        connection.buffer += data
        if len(connection.buffer) > RECV_SIZE:
            connection.read_watcher().stop()

    def _finish_flushed(self) -> None:
        with self._lock:
            if self._state == CLOSED:
                return
            self._state = CLOSED
        connection = self._connection
        connection.server.channel_closed(self)
        self._deliver(("on_close", self._status or "closed"))
        if self._keep_alive and self._framing == CHUNKED and not connection.closing:
            connection.read_watcher().stop()
            connection.server.pool.spawn(connection.serve_after_channel)
        else:
            connection.close()

    def stop(self) -> None:
        self._status = SERVER_STOPPING
        self.send(b"", close=True)
