"""preforkit: a prefork gevent HTTP/1.1 server for Ring-style and WSGI apps."""

__version__ = "0.1.0"

from ._api import Server, run_server, serve
from .worker import AsyncResponse, Responder, async_response

__all__ = ["AsyncResponse", "Responder", "Server", "__version__", "async_response", "run_server", "serve"]
