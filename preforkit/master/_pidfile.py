"""The ``--pid`` file: written atomically, removed on exit, never stolen."""

from __future__ import annotations

import os
import tempfile


class PidfileError(Exception):
    """A live process holds the pidfile (one-line message)."""


class Pidfile:
    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.pid: int | None = None

    def create(self, pid: int) -> None:
        """Write ``pid``; refuse if the file names another live process."""
        other = self.read()
        if other is not None and other != pid and _alive(other):
            raise PidfileError(f"pidfile {self.path} names a running process ({other}); is preforkit already running?")
        directory = os.path.dirname(self.path)
        fd, temporary = tempfile.mkstemp(prefix=".preforkit-", dir=directory)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(f"{pid}\n")
            os.chmod(temporary, 0o644)
            os.replace(temporary, self.path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        self.pid = pid

    def read(self) -> int | None:
        try:
            with open(self.path) as file:
                text = file.read().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def unlink(self) -> None:
        """Remove the file if it still holds our pid."""
        if self.pid is not None and self.read() == self.pid:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
