"""The WebSocket opening handshake (RFC 6455 §4.2): checking the request, the 101 response, subprotocols."""

from __future__ import annotations

import base64
import binascii
import hashlib

from ._errors import ProtocolError

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


# -- handshake (RFC 6455 §4.2) ---------------------------------------------------


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode("ascii")).digest()).decode("ascii")


def _tokens(value: str | None) -> set[str]:
    return {token.strip().lower() for token in value.split(",")} if value else set()


def check_handshake(method: str, http_version: str, headers: dict) -> str:
    """Validate an opening handshake; return the ``Sec-WebSocket-Accept`` value.

    Raises ``ProtocolError``: 400 for a malformed request, 426 (with the
    version we speak, to be sent as ``Sec-WebSocket-Version: 13``) for an
    unsupported version.
    """
    if method != "GET":
        raise ProtocolError("WebSocket handshake must be GET")
    if http_version != "1.1":
        raise ProtocolError("WebSocket handshake needs HTTP/1.1")
    if "websocket" not in _tokens(headers.get("upgrade")):
        raise ProtocolError("missing Upgrade: websocket")
    if "upgrade" not in _tokens(headers.get("connection")):
        raise ProtocolError("missing Connection: upgrade")
    version = headers.get("sec-websocket-version")
    if version is None or version.strip() != "13":
        raise ProtocolError("unsupported WebSocket version", 426)
    key = headers.get("sec-websocket-key")
    if key is None:
        raise ProtocolError("missing Sec-WebSocket-Key")
    key = key.strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise ProtocolError("malformed Sec-WebSocket-Key")
    return accept_key(key)


def handshake_response(accept: str, subprotocol: str | None, extensions: str | None) -> bytes:
    """The ``101 Switching Protocols`` response completing the handshake."""
    lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"]
    lines.append(f"Sec-WebSocket-Accept: {accept}")
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def choose_subprotocol(headers: dict, supported) -> str | None:
    """The first subprotocol the client offers that we support (RFC 6455 §4.2.2)."""
    if not supported:
        return None
    for offered in headers.get("sec-websocket-protocol", "").split(","):
        offered = offered.strip()
        if offered in supported:
            return offered
    return None
