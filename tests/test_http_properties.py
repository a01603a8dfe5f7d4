"""Properties of the parser that must hold for any input (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from preforkit.http import HeadLimits, ProtocolError

from .helpers import REQUESTS, load_http, parse_stream

VALID_STREAM = b"".join(load_http(path) for path in sorted((REQUESTS / "valid").glob("*.http")))
LIMITS = HeadLimits(max_request_line=512, max_fields=16, max_field_size=512, max_body=4096)


def _summary(requests):
    return [(h.method, h.target, h.headers, h.http_version, body, trailers) for h, body, trailers in requests]


EXPECTED = _summary(parse_stream([VALID_STREAM]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(VALID_STREAM)), max_size=40))
def test_any_split_parses_the_same(cuts):
    """However the valid corpus is cut into pieces, the same requests come out."""
    cuts = sorted(set(cuts))
    bounds = [0, *cuts, len(VALID_STREAM)]
    pieces = [VALID_STREAM[a:b] for a, b in zip(bounds, bounds[1:])]
    assert _summary(parse_stream(pieces)) == EXPECTED


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_raise_only_protocol_error(data):
    status = None
    try:
        parse_stream([data], LIMITS)
    except ProtocolError as exc:
        status = exc.status
    assert status in (None, 400, 413, 414, 417, 431, 501, 505)


_line = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=40)


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(["GET", "POST", "PUT", "X"]),
    _line,
    st.lists(st.tuples(_line, _line), max_size=6),
    st.binary(max_size=64),
)
def test_near_valid_requests_raise_only_protocol_error(method, target, fields, body):
    """Structured junk (right shape, random contents) also fails cleanly."""
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in fields) + "\r\n"
    try:
        parse_stream([head.encode("latin-1") + body], LIMITS)
    except ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=50), max_size=10), st.integers(min_value=1, max_value=7))
def test_chunked_roundtrip(chunks, step):
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    data = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + encoded
    pieces = [data[i : i + step] for i in range(0, len(data), step)]
    [(_, body, trailers)] = parse_stream(pieces)
    assert body == b"".join(chunks)
    assert trailers == []
