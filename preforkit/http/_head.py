"""Request heads: find them in a byte buffer, parse and validate them.

``HeadParser.parse(buffer)`` is the whole contract: it returns
``(RequestHead, consumed)`` once a complete head is in ``buffer``, ``None``
while more bytes are needed, and raises only ``ProtocolError`` (whose
``status`` is the answer to send) for input it cannot accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .._accel import runs_compiled
from ._abnf import absolute_form_re, field_line_re, host_re, loose_version_re, request_line_re
from ._errors import ProtocolError
from ._memo import remember, seen_before

CHUNKED = "chunked"

# RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the
# request-line; we ignore a handful and no more.
MAX_LEADING_EMPTY_LINES = 8


@dataclass(frozen=True)
class HeadLimits:
    """Size limits on a request head, checked as bytes arrive."""

    max_request_line: int = 8190  # longer -> 414 URI Too Long
    max_fields: int = 100  # more -> 431
    max_field_size: int = 8190  # a longer field line -> 431
    max_body: int = 8 * 1024 * 1024  # Content-Length above it -> 413

    @property
    def max_head(self) -> int:
        return self.max_request_line + 2 + self.max_fields * (self.max_field_size + 2) + 2


class RequestHead(NamedTuple):
    """One parsed, validated request head (immutable: a named tuple, cheap to build)."""

    method: str
    target: str
    path: str
    query: str | None
    http_version: str
    fields: list[tuple[str, str]]  # (lower-case name, value) in order
    headers: dict[str, str]  # lower-case name -> value (repeated fields joined with ", ")
    host: str | None
    scheme: str | None  # from an absolute-form target, else None
    content_length: int | None
    chunked: bool
    keep_alive: bool
    expect_continue: bool
    upgrade: str | None  # lower-case Upgrade token when Connection lists "upgrade"

    @property
    def protocol(self) -> str:
        return "HTTP/" + self.http_version

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def __repr__(self) -> str:
        return f"<RequestHead {self.method} {self.target} HTTP/{self.http_version}>"


class HeadParser:
    """Finds and parses request heads in a receive buffer."""

    __slots__ = ("_known", "_max_head", "_sighted", "limits")

    def __init__(self, limits: HeadLimits | None = None) -> None:
        self.limits = limits or HeadLimits()
        self._max_head = self.limits.max_head
        self._known: dict[str, tuple] = {}  # heads parsed before (under these limits), by their text
        self._sighted: dict[str, None] = {}  # heads parsed once, not yet in _known

    def parse(self, buffer: bytes | bytearray) -> tuple[RequestHead, int] | None:
        """Parse the head at the start of ``buffer``.

        Returns the head and the number of bytes it used (the body, or the
        next pipelined request, starts there), or None if it is incomplete.
        """
        start = 0
        if buffer and buffer[0] == 13:  # a CR first: skip the empty lines some clients send before a request
            while buffer.startswith(b"\r\n", start) and start < 2 * MAX_LEADING_EMPTY_LINES:
                start += 2
        # Compiled, the search and the decoding below run in C (_c_head.pxd).
        end = _c_find_head_end(buffer, start) if WITH_C_HELPERS else buffer.find(b"\r\n\r\n", start)  # noqa: F821
        if end == -1:
            self._check_incomplete(buffer, start)
            return None
        if end - start > self._max_head:
            self._check_incomplete(buffer[: end + 2], start)
            raise ProtocolError("request head too large", 431)
        text = _c_latin1(buffer, start, end) if WITH_C_HELPERS else buffer[start:end].decode("latin-1")  # noqa: F821
        return _parse_remembered(self._known, self._sighted, text, self.limits), end + 4

    def _check_incomplete(self, buffer: bytes | bytearray, start: int) -> None:
        limits = self.limits
        # RFC 9112 §2.2: we accept CRLF line ends only; a head whose lines end
        # in a bare LF would otherwise wait for a CRLF CRLF that never comes.
        if buffer.count(b"\n", start) != buffer.count(b"\r\n", start):
            raise ProtocolError("bare LF line end in the request head")
        line_end = buffer.find(b"\r\n", start)
        if line_end == -1:
            if len(buffer) - start > limits.max_request_line:
                raise ProtocolError("request line too long", 414)
            return
        if line_end - start > limits.max_request_line:
            raise ProtocolError("request line too long", 414)
        if len(buffer) - start > self._max_head or buffer.count(b"\r\n", start) > limits.max_fields + 1:
            raise ProtocolError("request head too large", 431)
        # A single field line that is already over the limit fails early.
        last = buffer.rfind(b"\r\n", start)
        if len(buffer) - last - 2 > limits.max_field_size:
            raise ProtocolError("header field too large", 431)


def parse_head(text: str, limits: HeadLimits) -> RequestHead:
    """Parse a head (without its final empty line) decoded as latin-1."""
    return _new_head(RequestHead, _head_values(text, limits))  # the public call: no C helper needed


def _head_values(text: str, limits: HeadLimits) -> tuple:
    """``parse_head``'s result as a plain tuple (what the memo of heads keeps).

    Few calls on purpose: it runs for each head not seen before, and every
    call shows in the hot path (``benchmarks/hotpath_bench.py``).
    """
    split = None
    if WITH_C_HELPERS:  # compiled: the lines split and checked from C, or None to let the code below decide
        split = _c_split_head(text, limits.max_request_line, limits.max_fields, limits.max_field_size)  # noqa: F821
    if split is None:
        split = _split_head(text, limits)
    method, target, http_version, fields, headers, duplicate = split

    # Host (RFC 9112 §3.2): exactly one in HTTP/1.1, at most one in 1.0.
    if duplicate is not None:
        raise ProtocolError(f"more than one {_SINGLE_FIELDS[duplicate]} header")
    host = headers.get("host")
    if host is not None:
        if host not in _VALID_HOSTS:
            if not host_re.fullmatch(host):
                raise ProtocolError("invalid Host header")
            _remember(_VALID_HOSTS, host, True)
    elif http_version == "1.1":
        raise ProtocolError("HTTP/1.1 request without Host header")

    scheme = None
    # Request target forms (RFC 9112 §3.2.1-3.2.4); none of them has a fragment,
    # and an app could not tell a "#" from a "%23".
    if "#" in target:
        raise ProtocolError("fragment (#) in the request target")
    if target[0] == "/":
        path, question, query = target.partition("?")
        query_string = query if question else None
    elif target == "*":
        if method != "OPTIONS":
            raise ProtocolError("asterisk-form is only allowed with OPTIONS")
        path, query_string = "*", None
    elif method == "CONNECT":
        if not host_re.fullmatch(target):
            raise ProtocolError("malformed authority-form target")
        path, query_string = target, None
    else:
        absolute = absolute_form_re.fullmatch(target)
        if absolute is None or not host_re.fullmatch(absolute[2]):
            raise ProtocolError("malformed request target")
        scheme = absolute[1].lower()
        # RFC 9112 §3.2.2: the target's authority replaces the Host header.
        host = absolute[2]
        rest = absolute[3] or "/"
        if rest[0] != "/":
            rest = "/" + rest
        path, question, query = rest.partition("?")
        query_string = query if question else None

    # Message body framing (RFC 9112 §6.1-6.3).
    content_length = None
    chunked = False
    transfer_encoding = headers.get("transfer-encoding")
    raw_length = headers.get("content-length")
    if transfer_encoding is not None:
        if raw_length is not None:
            raise ProtocolError("both Content-Length and Transfer-Encoding")
        if http_version == "1.0":
            raise ProtocolError("Transfer-Encoding in an HTTP/1.0 request")
        codings = [c.strip().lower() for c in transfer_encoding.split(",")]
        codings = [c for c in codings if c]
        for coding in codings:
            if coding != CHUNKED:
                raise ProtocolError(f"transfer coding {coding!r} not implemented", 501)
        if codings != [CHUNKED]:
            raise ProtocolError("chunked must be the one and final transfer coding")
        chunked = True
    elif raw_length is not None:
        # Only one plain decimal value: no lists, no duplicates, no signs.
        if not raw_length.isdigit() or not raw_length.isascii() or len(raw_length) > 18:
            raise ProtocolError("invalid Content-Length")
        content_length = int(raw_length)
        if content_length > limits.max_body:
            raise ProtocolError("request body too large", 413)

    upgrade = None
    connection = headers.get("connection")
    if connection is None:
        keep_alive = http_version == "1.1"
    else:
        tokens = _CONNECTION_TOKENS.get(connection)
        if tokens is None:
            tokens = frozenset([t.strip().lower() for t in connection.split(",")])
            _remember(_CONNECTION_TOKENS, connection, tokens)
        if "close" in tokens:
            keep_alive = False
        elif http_version == "1.1":
            keep_alive = True
        else:
            keep_alive = "keep-alive" in tokens
        if "upgrade" in tokens and "upgrade" in headers:
            upgrade = headers["upgrade"].strip().lower()

    expect_continue = False
    expect = headers.get("expect")
    if expect is not None and http_version == "1.1":
        # RFC 9110 §10.1.1: 100-continue is the only expectation defined.
        if expect.strip().lower() != "100-continue":
            raise ProtocolError("unsupported expectation", 417)
        expect_continue = True

    return (
        method,
        target,
        path,
        query_string,
        http_version,
        fields,
        headers,
        host,
        scheme,
        content_length,
        chunked,
        keep_alive,
        expect_continue,
        upgrade,
    )


def _split_head(text: str, limits: HeadLimits) -> tuple:
    """(method, target, HTTP version, fields, headers, the name of a field that must
    appear once and came twice or None) of a head's text; raises ProtocolError
    for what the grammar or the limits refuse, in that order."""
    lines = text.split("\r\n")
    request_line = lines[0]
    if len(request_line) > limits.max_request_line:
        raise ProtocolError("request line too long", 414)
    parts = _REQUEST_LINES.get(request_line)
    if parts is None:
        match = request_line_re.fullmatch(request_line)
        if match is None:
            if loose_version_re.fullmatch(request_line):
                raise ProtocolError("HTTP version not supported", 505)
            raise ProtocolError("malformed request line")
        parts = match.groups()
        _remember(_REQUEST_LINES, request_line, parts)
    method, target, major, minor = parts
    if major != "1":
        raise ProtocolError("HTTP version not supported", 505)
    # RFC 9110 §2.5: a higher minor version is served as the highest we support.
    http_version = "1.0" if minor == "0" else "1.1"

    if len(lines) - 1 > limits.max_fields:
        raise ProtocolError("too many header fields", 431)
    fields: list[tuple[str, str]] = []
    headers: dict[str, str] = {}
    max_field_size = limits.max_field_size
    seen = _FIELD_CACHE
    duplicate = None  # a field that must appear at most once, seen twice
    for index in range(1, len(lines)):
        line = lines[index]
        if len(line) > max_field_size:
            raise ProtocolError("header field too large", 431)
        field = seen.get(line)
        if field is None:
            field = _parse_field_line(line)
        name, value = field
        fields.append(field)
        if name in headers:
            headers[name] = headers[name] + ", " + value
            if name in _SINGLE_FIELDS:
                duplicate = name
        else:
            headers[name] = value
    return method, target, http_version, fields, headers, duplicate


# Fields a request carries at most once: a proxy that takes the first and an
# app that takes the last would disagree (Host: RFC 9112 §3.2; Content-Type
# decides how the body is read).  Content-Length duplicates fail its own check.
_SINGLE_FIELDS = {"host": "Host", "content-type": "Content-Type"}

# Field lines seen before, checked: clients repeat the same Host, User-Agent
# and Accept lines on every request, and a hit skips the regex.
_FIELD_CACHE: dict[str, tuple[str, str]] = {}
_FIELD_CACHE_SIZE = 2048
_FIELD_CACHE_MAX_LINE = 256


# Likewise the request lines found well-formed (a client asks for the same targets
# again and again), the Host values found valid, and the tokens of each Connection value.
_REQUEST_LINES: dict[str, tuple[str, ...]] = {}
_VALID_HOSTS: dict[str, bool] = {}
_CONNECTION_TOKENS: dict[str, frozenset] = {}


# Whole heads seen before, parsed: a keep-alive client (a browser fetching the same
# resource, a poller, a health check, a load generator) sends the same head again and
# again.  Keyed by the exact text, so a head that differs in one byte is parsed afresh;
# kept from its second sighting on, so heads that come once cost no more than parsing.
_KNOWN_HEADS_SIZE = 256
_KNOWN_HEAD_MAX_LENGTH = 2048
_SIGHTED_HEADS_SIZE = 512


def _parse_remembered(known: dict, sighted: dict, text: str, limits: HeadLimits) -> RequestHead:
    """``parse_head(text, limits)``, from ``known`` when this exact head was parsed before.

    Each caller gets its own ``fields`` list and ``headers`` dict: an app may
    change those of its request, never the remembered ones.
    """
    values = known.get(text)  # a plain tuple: indexing a RequestHead goes through its class
    if values is None:
        values = _head_values(text, limits)
        if len(text) > _KNOWN_HEAD_MAX_LENGTH or not seen_before(sighted, text, _SIGHTED_HEADS_SIZE):
            # kept nowhere: the request may have these fields and headers
            return _c_new_head(RequestHead, values) if WITH_C_HELPERS else _new_head(RequestHead, values)  # noqa: F821
        remember(known, text, values, _KNOWN_HEADS_SIZE)
    fields = values[5]
    headers = values[6]
    copied = (
        values[0],
        values[1],
        values[2],
        values[3],
        values[4],
        fields[:],
        headers.copy(),
        values[7],
        values[8],
        values[9],
        values[10],
        values[11],
        values[12],
        values[13],
    )
    return _c_new_head(RequestHead, copied) if WITH_C_HELPERS else _new_head(RequestHead, copied)  # noqa: F821


def _parse_field_line(line: str) -> tuple[str, str]:
    """``(lower-case name, value)`` of one field line, remembered if short."""
    match = field_line_re.fullmatch(line)
    if match is None:
        raise ProtocolError("malformed header field")
    field = (match[1].lower(), match[2])
    _remember(_FIELD_CACHE, line, field)
    return field


def _remember(cache: dict, key: str, value) -> None:
    """Keep a checked result for a short key; a full cache starts again (bounded memory)."""
    if len(key) <= _FIELD_CACHE_MAX_LINE:
        remember(cache, key, value, _FIELD_CACHE_SIZE)


_new_head = tuple.__new__  # RequestHead's fields in order, without the keyword-argument constructor

# This module's compiled twin runs: its _c_head.pxd declares the C helpers (_c_find_head_end,
# _c_latin1, _c_split_head, _c_new_head), each giving what the Python lines beside its call give.
WITH_C_HELPERS = runs_compiled(parse_head)

from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
