"""A channel that streams an HTTP response (chunked on HTTP/1.1); the connection may serve on after it."""

from __future__ import annotations

import logging

from ..http import (
    CHUNKED,
    LAST_CHUNK,
    LocalProtocolError,
    chunk,
    serialize_head,
)
from ._channel import (
    CLIENT_GONE,
    CLOSED,
    CLOSING,
    OPEN,
    RECV_SIZE,
    SERVER_STOPPING,
    Channel,
    ChannelResponse,
)

log = logging.getLogger("preforkit.error")


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
