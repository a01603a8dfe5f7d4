"""Helpers for the protocol tests: bytes in, parsed requests out."""

from __future__ import annotations

import codecs
import pathlib
import socket
import weakref

from preforkit.http import HeadLimits, HeadParser, ProtocolError, body_reader

REQUESTS = pathlib.Path(__file__).parent / "requests"
INVALID_DIR = REQUESTS / "invalid"


def load_http(path: pathlib.Path) -> bytes:
    """A corpus file: LF line ends become CRLF, then \\r \\n \\0 \\xNN escapes apply."""
    text = path.read_text(encoding="utf-8").replace("\n", "\r\n")
    return codecs.escape_decode(text.encode("latin-1"))[0]


def parse_stream(pieces, limits: HeadLimits | None = None):
    """Feed ``pieces`` (an iterable of bytes) as a connection would.

    Returns a list of ``(head, body, trailers)`` for every complete request;
    raises ``ProtocolError`` like the server would.
    """
    limits = limits or HeadLimits()
    parser = HeadParser(limits)
    buffer = bytearray()
    requests = []
    head = reader = None
    body = bytearray()
    for piece in [*list(pieces), b""]:
        buffer += piece
        while True:
            if head is None:
                result = parser.parse(buffer)
                if result is None:
                    break
                head, used = result
                del buffer[:used]
                reader = body_reader(head.content_length, head.chunked, limits.max_body)
                body = bytearray()
            if reader is not None:
                while not reader.done:
                    data = reader.read(buffer)
                    if not data:
                        break
                    body += data
                if not reader.done:
                    break
            requests.append((head, bytes(body), list(getattr(reader, "trailers", []))))
            head = reader = None
    return requests


def splits(data: bytes):
    """The chunkings every case is fed in: whole, byte by byte, and halves."""
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    middle = len(data) // 2
    yield [data[:middle], data[middle:]]


def status_of(data: bytes, limits: HeadLimits | None = None) -> int | None:
    """The error status the parser gives ``data``, or None if it is accepted."""
    try:
        parse_stream([data], limits)
    except ProtocolError as exc:
        return exc.status
    return None


def recv_until_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


_READERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _forget_closed() -> None:
    """Close the readers of sockets the tests closed: a reader's makefile keeps the
    descriptor open (and the weak key alive) until it is closed itself."""
    for sock in [sock for sock in _READERS if getattr(sock, "_closed", False)]:
        _READERS.pop(sock).file.close()


class _Reader:
    """Gives http.client one buffered reader per socket, kept across responses."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = sock.makefile("rb")

    def makefile(self, mode: str):
        return self

    def __getattr__(self, name: str):
        return getattr(self.file, name)

    def close(self) -> None:
        """http.client closes its file after each response; keep ours open."""


def read_response(sock: socket.socket, timeout: float = 5.0):
    """Read one response with http.client's parser; returns (status, headers, body).

    Responses read one after another from the same socket share a buffer, so
    pipelined responses are not lost.
    """
    import http.client

    sock.settimeout(timeout)
    reader = _READERS.get(sock)
    if reader is None:
        _forget_closed()
        reader = _READERS[sock] = _Reader(sock)
    response = http.client.HTTPResponse(reader)
    response.begin()
    body = response.read()
    return response.status, response.headers, body


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return recv_until_closed(sock, timeout)
