"""The PROXY protocol header (HAProxy's spec, versions 1 and 2), sans-I/O.

A load balancer (HAProxy ``send-proxy``/``send-proxy-v2``, AWS NLB, ...)
prepends it to the connection to say who the client is.  ``parse`` takes the
bytes read so far and returns the header and how many bytes it used, or None
while more are needed; anything that is not a well-formed header raises
``ProtocolError`` and the connection is closed.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

from ._errors import ProtocolError

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V2_HEAD = struct.Struct("!12sBBH")
_ADDRESSES = {  # v2 family byte -> (address bytes, struct, ip version)
    0x11: (12, struct.Struct("!4s4sHH"), 4),  # TCP over IPv4
    0x12: (12, struct.Struct("!4s4sHH"), 4),  # UDP over IPv4
    0x21: (36, struct.Struct("!16s16sHH"), 6),  # TCP over IPv6
    0x22: (36, struct.Struct("!16s16sHH"), 6),  # UDP over IPv6
}
PP2_TYPE_SSL = 0x20
PP2_CLIENT_SSL = 0x01


class ProxyHeader(NamedTuple):
    """Who the client is: ``client`` (address, port), or None to keep the peer's own
    (v1 ``UNKNOWN``, v2 ``LOCAL``: the balancer's health checks); ``tls`` from v2's SSL TLV."""

    version: int
    client: tuple[str, int] | None
    tls: bool | None = None


def parse(data: bytes | bytearray) -> tuple[ProxyHeader, int] | None:
    """The header at the start of ``data`` and its length, or None if more bytes are needed."""
    if data[:6] == V1_PREFIX:
        return _parse_v1(data)
    if data[:12] == V2_SIGNATURE:
        return _parse_v2(data)
    if V1_PREFIX.startswith(bytes(data[:6])) or V2_SIGNATURE.startswith(bytes(data[:12])):
        return None  # a prefix of either: wait for more
    raise ProtocolError("the connection did not start with a PROXY protocol header")


def _parse_v1(data) -> tuple[ProxyHeader, int] | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    newline = data.find(b"\n", 0, V1_MAX)
    if newline >= 0 and newline != end + 1:
        raise ProtocolError("PROXY v1 header ends with a bare LF")
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProtocolError("PROXY v1 header longer than 107 bytes")
        return None
    try:
        line = bytes(data[:end]).decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("PROXY v1 header is not ASCII") from None
    parts = line.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(1, None), end + 2
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProtocolError(f"malformed PROXY v1 header {line!r}")
    _, family, source, destination, source_port, destination_port = parts
    version = 4 if family == "TCP4" else 6
    for address in (source, destination):
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            raise ProtocolError(f"PROXY v1 header: {address!r} is not an IP address") from None
        if parsed.version != version or str(parsed) != address.lower():
            raise ProtocolError(f"PROXY v1 header: {address!r} is not a canonical {family} address")
    for port in (source_port, destination_port):
        if not port.isdigit() or len(port) > 5 or int(port) > 65535 or (len(port) > 1 and port[0] == "0"):
            raise ProtocolError(f"PROXY v1 header: {port!r} is not a port")
    return ProxyHeader(1, (source, int(source_port))), end + 2


def _parse_v2(data) -> tuple[ProxyHeader, int] | None:
    if len(data) < _V2_HEAD.size:
        return None
    _, version_command, family, length = _V2_HEAD.unpack_from(data)
    if version_command >> 4 != 2:
        raise ProtocolError(f"PROXY v2 header with version {version_command >> 4}")
    command = version_command & 0x0F
    if command not in (0, 1):
        raise ProtocolError(f"PROXY v2 header with unknown command {command}")
    total = _V2_HEAD.size + length
    if len(data) < total:
        return None
    body = bytes(data[_V2_HEAD.size : total])
    client = None
    used = 0
    if command == 1 and family in _ADDRESSES:
        size, layout, ip_version = _ADDRESSES[family]
        if length < size:
            raise ProtocolError("PROXY v2 header too short for its addresses")
        source, _, source_port, _ = layout.unpack_from(body)
        address = ipaddress.IPv4Address(source) if ip_version == 4 else ipaddress.IPv6Address(source)
        client = (str(address), source_port)
        used = size
    elif command == 1 and family not in (0x00, 0x31, 0x32):
        raise ProtocolError(f"PROXY v2 header with unknown address family 0x{family:02x}")
    elif family in (0x31, 0x32):
        used = min(length, 216)  # unix sockets: the client is local; keep the peer
    return ProxyHeader(2, client, _tls(body[used:]) if command == 1 else None), total


def _tls(tlvs: bytes) -> bool | None:
    """From the TLVs: True/False if an SSL TLV says whether the client used TLS, else None."""
    tls = None
    offset = 0
    while offset < len(tlvs):
        if offset + 3 > len(tlvs):
            raise ProtocolError("PROXY v2 header: truncated TLV")
        kind, size = tlvs[offset], int.from_bytes(tlvs[offset + 1 : offset + 3], "big")
        value = tlvs[offset + 3 : offset + 3 + size]
        if len(value) != size:
            raise ProtocolError("PROXY v2 header: a TLV runs past the header")
        if kind == PP2_TYPE_SSL:
            if size < 5:
                raise ProtocolError("PROXY v2 header: short SSL TLV")
            tls = bool(value[0] & PP2_CLIENT_SSL)
        offset += 3 + size
    return tls
