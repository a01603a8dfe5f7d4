"""Watching the workers: reaping, hung-worker timeouts (SIGABRT, then SIGKILL), memory caps, recycling.

Mixed into ``Arbiter`` (its state lives there).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from os import waitpid as _waitpid

from .._common.process import EXIT_APP_LOAD_ERROR, EXIT_APP_SPEC_ERROR, EXIT_BOOT_ERROR
from ._worker import Worker

log = logging.getLogger("preforkit.error")

MEMORY_CHECK_INTERVAL = 2.0
KILL_AFTER_ABORT = 2.0  # seconds between SIGABRT (traceback) and SIGKILL
MASTER_STALL = 2.0  # the loop looks every 0.5 s; a longer gap means the master was stopped, frozen or suspended


class Supervisor:
    """Arbiter methods that watch the workers it forked."""

    def reap_workers(self) -> None:
        while True:
            try:
                pid, status = _waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            self.retired_counters.add(worker.slot.counters())  # metrics totals never go back
            worker.slot.close()
            self.broker.remove(pid)
            self._worker_exited(worker, status)

    def _worker_exited(self, worker: Worker, status: int) -> None:
        if os.WIFSIGNALED(status):
            how = f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
            code = None
        else:
            code = os.WEXITSTATUS(status)
            how = f"exited with status {code}"
        if worker.retiring or self.stop_deadline:
            if worker.restart and not self.stop_deadline:
                self.restarts[worker.restart] = self.restarts.get(worker.restart, 0) + 1
            log.info("Worker %d %s (%s)", worker.pid, how, worker.reason or "stopping")
            return
        if code in (EXIT_APP_SPEC_ERROR, EXIT_APP_LOAD_ERROR, EXIT_BOOT_ERROR):
            if self.reload_started and worker.generation == self.generation:
                log.error(
                    "Reload failed: the new worker %d could not load the app; the old workers keep serving", worker.pid
                )
                self._cancel_reload()
                return
            log.error("Worker %d could not boot (%s); stopping", worker.pid, how)
            self.exit_code = 2 if code == EXIT_APP_SPEC_ERROR else 1
            self._begin_stop(signal.SIGQUIT, 1.0)
            return
        log.error("Worker %d %s; replacing it", worker.pid, how)
        self.restarts["crash"] = self.restarts.get("crash", 0) + 1

    def retire(self, worker: Worker, reason: str, signum: int = signal.SIGTERM, restart: str = "") -> None:
        """Drain ``worker`` gracefully (a replacement is started by the loop); ``restart``
        is the reason counted in the metrics (none for one fewer worker wanted)."""
        if worker.retiring:
            return
        log.info("Recycling worker %d: %s", worker.pid, reason)
        worker.retiring = True
        worker.reason = reason
        worker.restart = restart
        worker.kill_at = time.monotonic() + self.config.graceful_timeout + 2
        self._kill(worker.pid, signum)

    def murder_workers(self) -> None:
        """Kill workers whose event loop stopped turning, and overdue retirees."""
        now = time.monotonic()
        timeout = self.config.timeout
        gap = now - self.watched_at
        if self.watched_at and gap > MASTER_STALL:
            # Every process of the server was likely stopped with it (SIGSTOP, a cgroup
            # freezer, a suspended VM): a worker's old heartbeat says nothing of its loop.
            log.warning(
                "The master did not run for %.1f s (stopped, frozen or suspended?): "
                "the workers' heartbeats count from now",
                gap,
            )
            self.heartbeats_since = now
        self.watched_at = now
        for worker in list(self.workers.values()):
            if worker.kill_at and now >= worker.kill_at:
                log.warning("Worker %d did not exit in time; killing it", worker.pid)
                worker.kill_at = 0.0
                self._kill(worker.pid, signal.SIGKILL)
                continue
            if not timeout or (worker.retiring and worker.reason.startswith("hung")):
                continue
            silent = now - max(worker.slot.last_beat, self.heartbeats_since)
            if silent > timeout:
                busy = worker.slot.noted
                log.error(
                    "Worker %d is hung: its event loop has not turned for %.1f s (--timeout %.0f)%s; "
                    "its traceback follows, then it is killed",
                    worker.pid,
                    silent,
                    timeout,
                    f" {busy}" if busy else "",
                )
                worker.retiring = True
                worker.reason = f"hung for {silent:.1f} s"
                worker.restart = "hung"
                worker.kill_at = now + KILL_AFTER_ABORT
                self._kill(worker.pid, signal.SIGABRT)  # faulthandler prints the traceback

    def check_memory(self) -> None:
        limit = self.config.max_worker_memory
        now = time.monotonic()
        if not limit or now - self._last_memory_check < MEMORY_CHECK_INTERVAL:
            return
        self._last_memory_check = now
        import psutil

        for worker in list(self.workers.values()):
            if worker.retiring:
                continue
            try:
                rss = psutil.Process(worker.pid).memory_info().rss
            except psutil.Error:
                continue
            if rss > limit:
                self.retire(
                    worker,
                    f"RSS {rss / 2**20:.1f} MiB is over --max-worker-memory {limit / 2**20:.1f} MiB",
                    restart="memory",
                )
