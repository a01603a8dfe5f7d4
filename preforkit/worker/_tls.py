"""TLS over the worker's raw non-blocking sockets, with ssl.MemoryBIO.

``TLSSocket`` offers the few socket methods a connection uses (``recv``,
``send``, ``fileno``, ``shutdown``, ``close``) with the same non-blocking
contract: ``BlockingIOError`` means "wait for the fd and call again".
Ciphertext the kernel did not take yet stays in ``pending`` until
``flush()``; callers that finished writing flush it before waiting to read.
"""

from __future__ import annotations

import ssl

from .._common.tls import make_context

__all__ = ["TLSSocket", "make_context"]


class TLSSocket:
    __slots__ = ("_incoming", "_outgoing", "pending", "raw", "tls")

    def __init__(self, raw, context: ssl.SSLContext) -> None:
        self.raw = raw
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self.pending = b""

    def fileno(self) -> int:
        return self.raw.fileno()

    def shutdown(self, how: int) -> None:
        self.raw.shutdown(how)

    def close(self) -> None:
        self.raw.close()

    def feed(self, data: bytes) -> None:
        """Ciphertext already read from the socket (what followed a PROXY protocol header)."""
        self._incoming.write(data)

    def flush(self) -> bool:
        """Write pending ciphertext; True when nothing is left."""
        self.pending += self._outgoing.read()
        while self.pending:
            try:
                sent = self.raw.send(self.pending)
            except BlockingIOError:
                return False
            self.pending = self.pending[sent:]
        return True

    def _feed(self) -> bool:
        """Move ciphertext from the socket into TLS; False at EOF."""
        data = self.raw.recv(65536)  # BlockingIOError propagates: wait for the fd
        if not data:
            self._incoming.write_eof()
            return False
        self._incoming.write(data)
        return True

    def handshake(self) -> bool:
        """Advance the handshake; True once done (raises BlockingIOError to wait, OSError on failure)."""
        while True:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                if not self.flush():
                    raise BlockingIOError from None
                if not self._feed():
                    raise ConnectionResetError("client closed during the TLS handshake") from None
                continue
            except ssl.SSLError as exc:
                self.flush()
                raise ConnectionResetError(f"TLS handshake failed: {exc.reason or exc}") from None
            self.flush()
            return True

    def recv(self, size: int) -> bytes:
        while True:
            try:
                data = self.tls.read(size)
            except ssl.SSLWantReadError:
                self.flush()
                if not self._feed():
                    continue  # the EOF is now in the BIO: the next read reports it
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""
            except ssl.SSLError as exc:
                raise ConnectionResetError(f"TLS error: {exc.reason or exc}") from None
            # Drain every record already received: no fd event will announce them again.
            while len(data) < size:
                try:
                    more = self.tls.read(size - len(data))
                except (ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    break
                if not more:
                    break
                data += more
            self.flush()
            return data

    def send(self, data) -> int:
        if self.pending and not self.flush():
            raise BlockingIOError
        try:
            written = self.tls.write(data)
        except ssl.SSLError as exc:
            raise ConnectionResetError(f"TLS error: {exc.reason or exc}") from None
        self.flush()
        return written

    @property
    def alpn(self) -> str | None:
        return self.tls.selected_alpn_protocol()
