"""The master's pub/sub broker: fan-out between workers, optionally through Redis.

Each worker has a unix socketpair to the master (made before its fork).  A
frame a worker publishes goes to every worker's link (the sender's too); with
``--pubsub redis://...`` it goes to Redis instead, and what comes back from
Redis (from every instance) is fanned out, so Redis sees one subscription per
instance, not per worker.  A worker that reads too slowly has frames dropped
(counted and logged) once its link holds ``LINK_LIMIT`` bytes: one slow worker
never holds up the others or grows the master without bound.
"""

from __future__ import annotations

import logging
import socket

from .._common.frames import LINK_LIMIT, frame, split_frames
from .._common.outbox import Outbox
from ._redis import RedisLink

log = logging.getLogger("preforkit.error")


class _Link:
    __slots__ = ("inbuf", "outbox", "pid", "sock")

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock
        self.inbuf = bytearray()
        self.outbox = Outbox(max_bytes=LINK_LIMIT)  # frames for this worker


class Broker:
    def __init__(self, url: str | None, wake_fd: int) -> None:
        self.links: dict[int, _Link] = {}
        self._by_fd: dict[int, _Link] = {}
        self.redis = RedisLink(url, wake_fd) if url and url.startswith(("redis://", "rediss://", "unix://")) else None

    def pair(self) -> tuple[socket.socket, socket.socket]:
        """A new (master end, worker end) socketpair, made before a fork."""
        master_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        master_end.setblocking(False)
        return master_end, worker_end

    def add(self, pid: int, master_end: socket.socket) -> None:
        link = _Link(pid, master_end)
        self.links[pid] = link
        self._by_fd[master_end.fileno()] = link

    def remove(self, pid: int) -> None:
        link = self.links.pop(pid, None)
        if link is not None:
            self._by_fd.pop(link.sock.fileno(), None)
            link.sock.close()

    def close_in_child(self) -> None:
        """In a new worker: drop the master's ends of every link, and Redis."""
        for link in self.links.values():
            link.sock.close()
        self.links.clear()
        self._by_fd.clear()

    # -- the master loop --------------------------------------------------------------

    def readable(self) -> list[socket.socket]:
        return [link.sock for link in self.links.values()]

    def writable(self) -> list[socket.socket]:
        return [link.sock for link in self.links.values() if link.outbox]

    def on_readable(self, sock: socket.socket) -> None:
        link = self._by_fd.get(sock.fileno())
        if link is None:
            return
        try:
            data = sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            return  # the worker is gone; reaping removes the link
        link.inbuf += data
        for body in split_frames(link.inbuf):
            if self.redis is not None:
                self.redis.publish(body)
            else:
                self.fan_out(body)

    def on_wake(self) -> None:
        """Frames that arrived from Redis (every instance's publishes)."""
        if self.redis is not None:
            for body in self.redis.received():
                self.fan_out(body)

    def fan_out(self, body: bytes) -> None:
        data = frame(body)
        for link in self.links.values():
            outbox = link.outbox
            if not outbox.push(data):
                if outbox.dropped in (1, 10, 100) or outbox.dropped % 1000 == 0:
                    log.warning(
                        "pubsub: worker %d reads too slowly; %d messages dropped for it", link.pid, outbox.dropped
                    )
                continue
            self._write(link)

    def on_writable(self, sock: socket.socket) -> None:
        link = self._by_fd.get(sock.fileno())
        if link is not None:
            self._write(link)

    def _write(self, link: _Link) -> None:
        try:
            link.outbox.flush(link.sock.send)
        except OSError:
            link.outbox.clear()

    def close(self) -> None:
        for pid in list(self.links):
            self.remove(pid)
        if self.redis is not None:
            self.redis.close()
