"""Response heads and body framing (RFC 9112 §4, §6.3, §7).

``serialize_head`` turns a status and validated header list into bytes and
decides the framing; the caller writes the body accordingly.  Header names
and values from the application are validated here: a name that is not a
token or a value with CR, LF or NUL raises ``LocalProtocolError`` and nothing
is written.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus

from ._abnf import token_re
from ._errors import LocalProtocolError
from ._memo import remember

# How a response body is delimited on the wire.
NO_BODY = "none"  # HEAD, 1xx, 204, 304: no body bytes at all
LENGTH = "length"  # Content-Length
CHUNKED = "chunked"  # Transfer-Encoding: chunked (HTTP/1.1 only)
UNTIL_CLOSE = "close"  # HTTP/1.0 with unknown length: the close ends it

_STATUS_LINES: dict[tuple[str, int], bytes] = {}
_VALID_NAMES: set[str] = set()
_BAD_VALUE_CHARS = ("\r", "\n", "\0")
# Framing and connection management belong to the server, not the app.
_SERVER_FIELDS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


def status_line(status: int, http_version: str = "1.1") -> bytes:
    """``HTTP/1.1 200 OK\\r\\n`` (cached)."""
    if type(status) is not int:
        raise LocalProtocolError(f"invalid status {status!r}")
    key = (http_version, status)
    known = _STATUS_LINES
    line = known.get(key)
    if line is None:
        if not 100 <= status <= 999:
            raise LocalProtocolError(f"invalid status {status!r}")
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        line = f"HTTP/{http_version} {status} {reason}\r\n".encode("latin-1")
        remember(known, key, line, 2048)
    return line


class DateCache:
    """The ``Date`` field value (RFC 9110 §6.6.1), formatted once per second."""

    __slots__ = ("_line", "_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = ""
        self._line = b""

    def __call__(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._value = formatdate(now, usegmt=True)
            self._line = b"Date: " + self._value.encode("latin-1") + b"\r\n"
            self._second = second
        return self._value

    def line(self) -> bytes:
        """The whole ``Date`` header line, as bytes."""
        if int(_now()) != self._second:
            self()
        return self._line


_now = time.time  # a module global: cheaper to reach than time.time, once per response
http_date = DateCache()


def body_allowed(status: int, method: str) -> bool:
    """RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304."""
    return not (method == "HEAD" or status < 200 or status == 204 or status == 304)


def normalize_headers(headers: object) -> list[tuple[str, str]]:
    """Turn an app's ``headers`` (dict or pairs; list values repeat) into pairs.

    Raises ``LocalProtocolError`` for a name that is not a token or a value
    containing CR, LF or NUL.
    """
    if not headers:
        return []
    pairs: list[tuple[str, str]] = []
    try:
        for name, value in _items(headers):
            pairs.extend(_valid_pairs(name, value))
    except (TypeError, ValueError) as exc:
        raise LocalProtocolError(f"invalid headers {headers!r}") from exc
    return pairs


def _items(headers: object):
    return headers.items() if isinstance(headers, dict) else headers


def _valid_pairs(name: object, value: object) -> list[tuple[str, str]]:
    """``[(name, value)]`` checked (a list or tuple value gives one pair per item)."""
    if name not in _VALID_NAMES:
        if not isinstance(name, str) or not token_re.fullmatch(name):
            raise LocalProtocolError(f"invalid header name {name!r}")
        if len(_VALID_NAMES) < 4096:
            _VALID_NAMES.add(name)
    if isinstance(value, (list, tuple)):
        return [(name, _field_value(name, item)) for item in value]
    return [(name, _field_value(name, value))]


def _field_value(name: str, value: object) -> str:
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        elif isinstance(value, bytes):
            value = value.decode("latin-1")
        else:
            raise LocalProtocolError(f"invalid value for header {name}: {value!r}")
    for char in _BAD_VALUE_CHARS:
        if char in value:
            raise LocalProtocolError(f"header {name} has CR, LF or NUL in its value")
    return value


# Checked, encoded header lines by (name, value), for the str values apps send
# again and again ("Content-Type", "text/plain"): a hit skips validation and
# encoding.  Fields the server writes or inspects itself are never cached.
_LINE_CACHE: dict[tuple[str, str], bytes | object] = {}
_LINE_CACHE_SIZE = 1024
_LINE_CACHE_MAX_LINE = 128
_INSPECTED_FIELDS = _SERVER_FIELDS | {"date", "server"}
_CONTENT_LENGTH = object()  # the cache's mark for a checked Content-Length field (the server writes its own)


def serialize_head(
    status: int,
    headers: object,
    method: str,
    http_version: str,
    keep_alive: bool,
    body_length: int | None,
    server: str | None,
) -> tuple[bytes, str, bool, int | None]:
    """Serialise a response head and choose the body framing.

    ``headers`` is what an app gives (a dict or pairs, list values repeat, or
    None) and is checked here like ``normalize_headers`` does.
    ``body_length`` is the body size when known (None for a stream of unknown
    length).  An app's own Content-Length is kept only for a stream (where the
    server cannot know it) or for HEAD; Transfer-Encoding and Connection from
    the app are replaced by the server's own (``Connection: close`` from the
    app still closes the connection).

    Returns ``(head_bytes, framing, keep_alive, body_length)``, the length
    being the one the head announces (None when chunked or close-delimited).
    The arguments may be passed by position (the server does: it is cheaper).
    """
    lines = [status_line(status, "1.1")]
    app_length = None
    has_date = has_server = False
    if headers:
        cache = _LINE_CACHE
        try:
            for given_name, given_value in _items(headers):
                if type(given_value) is str:
                    line = cache.get((given_name, given_value))
                    if line is not None:
                        if line is _CONTENT_LENGTH:
                            app_length = given_value
                        else:
                            lines.append(line)
                        continue
                for name, value in _valid_pairs(given_name, given_value):
                    lower = name.lower()
                    if lower in _INSPECTED_FIELDS:
                        if lower == "content-length":
                            app_length = value
                            if type(given_value) is str and len(cache) < _LINE_CACHE_SIZE:
                                cache[name, value] = _CONTENT_LENGTH  # WSGI apps send one every time
                            continue
                        if lower == "connection":
                            keep_alive = keep_alive and "close" not in value.lower()
                            continue
                        if lower == "date":
                            has_date = True
                        elif lower == "server":
                            has_server = True
                        else:
                            continue  # Transfer-Encoding, Keep-Alive: the server's own
                        lines.append(f"{name}: {value}\r\n".encode("latin-1"))
                        continue
                    line = f"{name}: {value}\r\n".encode("latin-1")
                    lines.append(line)
                    if len(line) <= _LINE_CACHE_MAX_LINE:
                        remember(cache, (name, value), line, _LINE_CACHE_SIZE)
        except (TypeError, ValueError) as exc:
            raise LocalProtocolError(f"invalid headers {headers!r}") from exc

    if body_allowed(status, method):
        if body_length is None and app_length is not None and app_length.isdigit():
            body_length = int(app_length)
        if body_length is not None:
            framing = LENGTH
            length_lines = _LENGTH_LINES
            line = length_lines.get(body_length)
            if line is None:
                line = b"Content-Length: %d\r\n" % body_length
                remember(length_lines, body_length, line, _LENGTH_LINES_SIZE)
            lines.append(line)
        elif http_version == "1.1":
            framing = CHUNKED
            lines.append(b"Transfer-Encoding: chunked\r\n")
        else:
            framing = UNTIL_CLOSE
            keep_alive = False
    else:
        framing = NO_BODY
        if method == "HEAD" and status >= 200 and status not in (204, 304):
            # The app's own Content-Length wins: a HEAD answered without a body
            # announces the length the GET would have.
            length = app_length if app_length is not None else body_length
            if length is not None:
                lines.append(f"Content-Length: {length}\r\n".encode("latin-1"))

    if not has_date:
        lines.append(http_date.line())
    if server and not has_server:
        line = _SERVER_LINES.get(server)
        if line is None:
            line = _SERVER_LINES[server] = b"Server: " + server.encode("latin-1") + b"\r\n"
        lines.append(line)
    if not keep_alive:
        lines.append(b"Connection: close\r\n\r\n")
    elif http_version == "1.0":
        lines.append(b"Connection: keep-alive\r\n\r\n")
    else:
        lines.append(b"\r\n")
    return b"".join(lines), framing, keep_alive, body_length


_SERVER_LINES: dict[str, bytes] = {}
# The Content-Length lines of the body sizes seen lately (an app's responses are often the same size).
_LENGTH_LINES: dict[int, bytes] = {}
_LENGTH_LINES_SIZE = 1024


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (never the last one)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def error_response(status: int, message: str = "", server: str | None = None, headers=()) -> bytes:
    """A complete, closing response for a protocol error."""
    body = (message or HTTPStatus(status).phrase).encode("latin-1", "replace") + b"\n"
    pairs = [("Content-Type", "text/plain; charset=utf-8"), *headers]
    head, _, _, _ = serialize_head(
        status,
        pairs,
        method="GET",
        http_version="1.1",
        keep_alive=False,
        body_length=len(body),
        server=server,
    )
    return head + body


from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
