"""Errors of the HTTP layer.

``ProtocolError`` means the peer sent bytes we cannot accept; it carries the
status the server should answer with.  ``LocalProtocolError`` means our caller
(the application, through the worker) asked for something invalid: a bug on
our side of the wire, which the client sees as a 500.  ``WebSocketError``
means a WebSocket peer broke RFC 6455 and carries the close code to send.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """The peer sent something invalid; answer with ``status`` and close."""

    status: int = 400

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class LocalProtocolError(Exception):
    """Our side asked for something HTTP cannot express (answered as 500)."""


class WebSocketError(Exception):
    """The peer broke the protocol; close the connection with ``code``."""

    def __init__(self, message: str, code: int = 1002) -> None:
        super().__init__(message)
        self.code = code
