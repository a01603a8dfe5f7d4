"""One worker process: gevent hub, accept loop, connection greenlets, dispatch."""

from ._app import AppLoadError, load_app, resolve_interface
from ._async import AsyncResponse, Responder, async_response
from ._body import ClientDisconnected, RequestBody
from ._channel import Channel, ChannelResponse, StreamChannel, WebSocketChannel, as_channel
from ._response import FileRange
from ._server import WorkerServer

__all__ = [
    "AppLoadError",
    "AsyncResponse",
    "Channel",
    "ChannelResponse",
    "ClientDisconnected",
    "FileRange",
    "RequestBody",
    "Responder",
    "StreamChannel",
    "WebSocketChannel",
    "WorkerServer",
    "as_channel",
    "async_response",
    "load_app",
    "resolve_interface",
]
