"""Sans-I/O HTTP/1.1: parse requests from bytes, serialise responses to bytes.

Nothing here touches a socket, a greenlet or a process.
"""

from ._body import ChunkedReader, ContentLengthReader, body_reader
from ._errors import LocalProtocolError, ProtocolError
from ._head import HeadLimits, HeadParser, RequestHead, parse_head
from ._response import (
    CHUNKED,
    CONTINUE,
    LAST_CHUNK,
    LENGTH,
    NO_BODY,
    UNTIL_CLOSE,
    body_allowed,
    chunk,
    error_response,
    http_date,
    normalize_headers,
    serialize_head,
    status_line,
)

__all__ = [
    "CHUNKED",
    "CONTINUE",
    "LAST_CHUNK",
    "LENGTH",
    "NO_BODY",
    "UNTIL_CLOSE",
    "ChunkedReader",
    "ContentLengthReader",
    "HeadLimits",
    "HeadParser",
    "LocalProtocolError",
    "ProtocolError",
    "RequestHead",
    "body_allowed",
    "body_reader",
    "chunk",
    "error_response",
    "http_date",
    "normalize_headers",
    "parse_head",
    "serialize_head",
    "status_line",
]
