"""Length-prefixed frames between the master and its workers (no gevent here)."""

from __future__ import annotations

import struct

LENGTH = struct.Struct("!I")
# Bytes that may wait on one link (either way) before frames are dropped: one
# slow reader must not grow its peer's memory without bound.
LINK_LIMIT = 16 * 1024 * 1024


def frame(body: bytes) -> bytes:
    """``body`` with its 4-byte big-endian length in front."""
    return LENGTH.pack(len(body)) + body


def split_frames(buffer: bytearray) -> list[bytes]:
    """Take every complete length-prefixed frame body off the front of ``buffer``."""
    bodies = []
    while len(buffer) >= 4:
        (size,) = LENGTH.unpack_from(buffer)
        if len(buffer) < 4 + size:
            break
        bodies.append(bytes(buffer[4 : 4 + size]))
        del buffer[: 4 + size]
    return bodies
