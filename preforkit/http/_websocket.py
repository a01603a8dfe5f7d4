"""WebSocket (RFC 6455) handshake and frames, with permessage-deflate (RFC 7692).

Sans-I/O like the rest of this package: ``FrameDecoder.feed(bytes)`` returns
the events found so far; ``encode_frame`` returns bytes.  Every failure the
peer causes raises ``WebSocketError`` carrying the close code to send (1002
protocol error by default, 1007 invalid UTF-8, 1009 too big).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import struct
import zlib

from ._errors import ProtocolError

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DATA_OPCODES = (CONTINUATION, TEXT, BINARY)
CONTROL_OPCODES = (CLOSE, PING, PONG)

# RFC 6455 §7.4.1: codes an endpoint may send in a close frame.
_VALID_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


class WebSocketError(Exception):
    """The peer broke the protocol; close the connection with ``code``."""

    def __init__(self, message: str, code: int = 1002) -> None:
        super().__init__(message)
        self.code = code


# -- handshake (RFC 6455 §4.2) ---------------------------------------------------


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode("ascii")).digest()).decode("ascii")


def _tokens(value: str | None) -> set[str]:
    return {token.strip().lower() for token in value.split(",")} if value else set()


def check_handshake(method: str, http_version: str, headers: dict) -> str:
    """Validate an opening handshake; return the ``Sec-WebSocket-Accept`` value.

    Raises ``ProtocolError``: 400 for a malformed request, 426 (with the
    version we speak, to be sent as ``Sec-WebSocket-Version: 13``) for an
    unsupported version.
    """
    if method != "GET":
        raise ProtocolError("WebSocket handshake must be GET")
    if http_version != "1.1":
        raise ProtocolError("WebSocket handshake needs HTTP/1.1")
    if "websocket" not in _tokens(headers.get("upgrade")):
        raise ProtocolError("missing Upgrade: websocket")
    if "upgrade" not in _tokens(headers.get("connection")):
        raise ProtocolError("missing Connection: upgrade")
    version = headers.get("sec-websocket-version")
    if version is None or version.strip() != "13":
        raise ProtocolError("unsupported WebSocket version", 426)
    key = headers.get("sec-websocket-key")
    if key is None:
        raise ProtocolError("missing Sec-WebSocket-Key")
    key = key.strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise ProtocolError("malformed Sec-WebSocket-Key")
    return accept_key(key)


def handshake_response(accept: str, subprotocol: str | None, extensions: str | None) -> bytes:
    """The ``101 Switching Protocols`` response completing the handshake."""
    lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"]
    lines.append(f"Sec-WebSocket-Accept: {accept}")
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def choose_subprotocol(headers: dict, supported) -> str | None:
    """The first subprotocol the client offers that we support (RFC 6455 §4.2.2)."""
    if not supported:
        return None
    for offered in headers.get("sec-websocket-protocol", "").split(","):
        offered = offered.strip()
        if offered in supported:
            return offered
    return None


# -- permessage-deflate (RFC 7692) -------------------------------------------------


class PerMessageDeflate:
    """Negotiated permessage-deflate parameters, and the (de)compressors."""

    def __init__(
        self,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int = 15,
        client_max_window_bits: int = 15,
    ) -> None:
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self._compressor = None
        self._decompressor = None
        self.response = ""  # the Sec-WebSocket-Extensions value we answer with

    def compress(self, data: bytes) -> bytes:
        if self._compressor is None or self.server_no_context_takeover:
            self._compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.server_max_window_bits)
        out = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out

    def decompress(self, data: bytes, max_size: int) -> bytes:
        if self._decompressor is None or self.client_no_context_takeover:
            self._decompressor = zlib.decompressobj(-self.client_max_window_bits)
        try:
            out = self._decompressor.decompress(data + b"\x00\x00\xff\xff", max_size + 1)
        except zlib.error as exc:
            raise WebSocketError(f"invalid compressed data: {exc}", 1007) from None
        if len(out) > max_size or self._decompressor.unconsumed_tail:
            raise WebSocketError("message too big", 1009)
        return out


def negotiate_deflate(header: str | None) -> PerMessageDeflate | None:
    """Accept the first valid permessage-deflate offer, or None.

    Offers with unknown or repeated parameters, or invalid values, are
    declined (RFC 7692 §5.1); so is ``server_max_window_bits=8``, which zlib
    cannot honour for raw deflate.
    """
    if not header:
        return None
    for offer in header.split(","):
        name, *params = [part.strip() for part in offer.split(";")]
        if name.lower() != "permessage-deflate":
            continue
        accepted = _accept_offer(params)
        if accepted is not None:
            return accepted
    return None


def _accept_offer(params: list[str]) -> PerMessageDeflate | None:
    seen: dict[str, str | None] = {}
    for param in params:
        if not param:
            return None
        key, eq, value = param.partition("=")
        key = key.strip().lower()
        value = value.strip().strip('"') if eq else None
        if key in seen:
            return None
        seen[key] = value
    deflate = PerMessageDeflate()
    answer = ["permessage-deflate"]
    for key, value in seen.items():
        if key == "server_no_context_takeover":
            if value is not None:
                return None
            deflate.server_no_context_takeover = True
            answer.append(key)
        elif key == "client_no_context_takeover":
            if value is not None:
                return None
            deflate.client_no_context_takeover = True
            answer.append(key)
        elif key == "server_max_window_bits":
            if value is None or not value.isdigit() or not 9 <= int(value) <= 15:
                return None
            deflate.server_max_window_bits = int(value)
            answer.append(f"{key}={value}")
        elif key == "client_max_window_bits":
            if value is not None:
                if not value.isdigit() or not 8 <= int(value) <= 15:
                    return None
                # We decompress with a window at least as large as theirs.
                deflate.client_max_window_bits = max(int(value), 9)
                answer.append(f"{key}={deflate.client_max_window_bits}")
        else:
            return None
    deflate.response = "; ".join(answer)
    return deflate


# -- frames (RFC 6455 §5) -------------------------------------------------------------


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
