"""The control socket: how ``preforkit status`` (and reload, stop, workers) talks to a running master.

A unix stream socket the master creates (mode 0600) and answers in its loop:
one JSON object per connection each way, a line each.  Requests:
``{"command": "status"}``, ``"reload"``, ``"stop"``, ``{"command": "workers",
"change": N}``.  Replies: ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``.
The master accepts only peers of its own user (or root), checked with
``SO_PEERCRED``.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile

COMMANDS = ("status", "reload", "stop", "workers")
MAX_MESSAGE = 1 << 20  # a status reply with many workers stays far below


def runtime_dir() -> str:
    return os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()


def default_path(master_pid: int) -> str:
    """Where a master without ``--control-socket`` puts its socket."""
    return os.path.join(runtime_dir(), f"preforkit-{master_pid}.ctl")


class ControlError(Exception):
    """No master answered, or it refused the request (a one-line message)."""


def ask(path: str, request: dict, timeout: float = 5.0) -> dict:
    """Send ``request`` to the master at ``path``; its reply."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except FileNotFoundError:
            raise ControlError(f"no master is running: no control socket at {path}") from None
        except ConnectionRefusedError:
            raise ControlError(f"no master is running: nobody listens on {path} (left by a master that died)") from None
        except PermissionError:
            raise ControlError(f"not allowed to use {path} (the master runs as another user)") from None
        sock.sendall(json.dumps(request).encode() + b"\n")
        reply = read_line(sock)
    except (socket.timeout, OSError) as exc:
        raise ControlError(f"the master at {path} did not answer: {exc}") from None
    finally:
        sock.close()
    if not reply:
        raise ControlError(f"the master at {path} closed the connection without an answer (another user?)")
    try:
        answer = json.loads(reply)
    except ValueError:
        raise ControlError(f"the master at {path} answered something that is not JSON") from None
    if not answer.get("ok"):
        raise ControlError(answer.get("error", "the master refused the request"))
    return answer


def read_line(sock: socket.socket) -> bytes:
    """One line from a blocking socket (at most ``MAX_MESSAGE`` bytes)."""
    data = bytearray()
    while b"\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
        if len(data) > MAX_MESSAGE:
            raise OSError("message too long")
    return bytes(data.split(b"\n", 1)[0])
