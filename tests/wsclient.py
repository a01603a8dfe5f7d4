"""A raw WebSocket client over a socket, for crafting frames the libraries won't send."""

from __future__ import annotations

import base64
import os
import socket
import struct

from .test_websocket_codec import client_frame

HANDSHAKE = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
)


class RawWebSocket:
    def __init__(self, port: int, path: str = "/", extra_headers: str = "", timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(HANDSHAKE.format(path=path, key=key, extra=extra_headers).encode())
        self.buffer = b""
        head = self._read_until(b"\r\n\r\n")
        self.status_line = head.split(b"\r\n", 1)[0]
        self.head = head

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the handshake")
            self.buffer += data
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _read_exact(self, count: int) -> bytes:
        while len(self.buffer) < count:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.buffer += data
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def send(self, opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0) -> None:
        self.sock.sendall(client_frame(opcode, payload, fin=fin, rsv=rsv))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> tuple[bool, int, bytes]:
        """(fin, opcode, payload) of the next server frame."""
        first, second = self._read_exact(2)
        assert not second & 0x80, "server frames must not be masked"
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read_exact(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read_exact(8))[0]
        return bool(first & 0x80), first & 0x0F, self._read_exact(length)

    def recv_close_code(self) -> int:
        """Read frames until a close frame; return its code."""
        for _ in range(100):
            _, opcode, payload = self.recv()
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0] if payload else 1005
        raise AssertionError("no close frame")

    def at_eof(self) -> bool:
        """True once the server has closed the TCP connection."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()
