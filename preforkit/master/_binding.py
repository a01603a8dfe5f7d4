"""Creating listening sockets from address specs."""

from __future__ import annotations

import os
import socket
import stat

DEFAULT_BACKLOG = 2048


class BindError(Exception):
    """An address spec is malformed or cannot be bound (one-line message)."""


def parse_address(spec: str, default_port: int = 8000) -> tuple:
    """``("tcp", host, port)``, ``("unix", path)`` or ``("fd", n)``."""
    if spec.startswith("unix:"):
        path = spec[5:]
        if not path:
            raise BindError(f"{spec!r}: empty unix socket path")
        return ("unix", path)
    if spec.startswith("fd://"):
        try:
            return ("fd", int(spec[5:]))
        except ValueError:
            raise BindError(f"{spec!r}: fd://N needs a file descriptor number") from None
    host, port_text = spec, ""
    if spec.startswith("["):
        end = spec.find("]")
        if end == -1:
            raise BindError(f"{spec!r}: unclosed '[' in IPv6 address")
        host, rest = spec[1:end], spec[end + 1 :]
        if rest and not rest.startswith(":"):
            raise BindError(f"{spec!r}: expected ':PORT' after ']'")
        port_text = rest[1:]
    elif ":" in spec:
        host, _, port_text = spec.rpartition(":")
    if not port_text:
        port = default_port
    elif port_text.isdigit() and int(port_text) < 65536:
        port = int(port_text)
    else:
        raise BindError(f"{spec!r}: {port_text!r} is not a port number")
    return ("tcp", host or "0.0.0.0", port)


def bind(
    spec: str,
    backlog: int = DEFAULT_BACKLOG,
    *,
    reuse_port: bool = False,
    listen: bool = True,
    defer_accept: int = 0,
) -> socket.socket:
    """A listening socket for ``spec``; ``BindError`` says why not.

    With ``reuse_port`` a TCP socket gets ``SO_REUSEPORT`` so that several
    processes can each listen on the address; ``listen=False`` only binds
    (the master reserves the port that way while its workers listen).
    ``defer_accept`` (seconds, TCP on Linux) sets ``TCP_DEFER_ACCEPT``: accept
    wakes for a connection once its first bytes are there (or after that long).
    """
    address = parse_address(spec)
    try:
        if address[0] == "unix":
            return _bind_unix(address[1], backlog)
        if address[0] == "fd":
            return socket.socket(fileno=address[1])
        return _bind_tcp(address[1], address[2], backlog, reuse_port, listen, defer_accept)
    except OSError as exc:
        raise BindError(f"cannot listen on {spec}: {exc.strerror or exc}") from None


def address_of(sock: socket.socket) -> str:
    """The spec that binds the same address again (``HOST:PORT`` or ``unix:PATH``)."""
    address = sock.getsockname()
    if isinstance(address, tuple):
        host = f"[{address[0]}]" if sock.family == socket.AF_INET6 else address[0]
        return f"{host}:{address[1]}"
    return f"unix:{address}"


def _bind_tcp(
    host: str, port: int, backlog: int, reuse_port: bool = False, listen: bool = True, defer_accept: int = 0
) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        # Accepted sockets inherit it (Linux), also those the kernel completes before a worker
        # runs its accept loop: no response waits for Nagle, no setsockopt per connection.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if defer_accept and hasattr(socket, "TCP_DEFER_ACCEPT"):  # Linux; elsewhere accept wakes at once
            # An HTTP client speaks first, so nothing waits for the server: the worker is
            # woken once per connection, with its request already there to read.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, defer_accept)
        sock.bind(sockaddr)
        if listen:
            sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _bind_unix(path: str, backlog: int) -> socket.socket:
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            if _unix_socket_in_use(path):
                raise OSError(f"{path} is in use by a running server")
            os.unlink(path)  # a stale socket file from an earlier run
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _unix_socket_in_use(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def describe(sock: socket.socket) -> str:
    """``http://127.0.0.1:8000`` or ``unix:/path`` for the startup line."""
    address = address_of(sock)
    return address if address.startswith("unix:") else "http://" + address
