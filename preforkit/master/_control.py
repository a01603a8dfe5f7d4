"""The master's end of the control socket (``preforkit status``, reload, stop, workers)."""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import time

from .._common.control import COMMANDS, read_line
from .._common.process import BOOTING, DRAINING, READY

log = logging.getLogger("preforkit.error")

_PEERCRED = struct.Struct("3i")  # pid, uid, gid
STATE_NAMES = {BOOTING: "booting", READY: "ready", DRAINING: "draining"}


class ControlServer:
    """A listening unix socket, mode 0600, answered from the master's loop."""

    def __init__(self, path: str) -> None:
        self.path = path
        _remove_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # created 0600: no window where another user could connect
        try:
            sock.bind(path)
        finally:
            os.umask(old_umask)
        sock.listen(16)
        sock.setblocking(False)
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def on_readable(self, handle) -> None:
        """Answer every waiting client: ``handle(request) -> reply``."""
        answer_each(self.sock, "Control socket", lambda client: self._answer(client, handle))

    def _answer(self, client: socket.socket, handle) -> None:
        pid, uid, _ = _PEERCRED.unpack(client.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        if uid not in (0, os.geteuid()):
            log.warning("Control socket: refused pid %d of uid %d (not this server's user)", pid, uid)
            return
        try:
            line = read_line(client)
            try:
                request = json.loads(line)
                if not isinstance(request, dict) or request.get("command") not in COMMANDS:
                    raise ValueError(f"unknown command; known: {', '.join(COMMANDS)}")
                reply = handle(request)
            except ValueError as exc:
                reply = {"ok": False, "error": str(exc)}
            client.sendall(json.dumps(reply).encode() + b"\n")
        except OSError as exc:
            log.debug("Control socket: client pid %d gone: %s", pid, exc)

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def answer_each(sock: socket.socket, name: str, answer) -> None:
    """Accept every client waiting on the non-blocking listener ``sock`` and ``answer(client)``, one at a
    time, in the master's loop; each client is closed after, and has a second to say what it wants."""
    while True:
        try:
            client, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("%s: accept failed: %s", name, exc)
            return
        with client:
            client.settimeout(1.0)  # a client that connects and says nothing does not hold the master up
            try:
                answer(client)
            except OSError:
                pass


def worker_state(worker) -> str:
    """booting, ready, draining, or retiring (told to drain by the master)."""
    return "retiring" if worker.retiring else STATE_NAMES.get(worker.slot.state, "booting")


def worker_rss(pid: int) -> int | None:
    import psutil

    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return None


def open_control(setting: str | None) -> ControlServer | None:
    """The master's control socket (``--control-socket``; ``off``: none), logged; None if it cannot be made."""
    if setting == "off":
        return None
    from .._common.control import default_path

    path = setting or default_path(os.getpid())
    try:
        server = ControlServer(path)
    except OSError as exc:
        log.warning("No control socket (preforkit status will not find this master): %s: %s", path, exc)
        return None
    log.info("Control socket: %s", path)
    return server


def _remove_stale(path: str) -> None:
    """Remove a socket file nobody listens on (left by a master that was killed)."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    except OSError:
        return  # not a socket, or not ours: bind() will say so
    finally:
        probe.close()
    raise OSError(f"another master is using the control socket {path}")


def status(arbiter) -> dict:
    """The master and one row per worker, as ``preforkit status`` shows them."""
    now = time.monotonic()
    rows = []
    for worker in sorted(arbiter.workers.values(), key=lambda w: w.age):
        slot = worker.slot
        rows.append(
            {
                "pid": worker.pid,
                "age": worker.age,
                "generation": worker.generation,
                "state": worker_state(worker),
                "reason": worker.reason or None,
                "uptime": round(now - worker.started, 1),
                "rss": worker_rss(worker.pid),
                "connections": slot.connection_states(),
                "requests": slot.requests,
                "heartbeat": round(now - slot.last_beat, 2),
            }
        )
    return {
        "ok": True,
        "master": {
            "pid": os.getpid(),
            "app": arbiter.app_spec,
            "uptime": round(now - arbiter.started, 1),
            "workers_wanted": arbiter.config.workers,
        },
        "workers": rows,
    }
