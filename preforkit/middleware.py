"""Ring-style middleware: ``wrap_x(handler, ...) -> handler``.

Middleware that changes *responses* must also work when the handler returns
``async_response(...)``: the response does not exist yet.  Write such
middleware with ``transform_response(response, fn)``, which calls ``fn`` now
for a plain response and registers it on an async one, where it runs when
``respond`` delivers (and on its timeout response).  Every response-changing
middleware here is written that way, so all of them apply to async responses
(http-kit's middleware skips them).
"""

from __future__ import annotations

import email.utils
import io
import mimetypes
import os
import pathlib
from http.cookies import CookieError, SimpleCookie
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote

from .worker import AsyncResponse, FileRange

Handler = Callable[[dict], Any]

__all__ = [
    "transform_response",
    "wrap_content_type",
    "wrap_cookies",
    "wrap_head",
    "wrap_params",
    "wrap_static",
]


def transform_response(response, fn: Callable[[dict], dict]):
    """``fn(response)`` now, or when an async response is delivered."""
    if isinstance(response, AsyncResponse):
        return response.map(fn)
    if response is None:
        return None
    return fn(response)


def _header(response: dict, name: str):
    headers = response.get("headers") or {}
    items = headers.items() if isinstance(headers, dict) else headers
    lower = name.lower()
    for key, value in items:
        if key.lower() == lower:
            return value
    return None


def _with_header(response: dict, name: str, value) -> dict:
    headers = response.get("headers") or {}
    headers = {**headers, name: value} if isinstance(headers, dict) else [*headers, (name, value)]
    return {**response, "headers": headers}


# -- params ---------------------------------------------------------------------


def _parse_params(text: str, encoding: str) -> dict:
    params: dict = {}
    for key, value in parse_qsl(text, keep_blank_values=True, encoding=encoding, errors="replace"):
        if key in params:
            existing = params[key]
            params[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            params[key] = value
    return params


def wrap_params(handler: Handler, encoding: str = "utf-8") -> Handler:
    """Adds ``query_params``, ``form_params`` and the merged ``params``.

    Values are strings; a repeated key gives a list.  An urlencoded form body
    is read (the request's ``body`` is replaced by a stream over the same
    bytes, so the handler can still read it).
    """

    def wrapped(request: dict):
        query = _parse_params(request.get("query_string") or "", encoding)
        form: dict = {}
        content_type = (request.get("content_type") or "").split(";")[0].strip().lower()
        if content_type == "application/x-www-form-urlencoded" and request.get("body") is not None:
            data = request["body"].read()
            request = {**request, "body": io.BytesIO(data)}
            form = _parse_params(data.decode("latin-1"), encoding)
        return handler({**request, "query_params": query, "form_params": form, "params": {**query, **form}})

    return wrapped


# -- cookies --------------------------------------------------------------------

_COOKIE_ATTRIBUTES = {
    "path": "Path",
    "domain": "Domain",
    "max_age": "Max-Age",
    "expires": "Expires",
    "secure": "Secure",
    "http_only": "HttpOnly",
    "same_site": "SameSite",
}


def _set_cookie_lines(cookies: dict) -> list[str]:
    lines = []
    for name, spec in cookies.items():
        if not isinstance(spec, dict):
            spec = {"value": spec}
        jar: SimpleCookie = SimpleCookie()
        jar[name] = str(spec.get("value", ""))
        morsel = jar[name]
        for key, attribute in _COOKIE_ATTRIBUTES.items():
            value = spec.get(key)
            if value is None or value is False:
                continue
            if key == "expires" and not isinstance(value, str):
                value = email.utils.formatdate(value, usegmt=True)
            morsel[attribute.lower() if attribute != "SameSite" else "samesite"] = value
        lines.append(morsel.OutputString())
    return lines


def wrap_cookies(handler: Handler) -> Handler:
    """Adds ``request["cookies"]`` ({name: value}) and turns a response's
    ``cookies`` ({name: value or {"value", "path", "max_age", "http_only",
    "secure", "same_site", "domain", "expires"}}) into Set-Cookie headers."""

    def add_cookies(response: dict) -> dict:
        cookies = response.get("cookies")
        if not cookies:
            return response
        lines = _set_cookie_lines(cookies)
        existing = _header(response, "Set-Cookie")
        if existing:
            lines = [*(existing if isinstance(existing, list) else [existing]), *lines]
        response = {k: v for k, v in response.items() if k != "cookies"}
        headers = response.get("headers") or {}
        if isinstance(headers, dict):
            headers = {k: v for k, v in headers.items() if k.lower() != "set-cookie"}
            headers["Set-Cookie"] = lines
        else:
            headers = [(k, v) for k, v in headers if k.lower() != "set-cookie"] + [("Set-Cookie", x) for x in lines]
        return {**response, "headers": headers}

    def wrapped(request: dict):
        cookies = {}
        header = request["headers"].get("cookie")
        if header:
            jar: SimpleCookie = SimpleCookie()
            for part in header.split(";"):
                try:
                    jar.load(part.strip())
                except CookieError:
                    continue  # one bad cookie does not hide the others
            cookies = {name: morsel.value for name, morsel in jar.items()}
        return transform_response(handler({**request, "cookies": cookies}), add_cookies)

    return wrapped


# -- content type -----------------------------------------------------------------


def wrap_content_type(handler: Handler, default: str = "application/octet-stream") -> Handler:
    """Adds a Content-Type guessed from the request path's extension to
    responses that have none (``default`` when the extension is unknown)."""

    def wrapped(request: dict):
        guessed = mimetypes.guess_type(request["uri"])[0] or default

        def add_type(response: dict) -> dict:
            if _header(response, "Content-Type") is not None:
                return response
            return _with_header(response, "Content-Type", guessed)

        return transform_response(handler(request), add_type)

    return wrapped


# -- HEAD -------------------------------------------------------------------------


def wrap_head(handler: Handler) -> Handler:
    """Calls the handler for HEAD requests as if they were GET.

    The server then sends the GET response's head with no body (and the
    Content-Length the GET would have had), so the handler need not know HEAD.
    """

    def wrapped(request: dict):
        if request["request_method"] == "HEAD":
            request = {**request, "request_method": "GET"}
        return handler(request)

    return wrapped


# -- static files -------------------------------------------------------------------


def wrap_static(handler: Handler, directory: str | os.PathLike, prefix: str = "/") -> Handler:
    """Serves files under ``directory`` at URLs under ``prefix`` (GET and HEAD).

    Sent with sendfile; ``ETag`` and ``Last-Modified`` with 304 for
    ``If-None-Match`` / ``If-Modified-Since``; single ``Range`` requests get
    206 (or 416 when unsatisfiable; several ranges get the whole file).  A
    path that is not a file under ``directory`` falls through to ``handler``.
    """
    root = pathlib.Path(directory).resolve()
    if not prefix.endswith("/"):
        prefix += "/"

    def wrapped(request: dict):
        if request["request_method"] not in ("GET", "HEAD") or not request["uri"].startswith(prefix):
            return handler(request)
        relative = unquote(request["uri"][len(prefix) :])
        if "\0" in relative:
            return handler(request)
        path = (root / relative).resolve()
        if path != root and root not in path.parents:
            return handler(request)  # "..", or a link out of the directory
        if path.is_dir():
            path = path / "index.html"
        try:
            file = open(path, "rb")  # noqa: SIM115 - the server closes it after sending
            stat = os.fstat(file.fileno())
        except OSError:
            return handler(request)
        return _file_response(request, file, stat, path)

    return wrapped


def _file_response(request: dict, file, stat, path: pathlib.Path) -> dict:
    size = stat.st_size
    etag = f'"{stat.st_mtime_ns:x}-{size:x}"'
    last_modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
    headers = {
        "Content-Type": mimetypes.guess_type(str(path))[0] or "application/octet-stream",
        "ETag": etag,
        "Last-Modified": last_modified,
        "Accept-Ranges": "bytes",
    }
    request_headers = request["headers"]
    if _not_modified(request_headers, etag, stat.st_mtime):
        file.close()
        return {"status": 304, "headers": {"ETag": etag, "Last-Modified": last_modified}}
    range_header = request_headers.get("range")
    if_range = request_headers.get("if-range")
    if range_header and (if_range is None or if_range in (etag, last_modified)):
        span = _parse_range(range_header, size)
        if span == "unsatisfiable":
            file.close()
            return {"status": 416, "headers": {"Content-Range": f"bytes */{size}"}}
        if span is not None:
            start, end = span
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            return {"status": 206, "headers": headers, "body": FileRange(file, start, end - start + 1)}
    return {"status": 200, "headers": headers, "body": file}


def _not_modified(headers: dict, etag: str, mtime: float) -> bool:
    """RFC 9110 §13.1.2-13.1.3 (If-None-Match wins over If-Modified-Since)."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or etag in tags
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = email.utils.parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError):
            return False
        return int(mtime) <= since
    return False


def _parse_range(header: str, size: int):
    """(start, end) inclusive, "unsatisfiable", or None to send the whole file."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # other units, or several ranges: the whole file (RFC 9110 §14.2)
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None  # malformed: ignore it
    if first == "":
        if last == "" or int(last) == 0:
            return "unsatisfiable"
        length = min(int(last), size)
        return (size - length, size - 1) if size else "unsatisfiable"
    start = int(first)
    if start >= size:
        return "unsatisfiable"
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return None
    return start, end
