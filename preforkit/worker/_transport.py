"""A connection's bytes: cooperative reads and writes on its raw non-blocking socket (or TLS).

Mixed into ``Connection``; these methods run in the greenlet lent to the
connection and park it on the hub's io watchers when the socket would block.
The sweeper sees how long the current wait has lasted (``waiting_since``).
"""

from __future__ import annotations

import logging
import os
import socket
import time

from .._common.outbox import Outbox
from ..http import CONTINUE, ProtocolError
from ..http._proxy_protocol import parse as parse_proxy_header

RECV_SIZE = 65536
log = logging.getLogger("preforkit.error")

MSG_MORE = getattr(socket, "MSG_MORE", 0)  # Linux: hold the bytes back for the FIN that follows


class Transport:
    """Socket and TLS I/O of one connection (the state lives in ``Connection``'s slots)."""

    __slots__ = ()

    def _proxy_step(self) -> None:
        """In the hub, before TLS and HTTP: read the PROXY protocol header, then go on (``_begin``).

        Waits on the read watcher, without a greenlet; bytes read past the
        header go to the request buffer (or to TLS).  A malformed header or
        EOF closes the connection; a slow one meets --header-timeout.
        """
        watcher = self.read_watcher()
        watcher.stop()
        raw = self.sock.raw if self.tls else self.sock
        try:
            data = raw.recv(RECV_SIZE)
        except BlockingIOError:
            watcher.start(self._proxy_step)
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        buffer = self.buffer
        buffer += data
        try:
            found = parse_proxy_header(buffer)
        except ProtocolError as exc:
            log.info("PROXY protocol: closing the connection from %s: %s", self.peer, exc)
            self.close()
            return
        if found is None:
            watcher.start(self._proxy_step)
            return
        header, used = found
        del buffer[:used]
        if header.client is not None:
            self.peer = header.client
            self.remote_addr = header.client[0]
            self.trusted = header.client[0] in self.server.trusted_proxies  # forwarding headers now come from it
            self._environs = None
        if header.tls is not None:
            self.local = (self.local[0], self.local[1], "https" if header.tls else "http")
        if self.tls:
            self.sock.feed(bytes(buffer))
            buffer.clear()
        self.head_started = 0.0
        self._begin()

    def abort(self) -> None:
        """End the connection from another greenlet: its pending I/O fails."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def time_out(self) -> None:
        """From the sweeper: a request head or body is too slow.  Reading stops
        (the pending read sees EOF) and the request is answered with 408."""
        self.timed_out = True
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    # -- cooperative I/O on the raw socket ---------------------------------------

    def recv(self) -> bytes:
        """The next bytes from the client (b"" at EOF), parking this greenlet until some arrive."""
        sock = self.sock
        while True:
            try:
                return sock.recv(RECV_SIZE)
            except BlockingIOError:
                pass
            self._wait(self.read_watcher())

    def sendall(self, data) -> None:
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):  # the slow path: the rest through an outbox, parked until writable
            self._send_rest(memoryview(data)[sent:])
        if self.tls:
            while not self.sock.flush():  # ciphertext the kernel has not taken yet
                self._wait_writable()

    def sendall_pair(self, head, body) -> None:
        """``sendall(head + body)`` without copying ``body``: one ``sendmsg`` gathers both,
        so a large response costs one syscall and its head no segment of its own."""
        if self.tls:
            self.sendall(head)
            self.sendall(body)
            return
        try:
            sent = self.sock.sendmsg((head, body))
        except BlockingIOError:
            sent = 0
        if sent < len(head):
            self._send_rest(memoryview(head)[sent:], body)
        elif sent < len(head) + len(body):
            self._send_rest(memoryview(body)[sent - len(head) :])

    def _send_rest(self, *parts) -> None:
        """Write what the kernel has not taken yet, parked until the socket is writable."""
        rest = Outbox()
        for part in parts:
            rest.push(part)
        while not rest.flush(self.sock.send):
            self._wait_writable()

    def sendall_closing(self, data) -> None:
        """``sendall()`` of the last bytes before the connection closes, then the FIN
        (``shutdown(SHUT_WR)``): sent with ``MSG_MORE``, the response and the FIN leave in
        one segment, and the client answers both with one ACK (8 packets per
        ``Connection: close`` exchange instead of 10)."""
        if self.tls:
            self.sendall(data)
            return
        try:
            sent = self.sock.send(data, MSG_MORE)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            self.sendall(memoryview(data)[sent:])  # a send without MSG_MORE: nothing is held back
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the client is gone already

    def flush_tls(self) -> bool:
        """Non-blocking: write pending TLS ciphertext; True when none is left (always, without TLS)."""
        return not self.tls or self.sock.flush()

    def read_watcher(self):
        if self._read_watcher is None:
            self._read_watcher = self._hub.loop.io(self.fd, 1)
        return self._read_watcher

    def write_watcher(self):
        if self._write_watcher is None:
            self._write_watcher = self._hub.loop.io(self.fd, 2)
        return self._write_watcher

    def _wait_writable(self) -> None:
        watcher = self.write_watcher()
        self.waiting_write = True
        try:
            self._wait(watcher)
        finally:
            self.waiting_write = False

    def _wait(self, watcher) -> None:
        """Park this greenlet until ``watcher`` fires; the sweeper sees how long."""
        self.waiting_since = time.monotonic()
        try:
            self._hub.wait(watcher)
        finally:
            self.waiting_since = 0.0

    def sendfile(self, file, count: int) -> int:
        """Send ``count`` bytes of ``file`` from its position (os.sendfile)."""
        if self.tls:
            return self._send_file_by_reading(file, count)  # the kernel cannot encrypt
        try:
            in_fd = file.fileno()
            offset = file.tell()
        except (AttributeError, OSError, ValueError):
            return self._send_file_by_reading(file, count)
        sent = 0
        while sent < count:
            try:
                done = os.sendfile(self.fd, in_fd, offset + sent, count - sent)
            except BlockingIOError:
                self._wait_writable()
                continue
            except OSError as exc:
                if sent or isinstance(exc, ConnectionError):
                    raise
                return self._send_file_by_reading(file, count)  # no sendfile for this file
            if done == 0:
                break  # the file is shorter than it was
            sent += done
        return sent

    def _send_file_by_reading(self, file, count: int) -> int:
        sent = 0
        while sent < count:
            piece = file.read(min(RECV_SIZE, count - sent))
            if not piece:
                break
            self.sendall(piece)
            sent += len(piece)
        return sent

    def send_continue(self) -> None:
        self.sendall(CONTINUE)

    def recv_nowait(self) -> bytes | None:
        """For io-watcher callbacks: the bytes waiting, b"" at EOF or on error, None if none yet."""
        try:
            return self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return None
        except OSError:
            return b""


from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
