"""Request-head parsing: limits, early detection, request fields."""

from __future__ import annotations

import pytest

from preforkit.http import HeadLimits, HeadParser, ProtocolError

from .helpers import status_of


def test_incomplete_head_needs_more():
    parser = HeadParser()
    assert parser.parse(b"GET / HTTP/1.1\r\nHost: h\r\n") is None
    assert parser.parse(b"") is None


def test_consumed_counts_leading_empty_lines():
    head, used = HeadParser().parse(b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\nrest")
    assert used == len(b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert head.method == "GET"


def test_head_is_immutable():
    head, _ = HeadParser().parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    with pytest.raises(AttributeError):
        head.method = "POST"


def test_request_line_limit_414_before_line_end():
    limits = HeadLimits(max_request_line=100)
    parser = HeadParser(limits)
    with pytest.raises(ProtocolError) as info:
        parser.parse(b"GET /" + b"a" * 200)
    assert info.value.status == 414


def test_request_line_limit_414_complete():
    limits = HeadLimits(max_request_line=100)
    assert status_of(b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: h\r\n\r\n", limits) == 414
    assert status_of(b"GET /" + b"a" * 50 + b" HTTP/1.1\r\nHost: h\r\n\r\n", limits) is None


def test_too_many_fields_431():
    limits = HeadLimits(max_fields=5)
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(5))
    assert status_of(b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n", limits) == 431
    assert status_of(b"GET / HTTP/1.1\r\nHost: h\r\n" + fields[:-8] + b"\r\n", limits) is None


def test_field_too_large_431():
    limits = HeadLimits(max_field_size=100)
    assert status_of(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"v" * 200 + b"\r\n\r\n", limits) == 431


def test_field_too_large_detected_early():
    parser = HeadParser(HeadLimits(max_field_size=100))
    with pytest.raises(ProtocolError) as info:
        parser.parse(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"v" * 200)
    assert info.value.status == 431


def test_endless_head_431_early():
    parser = HeadParser(HeadLimits(max_fields=3, max_field_size=100))
    data = b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200
    with pytest.raises(ProtocolError) as info:
        parser.parse(data)
    assert info.value.status == 431


def test_max_body_from_limits():
    limits = HeadLimits(max_body=10)
    assert status_of(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits) == 413
    assert status_of(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", limits) is None


def test_chunked_body_over_max_413():
    limits = HeadLimits(max_body=10)
    data = (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n"
    )
    assert status_of(data, limits) == 413


@pytest.mark.parametrize(
    "junk",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
        b"\x00\x00\x00\x00\x00\x00\x00\x00\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ],
)
def test_junk_rejected(junk):
    assert status_of(junk + b"\r\n\r\n") in (400, 505)


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/", "/", None),
        ("/a?", "/a", ""),
        ("/a?b?c", "/a", "b?c"),
        ("/%20x", "/%20x", None),
        ("https://h/x", "/x", None),
        ("http://h", "/", None),
        ("http://h?q", "/", "q"),
    ],
)
def test_target_forms(target, path, query):
    head, _ = HeadParser().parse(f"GET {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    assert (head.path, head.query) == (path, query)


def test_connect_authority_form():
    head, _ = HeadParser().parse(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert head.path == "example.com:443"


def test_head_has_no_body_framing():
    head, _ = HeadParser().parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert not head.has_body
    assert head.content_length is None


def test_remembered_field_lines_still_meet_each_parsers_limits():
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"v" * 150 + b"\r\n\r\n"
    assert HeadParser().parse(head)[0].headers["x-long"] == "v" * 150
    assert HeadParser().parse(head)[0].headers["x-long"] == "v" * 150  # now from the field-line cache
    with pytest.raises(ProtocolError) as error:
        HeadParser(HeadLimits(max_field_size=100)).parse(head)
    assert error.value.status == 431


@pytest.mark.parametrize(
    ("good", "bad", "status"),
    [
        (b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", b"GET /a  HTTP/1.1\r\nHost: h\r\n\r\n", 400),  # request line
        (b"GET / HTTP/1.1\r\nHost: h:80\r\n\r\n", b"GET / HTTP/1.1\r\nHost: h:8x\r\n\r\n", 400),  # Host
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", b"GET / HTTP/1.1\r\nHost: h/\r\n\r\n", 400),
    ],
)
def test_what_was_seen_valid_is_remembered_and_nothing_else(good, bad, status):
    """Request lines, Host values and Connection tokens found valid are remembered (clients repeat
    them); a second parse gives the same head, and a near miss is still refused, every time."""
    parser = HeadParser()
    first, second = parser.parse(good), parser.parse(good)
    assert first == second
    for _ in range(2):
        assert status_of(bad) == status


def test_remembered_connection_tokens_decide_keep_alive_the_same_way():
    parser = HeadParser()
    for _ in range(2):
        assert not parser.parse(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n")[0].keep_alive
        assert parser.parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")[0].keep_alive
        head, _ = parser.parse(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: WebSocket\r\n\r\n")
        assert head.upgrade == "websocket"


def test_a_head_seen_before_gives_an_equal_head_with_its_own_headers():
    """A repeated head is parsed once; each request still gets fields and headers of its own."""
    parser = HeadParser()
    raw = b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nX-A: 1\r\nX-A: 2\r\n\r\n"
    first, _ = parser.parse(raw)
    first.headers["x-app"] = "changed by the app"
    first.fields.append(("x-app", "changed"))
    second, used = parser.parse(raw + b"GET")
    assert used == len(raw)
    assert second.headers == {"host": "h", "accept": "*/*", "x-a": "1, 2"}
    assert second.fields == [("host", "h"), ("accept", "*/*"), ("x-a", "1"), ("x-a", "2")]
    assert (second.method, second.path, second.query, second.http_version) == ("GET", "/a", "b=1", "1.1")
    assert second.headers is not parser.parse(raw)[0].headers


def test_a_remembered_head_is_not_shared_across_limits_and_near_misses_fail():
    head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + b"v" * 150 + b"\r\n\r\n"
    parser = HeadParser()
    assert parser.parse(head)[0].headers["x-long"] == "v" * 150
    with pytest.raises(ProtocolError) as error:  # another parser, smaller limits: parsed, and refused
        HeadParser(HeadLimits(max_field_size=100)).parse(head)
    assert error.value.status == 431
    for bad in (head.replace(b"Host: h", b"Host: h/"), head.replace(b"X-Long:", b"X-Long :")):
        for _ in range(2):
            with pytest.raises(ProtocolError):
                parser.parse(bad)


def test_a_head_is_remembered_from_its_second_sighting_on():
    """Heads sent once (a crawler, a varying query) are parsed and not kept, so they
    cannot push out of the memo the heads that clients repeat."""
    parser = HeadParser()
    repeated = b"GET /poll HTTP/1.1\r\nHost: h\r\n\r\n"
    parser.parse(repeated)
    assert parser._known == {}
    parser.parse(repeated)
    assert list(parser._known) == [repeated[:-4].decode()]
    for index in range(1000):
        assert parser.parse(b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % index)[0].path == f"/{index}"
    assert list(parser._known) == [repeated[:-4].decode()]
    assert len(parser._sighted) <= 512


def test_the_remembered_heads_are_bounded():
    parser = HeadParser()
    for index in range(1000):
        for _ in range(2):
            parser.parse(b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % index)
    long_head = b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: h\r\n\r\n"
    assert parser.parse(long_head)[0].path == "/" + "a" * 3000
    known = parser._known
    assert 0 < len(known) <= 256
    assert all(len(text) <= 2048 for text in known)
