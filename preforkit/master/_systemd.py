"""systemd integration: sd_notify and socket activation, without libsystemd."""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("preforkit.error")

SD_LISTEN_FDS_START = 3


class Notifier:
    """Sends ``sd_notify`` messages when ``NOTIFY_SOCKET`` is set, else nothing."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET")
        self._sock = None
        self._address = None
        if address:
            if address.startswith("@"):
                address = "\0" + address[1:]  # abstract namespace
            self._address = address
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        watchdog = environ.get("WATCHDOG_USEC")
        watchdog_pid = environ.get("WATCHDOG_PID")
        self.watchdog_interval = None
        if watchdog and watchdog.isdigit() and (not watchdog_pid or watchdog_pid == str(os.getpid())):
            self.watchdog_interval = int(watchdog) / 2e6  # ping at half the timeout
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, *lines: str) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=Reloading")

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=Stopping")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def watchdog(self) -> None:
        """Ping the watchdog if it is due (call from the healthy master loop)."""
        if self._sock is None or self.watchdog_interval is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_interval:
            self._last_ping = now
            self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def listen_fds(environ: dict[str, str] | None = None, unset: bool = True) -> list[int]:
    """File descriptors passed by systemd socket activation (LISTEN_FDS)."""
    environ = os.environ if environ is None else environ
    pid = environ.get("LISTEN_PID")
    count = environ.get("LISTEN_FDS")
    if not count or not count.isdigit() or pid != str(os.getpid()):
        return []
    if unset:
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            environ.pop(name, None)
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count)))
