"""The life of a forked worker process: boot, heartbeat, signals, drain, exit.

Connection handling lives in ``_server.py``; this module is what gunicorn's
``workers/base.py`` is to ``ggevent.py``: everything about the process.
"""

from __future__ import annotations

import faulthandler
import logging
import mmap
import os
import random
import signal
import struct
import sys
import time

log = logging.getLogger("preforkit.error")

# Exit statuses with a meaning for the master (gunicorn's WORKER_BOOT_ERROR /
# APP_LOAD_ERROR): the master halts instead of respawning forever.
EXIT_BOOT_ERROR = 3
EXIT_APP_LOAD_ERROR = 4  # the app module raised while being imported
EXIT_APP_SPEC_ERROR = 5  # MODULE:ATTR does not name a callable

BOOTING, READY, DRAINING = 0, 1, 2
_SLOT = struct.Struct("=dii")  # last heartbeat (CLOCK_MONOTONIC), state, open connections
_SLOT_HEAD = struct.Struct("=i")  # the board's first bytes: how many slots were ever handed out

# Signals the master handles; a new worker starts with the default action.
MASTER_SIGNALS = (
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCHLD,
    signal.SIGWINCH,
)


class SlotBoard:
    """Shared memory for all workers: one slot each (heartbeat, state, connections).

    Made by the master before the first fork, so every worker ever forked
    maps the same pages: the master reads heartbeats from it, and a worker
    sharing a listening socket reads the others' connection counts to leave
    new connections to a less loaded worker.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._map = mmap.mmap(-1, _SLOT_HEAD.size + _SLOT.size * capacity)
        self._free = list(range(capacity - 1, -1, -1))  # the master's bookkeeping

    def take(self) -> WorkerSlot:
        """In the master: a slot for a new worker (a private one if the board is full)."""
        if not self._free:
            return WorkerSlot()
        index = self._free.pop()
        if index + 1 > _SLOT_HEAD.unpack_from(self._map, 0)[0]:
            _SLOT_HEAD.pack_into(self._map, 0, index + 1)
        return WorkerSlot(self, index)

    def give_back(self, slot: WorkerSlot) -> None:
        """In the master, once the worker is gone."""
        if slot.board is self:
            _SLOT.pack_into(self._map, slot.offset, 0.0, BOOTING, 0)
            self._free.append(slot.index)

    def fewest_connections(self, besides: int) -> int | None:
        """The fewest connections of a serving worker other than slot ``besides`` (None: no other)."""
        fewest = None
        buffer = self._map
        for index in range(_SLOT_HEAD.unpack_from(buffer, 0)[0]):
            if index == besides:
                continue
            _, state, connections = _SLOT.unpack_from(buffer, _SLOT_HEAD.size + index * _SLOT.size)
            if state == READY and (fewest is None or connections < fewest):
                fewest = connections
        return fewest


class WorkerSlot:
    """One worker's place in shared memory: heartbeat, state, open connections.

    Taken from the master's ``SlotBoard`` before the fork (or private, without
    a board); the worker writes it from its event loop, so a stale heartbeat
    means the loop has stopped turning.
    """

    def __init__(self, board: SlotBoard | None = None, index: int = -1) -> None:
        self.board = board
        self.index = index
        if board is None:
            self._map = mmap.mmap(-1, _SLOT.size)
            self.offset = 0
        else:
            self._map = board._map
            self.offset = _SLOT_HEAD.size + index * _SLOT.size
        self.connections = 0
        self.beat(BOOTING)

    def beat(self, state: int | None = None) -> None:
        if state is None:
            state = self.state
        _SLOT.pack_into(self._map, self.offset, time.monotonic(), state, self.connections)

    def count(self, connections: int) -> None:
        """The worker's open connections now."""
        self.connections = connections
        _COUNT.pack_into(self._map, self.offset + _COUNT_OFFSET, connections)

    def fewest_elsewhere(self) -> int | None:
        """The fewest connections any other serving worker has (None: no other, or no board)."""
        return None if self.board is None else self.board.fewest_connections(self.index)

    @property
    def last_beat(self) -> float:
        return _SLOT.unpack_from(self._map, self.offset)[0]

    @property
    def state(self) -> int:
        return _SLOT.unpack_from(self._map, self.offset)[1]

    def close(self) -> None:
        if self.board is None:
            self._map.close()
        else:
            self.board.give_back(self)


_COUNT = struct.Struct("=i")
_COUNT_OFFSET = struct.calcsize("=di")


class WorkerProcess:
    """Runs in the child after ``fork``; ``run()`` returns the exit status."""

    def __init__(
        self, *, age: int, config, sockets, slot: WorkerSlot, app_spec: str, app=None, hooks=None, bus_sock=None
    ) -> None:
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
        faulthandler.enable(file=sys.stderr, all_threads=True)
        try:
            import gevent

            gevent.reinit()
            if self.config.monkey_patch:
                from gevent import monkey

                if not monkey.is_module_patched("socket"):
                    monkey.patch_all()
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
        try:
            server.serve_forever()
        finally:
            beat.kill(block=False)
            self._hook("worker_exit")
        return 0

    def _heartbeat(self) -> None:
        import gevent

        interval = min(1.0, (self.config.timeout or 4) / 4)
        slot = self.slot
        while True:
            slot.beat()
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
