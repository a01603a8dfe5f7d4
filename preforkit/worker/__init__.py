"""One worker process: gevent hub, accept loop, connection greenlets, dispatch."""

from ._app import AppLoadError, load_app, resolve_interface
from ._body import ClientDisconnected, RequestBody
from ._server import WorkerServer

__all__ = [
    "AppLoadError",
    "ClientDisconnected",
    "RequestBody",
    "WorkerServer",
    "load_app",
    "resolve_interface",
]
