"""The sans-I/O WebSocket codec: handshake, frames, deflate negotiation."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preforkit.http import ProtocolError
from preforkit.http._websocket import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    Close,
    FrameDecoder,
    Message,
    Ping,
    Pong,
    WebSocketError,
    encode_frame,
    unmask,
    unmask_python,
)
from preforkit.http._ws_deflate import PerMessageDeflate, negotiate_deflate
from preforkit.http._ws_handshake import accept_key, check_handshake, choose_subprotocol

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
GOOD = {"upgrade": "websocket", "connection": "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": KEY}


def client_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, mask: bytes | None = None) -> bytes:
    """A masked client frame, as a browser would send it."""
    mask = os.urandom(4) if mask is None else mask
    first = (0x80 if fin else 0) | rsv | opcode
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    return head + mask + unmask(payload, mask)


def test_accept_key_rfc_example():
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert check_handshake("GET", "1.1", GOOD) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_handshake_accepts_token_lists_case_insensitively():
    headers = {**GOOD, "connection": "keep-alive, Upgrade", "upgrade": "WebSocket"}
    assert check_handshake("GET", "1.1", headers)


@pytest.mark.parametrize(
    ("method", "version", "changes", "status"),
    [
        ("POST", "1.1", {}, 400),
        ("GET", "1.0", {}, 400),
        ("GET", "1.1", {"upgrade": None}, 400),
        ("GET", "1.1", {"connection": "keep-alive"}, 400),
        ("GET", "1.1", {"sec-websocket-key": None}, 400),
        ("GET", "1.1", {"sec-websocket-key": "not base64!"}, 400),
        ("GET", "1.1", {"sec-websocket-key": "c2hvcnQ="}, 400),  # decodes to 5 bytes, not 16
        ("GET", "1.1", {"sec-websocket-version": "8"}, 426),
        ("GET", "1.1", {"sec-websocket-version": None}, 426),
    ],
)
def test_handshake_errors(method, version, changes, status):
    headers = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    with pytest.raises(ProtocolError) as info:
        check_handshake(method, version, headers)
    assert info.value.status == status


def test_subprotocol_choice():
    headers = {"sec-websocket-protocol": "chat.v2, chat.v1"}
    assert choose_subprotocol(headers, ["chat.v1", "chat.v2"]) == "chat.v2"
    assert choose_subprotocol(headers, ["other"]) is None
    assert choose_subprotocol({}, ["chat.v1"]) is None


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        ("permessage-deflate", "permessage-deflate"),
        ("permessage-deflate; client_max_window_bits", "permessage-deflate"),
        ("permessage-deflate; client_max_window_bits=10", "permessage-deflate; client_max_window_bits=10"),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        ("permessage-deflate; server_max_window_bits=12", "permessage-deflate; server_max_window_bits=12"),
        # Declined offers fall through to the next one.
        ("permessage-deflate; unknown=1, permessage-deflate", "permessage-deflate"),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
        ("permessage-deflate; server_max_window_bits=8", None),
        ("permessage-deflate; server_max_window_bits", None),
        ("permessage-deflate; server_max_window_bits=16", None),
        ("permessage-deflate; client_no_context_takeover=1", None),
        ("x-webkit-deflate-frame", None),
        ("", None),
    ],
)
def test_deflate_negotiation(offer, answer):
    deflate = negotiate_deflate(offer)
    assert (deflate.response if deflate else None) == answer


def test_deflate_roundtrip_with_and_without_context_takeover():
    for takeover in (False, True):
        server = PerMessageDeflate(server_no_context_takeover=takeover)
        client = PerMessageDeflate(client_no_context_takeover=takeover)
        for text in (b"hello " * 50, b"hello " * 50, b"x"):
            assert client.decompress(server.compress(text), 1 << 20) == text


def test_decompress_bomb_is_1009():
    bomb = PerMessageDeflate().compress(b"\x00" * (2 << 20))
    with pytest.raises(WebSocketError) as info:
        PerMessageDeflate().decompress(bomb, 1 << 20)
    assert info.value.code == 1009


def events_of(data: bytes, **options):
    return FrameDecoder(**options).feed(data)


def test_lengths_7_16_64_bit():
    for size in (0, 125, 126, 65535, 65536, 70000):
        [event] = events_of(client_frame(BINARY, b"x" * size))
        assert event.data == b"x" * size


def test_fragmented_text_with_interleaved_control_frames():
    data = (
        client_frame(TEXT, "héllo ".encode()[:2], fin=False)
        + client_frame(PING, b"p1")
        + client_frame(CONTINUATION, "héllo ".encode()[2:], fin=False)
        + client_frame(PONG, b"p2")
        + client_frame(CONTINUATION, "wörld".encode())
    )
    events = events_of(data)
    assert [type(e) for e in events] == [Ping, Pong, Message]
    assert events[2].data == "héllo wörld"
    assert events[0].payload == b"p1"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (struct.pack("!BB", 0x81, 5) + b"hello", 1002),  # unmasked
        (client_frame(0x3, b""), 1002),  # reserved opcode
        (client_frame(0xB, b""), 1002),  # reserved control opcode
        (client_frame(TEXT, b"x", rsv=0x40), 1002),  # RSV1 without deflate
        (client_frame(TEXT, b"x", rsv=0x20), 1002),
        (client_frame(PING, b"x" * 126), 1002),  # control frame too long
        (client_frame(PING, b"x", fin=False), 1002),  # fragmented control frame
        (client_frame(CONTINUATION, b"x"), 1002),  # nothing to continue
        (client_frame(TEXT, b"a", fin=False) + client_frame(TEXT, b"b"), 1002),  # new message mid-fragment
        (client_frame(TEXT, b"\xff"), 1007),
        (client_frame(TEXT, "é".encode()[:1], fin=False) + client_frame(CONTINUATION, b"x"), 1007),
        (client_frame(CLOSE, b"\x03"), 1002),  # 1-byte close payload
        (client_frame(CLOSE, struct.pack("!H", 999)), 1002),
        (client_frame(CLOSE, struct.pack("!H", 1005)), 1002),  # never sent on the wire
        (client_frame(CLOSE, struct.pack("!H", 1000) + b"\xff"), 1007),
        (client_frame(BINARY, b"x" * 2000), 1009),
        (client_frame(BINARY, b"x" * 600, fin=False) + client_frame(CONTINUATION, b"x" * 600), 1009),
    ],
)
def test_failures_carry_close_codes(data, code):
    with pytest.raises(WebSocketError) as info:
        events_of(data, max_message=1024)
    assert info.value.code == code


def test_invalid_utf8_detected_inside_a_split_code_point_early():
    decoder = FrameDecoder()
    decoder.feed(client_frame(TEXT, b"ok \xe2\x82", fin=False))  # the first two bytes of "€": fine so far
    with pytest.raises(WebSocketError) as info:
        decoder.feed(client_frame(CONTINUATION, b"\x28", fin=False))  # cannot continue that code point
    assert info.value.code == 1007


def test_close_events():
    assert events_of(client_frame(CLOSE, b""))[0].code == 1005
    close = events_of(client_frame(CLOSE, struct.pack("!H", 4001) + b"bye"))[0]
    assert (close.code, close.reason) == (4001, "bye")
    assert isinstance(close, Close)


def test_compressed_messages():
    client = PerMessageDeflate()
    server = PerMessageDeflate()
    decoder = FrameDecoder(deflate=server)
    payload = client.compress(b"compressed " * 10)
    [event] = decoder.feed(client_frame(TEXT, payload, rsv=0x40))
    assert event.data == "compressed " * 10
    # Compressed and fragmented: RSV1 on the first frame only.
    payload = client.compress(b"abc" * 100)
    data = client_frame(BINARY, payload[:5], fin=False, rsv=0x40) + client_frame(CONTINUATION, payload[5:])
    [event] = decoder.feed(data)
    assert event.data == b"abc" * 100


def test_server_frames():
    assert encode_frame(TEXT, b"hi") == b"\x81\x02hi"
    assert encode_frame(BINARY, b"x" * 200)[:4] == b"\x82\x7e\x00\xc8"
    assert encode_frame(BINARY, b"x" * 70000)[:2] == b"\x82\x7f"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.text(max_size=300), st.binary(max_size=300)),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=10),
    st.booleans(),
)
def test_roundtrip_any_split(messages, cuts, fragment):
    """encode -> split anywhere -> decode gives the same messages, in order."""
    data = b""
    for message in messages:
        opcode, payload = (TEXT, message.encode()) if isinstance(message, str) else (BINARY, message)
        if fragment and len(payload) > 2:
            middle = len(payload) // 2
            data += client_frame(opcode, payload[:middle], fin=False) + client_frame(CONTINUATION, payload[middle:])
        else:
            data += client_frame(opcode, payload)
    decoder = FrameDecoder()
    events = []
    position = 0
    for cut in cuts * (len(data) // max(sum(cuts), 1) + 1):
        if position >= len(data):
            break
        events += decoder.feed(data[position : position + cut])
        position += cut
    events += decoder.feed(data[position:])
    assert [event.data for event in events] == messages


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_websocket_errors(data):
    code = None
    try:
        FrameDecoder(max_message=1024).feed(data)
    except WebSocketError as exc:
        code = exc.code
    assert code in (None, 1002, 1007, 1009)


@given(st.binary(max_size=2000), st.binary(min_size=4, max_size=4), st.integers(0, 7))
def test_unmask_matches_the_rfc_definition(payload, mask, skip):
    """RFC 6455 §5.3: octet i is XORed with mask octet i mod 4, in C and in pure Python."""
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(payload[skip:]))
    view = memoryview(bytearray(payload))[skip:]  # the decoder unmasks straight from its buffer
    assert unmask(view, mask) == unmask_python(view, mask) == expected
