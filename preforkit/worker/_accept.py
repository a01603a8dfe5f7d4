"""Taking the clients waiting on a listening socket, and starting a connection for each.

The worker's accept loop (``WorkerServer._accept_loop``) decides when to take
clients and how many; ``Acceptor.take`` takes them.  Every client socket is
non-blocking.  Compiled (``_c_accept.pxd``), a TCP/IPv4 client is taken with
``accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`` (no ``ioctl`` per connection, no
exception when none waits) and its address text is formatted once per worker;
the Python path is the reference, and both give the same sockets and peers.
"""

from __future__ import annotations

import _socket
import socket

from gevent import get_hub

from .._accel import runs_compiled
from ._connection import Connection
from ._tls import TLSSocket

# Client addresses formatted by the compiled path: packed IPv4 address -> its text.
_IPV4_TEXTS: dict[int, str] = {}
_IPV4_TEXTS_SIZE = 4096
_new_socket = _socket.socket


def accept_client(listener: _socket.socket) -> tuple[_socket.socket, object] | None:
    """(non-blocking socket, peer address) of the next client waiting on ``listener``;
    None when none waits.  Raises OSError as accept(2) fails.  (``Acceptor.take``, the
    usual caller, takes IPv4 clients with ``_accept_ipv4`` instead where compiled.)"""
    try:
        fd, peer = listener._accept()
    except BlockingIOError:
        return None
    sock = _socket.socket(listener.family, socket.SOCK_STREAM, 0, fd)
    sock.setblocking(False)
    return sock, peer


class Acceptor:
    """Takes the clients waiting on one listener and starts serving each."""

    __slots__ = (
        "connections",
        "counters",
        "fast",
        "fd",
        "hub",
        "listener",
        "local",
        "nodelay",
        "server",
        "tls_context",
    )

    def __init__(self, server, listener: _socket.socket, local: tuple, nodelay: bool) -> None:
        self.server = server
        self.listener = listener
        self.local = local  # (host, port, scheme) of the listener, for the request dict
        self.nodelay = nodelay  # set TCP_NODELAY on each client (not inherited from the listener)
        self.tls_context = server.tls_context
        self.connections = server.connections
        self.counters = server.counters
        self.hub = get_hub()
        self.fd = listener.fileno()
        self.fast = FAST_ACCEPT and listener.family == socket.AF_INET  # accept4() from C

    def take(self, most: int) -> int:
        """Accept and start up to ``most`` waiting clients; how many were taken (fewer:
        none waits now).  An OSError from accept(2) is raised; those taken before it are served."""
        listener = self.listener
        connections = self.connections
        counters = self.counters
        taken = 0
        while taken < most:
            if self.fast:
                accepted = _accept_ipv4(self.fd, _IPV4_TEXTS, _IPV4_TEXTS_SIZE, _new_socket)  # noqa: F821
            else:
                accepted = accept_client(listener)
            if accepted is None:
                break
            sock, peer = accepted
            if self.nodelay:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls_context is not None:
                sock = TLSSocket(sock, self.tls_context)
            connection = Connection(sock, peer, self.server, self.local, self.hub)
            connections.add(connection)
            counters.accepted += 1
            taken += 1
            connection.start()
        return taken


# This module's compiled twin runs, where accept4() is (its _c_accept.pxd declares _accept_ipv4, ACCEPT4).
FAST_ACCEPT = runs_compiled(accept_client) and ACCEPT4  # noqa: F821

from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
