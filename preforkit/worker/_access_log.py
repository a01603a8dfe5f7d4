"""The access log: one line per response, gunicorn-style ``%(x)s`` atoms, or JSON.

What the client sent (request line, path, query, Referer, User-Agent) is
escaped in both: in a text line ``"`` and ``\\`` get a backslash and other
bytes outside printable ASCII become ``\\xHH`` (as Apache does), and a JSON
line is ``json.dumps`` of the fields, so no header can break a line or forge one.
"""

from __future__ import annotations

import json
import re
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
    "request_id": "the request's id (--request-id; '-' without)",
}
JSON = "json"  # --access-log-format json: one JSON object per line


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

    def log(self, remote_addr: str, head, status: int, sent: int, started: float, request_id=None) -> None:
        elapsed = time.time() - started
        headers = head.headers
        query = head.query
        if self.format == JSON:
            line = json.dumps(
                {
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                    "remote_addr": remote_addr or None,
                    "method": head.method,
                    "path": head.path,
                    "query": query,
                    "protocol": head.protocol,
                    "status": status,
                    "bytes": sent,
                    "duration": round(elapsed, 6),
                    "referer": headers.get("referer"),
                    "user_agent": headers.get("user-agent"),
                    "request_id": request_id,
                    "pid": _pid(),
                }
            )
        else:
            line = self.format % _Atoms(
                h=remote_addr or "-",
                t=time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(started)),
                r=_escape(f"{head.method} {head.target} {head.protocol}"),
                m=head.method,
                U=_escape(head.path),
                q=_escape(query or ""),
                H=head.protocol,
                s=status,
                b=sent or "-",
                B=sent,
                f=_escape(headers.get("referer", "-")),
                a=_escape(headers.get("user-agent", "-")),
                T=int(elapsed),
                D=int(elapsed * 1_000_000),
                L=f"{elapsed:.6f}",
                p=_pid(),
                request_id=request_id or "-",
            )
        try:
            self.stream.write(line + "\n")
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


_NEEDS_ESCAPE = re.compile(r'[^ -~]|["\\]')


def _escape(value: str) -> str:
    """``value`` safe inside a quoted field of a text log line."""
    if not _NEEDS_ESCAPE.search(value):
        return value
    return _NEEDS_ESCAPE.sub(_escaped, value)


def _escaped(match: re.Match) -> str:
    char = match.group()
    if char in '"\\':
        return "\\" + char
    data = char.encode("latin-1") if ord(char) < 256 else char.encode("utf-8")  # header bytes came as latin-1
    return "".join(f"\\x{byte:02x}" for byte in data)
