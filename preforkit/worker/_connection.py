"""One client connection: read a request, call the app, write the response.

Runs in its own greenlet; requests on a connection are handled strictly in
order, so pipelined requests get their responses in order.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TYPE_CHECKING

from ..http import (
    CHUNKED,
    CONTINUE,
    LAST_CHUNK,
    LENGTH,
    NO_BODY,
    LocalProtocolError,
    ProtocolError,
    body_reader,
    chunk,
    error_response,
    normalize_headers,
    serialize_head,
)
from ._body import ClientDisconnected, RequestBody
from ._response import BadResponse, prepare_body

if TYPE_CHECKING:
    from ._server import WorkerServer

log = logging.getLogger("preforkit.error")

RECV_SIZE = 65536
# After a response, up to this much unread request body is discarded so the
# connection can be reused; a larger remainder closes the connection instead.
MAX_DRAIN = 1024 * 1024


class Connection:
    """State of one accepted socket; ``run()`` serves it until it closes."""

    __slots__ = ("buffer", "closing", "idle", "local", "peer", "server", "sock")

    def __init__(self, sock: socket.socket, peer, server: WorkerServer, local: tuple) -> None:
        self.sock = sock
        self.peer = peer
        self.server = server
        self.local = local  # (host, port, scheme) of the listener
        self.buffer = bytearray()
        self.idle = True
        self.closing = False

    def abort(self) -> None:
        """End an idle connection from another greenlet."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- I/O helpers used by RequestBody -------------------------------------

    def recv_body(self) -> bytes:
        return self.sock.recv(RECV_SIZE)

    def send_continue(self) -> None:
        self.sock.sendall(CONTINUE)

    # -- the request loop -----------------------------------------------------

    def run(self) -> None:
        sock = self.sock
        try:
            sock.settimeout(self.server.config.keepalive)
            while self._serve_one():
                pass
        except (ConnectionError, TimeoutError, socket.timeout, ClientDisconnected):
            pass
        except OSError as exc:
            log.debug("connection error from %s: %s", self.peer, exc)
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _read_head(self):
        buffer = self.buffer
        parser = self.server.parser
        result = parser.parse(buffer) if buffer else None
        while result is None:
            self.idle = not buffer
            if self.closing and self.idle:
                return None
            data = self.sock.recv(RECV_SIZE)
            if not data:
                return None
            self.idle = False
            buffer += data
            result = parser.parse(buffer)
        head, used = result
        del buffer[:used]
        return head

    def _serve_one(self) -> bool:
        """Serve one request; False when the connection should close."""
        try:
            head = self._read_head()
        except ProtocolError as exc:
            self._reject(exc)
            return False
        if head is None:
            return False
        started = time.time()
        server = self.server
        reader = body_reader(head.content_length, head.chunked, server.limits.max_body)
        body = RequestBody(self, reader, head.expect_continue) if reader is not None else None
        request = self._request(head, body)
        try:
            response = server.app(request)
        except ProtocolError as exc:  # raised by the body while the app read it
            self._reject(exc)
            return False
        except ClientDisconnected:
            return False
        except Exception:
            log.exception("Error handling request %s %s", head.method, head.target)
            response = {"status": 500, "body": "Internal Server Error\n"}
        keep_alive = head.keep_alive and not self.closing
        if keep_alive and body is not None and not body.can_drain(MAX_DRAIN):
            keep_alive = False  # say so now: the unread body cannot be skipped
        status, sent, keep_alive = self._write_response(head, response, keep_alive)
        if server.access_log is not None:
            server.access_log.log(request, head, status, sent, started)
        if body is not None and not body.done:
            try:
                if not keep_alive or not body.drain(MAX_DRAIN):
                    return False
            except ProtocolError:
                return False
        return keep_alive and not self.closing

    def _reject(self, exc: ProtocolError) -> None:
        """Answer a client's protocol error and close (no traceback logged)."""
        log.debug("bad request from %s: %s (%d)", self.peer, exc, exc.status)
        try:
            self.sock.sendall(error_response(exc.status, str(exc), self.server.config.server_header))
        except OSError:
            pass

    def _request(self, head, body) -> dict:
        host = head.host
        if host:
            server_name = host[: host.index("]") + 1] if host[0] == "[" else host.partition(":")[0]
        else:
            server_name = self.local[0]
        headers = head.headers
        return {
            "server_port": self.local[1],
            "server_name": server_name,
            "remote_addr": self.peer[0] if isinstance(self.peer, tuple) else "",
            "uri": head.path,
            "query_string": head.query,
            "scheme": head.scheme or self.local[2],
            "request_method": head.method,
            "protocol": head.protocol,
            "headers": headers,
            "body": body,
            "content_type": headers.get("content-type"),
            "content_length": head.content_length,
            "websocket": head.upgrade == "websocket",
        }

    # -- writing --------------------------------------------------------------

    def _write_response(self, head, response, keep_alive: bool) -> tuple[int, int, bool]:
        """Write ``response``; returns (status, body bytes sent, keep_alive)."""
        server = self.server
        try:
            status, pairs, body, length = prepare_body(response)
            pairs = normalize_headers(pairs)
            data, framing, keep_alive, length = serialize_head(
                status,
                pairs,
                method=head.method,
                http_version=head.http_version,
                keep_alive=keep_alive,
                body_length=length,
                server=server.config.server_header,
            )
        except (BadResponse, LocalProtocolError) as exc:
            log.error("Invalid response to %s %s: %s", head.method, head.target, exc)
            _close_body(response)
            status, body = 500, b"Internal Server Error\n"
            data, framing, keep_alive, length = serialize_head(
                500,
                [("Content-Type", "text/plain")],
                method=head.method,
                http_version=head.http_version,
                keep_alive=keep_alive,
                body_length=len(body),
                server=server.config.server_header,
            )
        sock = self.sock
        if framing == NO_BODY:
            sock.sendall(data)
            _close_body(body)
            return status, 0, keep_alive
        if isinstance(body, bytes):
            sock.sendall(data + body if len(body) < 65536 else data)
            if len(body) >= 65536:
                sock.sendall(body)
            return status, len(body), keep_alive
        if hasattr(body, "fileno") and length is not None:
            try:
                sock.sendall(data)
                sent = _send_file(sock, body, length)
            finally:
                body.close()
            return status, sent, keep_alive and sent == length
        return self._write_stream(head, status, data, body, framing, length, keep_alive)

    def _write_stream(self, head, status, data, body, framing, length, keep_alive):
        sock = self.sock
        sent = 0
        try:
            for piece in body:
                if isinstance(piece, str):
                    piece = piece.encode("utf-8")
                if not piece:
                    continue
                sent += len(piece)
                if framing == CHUNKED:
                    piece = chunk(piece)
                if data:
                    piece = data + piece
                    data = b""
                sock.sendall(piece)
            if framing == CHUNKED:
                sock.sendall(data + LAST_CHUNK)
            elif data:
                sock.sendall(data)
        except OSError:
            raise
        except Exception:
            log.exception("Error while streaming the response to %s %s", head.method, head.target)
            if data:  # nothing was sent yet: still time for a clean 500
                self.sock.sendall(error_response(500, "Internal Server Error", self.server.config.server_header))
            return status, sent, False
        finally:
            _close_body(body)
        if framing == LENGTH and sent != length:
            log.error("Response to %s %s: Content-Length %s but %d bytes sent", head.method, head.target, length, sent)
            return status, sent, False
        return status, sent, keep_alive


def _close_body(body) -> None:
    close = getattr(body, "close", None)
    if close is not None and not isinstance(body, (bytes, str)):
        try:
            close()
        except Exception:
            log.exception("Error closing response body")


def _send_file(sock: socket.socket, file, length: int) -> int:
    """Send ``length`` bytes of ``file`` from its position, with sendfile."""
    offset = file.tell() if hasattr(file, "tell") else 0
    try:
        return sock.sendfile(file, offset, length) if length else 0
    except (AttributeError, OSError, ValueError) as exc:
        if isinstance(exc, (ConnectionError, TimeoutError)):
            raise
        file.seek(offset, os.SEEK_SET)
        sent = 0
        while sent < length:
            piece = file.read(min(RECV_SIZE, length - sent))
            if not piece:
                break
            sock.sendall(piece)
            sent += len(piece)
        return sent
