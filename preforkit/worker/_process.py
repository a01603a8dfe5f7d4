"""The life of a forked worker process: boot, heartbeat, signals, drain, exit.

Connection handling lives in ``_server.py``; this module is what gunicorn's
``workers/base.py`` is to ``ggevent.py``: everything about the process.
"""

from __future__ import annotations

import ctypes
import faulthandler
import logging
import os
import random
import signal
import sys

from .._common.process import (
    DRAINING,
    EXIT_APP_LOAD_ERROR,
    EXIT_APP_SPEC_ERROR,
    EXIT_BOOT_ERROR,
    MASTER_SIGNALS,
    READY,
    WorkerSlot,
)

log = logging.getLogger("preforkit.error")

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _stop_with_master(master_pid: int) -> bool:
    """Ask the kernel for SIGTERM (a graceful stop) when the master dies; False if it already has.

    Checked after asking, so a master that died between the fork and now is
    not missed (its death would have come before the request).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the heartbeat's parent check remains
    return os.getppid() == master_pid


class WorkerProcess:
    """Runs in the child after ``fork``; ``run()`` returns the exit status."""

    def __init__(
        self,
        *,
        age: int,
        config,
        sockets,
        slot: WorkerSlot,
        app_spec: str,
        app=None,
        hooks=None,
        bus_sock=None,
        master_pid: int | None = None,
    ) -> None:
        self.master_pid = master_pid  # the worker stops when this process is gone
        self.bus_sock = bus_sock  # this worker's pub/sub link to the master
        self.age = age  # 1 for the first worker ever spawned, 2 for the next...
        self.pid = os.getpid()
        self.config = config
        self.sockets = sockets
        self.slot = slot
        self.app_spec = app_spec
        self.app = app  # already imported with --preload
        self.hooks = hooks
        self.server = None

    def run(self) -> int:
        for signum in MASTER_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        # SIGABRT from the master (hung worker) prints where each thread is stuck.
        faulthandler.enable(file=_fault_file(self.config), all_threads=True)
        if self.master_pid is not None and not _stop_with_master(self.master_pid):
            log.warning("Worker %d: the master (pid %d) died while it was forked; exiting", self.pid, self.master_pid)
            return 0
        try:
            import gevent

            gevent.reinit()
            if self.config.monkey_patch:
                from gevent import monkey

                if not monkey.is_module_patched("socket"):
                    monkey.patch_all()
                self._cooperate()
            self._hook("post_fork")
        except Exception:
            log.exception("Worker %d failed to boot", self.pid)
            return EXIT_BOOT_ERROR
        app = self.app
        if app is None:
            from ._app import AppLoadError, load_app, prepare_app

            try:
                app = load_app(self.app_spec)
            except AppLoadError as exc:
                print(f"Error: {exc}", file=sys.stderr)
                return EXIT_APP_SPEC_ERROR
            except BaseException:
                log.exception("Worker %d: error while importing the application %s", self.pid, self.app_spec)
                return EXIT_APP_LOAD_ERROR
            app, interface = prepare_app(app, self.config.interface)
            log.info("Worker %d: using the %s interface for %s", self.pid, interface, self.app_spec)
        return self._serve(app)

    def _cooperate(self) -> None:
        """C drivers and Django's per-thread connections, made fit for greenlets."""
        from .._common.cooperative import after_import, make_drivers_cooperative
        from ._django_db import keep_django_connections

        who = f"Worker {self.pid}"
        drivers = make_drivers_cooperative(who)
        if drivers:
            log.info("%s: C drivers that will cooperate with gevent once imported: %s", who, ", ".join(drivers))
        after_import("django.db", keep_django_connections)

    def _serve(self, app) -> int:
        import gevent

        from ._server import WorkerServer

        config = self.config
        server = self.server = WorkerServer(app, config, self.sockets)
        server.slot = self.slot  # connection counts, shared with the other workers
        source = "--worker-connections" if config.worker_connections else "3/4 of the open-file limit"
        log.info("Worker %d: holds up to %d connections (%s)", self.pid, server.capacity, source)
        if self.bus_sock is not None:
            import _socket

            from ._bus import BUS

            sock = self.bus_sock
            raw = _socket.socket(sock.family, sock.type, sock.proto, sock.detach())
            raw.setblocking(False)
            BUS.attach(raw)
        if config.max_requests:
            server.max_requests = config.max_requests + random.randint(0, config.max_requests_jitter)
            server.on_max_requests = self._recycle
        gevent.signal_handler(signal.SIGTERM, self._graceful_stop)
        gevent.signal_handler(signal.SIGINT, self._fast_stop)
        gevent.signal_handler(signal.SIGQUIT, self._fast_stop)
        gevent.signal_handler(signal.SIGUSR1, self._reopen_logs)
        self._hook("post_worker_init")
        self.slot.beat(READY)
        beat = gevent.spawn(self._heartbeat)
        if config.timeout:
            from ._connection import Connection
            from ._stall import watch

            watch(self.slot, _beat_interval(config), Connection._serve_one.__code__)
        try:
            server.serve_forever()
        finally:
            beat.kill(block=False)
            from ._census import census

            self.slot.publish(census(server), server.requests, server.counters.values())  # the last counts
            self._hook("worker_exit")
        return 0

    def _heartbeat(self) -> None:
        import gevent

        from ._census import census

        interval = _beat_interval(self.config)
        slot = self.slot
        server = self.server
        while True:
            slot.beat()
            slot.publish(census(server), server.requests, server.counters.values())
            if self.master_pid is not None and os.getppid() != self.master_pid:
                # SIGKILL of the master: PR_SET_PDEATHSIG usually tells us first; this
                # catches the rest (another OS, a signal lost in a race).
                log.warning("Worker %d: the master (pid %d) is gone; stopping", self.pid, self.master_pid)
                self._graceful_stop()
                return
            gevent.sleep(interval)

    def _graceful_stop(self) -> None:
        """SIGTERM: stop accepting, finish requests in flight, then exit."""
        import gevent

        self.slot.beat(DRAINING)
        gevent.spawn(self.server.stop, self.config.graceful_timeout, idle_grace=1.0)

    def _fast_stop(self) -> None:
        """SIGINT / SIGQUIT: exit now."""
        self._hook("worker_exit")
        os._exit(0)

    def _recycle(self, reason: str) -> None:
        log.info("Worker %d recycling: %s", self.pid, reason)
        self._graceful_stop()

    def _reopen_logs(self) -> None:
        """SIGUSR1: reopen the access log (after rotation)."""
        if self.server is not None and self.server.access_log is not None:
            self.server.access_log.reopen()
            log.info("Worker %d: Reopened the access log", self.pid)

    def _hook(self, name: str) -> None:
        if self.hooks is not None:
            self.hooks.call(name, self.config, self)


def _beat_interval(config) -> float:
    """Seconds between heartbeats: four or more per ``--timeout``, at least one a second."""
    return min(1.0, (config.timeout or 4) / 4)


def _fault_file(config):
    """Where faulthandler writes a hung worker's traceback: the --error-log file, else stderr."""
    target = config.error_log
    if target and target != "-" and not config.log_config:
        try:
            return open(target, "a", encoding="utf-8")  # open for the process's life
        except OSError:
            pass
    return sys.stderr
