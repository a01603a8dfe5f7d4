"""Coverage-guided fuzzing of the parsers with atheris (a script, not a test).

    pip install -e '.[fuzz]'
    python tests/fuzz/atheris_fuzz.py head -max_total_time=60
    python tests/fuzz/atheris_fuzz.py chunked -max_total_time=60
    python tests/fuzz/atheris_fuzz.py websocket -max_total_time=60

Unless a corpus directory is given, the head and chunked targets start from
the request corpus (tests/requests, line ends made CRLF): random bytes alone
rarely get past the request line, so the seeds are what reach the deeper
rules.

Each target feeds fuzzer bytes to one sans-I/O parser and treats any exception
other than the parser's own error type as a crash (atheris then saves the
input that caused it).
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from preforkit.http import ChunkedReader, HeadLimits, HeadParser, ProtocolError
from preforkit.http._websocket import FrameDecoder, WebSocketError
from preforkit.http._ws_deflate import PerMessageDeflate

LIMITS = HeadLimits(max_request_line=1024, max_fields=32, max_field_size=1024, max_body=65536)


def fuzz_head(data: bytes) -> None:
    try:
        HeadParser(LIMITS).parse(data + b"\r\n\r\n")  # always a complete head: the fuzzer explores its contents
    except ProtocolError:
        pass


def fuzz_chunked(data: bytes) -> None:
    reader = ChunkedReader(max_body=65536)
    buffer = bytearray(data)
    try:
        while not reader.done and reader.read(buffer):
            pass
    except ProtocolError:
        pass


def fuzz_websocket(data: bytes) -> None:
    compressed = bool(data[:1]) and data[0] & 1
    decoder = FrameDecoder(max_message=65536, deflate=PerMessageDeflate() if compressed else None)
    try:
        decoder.feed(data[1:])
    except WebSocketError:
        pass


def _seed_corpus() -> str:
    import tempfile

    from tests.helpers import REQUESTS, load_http

    directory = tempfile.mkdtemp(prefix="preforkit-fuzz-")
    for path in REQUESTS.glob("*/*.http"):
        with open(os.path.join(directory, path.stem), "wb") as file:
            file.write(load_http(path))
    return directory


TARGETS = {"head": fuzz_head, "chunked": fuzz_chunked, "websocket": fuzz_websocket}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options, e.g. -max_total_time=60]")
    name = sys.argv.pop(1)
    target = TARGETS[name]
    if name in ("head", "chunked") and not any(not arg.startswith("-") for arg in sys.argv[1:]):
        sys.argv.append(_seed_corpus())
    atheris.instrument_all()  # coverage feedback for the parsers (and everything else loaded)
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
