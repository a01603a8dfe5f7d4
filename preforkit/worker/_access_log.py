"""The access log: one line per response, gunicorn-style ``%(x)s`` atoms."""

from __future__ import annotations

import sys
import time

COMBINED = '%(h)s - - [%(t)s] "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

ATOMS = {
    "h": "remote address",
    "t": "time the request started, [day/month/year:hour:minute:second zone]",
    "r": "request line",
    "m": "method",
    "U": "path",
    "q": "query string",
    "H": "protocol",
    "s": "status",
    "b": "response body bytes ('-' for none)",
    "B": "response body bytes",
    "f": "Referer",
    "a": "User-Agent",
    "T": "request time in whole seconds",
    "D": "request time in microseconds",
    "L": "request time in decimal seconds",
    "p": "process id",
}


class AccessLog:
    """Writes access lines to a file or stdout (``-``)."""

    def __init__(self, stream, fmt: str, owned: bool) -> None:
        self.stream = stream
        self.format = fmt
        self._owned = owned

    @classmethod
    def open(cls, target: str | None, fmt: str | None) -> AccessLog | None:
        if not target:
            return None
        if target == "-":
            return cls(sys.stdout, fmt or COMBINED, owned=False)
        return cls(open(target, "a", buffering=1, encoding="utf-8"), fmt or COMBINED, owned=True)

    def log(self, remote_addr: str, head, status: int, sent: int, started: float) -> None:
        elapsed = time.time() - started
        headers = head.headers
        query = head.query
        atoms = _Atoms(
            h=remote_addr or "-",
            t=time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(started)),
            r=f"{head.method} {head.target} {head.protocol}",
            m=head.method,
            U=head.path,
            q=query or "",
            H=head.protocol,
            s=status,
            b=sent or "-",
            B=sent,
            f=headers.get("referer", "-"),
            a=headers.get("user-agent", "-"),
            T=int(elapsed),
            D=int(elapsed * 1_000_000),
            L=f"{elapsed:.6f}",
            p=_pid(),
        )
        try:
            self.stream.write(self.format % atoms + "\n")
            if not self._owned:
                self.stream.flush()
        except (OSError, ValueError):
            pass

    def reopen(self) -> None:
        """Reopen the file (after log rotation)."""
        if self._owned:
            name = self.stream.name
            self.stream.close()
            self.stream = open(name, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - kept open

    def close(self) -> None:
        if self._owned:
            self.stream.close()


class _Atoms(dict):
    """Unknown atoms format as '-' instead of failing the request."""

    def __missing__(self, key: str) -> str:
        return "-"


def _pid() -> int:
    import os

    return os.getpid()
