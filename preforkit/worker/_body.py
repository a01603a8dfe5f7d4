"""The request body as a lazily read binary stream (``request["body"]``)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._connection import Connection

READ_SIZE = 65536


class ClientDisconnected(OSError):
    """The client closed the connection before sending the whole body."""


class RequestBody:
    """Reads the body from the connection as the application asks for it.

    A raw binary stream (registered as an ``io.RawIOBase``, so
    ``io.BufferedReader(body)`` works) without io's per-object costs: one
    is made for every request that has a body.  The first read of a request
    that said ``Expect: 100-continue`` sends the interim ``100 Continue``
    response.  Reads raise ``ProtocolError`` for a malformed or oversized body
    and ``ClientDisconnected`` when the peer goes away mid-body.
    """

    __slots__ = ("_connection", "_expect_continue", "_pending", "_reader", "closed")

    def __init__(self, connection: Connection, reader, expect_continue: bool) -> None:
        self._connection = connection
        self._reader = reader
        self._expect_continue = expect_continue
        self._pending = b""
        self.closed = False

    @property
    def done(self) -> bool:
        return not self._pending and self._reader.done

    @property
    def trailers(self) -> list[tuple[str, str]]:
        """Trailer fields of a chunked body (available once it is read)."""
        return getattr(self._reader, "trailers", [])

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise io.UnsupportedOperation("the request body has no file descriptor")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Further reads fail; the server still discards the unread rest."""
        self.closed = True

    def __enter__(self) -> RequestBody:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def _next_data(self, limit: int) -> bytes:
        """Up to ``limit`` bytes (all available if -1), b"" only at the end."""
        reader = self._reader
        connection = self._connection
        buffer = connection.buffer
        while True:
            data = reader.read(buffer, limit)
            if data or reader.done:
                return data
            if self._expect_continue:
                self._expect_continue = False
                connection.send_continue()
            received = connection.recv()
            if not received:
                raise ClientDisconnected("client closed the connection during the request body")
            buffer += received

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed request body")
        if size is None or size < 0:
            return self.readall()
        if size == 0:
            return b""
        pending = self._pending
        if pending:
            data, self._pending = pending[:size], pending[size:]
            return data
        return self._next_data(size)

    def readall(self) -> bytes:
        parts = [self._pending] if self._pending else []
        self._pending = b""
        reader = self._reader
        while not reader.done:
            data = self._next_data(-1)
            if not data:
                break
            parts.append(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto(self, target) -> int:
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed request body")
        if size is None:
            size = -1
        parts = []
        total = 0
        while True:
            pending = self._pending or self._next_data(READ_SIZE)
            self._pending = b""
            if not pending:
                break
            newline = pending.find(b"\n") + 1
            cut = newline or len(pending)
            if size >= 0:
                cut = min(cut, size - total)
            parts.append(pending[:cut])
            self._pending = pending[cut:]
            total += cut
            if (newline and cut == newline) or 0 <= size <= total:
                break
        return b"".join(parts)

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    @property
    def awaiting_continue(self) -> bool:
        """The client holds the body back until we send ``100 Continue``."""
        return self._expect_continue

    @property
    def remaining(self) -> int | None:
        """Bytes still to come by Content-Length (None for chunked: unknown)."""
        return getattr(self._reader, "remaining", None)

    def drain(self, max_bytes: int) -> bool:
        """Read and discard what is left, up to ``max_bytes``; True when done."""
        if self._expect_continue:
            return False  # the client is still waiting for our go-ahead
        self._pending = b""
        discarded = 0
        while not self._reader.done:
            data = self._next_data(READ_SIZE)
            discarded += len(data)
            if discarded > max_bytes:
                return False
        return True


io.RawIOBase.register(RequestBody)

from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
