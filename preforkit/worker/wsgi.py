"""Running a WSGI (PEP 3333) application as a Ring handler."""

from __future__ import annotations

import io
import logging
import sys
from itertools import chain

log = logging.getLogger("preforkit.error")

_EMPTY = io.BytesIO(b"")


class WSGIAdapter:
    """Wraps ``app(environ, start_response)`` so the worker can call it."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, request: dict) -> dict:
        environ = make_environ(request)
        state: dict = {}
        written: list[bytes] = []

        def start_response(status, headers, exc_info=None):
            if exc_info:
                try:
                    if state.get("sent"):
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif "status" in state:
                raise AssertionError("start_response called twice without exc_info")
            state["status"] = status
            state["headers"] = headers
            return written.append

        result = self.app(environ, start_response)
        iterator = iter(result)
        first: list = []
        if "status" not in state or not written:
            for item in iterator:
                if item:
                    first.append(item)
                    break
                if "status" in state:
                    break
        if "status" not in state:
            _close(result)
            raise RuntimeError("the WSGI application did not call start_response")
        state["sent"] = True
        status_text = state["status"]
        try:
            status = int(status_text.split(" ", 1)[0])
        except ValueError:
            _close(result)
            raise RuntimeError(f"invalid WSGI status {status_text!r}") from None
        body = _Body(chain(written, first, iterator), result)
        return {"status": status, "headers": state["headers"], "body": body}


class _Body:
    """The response iterable; ``close()`` closes the app's result (PEP 3333)."""

    __slots__ = ("_iterator", "_result")

    def __init__(self, iterator, result) -> None:
        self._iterator = iterator
        self._result = result

    def __iter__(self):
        return self._iterator

    def close(self) -> None:
        _close(self._result)


def _close(result) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def make_environ(request: dict) -> dict:
    """The PEP 3333 environ for a Ring request dict."""
    path = request["uri"]
    try:
        from urllib.parse import unquote_to_bytes

        path_info = unquote_to_bytes(path).decode("latin-1")
    except Exception:
        path_info = path
    environ = {
        "REQUEST_METHOD": request["request_method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": path_info,
        "QUERY_STRING": request["query_string"] or "",
        "SERVER_NAME": request["server_name"],
        "SERVER_PORT": str(request["server_port"] or ""),
        "SERVER_PROTOCOL": request["protocol"],
        "REMOTE_ADDR": request["remote_addr"],
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request["scheme"],
        "wsgi.input": request["body"] or _EMPTY,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }
    if request["content_type"] is not None:
        environ["CONTENT_TYPE"] = request["content_type"]
    if request["content_length"] is not None:
        environ["CONTENT_LENGTH"] = str(request["content_length"])
    for name, value in request["headers"].items():
        if "_" in name:
            continue  # never let "x_forwarded" pose as "x-forwarded"
        key = "HTTP_" + name.upper().replace("-", "_")
        if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            environ[key] = value
    return environ
