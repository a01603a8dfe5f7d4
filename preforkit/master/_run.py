"""Starting the server from the CLI: bind, (pre)load, hand over to the master."""

from __future__ import annotations

import logging
import os
import socket
import sys

from .._common.cooperative import make_drivers_cooperative, warn_blocking_drivers
from .._common.limits import raise_open_file_limit
from ._binding import BindError, bind, parse_address
from ._control import open_control
from ._logging import LogSetupError, setup_logging
from ._metrics import MetricsServer
from ._pidfile import Pidfile, PidfileError
from ._privileges import PrivilegeError
from ._privileges import drop as drop_privileges
from ._systemd import listen_fds

log = logging.getLogger("preforkit.error")

EXIT_USAGE = 2


def bind_sockets(config) -> list[socket.socket]:
    """Systemd's sockets (LISTEN_FDS) if given, else one per --bind address."""
    fds = listen_fds()
    if fds:
        log.info("Using %d socket(s) from systemd socket activation (--bind is ignored)", len(fds))
        return [socket.socket(fileno=fd) for fd in fds]
    sockets = []
    try:
        for address in config.binds():
            tcp = parse_address(address)[0] == "tcp"
            # With --reuse-port the master only reserves the port; each worker listens.
            listen = not (config.reuse_port and tcp)
            sockets.append(
                bind(
                    address,
                    config.backlog,
                    reuse_port=config.reuse_port and tcp,
                    listen=listen,
                    defer_accept=config.defer_accept,
                )
            )
    except BindError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def run(app_spec: str, config, reload_config=None) -> int:
    """Serve ``app_spec`` with ``config`` under a master; returns the exit status."""
    from .._common.apps import AppLoadError, Hooks, load_app, split_spec
    from ..worker import prepare_app
    from ._arbiter import Arbiter

    if config.reload and config.preload:
        print("Error: --reload cannot be combined with --preload (the master would keep the old code)", file=sys.stderr)
        return EXIT_USAGE
    try:
        setup_logging(config)
    except LogSetupError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    raise_open_file_limit()
    try:
        split_spec(app_spec)
    except AppLoadError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if config.chdir:
        try:
            os.chdir(config.chdir)
        except OSError as exc:
            print(f"Error: cannot change to directory {config.chdir}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    Hooks(config).call("on_starting", config)
    pidfile = Pidfile(config.pid) if config.pid else None
    try:
        if pidfile is not None:
            pidfile.create(os.getpid())
    except (PidfileError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if config.certfile:
        import ssl

        from .._common.tls import make_context

        try:
            make_context(config.certfile, config.keyfile, config.ca_certs)
        except (OSError, ssl.SSLError) as exc:
            print(f"Error: cannot load the TLS certificate or key: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if config.umask is not None:
        os.umask(config.umask)
    sockets = []
    control = None
    from_systemd = bool(os.environ.get("LISTEN_FDS"))
    try:
        try:
            sockets = bind_sockets(config)
        except BindError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        metrics = None
        if config.metrics_bind:
            try:
                metrics = MetricsServer(config.metrics_bind)
            except (OSError, BindError) as exc:
                print(f"Error: cannot serve metrics at {config.metrics_bind}: {exc}", file=sys.stderr)
                return EXIT_USAGE
        control = open_control(config.control_socket)  # before dropping privileges: where root's client looks
        try:
            drop_privileges(
                config.user,
                config.group,
                [config.pid, config.error_log, config.access_log, control.path if control else None],
            )
        except (PrivilegeError, OSError) as exc:
            print(f"Error: {exc}", file=sys.stderr)
            if control is not None:
                control.close()
            return EXIT_USAGE
        app = None
        if config.monkey_patch:
            warn_blocking_drivers()
        if config.preload:
            if config.monkey_patch:
                from gevent import monkey

                monkey.patch_all()
                make_drivers_cooperative("Master")
            try:
                app = load_app(app_spec)
            except AppLoadError as exc:
                print(f"Error: {exc}", file=sys.stderr)
                return EXIT_USAGE
            except BaseException:
                log.exception("Error while importing the application %s", app_spec)
                return 1
            app, interface = prepare_app(app, config.interface)
            log.info("Using the %s interface for %s (preloaded)", interface, app_spec)
        arbiter = Arbiter(
            app_spec, config, sockets, reload_config=reload_config, app=app, metrics=metrics, control=control
        )
        return arbiter.run()
    finally:
        _close_sockets(sockets, unlink=not from_systemd)
        if control is not None:
            control.close()  # the arbiter closed it already, unless the start failed before it ran
        if pidfile is not None:
            pidfile.unlink()


def _close_sockets(sockets, unlink: bool) -> None:
    """Close the listening sockets; remove the unix socket files we made."""
    for sock in sockets:
        try:
            address = sock.getsockname()
            if unlink and sock.family == socket.AF_UNIX and isinstance(address, str) and address:
                os.unlink(address)
        except OSError:
            pass
        sock.close()
