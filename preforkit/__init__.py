"""preforkit: a prefork gevent HTTP/1.1 server for Ring-style and WSGI apps.

The public names are loaded on first use (PEP 562): ``preforkit`` on the
command line runs a master process that must not import gevent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_getattr

if TYPE_CHECKING:  # what type checkers see: the real definitions
    from ._api import Server, run_server, serve
    from .http import SSE_HEADERS, sse_comment, sse_event
    from .worker._async import AsyncResponse, Responder, async_response
    from .worker._channel import Channel, as_channel

__version__ = "0.1.0"

_EXPORTS = {
    "Server": "._api",
    "run_server": "._api",
    "serve": "._api",
    "SSE_HEADERS": ".http",
    "sse_comment": ".http",
    "sse_event": ".http",
    "AsyncResponse": ".worker",
    "Channel": ".worker",
    "Responder": ".worker",
    "as_channel": ".worker",
    "async_response": ".worker",
}

__all__ = [
    "SSE_HEADERS",
    "AsyncResponse",
    "Channel",
    "Responder",
    "Server",
    "__version__",
    "as_channel",
    "async_response",
    "run_server",
    "serve",
    "sse_comment",
    "sse_event",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
