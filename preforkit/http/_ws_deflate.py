"""permessage-deflate (RFC 7692): negotiating the extension, compressing and decompressing messages."""

from __future__ import annotations

import zlib

from ._errors import WebSocketError

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
