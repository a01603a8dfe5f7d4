"""preforkit: a prefork gevent HTTP/1.1 server for Ring-style and WSGI apps."""

__version__ = "0.1.0"

from ._api import Server, run_server, serve
from .http import SSE_HEADERS, sse_comment, sse_event
from .worker import AsyncResponse, Channel, Responder, as_channel, async_response

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
