"""Hypothesis fuzzing of each parser alone: only the parser's own error may escape."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from preforkit.http import ChunkedReader, HeadLimits, HeadParser, ProtocolError
from preforkit.http._websocket import FrameDecoder, WebSocketError
from preforkit.http._ws_deflate import PerMessageDeflate

LIMITS = HeadLimits(max_request_line=512, max_fields=16, max_field_size=512, max_body=4096)


SHARED = HeadParser(LIMITS)  # remembers the heads of every example before: each must parse as if new


def _outcome(parser, data):
    try:
        return parser.parse(data)
    except ProtocolError as exc:
        assert 400 <= exc.status < 600  # noqa: PT017 - the status is part of the contract
        return exc.status


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=800))
def test_head_parser(data):
    fresh = _outcome(HeadParser(LIMITS), data)
    assert _outcome(SHARED, data) == fresh
    assert _outcome(SHARED, data) == fresh  # the second time from what it remembered


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=800), st.integers(min_value=1, max_value=64))
def test_chunked_reader(data, step):
    reader = ChunkedReader(max_body=4096)
    buffer = bytearray()
    try:
        for start in range(0, len(data), step):
            buffer += data[start : start + step]
            while not reader.done and reader.read(buffer):
                pass
    except ProtocolError as exc:
        assert exc.status in (400, 413, 431)  # noqa: PT017


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=800), st.booleans())
def test_websocket_decoder(data, compressed):
    decoder = FrameDecoder(max_message=4096, deflate=PerMessageDeflate() if compressed else None)
    try:
        decoder.feed(data)
    except WebSocketError as exc:
        assert exc.code in (1002, 1007, 1009)  # noqa: PT017


def test_atheris_harness_runs_briefly():
    """The atheris script starts and fuzzes each target for a few hundred runs (when atheris is installed)."""
    import os
    import subprocess
    import sys

    import pytest

    pytest.importorskip("atheris")
    script = os.path.join(os.path.dirname(__file__), "atheris_fuzz.py")
    for target in ("head", "chunked", "websocket"):
        result = subprocess.run(
            [sys.executable, script, target, "-runs=300"], capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert "Done 300 runs" in result.stderr
