"""One worker process: gevent hub, accept loop, connection greenlets, dispatch.

The names below are loaded on first use (PEP 562), so that the master, which
imports only the worker's light modules (``_process``, ``_app``), never
imports gevent: each worker imports it after the fork, and the master stays small.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:  # what type checkers see: the real definitions
    from ._app import AppLoadError, load_app, prepare_app, resolve_interface
    from ._async import AsyncResponse, Responder, async_response
    from ._body import ClientDisconnected, RequestBody
    from ._channel import Channel, ChannelResponse, as_channel
    from ._process import WorkerProcess
    from ._response import FileRange
    from ._server import WorkerServer
    from ._stream_channel import StreamChannel
    from ._ws_channel import WebSocketChannel

_EXPORTS = {
    "AppLoadError": "._app",
    "load_app": "._app",
    "resolve_interface": "._app",
    "prepare_app": "._app",
    "WorkerProcess": "._process",
    "AsyncResponse": "._async",
    "Responder": "._async",
    "async_response": "._async",
    "ClientDisconnected": "._body",
    "RequestBody": "._body",
    "Channel": "._channel",
    "ChannelResponse": "._channel",
    "StreamChannel": "._stream_channel",
    "WebSocketChannel": "._ws_channel",
    "as_channel": "._channel",
    "FileRange": "._response",
    "WorkerServer": "._server",
}

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
    "WorkerProcess",
    "WorkerServer",
    "as_channel",
    "async_response",
    "load_app",
    "prepare_app",
    "resolve_interface",
]
assert sorted(__all__) == sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
