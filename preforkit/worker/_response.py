"""Turn a Ring response dict into status, headers and a sendable body."""

from __future__ import annotations

import io
import os
import pathlib


class BadResponse(Exception):
    """The application returned something that is not a valid response."""


class FileRange:
    """A body that is ``length`` bytes of an open binary ``file`` from ``offset``.

    Sent with sendfile like a whole file; the file is closed afterwards.
    """

    __slots__ = ("file", "length", "offset")

    def __init__(self, file, offset: int, length: int) -> None:
        self.file = file
        self.offset = offset
        self.length = length


def prepare_body(response) -> tuple[int, object, object, int | None]:
    """Check ``response`` and return ``(status, headers, body, length)``.

    ``body`` comes back as ``bytes`` (str is UTF-8 encoded, None is empty),
    an open binary file positioned at its start (``pathlib.Path`` is opened),
    or an iterable of str/bytes; ``length`` is None for an iterable.
    """
    if not isinstance(response, dict):
        raise BadResponse(f"the handler returned {_describe(response)}, not a response dict")
    status = response.get("status", 200)
    if type(status) is not int:
        if not isinstance(status, int) or isinstance(status, bool):
            raise BadResponse(f"invalid status {status!r}")
        status = int(status)  # http.HTTPStatus and other int enums
    if not 100 <= status <= 999:
        raise BadResponse(f"invalid status {status!r}")
    body = response.get("body")
    headers = response.get("headers")
    if type(body) is bytes:
        return status, headers, body, len(body)
    if body is None:
        return status, headers, b"", 0
    if isinstance(body, bytes):
        return status, headers, body, len(body)
    if isinstance(body, str):
        data = body.encode("utf-8")
        return status, headers, data, len(data)
    if isinstance(body, (bytearray, memoryview)):
        data = bytes(body)
        return status, headers, data, len(data)
    if type(body) is FileRange:
        body.file.seek(body.offset)
        return status, headers, body.file, body.length
    if isinstance(body, pathlib.PurePath):
        try:
            file = open(body, "rb")  # noqa: SIM115 - closed after sending
        except OSError as exc:
            raise BadResponse(f"cannot open body file: {exc}") from exc
        return status, headers, file, _file_length(file)
    if hasattr(body, "read"):
        if isinstance(body, io.TextIOBase):
            raise BadResponse("a file body must be opened in binary mode")
        length = _file_length(body)
        if length is None:
            return status, headers, _read_chunks(body), None
        return status, headers, body, length
    if hasattr(body, "__iter__") and not isinstance(body, dict):
        return status, headers, body, None
    raise BadResponse(f"the response body is {_describe(body)}")


def _file_length(file) -> int | None:
    """Bytes left in a real file from its position, or None if not a real file."""
    try:
        fd = file.fileno()
        size = os.fstat(fd).st_size
        return max(0, size - file.tell())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def _read_chunks(file, size: int = 65536):
    try:
        while True:
            piece = file.read(size)
            if not piece:
                return
            yield piece
    finally:
        file.close()


def _describe(value) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"


from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
