"""How many connections a worker holds, and what a client gets past that.

The capacity is ``--worker-connections`` when set; by default it follows from
the open-file limit (which the master raises to the hard limit at start):
three quarters of it, leaving the rest for what the app itself opens (files,
database and upstream sockets) and for the 503 answers below.

At capacity a worker never leaves a client waiting in silence: idle
keep-alive connections are shed first (``WorkerServer._shed_idle``); when
none is idle, each waiting client is accepted and answered ``503 Service
Unavailable`` with ``Retry-After`` and ``Connection: close`` at once.  When
even ``accept`` fails for want of descriptors (EMFILE), one descriptor kept
in reserve is given up for the moment it takes to answer.
"""

from __future__ import annotations

import _socket
import errno
import logging
import os
import resource
import socket
import time

from gevent.monkey import get_original

from ..http import error_response

log = logging.getLogger("preforkit.error")

MIN_CAPACITY = 16
REFUSAL_LINGER = 2.0  # seconds a refused client has to read its 503 before the socket is closed
LOG_INTERVAL = 60.0


def default_capacity() -> int:
    """Three quarters of this process's soft open-file limit (at least MIN_CAPACITY)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(MIN_CAPACITY, soft * 3 // 4)


def capacity(configured: int | None) -> int:
    """The connections one worker holds: ``--worker-connections``, or the default."""
    return configured if configured else default_capacity()


class Throttled:
    """Logs one warning at most once per LOG_INTERVAL, counting what it held back."""

    def __init__(self, message: str) -> None:
        self.message = message
        self._last = -LOG_INTERVAL
        self._held_back = 0

    def warn(self, *args) -> None:
        now = time.monotonic()
        if now - self._last < LOG_INTERVAL:
            self._held_back += 1
            return
        self._last = now
        suffix = f" ({self._held_back} more since the last warning)" if self._held_back else ""
        self._held_back = 0
        log.warning(self.message + suffix, *args)


def busy_response(server_header: str | None) -> bytes:
    return error_response(
        503,
        "Service Unavailable: the server is at its connection limit",
        server_header,
        [("Retry-After", "1")],
    )


class Refusal:
    """One client answered 503 at once: the request it sent is read and dropped
    (closing on unread bytes would reset the connection before the client
    reads the answer), then the socket closes when the client does, or after
    REFUSAL_LINGER seconds."""

    __slots__ = ("_sock", "_timer", "_watcher")
    lingering: set[Refusal] = set()  # held here until closed

    def __init__(self, sock: socket.socket, response: bytes, loop) -> None:
        self._sock = sock
        sock.setblocking(False)
        _drain(sock)
        try:
            sock.send(response)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            self._watcher = self._timer = None
            return
        self._watcher = loop.io(sock.fileno(), 1)
        self._watcher.start(self._readable)
        self._timer = loop.timer(REFUSAL_LINGER)
        self._timer.start(self._close)
        Refusal.lingering.add(self)

    def _readable(self) -> None:
        if _drain(self._sock):
            self._close()

    def _close(self) -> None:
        Refusal.lingering.discard(self)
        self._watcher.close()
        self._timer.close()
        self._sock.close()


def _drain(sock: socket.socket) -> bool:
    """Read and drop what the client sent; True at EOF or on an error."""
    for _ in range(16):
        try:
            if not sock.recv(65536):
                return True
        except BlockingIOError:
            return False
        except OSError:
            return True
    return False


# Monkey-patched os.close defers closing a device or socket to the hub; the
# spare must be free before the very next accept().
_close_now = get_original("os", "close")


class SpareDescriptor:
    """One descriptor held back so that a worker out of them can still say 503."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self.take_back()

    def give_up(self) -> bool:
        """Close the spare for a moment; False if there is none."""
        if self._fd is None:
            return False
        _close_now(self._fd)
        self._fd = None
        return True

    def take_back(self) -> None:
        if self._fd is None:
            try:
                self._fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE):
                    raise

    def close(self) -> None:
        self.give_up()


class AtCapacity:
    """What a full worker needs: the spare descriptor, its 503 answer, its two throttled warnings."""

    def __init__(self, server_header: str | None) -> None:
        self.spare = SpareDescriptor()
        self.busy_response = busy_response(server_header)
        self.full_warning = Throttled(
            "At capacity: %d connections open, none idle; new clients get 503 (raise --worker-connections"
            " or the open-file limit, or add workers)"
        )
        self.emfile_warning = Throttled(
            "Out of file descriptors (%s); new clients get 503 (raise the open-file limit: ulimit -n, LimitNOFILE=)"
        )


_poll = get_original("select", "poll")  # monkey-patching takes poll() away; with timeout 0 it never blocks
_POLLIN = get_original("select", "POLLIN")


def pending(listener: _socket.socket) -> bool:
    """A connection is waiting in ``listener``'s backlog (checked without blocking).

    poll(), not select(): select() fails for a descriptor above 1023, which a
    worker holding thousands of connections may well give its listener.
    """
    poller = _poll()
    poller.register(listener.fileno(), _POLLIN)
    return bool(poller.poll(0))


def answer_now(sock: _socket.socket, response: bytes) -> None:
    """Out of descriptors: read what came, answer, close (no lingering: no fd to spare)."""
    try:
        try:
            sock.recv(65536)
        except BlockingIOError:
            pass
        sock.send(response)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    sock.close()
