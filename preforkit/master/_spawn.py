"""Forking a worker: the child's signals, sockets and proctitle reset, then ``WorkerProcess.run``.

Mixed into ``Arbiter`` (its state lives there).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from os import fork as _fork
from signal import signal as _signal

from .._common.process import EXIT_BOOT_ERROR, MASTER_SIGNALS, WorkerSlot
from ..worker import WorkerProcess
from ._binding import address_of, bind
from ._proctitle import set_proctitle
from ._worker import Worker

log = logging.getLogger("preforkit.error")


def _fork_function():
    """os.fork, or gevent's fork when --preload has monkey-patched the master.

    A patched master must fork through gevent (``fork_gevent``), which
    prepares the child's hub and threading state; a plain ``os.fork`` would
    leave the child's patched threading module stuck.  gevent's own child
    watchers are not wanted: the master reaps with ``waitpid`` itself.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        from gevent.os import fork_gevent

        return fork_gevent
    return _fork


class Spawner:
    """Arbiter methods that fork a worker and run it in the child."""

    def spawn_worker(self) -> Worker:
        self.spawned += 1
        slot = self.slots.take()
        age, generation = self.spawned, self.generation
        sys.stdout.flush()
        sys.stderr.flush()
        # Block our signals across the fork: the child must not run the
        # master's handlers in the moment before it resets them.
        master_end, worker_end = self.broker.pair()
        master_pid = os.getpid()
        signal.pthread_sigmask(signal.SIG_BLOCK, MASTER_SIGNALS)
        try:
            pid = _fork_function()()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)
            master_end.close()
            worker_end.close()
            raise
        if pid == 0:  # the worker
            code = EXIT_BOOT_ERROR
            try:
                master_end.close()
                code = self._worker_main(age, slot, worker_end, master_pid)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                log.exception("Worker %d crashed", os.getpid())
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        worker_end.close()
        self.broker.add(pid, master_end)
        worker = Worker(pid=pid, age=age, generation=generation, slot=slot)
        self.workers[pid] = worker
        signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)
        log.info("Booting worker %d (age %d)", pid, age)
        return worker

    def _worker_main(self, age: int, slot: WorkerSlot, bus_sock, master_pid: int) -> int:
        signal.set_wakeup_fd(-1)
        for signum in MASTER_SIGNALS:
            _signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)
        for fd in self._pipe:
            os.close(fd)
        self.broker.close_in_child()
        for server in (self.control, self.metrics):
            if server is not None:
                server.sock.close()  # the master's own: a worker must not hold them open
        set_proctitle(f"worker [{self.app_spec}]")
        sockets = self.sockets
        if self.config.reuse_port:
            sockets = [self._own_socket(sock) for sock in sockets]
        worker = WorkerProcess(
            age=age,
            config=self.config,
            sockets=sockets,
            slot=slot,
            app_spec=self.app_spec,
            app=self.app,
            hooks=self.hooks,
            bus_sock=bus_sock,
            master_pid=master_pid,
        )
        return worker.run()

    def _own_socket(self, sock):
        """With --reuse-port, a listening socket of this worker's own."""
        if sock.family == getattr(__import__("socket"), "AF_UNIX", None):
            return sock
        own = bind(address_of(sock), self.config.backlog, reuse_port=True, defer_accept=self.config.defer_accept)
        sock.close()
        return own
