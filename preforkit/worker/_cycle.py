"""One request's cycle on a connection: who the client is, the request dict or environ, the response written.

Mixed into ``Connection``.
"""

from __future__ import annotations

import logging

from ..http import (
    CHUNKED,
    LAST_CHUNK,
    LENGTH,
    NO_BODY,
    LocalProtocolError,
    ProtocolError,
    chunk,
    error_response,
    serialize_head,
)
from ._async import INTERNAL_ERROR
from ._proxy import forwarded_client
from ._request_id import with_request_id
from ._response import BadResponse, prepare_body
from .wsgi import ConnectionEnvirons, server_name

log = logging.getLogger("preforkit.error")


class RequestCycle:
    """Building requests and writing responses (the state lives in ``Connection``'s slots)."""

    __slots__ = ()

    def _reject(self, exc: ProtocolError) -> None:
        """Answer a client's protocol error and close (no traceback logged)."""
        log.debug("bad request from %s: %s (%d)", self.peer, exc, exc.status)
        try:
            self.sendall(error_response(exc.status, str(exc), self.server.config.server_header))
        except OSError:
            pass

    def _client(self, head) -> tuple[str, str]:
        """(client address, scheme), from forwarding headers if the peer is trusted."""
        remote_addr = self.remote_addr
        scheme = head.scheme or self.local[2]
        if self.trusted:
            headers = head.headers
            if "x-forwarded-for" in headers or "forwarded" in headers or "x-forwarded-proto" in headers:
                remote_addr, proto = forwarded_client(headers, remote_addr, self.server.trusted_proxies)
                scheme = proto or scheme
        return remote_addr, scheme

    def _environ(self, head, body, remote_addr: str, scheme: str) -> dict:
        environs = self._environs
        if environs is None:
            config = self.server.config
            environs = self._environs = ConnectionEnvirons(
                remote_port=self.peer[1] if isinstance(self.peer, tuple) else "",
                server_port=self.local[1],
                listener_host=self.local[0],
                root_path=config.root_path,
                multiprocess=config.workers > 1,
            )
        return environs.make(head, body, remote_addr, scheme)

    def _request(self, head, body, remote_addr: str, scheme: str) -> dict:
        headers = head.headers
        return {
            "server_port": self.local[1],
            "server_name": server_name(head.host, self.local[0]),
            "remote_addr": remote_addr,
            "uri": head.path,
            "query_string": head.query,
            "scheme": scheme,
            "request_method": head.method,
            "protocol": "HTTP/1.1" if head.http_version == "1.1" else "HTTP/1.0",  # head.protocol, inlined
            "headers": headers,
            "body": body,
            "content_type": headers.get("content-type"),
            "content_length": head.content_length,
            "websocket": head.upgrade == "websocket",
        }

    # -- writing ------------------------------------------------------------------

    def _write_response(self, head, response, keep_alive: bool) -> tuple[int, int, bool]:
        """Write ``response``; returns (status, body bytes sent, keep_alive)."""
        try:
            status, pairs, body, length = prepare_body(response)
            if self.request_id is not None:
                pairs = with_request_id(pairs, self.request_id)
            data, framing, keep_alive, length = serialize_head(  # by position: cheaper than keywords
                status, pairs, head.method, head.http_version, keep_alive, length, self.server.config.server_header
            )
        except (BadResponse, LocalProtocolError) as exc:
            log.error("Invalid response to %s %s: %s", head.method, head.target, exc)
            _close_body(response.get("body") if isinstance(response, dict) else response)
            return self._write_response(head, INTERNAL_ERROR, keep_alive)  # a valid response: no second error
        if framing == NO_BODY:
            _close_body(body)
            self.sendall(data) if keep_alive else self.sendall_closing(data)
            return status, 0, keep_alive
        if type(body) is bytes:
            if len(body) < 65536:
                self.sendall(data + body) if keep_alive else self.sendall_closing(data + body)
            else:
                self.sendall_pair(data, body)
            return status, len(body), keep_alive
        if framing == LENGTH and hasattr(body, "fileno"):
            try:
                self.sendall(data)
                sent = self.sendfile(body, length)
            finally:
                body.close()
            return status, sent, keep_alive and sent == length
        return self._write_stream(head, status, data, body, framing, length, keep_alive)

    def _write_stream(self, head, status, data, body, framing, length, keep_alive):
        """Write an iterable body; the head goes out with its first piece."""
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
                self.sendall(piece)
            if framing == CHUNKED:
                self.sendall(data + LAST_CHUNK)
            elif data:
                self.sendall(data)
        except OSError:
            raise
        except Exception:
            log.exception("Error while streaming the response to %s %s", head.method, head.target)
            if data:  # nothing was sent yet: still time for a clean 500
                self.sendall(error_response(500, "Internal Server Error", self.server.config.server_header))
            return status, sent, False
        finally:
            _close_body(body)
        if framing == LENGTH and sent != length:
            log.error("Response to %s %s: Content-Length %s but %d bytes sent", head.method, head.target, length, sent)
            return status, sent, False
        return status, sent, keep_alive


class HeadSummary:
    """What writing a held response needs of its request head."""

    __slots__ = ("http_version", "method", "target")

    def __init__(self, method: str, http_version: str, target: str) -> None:
        self.method = method
        self.http_version = http_version
        self.target = target


def _close_body(body) -> None:
    close = getattr(body, "close", None)
    if close is not None and not isinstance(body, (bytes, str)):
        try:
            close()
        except Exception:
            log.exception("Error closing response body")


from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
