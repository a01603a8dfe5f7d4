"""Serving WSGI (PEP 3333) applications.

The connection builds the environ straight from the parsed request head
(``ConnectionEnvirons.make``); ``WSGIAdapter`` calls the app and turns what it returns
into a response the connection writes like any other: the app's iterable is
streamed (chunked on HTTP/1.1 when the app sets no Content-Length), a
``wsgi.file_wrapper`` result is sent with sendfile, and the iterable's
``close()`` is always called — after the last byte, on an error, and when the
client disconnects mid-stream.
"""

from __future__ import annotations

import sys
from urllib.parse import unquote_to_bytes

from .. import __version__
from ..http._memo import remember, seen_before

SERVER_SOFTWARE = f"preforkit/{__version__}"


class FileWrapper:
    """``wsgi.file_wrapper``: a file the server sends with sendfile when it can."""

    __slots__ = ("blksize", "file")

    def __init__(self, file, blksize: int = 65536) -> None:
        self.file = file
        self.blksize = blksize

    def __iter__(self):
        while True:
            data = self.file.read(self.blksize)
            if not data:
                return
            yield data

    def close(self) -> None:
        close = getattr(self.file, "close", None)
        if close is not None:
            close()


class WSGIAdapter:
    """Calls ``app(environ, start_response)`` and returns a response dict."""

    __slots__ = ("app",)

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ: dict) -> dict:
        start_response = _StartResponse()
        result = self.app(environ, start_response)
        taker = environ.get("preforkit.as_channel")
        channel = taker.channel if type(taker) is _ChannelTaker else None
        if channel is not None:  # the view took the connection over as a channel
            _close(result)
            return channel
        if type(result) is list and start_response.status is not None and not start_response.written:
            # The usual app: start_response called, then a list of bytes.  One
            # bytes body is written with its head in one send, no stream.
            try:
                body = result[0] if len(result) == 1 else b"".join(result)
            except TypeError:
                body = None  # not all bytes: the stream path below says what is wrong
            if type(body) is bytes:
                start_response.sent = True
                return {"status": _status_code(start_response.status), "headers": start_response.headers, "body": body}
        written = start_response.written
        try:
            iterator = iter(result) if not isinstance(result, FileWrapper) else None
            first = []
            if iterator is not None and not written:
                # A generator app calls start_response on its first step.
                for piece in iterator:
                    if piece or start_response.status is not None:
                        first.append(piece)
                        break
            if start_response.status is None:
                raise RuntimeError("the WSGI application did not call start_response")
            status = _status_code(start_response.status)
            headers = start_response.headers
        except BaseException:
            _close(result)
            raise
        start_response.sent = True
        if isinstance(result, FileWrapper) and not written and hasattr(result.file, "fileno"):
            return {"status": status, "headers": headers, "body": result.file}
        if iterator is None:
            iterator = iter(result)
        return {"status": status, "headers": headers, "body": _Body(written, first, iterator, result)}


class _StartResponse:
    """The ``start_response`` callable of one request (PEP 3333), and what it was given."""

    __slots__ = ("headers", "sent", "status", "written")

    def __init__(self) -> None:
        self.status = None  # the status line, once called
        self.headers = None
        self.written: list[bytes] = []  # what the app passed to write()
        self.sent = False  # the head is on its way: exc_info can no longer replace it

    def __call__(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.written or self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        self.status = status
        self.headers = headers
        return self.written.append


def _status_code(status: str) -> int:
    codes = _STATUS_CODES
    code = codes.get(status) if type(status) is str else None
    if code is not None:
        return code
    text = status.split(" ", 1)[0] if isinstance(status, str) else ""
    if len(text) != 3 or not text.isdigit():
        raise RuntimeError(f"invalid WSGI status {status!r}")
    code = int(text)
    remember(codes, status, code, 1024)
    return code


_STATUS_CODES: dict[str, int] = {}  # "200 OK" -> 200, as apps send them
_ENVIRON_KEYS: dict[str, str] = {}  # "user-agent" -> "HTTP_USER_AGENT"; "" for a name left out


def _environ_key(name: str) -> str:
    """The environ key for a (lower-case) header name, remembered; "" for none."""
    if name == "content-type":
        key = "CONTENT_TYPE"
    elif name == "content-length":
        key = "CONTENT_LENGTH"
    elif "_" in name:
        key = ""  # "x_forwarded_for" must not pose as "x-forwarded-for" (a spoofing vector)
    else:
        key = "HTTP_" + name.upper().replace("-", "_")
    remember(_ENVIRON_KEYS, name, key, 1024)
    return key


class _Body:
    """The response body: what write() wrote, then the app's iterable.

    ``close()`` closes the app's result, as PEP 3333 requires.
    """

    __slots__ = ("_first", "_iterator", "_result", "_written")

    def __init__(self, written: list, first: list, iterator, result) -> None:
        self._written = written
        self._first = first
        self._iterator = iterator
        self._result = result

    def __iter__(self):
        yield from self._written
        yield from self._first
        yield from self._iterator

    def close(self) -> None:
        _close(self._result)


class _ChannelTaker:
    """``environ["preforkit.as_channel"](on_open=..., on_receive=..., ...)``.

    Lets a WSGI view take the connection over as a WebSocket or stream
    channel; whatever the view then returns is closed and ignored.  An
    object rather than a closure over the environ: that would make every
    environ a reference cycle, left for the cyclic garbage collector.
    """

    __slots__ = ("channel", "websocket")

    def __init__(self, websocket: bool) -> None:
        self.websocket = websocket
        self.channel = None

    def __call__(self, **callbacks):
        from ._channel import as_channel as make

        self.channel = make({"websocket": self.websocket}, **callbacks)
        return self.channel


def _channel_taker(websocket: bool) -> _ChannelTaker:
    """``_ChannelTaker(websocket)``; compiled, without a call through the type (one per request)."""
    taker = _ChannelTaker.__new__(_ChannelTaker)
    taker.websocket = websocket
    taker.channel = None
    return taker


class _NoInput:
    """``wsgi.input`` of a request without a body: always at its end.

    One for every such request: it has no state, so an app that closes it
    or reads it to the end changes nothing for the next request.
    """

    __slots__ = ()
    closed = False

    def read(self, size: int | None = -1) -> bytes:
        return b""

    read1 = readline = read

    def readinto(self, buffer) -> int:
        return 0

    def readlines(self, hint: int = -1) -> list[bytes]:
        return []

    def __iter__(self):
        return iter(())

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        pass


NO_INPUT = _NoInput()


def _close(result) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


# The entries _fill_environ sets on every request: base_environ gives them a place
# (None) so that each environ, a copy, never grows its table for them.
_PER_REQUEST = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "RAW_URI",
    "SERVER_NAME",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "wsgi.url_scheme",
    "wsgi.input",
    "preforkit.websocket",
    "preforkit.as_channel",
)


def base_environ(remote_port: str, server_port: str, multiprocess: bool) -> dict:
    """The environ entries that are the same for every request on a connection
    (and a place for those ``_fill_environ`` sets on each); by position: cheaper."""
    base = _BASE.copy()  # a copy of a whole table: cheaper than building one per connection
    base["SERVER_PORT"] = server_port
    base["REMOTE_PORT"] = remote_port
    base["wsgi.errors"] = sys.stderr  # the current one: an app or a test may have replaced it
    base["wsgi.multiprocess"] = multiprocess
    return base


_BASE = {
    "SERVER_PORT": "",
    "REMOTE_PORT": "",
    "wsgi.version": (1, 0),
    "wsgi.errors": None,
    "SERVER_SOFTWARE": SERVER_SOFTWARE,
    # Greenlets run requests concurrently in one process, as threads would.
    "wsgi.multithread": True,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
    "wsgi.input_terminated": True,
    "wsgi.file_wrapper": FileWrapper,
    **dict.fromkeys(_PER_REQUEST),
}


def _fill_environ(environ: dict, head, body, remote_addr: str, server_name: str, scheme: str, root_path: str) -> dict:
    """The PEP 3333 environ for a parsed request head, filled into ``environ`` (from ``base_environ``)."""
    path = head.path
    try:
        path_info = unquote_to_bytes(path).decode("latin-1") if "%" in path else path
    except ValueError:
        path_info = path
    script_name = root_path
    if root_path and (path_info == root_path or path_info.startswith(root_path + "/")):
        path_info = path_info[len(root_path) :]
    environ["REQUEST_METHOD"] = head.method
    environ["SCRIPT_NAME"] = script_name
    environ["PATH_INFO"] = path_info
    environ["QUERY_STRING"] = head.query or ""
    environ["RAW_URI"] = head.target
    environ["SERVER_NAME"] = server_name
    environ["SERVER_PROTOCOL"] = "HTTP/1.1" if head.http_version == "1.1" else "HTTP/1.0"
    environ["REMOTE_ADDR"] = remote_addr
    environ["wsgi.url_scheme"] = scheme
    environ["wsgi.input"] = body if body is not None else NO_INPUT
    websocket = head.upgrade == "websocket"
    environ["preforkit.websocket"] = websocket
    environ["preforkit.as_channel"] = _channel_taker(websocket)
    keys = _ENVIRON_KEYS
    for name, value in head.headers.items():  # repeated fields already joined with ", "
        key = keys.get(name)
        if key is None:
            key = _environ_key(name)
        if key:
            environ[key] = value
    return environ


# Environs made before, for the whole worker: target -> (what the environ was made from
# but its connection's own entries, the environ).  A client sending the same head again,
# on its connection or a new one (a poller, a health check, a browser fetching one
# resource, a load generator), gets a copy instead of an environ built afresh; an idle
# connection keeps nothing.  One per target: another head for it replaces the one kept.
# Kept from a target's second sighting on (as the parser keeps heads), so targets asked
# for once cost no copy, and the environ kept shares its fields with the parser's memo.
_KNOWN_ENVIRONS: dict[str, tuple] = {}
_KNOWN_ENVIRONS_SIZE = 256
_SIGHTED_TARGETS: dict[str, None] = {}
_SIGHTED_TARGETS_SIZE = 512


class ConnectionEnvirons:
    """The WSGI environs of one connection: its own entries, and the environs the
    worker made before for the same head (each request gets a copy of its own)."""

    __slots__ = ("_listener_host", "_multiprocess", "_remote_port", "_root_path", "_server_port")

    def __init__(
        self, *, remote_port, server_port, listener_host: str, root_path: str = "", multiprocess: bool = True
    ) -> None:
        self._remote_port = str(remote_port or "")
        self._server_port = str(server_port or "")
        self._listener_host = listener_host  # SERVER_NAME when a request has no Host
        self._root_path = root_path  # SCRIPT_NAME: the app's mount point (config.root_path)
        self._multiprocess = multiprocess

    def make(self, head, body, remote_addr: str, scheme: str) -> dict:
        """The PEP 3333 environ for ``head``.

        Everything in it but the entries set on a copy follows from the target
        and ``made``: the path, query, Host, upgrade and framing from the target
        and fields, ``SERVER_NAME`` from them and the listener.
        """
        target = head.target
        listener_host = self._listener_host
        root_path = self._root_path
        fields = head.fields
        made = (fields, head.method, head.http_version, listener_host, root_path, self._multiprocess, sys.stderr)
        cache = _KNOWN_ENVIRONS
        known = cache.get(target)
        if known is not None and known[0] == made:
            if fields and known[0][0][0] is not fields[0]:
                # Equal, field by field, but from another parse (made before the parser kept this
                # head): keep this request's, which share the parser's, so the next check is by identity.
                cache[target] = (made, known[1])
            environ = known[1].copy()
            environ["REMOTE_ADDR"] = remote_addr
            environ["REMOTE_PORT"] = self._remote_port
            environ["SERVER_PORT"] = self._server_port
            environ["wsgi.url_scheme"] = scheme
            environ["wsgi.input"] = body if body is not None else NO_INPUT
            environ["preforkit.as_channel"] = _channel_taker(environ["preforkit.websocket"])
            return environ
        base = base_environ(self._remote_port, self._server_port, self._multiprocess)
        environ = _fill_environ(base, head, body, remote_addr, server_name(head.host, listener_host), scheme, root_path)
        if known is None and not seen_before(_SIGHTED_TARGETS, target, _SIGHTED_TARGETS_SIZE):
            return environ
        # Kept also for a request that closes its connection: the next connection may send the same head.
        kept = environ.copy()
        kept["wsgi.input"] = None  # no reference to this request's body or channel
        kept["preforkit.as_channel"] = None
        # fields: this request's own list (parsers hand out copies); nothing changes it on the WSGI path
        remember(cache, target, (made, kept), _KNOWN_ENVIRONS_SIZE)
        return environ


def server_name(host: str | None, listener_host: str) -> str:
    """The host part of the request's Host (an IPv6 literal keeps its brackets), else the listener's."""
    if not host:
        return listener_host
    name = _SERVER_NAMES.get(host)
    if name is None:
        name = host[: host.index("]") + 1] if host[0] == "[" else host.partition(":")[0]
        remember(_SERVER_NAMES, host, name, 256)
    return name


_SERVER_NAMES: dict[str, str] = {}  # Host value -> its host part


from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
