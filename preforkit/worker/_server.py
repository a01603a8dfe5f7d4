"""The worker's server: accept loops, connection greenlets, graceful stop."""

from __future__ import annotations

import errno
import logging
import socket

import gevent
from gevent.event import Event

from ..http import HeadLimits, HeadParser
from ._access_log import AccessLog
from ._connection import Connection

log = logging.getLogger("preforkit.error")

# trio's lesson: these mean "out of resources right now", not "broken".
ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


class WorkerServer:
    """Serves ``app`` on already-bound listening sockets in the current hub.

    ``config`` needs the attributes of ``preforkit.config.Config`` that the
    worker reads (keepalive, limits, server_header, access log settings).
    """

    def __init__(self, app, config, sockets: list[socket.socket]) -> None:
        self.app = app
        self.config = config
        self.limits = HeadLimits(
            max_request_line=config.limit_request_line,
            max_fields=config.limit_request_fields,
            max_field_size=config.limit_request_field_size,
            max_body=config.max_body,
        )
        self.parser = HeadParser(self.limits)
        self.access_log = AccessLog.open(config.access_log, config.access_log_format)
        self.listeners = [_cooperative(sock) for sock in sockets]
        self.connections: dict[Connection, gevent.Greenlet] = {}
        self.stopping = False
        self._below_limit = Event()
        self._below_limit.set()
        self._stopped = Event()
        self._accepters: list[gevent.Greenlet] = []

    def start(self) -> None:
        """Start accepting (returns at once)."""
        for listener in self.listeners:
            local = _local_address(listener)
            self._accepters.append(gevent.spawn(self._accept_loop, listener, local))

    def serve_forever(self) -> None:
        """Start and block the calling greenlet until ``stop`` completes."""
        self.start()
        self._stopped.wait()

    def _accept_loop(self, listener: socket.socket, local: tuple[str, int | None, str]) -> None:
        limit = self.config.worker_connections
        connections = self.connections
        tcp = listener.family in (socket.AF_INET, socket.AF_INET6)
        while not self.stopping:
            if len(connections) >= limit:
                self._below_limit.clear()
                self._below_limit.wait()
                continue
            try:
                sock, peer = listener.accept()
            except OSError as exc:
                if self.stopping:
                    return
                if exc.errno in ACCEPT_CAPACITY_ERRNOS:
                    log.warning("accept() failed: %s; retrying shortly", exc)
                    gevent.sleep(0.1)
                    continue
                raise
            if tcp:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(sock, peer, self, local)
            connections[connection] = gevent.spawn(self._run, connection)

    def _run(self, connection: Connection) -> None:
        try:
            connection.run()
        finally:
            del self.connections[connection]
            if len(self.connections) < self.config.worker_connections:
                self._below_limit.set()
            if self.stopping and not self.connections:
                self._stopped.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let requests in flight finish, close the rest.

        Idle keep-alive connections are closed at once; a connection still
        busy after ``timeout`` seconds is cut.
        """
        if self.stopping:
            self._stopped.wait(timeout)
            return
        self.stopping = True
        self._below_limit.set()
        for listener in self.listeners:
            listener.close()
        for connection in list(self.connections):
            connection.closing = True
            if connection.idle:
                connection.abort()
        if not self.connections:
            self._stopped.set()
        if not self._stopped.wait(timeout):
            gevent.killall(list(self.connections.values()), block=True, timeout=1)
        self._stopped.set()
        if self.access_log is not None:
            self.access_log.close()


def _cooperative(sock: socket.socket) -> socket.socket:
    """A gevent socket for a listening socket bound elsewhere."""
    import gevent.socket

    if isinstance(sock, gevent.socket.socket):
        return sock
    family, kind = sock.family, sock.type
    return gevent.socket.socket(family, kind, fileno=sock.detach())


def _local_address(listener: socket.socket) -> tuple[str, int | None, str]:
    """(host, port, scheme) the listener serves, for the request dict."""
    address = listener.getsockname()
    if isinstance(address, tuple):
        return address[0], address[1], "http"
    return "localhost", None, "http"
