"""The request corpus: tests/requests/{valid,invalid}/*.http, fed in many chunkings."""

from __future__ import annotations

import json

import pytest

from preforkit.http import ProtocolError

from .helpers import REQUESTS, load_http, parse_stream, splits

VALID = sorted((REQUESTS / "valid").glob("*.http"))
INVALID = sorted((REQUESTS / "invalid").glob("*.http"))


def test_corpus_is_present():
    assert len(VALID) >= 20
    assert len(INVALID) >= 40


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_request(path):
    data = load_http(path)
    expected = json.loads(path.with_suffix(".json").read_text())
    for pieces in splits(data):
        requests = parse_stream(pieces)
        assert len(requests) == 1
        head, body, trailers = requests[0]
        for key, value in expected.items():
            if key == "version":
                assert head.http_version == value
            elif key == "body":
                assert body == value.encode("latin-1")
            elif key == "trailers":
                assert trailers == [tuple(pair) for pair in value]
            elif key == "headers":
                assert head.headers == value
            else:
                assert getattr(head, key) == value, key


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_request_followed_by_another(path):
    """Trailing bytes (a pipelined request) are left for the next parse."""
    data = load_http(path)
    follow = b"GET /next HTTP/1.1\r\nHost: n\r\n\r\n"
    for pieces in splits(data + follow):
        requests = parse_stream(pieces)
        assert len(requests) == 2
        assert requests[1][0].path == "/next"


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_request(path):
    status = int(path.stem.split("-")[0])
    data = load_http(path)
    for pieces in splits(data):
        with pytest.raises(ProtocolError) as info:
            parse_stream(pieces)
        assert info.value.status == status, str(info.value)
