"""WebSocket (RFC 6455) frames: the decoder of client frames and the encoders of ours.

The handshake is in ``_ws_handshake.py``, permessage-deflate (RFC 7692) in ``_ws_deflate.py``.

Sans-I/O like the rest of this package: ``FrameDecoder.feed(bytes)`` returns
the events found so far; ``encode_frame`` returns bytes.  Every failure the
peer causes raises ``WebSocketError`` carrying the close code to send (1002
protocol error by default, 1007 invalid UTF-8, 1009 too big).
"""

from __future__ import annotations

import codecs
import struct
from typing import TYPE_CHECKING

from ._errors import WebSocketError

if TYPE_CHECKING:
    from ._ws_deflate import PerMessageDeflate

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DATA_OPCODES = (CONTINUATION, TEXT, BINARY)
CONTROL_OPCODES = (CLOSE, PING, PONG)

# RFC 6455 §7.4.1: codes an endpoint may send in a close frame.
_VALID_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def unmask_python(data, mask: bytes) -> bytes:
    """XOR ``data`` (any bytes-like object) with the 4-byte ``mask``: one
    big-integer operation, no per-byte loop."""
    length = len(data)
    if length == 0:
        return b""
    key = (mask * (length // 4 + 1))[:length]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(length, "little")


try:  # the websockets project's C loop: 20x faster than the big-integer XOR at 1 KB
    from websockets.speedups import apply_mask as unmask
except ImportError:  # pragma: no cover - websockets is a dependency; its C part may be missing
    unmask = unmask_python


def encode_frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    """A server frame (unmasked)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    length = len(payload)
    if length < 126:
        return struct.pack("!BB", first, length) + payload
    if length < 65536:
        return struct.pack("!BBH", first, 126, length) + payload
    return struct.pack("!BBQ", first, 127, length) + payload


def encode_close(code: int = 1000, reason: str = "") -> bytes:
    payload = struct.pack("!H", code) + reason.encode("utf-8")[:123] if code else b""
    return encode_frame(CLOSE, payload)


class Message:
    """A complete data message: ``str`` for text, ``bytes`` for binary."""

    __slots__ = ("data",)

    def __init__(self, data) -> None:
        self.data = data


class Ping:
    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class Pong:
    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class Close:
    """The peer's close frame: ``code`` (1005 when it sent none) and ``reason``."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class FrameDecoder:
    """Turns client bytes into ``Message``/``Ping``/``Pong``/``Close`` events."""

    def __init__(self, max_message: int = 4 * 1024 * 1024, deflate: PerMessageDeflate | None = None) -> None:
        self.max_message = max_message
        self.deflate = deflate
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_size = 0
        self._message_opcode: int | None = None  # opcode of the message being assembled
        self._compressed = False
        self._utf8 = None  # incremental decoder while a text message is fragmented

    def feed(self, data: bytes) -> list:
        """Add bytes; return the complete events (raises ``WebSocketError``)."""
        buffer = self._buffer
        buffer += data
        events = []
        while True:
            frame = self._next_frame(buffer)
            if frame is None:
                return events
            event = self._handle(*frame)
            if event is not None:
                events.append(event)
                if type(event) is Close:
                    return events

    def _next_frame(self, buffer: bytearray):
        if len(buffer) < 2:
            return None
        first, second = buffer[0], buffer[1]
        fin = first & 0x80
        rsv = first & 0x70
        opcode = first & 0x0F
        if not second & 0x80:
            raise WebSocketError("client frames must be masked")
        length = second & 0x7F
        offset = 2
        if length == 126:
            if len(buffer) < 4:
                return None
            length = struct.unpack_from("!H", buffer, 2)[0]
            offset = 4
        elif length == 127:
            if len(buffer) < 10:
                return None
            length = struct.unpack_from("!Q", buffer, 2)[0]
            if length >> 63:
                raise WebSocketError("invalid 64-bit frame length")
            offset = 10
        if opcode in CONTROL_OPCODES:
            if length > 125:
                raise WebSocketError("control frame longer than 125 bytes")
            if not fin:
                raise WebSocketError("fragmented control frame")
        elif opcode not in DATA_OPCODES:
            raise WebSocketError(f"reserved opcode {opcode:#x}")
        if rsv and not (rsv == 0x40 and self.deflate is not None and opcode in (TEXT, BINARY)):
            raise WebSocketError("reserved bits set")
        if opcode in DATA_OPCODES and self._fragment_size + length > self._limit():
            raise WebSocketError("message too big", 1009)
        if len(buffer) < offset + 4 + length:
            return None
        end = offset + 4 + length
        mask = bytes(buffer[offset : offset + 4])
        with memoryview(buffer) as view:  # unmasked straight from the buffer, no copy first
            payload = unmask(view[offset + 4 : end], mask)
        del buffer[:end]
        return fin, bool(rsv), opcode, payload

    def _limit(self) -> int:
        # Compressed frames are checked again after inflating; incompressible
        # data grows a little when deflated, hence the slack.
        return self.max_message if self.deflate is None else self.max_message + self.max_message // 64 + 1024

    def _handle(self, fin, rsv1: bool, opcode: int, payload: bytes):
        if opcode == PING:
            return Ping(payload)
        if opcode == PONG:
            return Pong(payload)
        if opcode == CLOSE:
            return _parse_close(payload)
        if opcode == CONTINUATION:
            if self._message_opcode is None:
                raise WebSocketError("continuation frame without a message to continue")
        else:
            if self._message_opcode is not None:
                raise WebSocketError("new data frame while a fragmented message is open")
            self._message_opcode = opcode
            self._compressed = rsv1
        text = self._message_opcode == TEXT
        if text and not self._compressed:
            if fin and not self._fragments:
                self._reset()
                return Message(_decode_utf8(payload))
            if self._utf8 is None:
                self._utf8 = codecs.getincrementaldecoder("utf-8")()
            try:
                self._utf8.decode(payload, final=bool(fin))  # fail early, even mid-code point
            except UnicodeDecodeError:
                raise WebSocketError("invalid UTF-8 in a text message", 1007) from None
        self._fragments.append(payload)
        self._fragment_size += len(payload)
        if not fin:
            return None
        data = b"".join(self._fragments) if len(self._fragments) > 1 else self._fragments[0]
        compressed = self._compressed
        self._reset()
        if compressed:
            data = self.deflate.decompress(data, self.max_message)
            return Message(_decode_utf8(data) if text else data)
        return Message(data.decode("utf-8") if text else data)

    def _reset(self) -> None:
        self._fragments = []
        self._fragment_size = 0
        self._message_opcode = None
        self._compressed = False
        self._utf8 = None


def _decode_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise WebSocketError("invalid UTF-8 in a text message", 1007) from None


def _parse_close(payload: bytes) -> Close:
    if not payload:
        return Close(1005, "")
    if len(payload) == 1:
        raise WebSocketError("close frame with a 1-byte payload")
    code = struct.unpack_from("!H", payload)[0]
    if not (code in _VALID_CLOSE_CODES or 3000 <= code <= 4999):
        raise WebSocketError(f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise WebSocketError("invalid UTF-8 in the close reason", 1007) from None
    return Close(code, reason)


from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
