"""The programmatic API, after http-kit's ``run-server`` / ``server-stop!``."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any, Callable

from .config import Config
from .master import bind, describe

log = logging.getLogger("preforkit.error")

Handler = Callable[[dict], Any]


def _config(options: dict[str, Any]) -> Config:
    config = Config()
    host = options.pop("host", None)
    port = options.pop("port", None)
    if host is not None or port is not None:
        options.setdefault("bind", [f"{host or '127.0.0.1'}:{8000 if port is None else port}"])
    for name, value in options.items():
        config.set(name, value, "argument")
    return config


def _adapt(handler, config: Config):
    from .worker import prepare_app

    return prepare_app(handler, config.interface)[0]


def _bind_all(config: Config) -> list:
    """A listening socket for each of ``config``'s addresses, with its backlog and --defer-accept."""
    return [bind(address, config.backlog, defer_accept=config.defer_accept) for address in config.binds()]


class Server:
    """A server running in the background of this process (see ``serve``)."""

    def __init__(self, handler: Handler, config: Config) -> None:
        self.config = config
        self.sockets = _bind_all(config)
        self.addresses = [describe(sock) for sock in self.sockets]
        address = self.sockets[0].getsockname()
        self._port = address[1] if isinstance(address, tuple) else None
        self._handler = _adapt(handler, config)
        self._worker = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port of the first listening socket (useful with port=0)."""
        return self._port

    @property
    def url(self) -> str:
        return self.addresses[0]

    def _start(self) -> None:
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            # A gevent program: serve in greenlets of the current hub.
            self._make_worker()
            self._worker.start()
            return
        # A plain program: run a hub of our own in a real OS thread.
        self._thread = threading.Thread(target=self._thread_main, name="preforkit-server", daemon=True)
        self._thread.start()
        self._started.wait()

    def _make_worker(self):
        from .worker import WorkerServer

        self._worker = WorkerServer(self._handler, self.config, self.sockets)

    def _thread_main(self) -> None:
        import gevent

        self._make_worker()
        self._hub = gevent.get_hub()
        self._worker.start()
        self._started.set()
        self._worker.finished.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish requests in flight (at most ``timeout`` s)."""
        if self._thread is None:
            self._worker.stop(timeout)
            return
        if not self._thread.is_alive():
            return

        def stop_in_hub() -> None:
            import gevent

            gevent.spawn(self._worker.stop, timeout)

        self._hub.loop.run_callback_threadsafe(stop_in_hub)
        self._thread.join(timeout + 5)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(handler: Handler, port: int = 0, host: str = "127.0.0.1", **options: Any) -> Server:
    """Start serving ``handler`` in the background and return the server.

    ``options`` are the settings of ``preforkit.config`` by name (for example
    ``keepalive=5``, ``max_body="1M"``).  ``server.port`` is the bound port,
    ``server.stop(timeout=)`` stops it.  In a gevent-patched program the
    server runs in greenlets of the current hub, otherwise in a thread of its
    own with its own hub.
    """
    server = Server(handler, _config({"host": host, "port": port, **options}))
    server._start()
    return server


def run_server(handler: Handler, **options: Any) -> None:
    """Serve ``handler`` in this process until SIGINT or SIGTERM (blocking)."""
    import gevent

    config = _config(dict(options))
    from .worker import WorkerServer

    sockets = _bind_all(config)
    addresses = [describe(sock) for sock in sockets]
    worker = WorkerServer(_adapt(handler, config), config, sockets)
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, lambda: gevent.spawn(worker.stop))
    log.info("Listening at %s", ", ".join(addresses))
    worker.serve_forever()
