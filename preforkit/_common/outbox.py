"""Bytes waiting for a non-blocking socket: one queue, one backpressure rule, one writer.

Every path that writes to a non-blocking socket without a greenlet waiting on
it - WebSocket and stream channels, the worker's pub/sub link, the master's
broker links - and the slow path of a response write queue their bytes in an
``Outbox`` and call ``flush(sock.send)`` whenever the socket may take more:

- ``push`` refuses what does not fit (``max_items`` messages, ``max_bytes``
  bytes) and counts it in ``dropped``; the caller decides what a refusal
  means (``send()`` returns False, a pub/sub frame is lost and logged);
- ``flush`` writes until the socket would block and says whether all went.

No I/O framework here: the worker calls it from io-watcher callbacks, the
master from its select loop.  Not thread-safe on its own (a channel holds its
lock around it).
"""

from __future__ import annotations

from collections import deque
from typing import Callable


class Outbox:
    __slots__ = ("_chunks", "dropped", "items", "max_bytes", "max_items", "size")

    def __init__(self, max_items: int | None = None, max_bytes: int | None = None) -> None:
        self._chunks: deque = deque()
        self.items = 0  # messages waiting (a partly written one included)
        self.size = 0  # bytes waiting
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.dropped = 0  # pushes refused for want of room

    def __bool__(self) -> bool:
        return bool(self._chunks)

    def __len__(self) -> int:
        return self.items

    def has_room(self, size: int) -> bool:
        if self.max_items is not None and self.items >= self.max_items:
            return False
        return self.max_bytes is None or self.size + size <= self.max_bytes

    def push(self, data, force: bool = False) -> bool:
        """Queue ``data`` at the end; False (and counted) when there is no room, unless ``force``."""
        if not force and not self.has_room(len(data)):
            self.dropped += 1
            return False
        self._chunks.append(data)
        self.items += 1
        self.size += len(data)
        return True

    def push_front(self, data) -> None:
        """Queue the unwritten rest of a message that was being written directly."""
        self._chunks.appendleft(data)
        self.items += 1
        self.size += len(data)

    def flush(self, send: Callable[[bytes], int]) -> bool:
        """Write with ``send`` until it would block; True when nothing is left.

        ``OSError`` other than ``BlockingIOError`` propagates: the peer is gone.
        """
        chunks = self._chunks
        while chunks:
            data = chunks[0]
            try:
                sent = send(data)
            except BlockingIOError:
                return False
            if sent < len(data):
                chunks[0] = memoryview(data)[sent:]
                self.size -= sent
                return False
            chunks.popleft()
            self.items -= 1
            self.size -= len(data)
        return True

    def clear(self) -> None:
        self._chunks.clear()
        self.items = self.size = 0
