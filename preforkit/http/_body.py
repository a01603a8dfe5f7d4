"""Request body readers, chosen by framing (RFC 9112 §6).

A reader consumes bytes from the front of a ``bytearray`` receive buffer and
returns body data.  ``read(buffer, limit)`` returns ``b""`` when it needs more
input (or is done: check ``done``); it never blocks and raises only
``ProtocolError``.  Whatever follows the body is left in the buffer.
"""

from __future__ import annotations

from ._abnf import chunk_line_re, field_line_re
from ._errors import ProtocolError

# RFC 9110 §6.5.1: fields that must not be sent in a trailer section.
FORBIDDEN_TRAILERS = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "host",
        "content-type",
        "content-encoding",
        "content-range",
        "trailer",
        "te",
        "expect",
        "connection",
        "authorization",
        "cookie",
        "set-cookie",
    }
)

MAX_CHUNK_LINE = 4096
MAX_TRAILER_SECTION = 16 * 1024


class ContentLengthReader:
    """A body of exactly ``length`` bytes."""

    __slots__ = ("done", "remaining")

    def __init__(self, length: int) -> None:
        self.remaining = length
        self.done = length == 0

    def read(self, buffer: bytearray, limit: int = -1) -> bytes:
        take = min(len(buffer), self.remaining)
        if 0 <= limit < take:
            take = limit
        if take == 0:
            return b""
        if take == len(buffer):  # the usual case: the buffer holds just body bytes
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:take])
            del buffer[:take]
        self.remaining -= take
        self.done = self.remaining == 0
        return data


_SIZE, _DATA, _DATA_END, _TRAILERS, _DONE = range(5)


class ChunkedReader:
    """A chunked body (RFC 9112 §7.1), counting against ``max_body``."""

    __slots__ = ("_chunk_left", "_state", "done", "max_body", "received", "trailers")

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.received = 0
        self.trailers: list[tuple[str, str]] = []
        self.done = False
        self._state = _SIZE
        self._chunk_left = 0

    @property
    def remaining(self) -> int | None:
        return 0 if self.done else None

    def read(self, buffer: bytearray, limit: int = -1) -> bytes:
        while True:
            state = self._state
            if state == _DATA:
                take = min(len(buffer), self._chunk_left)
                if 0 <= limit < take:
                    take = limit
                if take == 0:
                    return b""
                data = bytes(buffer[:take])
                del buffer[:take]
                self._chunk_left -= take
                if self._chunk_left == 0:
                    self._state = _DATA_END
                return data
            if state == _SIZE:
                if not self._read_size_line(buffer):
                    return b""
            elif state == _DATA_END:
                if len(buffer) < 2:
                    return b""
                if buffer[:2] != b"\r\n":
                    raise ProtocolError("chunk data not followed by CRLF")
                del buffer[:2]
                self._state = _SIZE
            elif state == _TRAILERS:
                if not self._read_trailers(buffer):
                    return b""
            else:
                return b""

    def _read_size_line(self, buffer: bytearray) -> bool:
        end = buffer.find(b"\r\n")
        if end == -1:
            if len(buffer) > MAX_CHUNK_LINE:
                raise ProtocolError("chunk size line too long")
            return False
        line = bytes(buffer[:end]).decode("latin-1")
        match = chunk_line_re.fullmatch(line)
        if match is None:
            raise ProtocolError("malformed chunk size line")
        size = int(match[1], 16)
        del buffer[: end + 2]
        self.received += size
        if self.received > self.max_body:
            raise ProtocolError("request body too large", 413)
        if size == 0:
            self._state = _TRAILERS
        else:
            self._chunk_left = size
            self._state = _DATA
        return True

    def _read_trailers(self, buffer: bytearray) -> bool:
        if buffer[:2] == b"\r\n":
            del buffer[:2]
            self._finish()
            return True
        end = buffer.find(b"\r\n\r\n")
        if end == -1:
            if len(buffer) > MAX_TRAILER_SECTION:
                raise ProtocolError("trailer section too large", 431)
            return False
        if end > MAX_TRAILER_SECTION:
            raise ProtocolError("trailer section too large", 431)
        text = bytes(buffer[:end]).decode("latin-1")
        del buffer[: end + 4]
        for line in text.split("\r\n"):
            field = field_line_re.fullmatch(line)
            if field is None:
                raise ProtocolError("malformed trailer field")
            name = field[1].lower()
            if name in FORBIDDEN_TRAILERS:
                raise ProtocolError(f"{name} is not allowed in a trailer")
            self.trailers.append((name, field[2]))
        self._finish()
        return True

    def _finish(self) -> None:
        self._state = _DONE
        self.done = True


def body_reader(content_length: int | None, chunked: bool, max_body: int):
    """The reader for a request's framing, or None when it has no body."""
    if chunked:
        return ChunkedReader(max_body)
    if content_length:
        return ContentLengthReader(content_length)
    return None


from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
