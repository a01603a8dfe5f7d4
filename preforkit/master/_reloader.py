"""``--reload`` for development: new workers whenever the app's source changes.

The master watches ``--reload-dir`` (default: the working directory) for files
matching ``--reload-include`` and not ``--reload-exclude`` - with watchfiles
(the ``reload`` extra) when it is installed, else by polling modification
times once a second.  A changed Python file that does not compile is logged
(file and line) and the old workers keep serving; otherwise the master reloads
as on SIGHUP, and if the new code fails to import the old workers still serve.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time

log = logging.getLogger("preforkit.error")

DEFAULT_INCLUDE = ["*.py"]
DEFAULT_EXCLUDE = [
    ".*",
    "__pycache__",
    "*.pyc",
    "*~",
    "node_modules",
    "venv",
    "site-packages",
]  # as the setting
POLL_INTERVAL = 1.0


class Reloader:
    """What changed since the last look: ``changed()`` (called from the master's loop)."""

    def __init__(self, dirs: list[str], include: list[str], exclude: list[str], wake=None) -> None:
        self.dirs = [os.path.abspath(d) for d in dirs or ["."]]
        self.include = include or DEFAULT_INCLUDE
        self.exclude = exclude or DEFAULT_EXCLUDE
        self._wake = wake  # called from the watchfiles thread to wake the master's loop
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._stop = threading.Event()
        self._last_poll = 0.0
        self._snapshot: dict[str, int] = {}
        self.backend = self._start_watchfiles() or "polling"
        if self.backend == "polling":
            self._snapshot = self._scan()

    def describe(self) -> str:
        return f"{', '.join(self.dirs)} ({' '.join(self.include)}; {self.backend})"

    def wanted(self, path: str) -> bool:
        parts = os.path.relpath(path, self._root_of(path)).split(os.sep)
        if any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in self.exclude):
            return False
        return any(fnmatch.fnmatch(parts[-1], pattern) for pattern in self.include)

    def _root_of(self, path: str) -> str:
        for directory in self.dirs:
            if path == directory or path.startswith(directory + os.sep):
                return directory
        return os.path.dirname(path)

    # -- watchfiles -------------------------------------------------------------------

    def _start_watchfiles(self) -> str | None:
        try:
            import watchfiles
        except ImportError:
            return None
        thread = threading.Thread(target=self._watch, args=(watchfiles,), name="preforkit-reload", daemon=True)
        thread.start()
        return "watchfiles"

    def _watch(self, watchfiles) -> None:
        try:
            for changes in watchfiles.watch(
                *self.dirs, watch_filter=lambda _, path: self.wanted(path), stop_event=self._stop, debounce=200
            ):
                with self._lock:
                    self._pending.update(path for _, path in changes)
                if self._wake is not None:
                    self._wake()
        except Exception:
            log.exception("--reload: watching for changes failed; no more reloads")

    # -- polling ----------------------------------------------------------------------

    def _scan(self) -> dict[str, int]:
        found = {}
        for directory in self.dirs:
            for root, dirnames, filenames in os.walk(directory):
                dirnames[:] = [d for d in dirnames if not any(fnmatch.fnmatch(d, p) for p in self.exclude)]
                for name in filenames:
                    path = os.path.join(root, name)
                    if self.wanted(path):
                        try:
                            found[path] = os.stat(path).st_mtime_ns
                        except OSError:
                            pass
        return found

    def changed(self) -> list[str]:
        """Paths changed (or added, or removed) since the last call."""
        if self.backend == "watchfiles":
            with self._lock:
                changed, self._pending = sorted(self._pending), set()
            return changed
        now = time.monotonic()
        if now - self._last_poll < POLL_INTERVAL:
            return []
        self._last_poll = now
        snapshot = self._scan()
        old = self._snapshot
        self._snapshot = snapshot
        return sorted(path for path in snapshot.keys() | old.keys() if snapshot.get(path) != old.get(path))

    def stop(self) -> None:
        self._stop.set()


def compile_error(paths: list[str]) -> str | None:
    """The first changed Python file that does not compile, as "file, line N: message"."""
    for path in paths:
        if not path.endswith(".py") or not os.path.exists(path):
            continue
        try:
            with open(path, "rb") as file:
                compile(file.read(), path, "exec", dont_inherit=True)
        except SyntaxError as exc:
            return f"{path}, line {exc.lineno}: {exc.msg}"
        except (OSError, ValueError) as exc:
            return f"{path}: {exc}"
    return None
