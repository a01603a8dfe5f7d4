"""preforkit: a prefork gevent HTTP/1.1 server for Ring-style and WSGI apps."""

__version__ = "0.1.0"

from ._api import Server, run_server, serve

__all__ = ["Server", "__version__", "run_server", "serve"]
