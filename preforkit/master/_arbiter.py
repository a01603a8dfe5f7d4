"""The master loop: fork workers, supervise them, react to signals.

Shaped after gunicorn's ``Arbiter.run``: signal handlers only enqueue; the
loop waits on a self-pipe, handles each queued signal with ``handle_<name>``,
then reaps children, kills hung workers, recycles fat ones and keeps the
worker count.  The master never imports gevent unless ``--preload`` makes it.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from select import select as _select
from signal import signal as _signal

from .._common.apps import Hooks
from .._common.process import (
    BOOTING,
    DRAINING,
    MASTER_SIGNALS,
    READY,
    SlotBoard,
)
from ._binding import describe
from ._broker import Broker
from ._control import ControlServer, status
from ._metrics import RetiredCounters, render
from ._proctitle import set_proctitle
from ._reloader import Reloader, compile_error
from ._spawn import Spawner
from ._supervise import Supervisor
from ._systemd import Notifier
from ._worker import Worker

log = logging.getLogger("preforkit.error")

SIGNAL_NAMES = {signum: signal.Signals(signum).name[3:].lower() for signum in MASTER_SIGNALS}


def _workers(count: int, adjective: str = "") -> str:
    return f"{count} {adjective}worker{'' if count == 1 else 's'}"


class Arbiter(Spawner, Supervisor):
    """Runs ``config.workers`` worker processes serving ``app_spec``."""

    def __init__(
        self, app_spec: str, config, sockets, *, reload_config=None, app=None, metrics=None, control=None
    ) -> None:
        self.app_spec = app_spec
        self.config = config
        self.sockets = sockets
        self.reload_config = reload_config
        self.app = app  # imported in the master with --preload
        self.hooks = Hooks(config)
        self.notifier = Notifier()
        self.workers: dict[int, Worker] = {}
        self.slots = SlotBoard()  # every worker's heartbeat and load, in one shared mapping
        self.signals: list[int] = []
        self.generation = 1
        self.spawned = 0
        self.exit_code: int | None = None  # set when the loop must end
        self.stop_deadline = 0.0  # graceful stop in progress until then
        self.reload_started = 0.0  # a reload waits for its new workers since then
        self.ready_announced = False
        self._last_memory_check = 0.0
        self.watched_at = 0.0  # when the master last looked at the heartbeats
        self.heartbeats_since = 0.0  # older beats do not count: the master itself was not running then
        self._pipe = (-1, -1)
        self._last_status = ""
        self.broker: Broker | None = None
        self.control: ControlServer | None = control  # `preforkit status` and friends
        self.reloader: Reloader | None = None  # --reload
        self.metrics = metrics  # a MetricsServer with --metrics-bind
        self.started = time.monotonic()
        self.started_at = time.time()
        self.retired_counters = RetiredCounters()  # metrics counters of the workers that exited, added up
        self.restarts: dict[str, int] = {}  # workers replaced, by reason (crash, hung, memory...)

    # -- the loop ---------------------------------------------------------------

    def run(self) -> int:
        """Fork the workers and supervise them until told to stop."""
        set_proctitle(f"master [{self.app_spec}]")
        self._install_signals()
        self.broker = Broker(self.config.pubsub, self._pipe[1])
        if self.config.reload:
            self.reloader = Reloader(
                self.config.reload_dir, self.config.reload_include, self.config.reload_exclude, wake=self._wake
            )
            log.info("--reload: watching %s", self.reloader.describe())
        if self.metrics is not None:
            log.info("Metrics at http://%s/metrics", self.metrics.address)
        addresses = ", ".join(describe(sock) for sock in self.sockets)
        log.info("Listening at %s (master pid %d, %s)", addresses, os.getpid(), _workers(self.config.workers))
        try:
            self.manage_workers()
            while self.exit_code is None:
                self._wait_for_signal(0.5)
                while self.signals and self.exit_code is None:
                    signum = self.signals.pop(0)
                    getattr(self, "handle_" + SIGNAL_NAMES[signum])()
                self.reap_workers()
                if self.stop_deadline:
                    self._continue_stop()
                    continue
                self.murder_workers()
                self.check_memory()
                self.check_reload()
                if self.reloader is not None:
                    self.watch_sources()
                self.manage_workers()
                self.check_ready()
                self.notifier.watchdog()
        finally:
            self._shutdown()
        return self.exit_code

    def _install_signals(self) -> None:
        read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._pipe = (read_end, write_end)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        for signum in MASTER_SIGNALS:
            _signal(signum, self._enqueue)

    def _enqueue(self, signum, frame) -> None:
        if signum != signal.SIGCHLD and len(self.signals) < 10:
            self.signals.append(signum)

    def _wait_for_signal(self, timeout: float) -> None:
        """Wait for a signal, a pub/sub frame from a worker, or Redis; move frames along."""
        broker = self.broker
        try:
            extra = [server for server in (self.control, self.metrics) if server is not None]
            readable, writable, _ = _select([self._pipe[0], *extra, *broker.readable()], broker.writable(), [], timeout)
        except InterruptedError:
            return
        for sock in writable:
            broker.on_writable(sock)
        for item in readable:
            if item == self._pipe[0]:
                try:
                    while os.read(self._pipe[0], 1024):
                        pass
                except BlockingIOError:
                    pass
                broker.on_wake()
            elif item is self.control:
                self.control.on_readable(self._control_request)
            elif item is self.metrics:
                self.metrics.on_readable(lambda: render(self))
            else:
                broker.on_readable(item)

    # -- --reload -------------------------------------------------------------------

    def _wake(self) -> None:
        """From another thread: make the loop look now (the watchfiles thread saw a change)."""
        try:
            os.write(self._pipe[1], b"w")
        except OSError:
            pass

    def watch_sources(self) -> None:
        changed = self.reloader.changed()
        if not changed:
            return
        error = compile_error(changed)
        shown = ", ".join(os.path.relpath(path) for path in changed[:3]) + (" ..." if len(changed) > 3 else "")
        if error:
            log.error("--reload: not reloading, a changed file does not compile: %s", error)
            return
        log.info("--reload: %s changed; reloading", shown)
        self.handle_hup()

    # -- the control socket --------------------------------------------------------

    def _control_request(self, request: dict) -> dict:
        """A command from ``preforkit status|reload|stop|workers`` (in the loop, like a signal)."""
        command = request["command"]
        if command == "status":
            return status(self)
        if command == "reload":
            self.signals.append(signal.SIGHUP)
        elif command == "stop":
            self.signals.append(signal.SIGTERM)
        else:
            change = request.get("change")
            if type(change) is not int or change == 0:
                raise ValueError("workers needs a change of +N or -N")
            for _ in range(abs(change)):
                (self.handle_ttin if change > 0 else self.handle_ttou)()
            return {"ok": True, "workers": self.config.workers}
        return {"ok": True}

    # -- signal handlers (only ever called from the loop) -----------------------

    def handle_chld(self) -> None:
        """SIGCHLD: a worker exited; the loop reaps it next."""

    def handle_term(self) -> None:
        """SIGTERM: graceful stop; workers finish what they serve, then exit."""
        log.info("Graceful stop (SIGTERM): waiting up to %.0f s for requests in flight", self.config.graceful_timeout)
        self._begin_stop(signal.SIGTERM, self.config.graceful_timeout)

    def handle_int(self) -> None:
        """SIGINT: fast stop."""
        log.info("Fast stop (SIGINT)")
        self._begin_stop(signal.SIGQUIT, 1.0)

    def handle_quit(self) -> None:
        """SIGQUIT: fast stop."""
        log.info("Fast stop (SIGQUIT)")
        self._begin_stop(signal.SIGQUIT, 1.0)

    def handle_hup(self) -> None:
        """SIGHUP: reload; re-read the config, start new workers with freshly
        imported app code, and drain the old ones once the new ones serve."""
        if self.reload_started:
            log.warning("SIGHUP ignored: a reload is already in progress")
            return
        log.info("Reloading (SIGHUP)")
        self.notifier.reloading()
        if self.reload_config is not None:
            try:
                config = self.reload_config()
            except Exception as exc:
                log.error("Reload: keeping the old configuration: %s", exc)
            else:
                if config.binds() != self.config.binds():
                    log.warning("Reload: --bind changes take effect on a restart, not a reload")
                self.config = config
                self.hooks = Hooks(config)
        self.hooks.call("on_reload", self.config)
        self.generation += 1
        self.reload_started = time.monotonic()
        for _ in range(self.config.workers):
            self.spawn_worker()

    def handle_ttin(self) -> None:
        """SIGTTIN: one more worker."""
        self.config.set("workers", self.config.workers + 1, "SIGTTIN")
        log.info("SIGTTIN: %s", _workers(self.config.workers))

    def handle_ttou(self) -> None:
        """SIGTTOU: one worker fewer (never below one)."""
        if self.config.workers > 1:
            self.config.set("workers", self.config.workers - 1, "SIGTTOU")
        log.info("SIGTTOU: %s", _workers(self.config.workers))

    def handle_usr1(self) -> None:
        """SIGUSR1: reopen log files (the workers reopen their access logs)."""
        self._signal_all(signal.SIGUSR1)

    def handle_usr2(self) -> None:
        """SIGUSR2: ignored (reserved)."""

    def handle_winch(self) -> None:
        """SIGWINCH: ignored (a terminal resize is not a request)."""

    # -- workers ------------------------------------------------------------------

    def manage_workers(self) -> None:
        """Keep ``config.workers`` serving; adopt workers that recycle themselves."""
        for worker in self.workers.values():
            if not worker.retiring and worker.slot.state == DRAINING:
                worker.retiring = True
                worker.reason = "recycling itself (--max-requests)"
                worker.restart = "max_requests"
                worker.kill_at = time.monotonic() + self.config.graceful_timeout + 2
        if self.reload_started:
            return
        active = sorted((w for w in self.workers.values() if not w.retiring), key=lambda w: w.age)
        for _ in range(self.config.workers - len(active)):
            self.spawn_worker()
        for worker in active[: max(0, len(active) - self.config.workers)]:
            self.retire(worker, "fewer workers wanted (SIGTTOU)")
        self._report_status()

    def check_reload(self) -> None:
        """Once every new worker serves, drain the old generation."""
        if not self.reload_started:
            return
        new = [w for w in self.workers.values() if w.generation == self.generation and not w.retiring]
        if len(new) >= self.config.workers and all(w.slot.state == READY for w in new):
            for worker in list(self.workers.values()):
                if worker.generation != self.generation:
                    self.retire(worker, "replaced by a reload", restart="reload")
            self.reload_started = 0.0
            log.info("Reload complete: %s serving", _workers(len(new), "new "))
            self.notifier.ready(f"{_workers(len(new))} serving")
            return
        limit = max(self.config.timeout, 30.0)
        if time.monotonic() - self.reload_started > limit:
            log.error("Reload failed: the new workers did not start serving within %.0f s", limit)
            self._cancel_reload()

    def _cancel_reload(self) -> None:
        for worker in list(self.workers.values()):
            if worker.generation == self.generation:
                self.retire(worker, "reload cancelled", signal.SIGQUIT)
        self.generation += 1
        self.reload_started = 0.0
        self.notifier.ready("reload failed; the previous workers keep serving")

    def check_ready(self) -> None:
        if self.ready_announced:
            return
        serving = [w for w in self.workers.values() if not w.retiring and w.slot.state == READY]
        if len(serving) >= self.config.workers:
            self.ready_announced = True
            log.info("Ready: %s serving", _workers(len(serving)))
            self.notifier.ready(f"{_workers(len(serving))} serving")
            self.hooks.call("when_ready", self.config)

    def _report_status(self) -> None:
        serving = sum(1 for w in self.workers.values() if not w.retiring and w.slot.state == READY)
        booting = sum(1 for w in self.workers.values() if w.slot.state == BOOTING)
        status = f"{_workers(serving)} serving, {booting} booting"
        if status != self._last_status:
            self._last_status = status
            self.notifier.status(status)

    # -- stopping -------------------------------------------------------------------

    def _begin_stop(self, signum: int, timeout: float) -> None:
        if not self.stop_deadline:
            self.notifier.stopping()
        self.stop_deadline = time.monotonic() + timeout + 1
        self._signal_all(signum)

    def _continue_stop(self) -> None:
        if not self.workers:
            if self.exit_code is None:
                self.exit_code = 0
            return
        if time.monotonic() > self.stop_deadline:
            for worker in self.workers.values():
                log.warning("Worker %d still running at the stop deadline; killing it", worker.pid)
                self._kill(worker.pid, signal.SIGKILL)
            self.stop_deadline = time.monotonic() + 5  # then give up waiting

    def _signal_all(self, signum: int) -> None:
        for pid in list(self.workers):
            self._kill(pid, signum)

    def _kill(self, pid: int, signum: int) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def _shutdown(self) -> None:
        for pid in list(self.workers):
            self._kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.workers and time.monotonic() < deadline:
            self.reap_workers()
            time.sleep(0.01)
        signal.set_wakeup_fd(-1)
        if self.reloader is not None:
            self.reloader.stop()
        if self.control is not None:
            self.control.close()
        if self.metrics is not None:
            self.metrics.close()
        if self.broker is not None:
            self.broker.close()
        for fd in self._pipe:
            if fd >= 0:
                os.close(fd)
        self.notifier.close()
