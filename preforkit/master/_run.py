"""Starting the server from the CLI: bind, load the app, serve."""

from __future__ import annotations

import logging
import os
import signal
import sys

from ._binding import BindError, bind, describe

log = logging.getLogger("preforkit.error")

EXIT_USAGE = 2


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S %z",
        stream=sys.stderr,
    )


def run(app_spec: str, config) -> int:
    """Serve ``app_spec`` with ``config``; returns the exit status."""
    setup_logging(config.log_level)
    if config.chdir:
        try:
            os.chdir(config.chdir)
        except OSError as exc:
            print(f"Error: cannot change to directory {config.chdir}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    try:
        sockets = [bind(address) for address in config.binds()]
    except BindError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if config.monkey_patch:
        # Before the app (and anything it imports) sees the unpatched stdlib.
        from gevent import monkey

        monkey.patch_all()
    from ..worker import AppLoadError, WorkerServer, load_app, resolve_interface

    try:
        app = load_app(app_spec)
    except AppLoadError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BaseException:
        log.exception("Error while importing the application %s", app_spec)
        return 1
    interface = resolve_interface(app, config.interface)
    log.info("Using the %s interface for %s", interface, app_spec)
    if interface == "wsgi":
        from ..worker.wsgi import WSGIAdapter

        app = WSGIAdapter(app)
    if config.workers > 1:
        log.warning("--workers %d: the prefork master is not built yet; serving with one process", config.workers)
    import gevent

    addresses = [describe(sock) for sock in sockets]
    server = WorkerServer(app, config, sockets)
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, lambda: gevent.spawn(server.stop))
    log.info("Listening at %s (pid %d)", ", ".join(addresses), os.getpid())
    server.serve_forever()
    log.info("Stopped")
    return 0
