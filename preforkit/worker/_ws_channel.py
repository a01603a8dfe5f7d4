"""A channel over a WebSocket: frames both ways, pings, the closing handshake (RFC 6455)."""

from __future__ import annotations

import logging
import time

from .._common.outbox import Outbox
from ..http import (
    BINARY,
    PING,
    PONG,
    TEXT,
    Close,
    FrameDecoder,
    Message,
    Ping,
    Pong,
    WebSocketError,
    encode_close,
    encode_frame,
)
from ._channel import (
    CLIENT_GONE,
    CLOSE_TIMEOUT,
    CLOSED,
    CLOSING,
    OPEN,
    PING_TIMEOUT,
    SERVER_STOPPING,
    Channel,
    ChannelResponse,
)
from ._hub import get_ident

log = logging.getLogger("preforkit.error")


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
        if sent:
            self._connection.server.counters.ws_out += 1
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
                    self._connection.server.counters.ws_in += 1
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
