"""Differential check against h11: the same corpus, the same verdicts — except where listed.

Each deliberate difference has its reason here and in docs/security.md ("Limits and security").
A difference that is not listed fails the test, so none can appear unnoticed.
"""

from __future__ import annotations

import h11
import pytest

from .helpers import REQUESTS, load_http, status_of

# corpus file stem -> why preforkit decides differently from h11
DIFFERENCES = {
    # preforkit accepts, h11 rejects
    "005-chunked-extensions-trailers": "RFC 9112 §7.1.1 allows BWS around ';' and quoted-string extension values",
    "011-leading-empty-lines": "RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request",
    # preforkit rejects, h11 accepts
    "400-asterisk-not-options": "RFC 9112 §3.2.4: asterisk-form is only for OPTIONS",
    "400-relative-target": "RFC 9112 §3.2: a target is origin-, absolute-, authority- or asterisk-form",
    "400-bare-lf-line-end": "bare LF line ends are a request-smuggling vector; CRLF only",
    "400-bare-lf-everywhere": "bare LF line ends are a request-smuggling vector; CRLF only (answered at once)",
    "400-chunk-ext-bare-cr": "a bare CR inside a chunk extension is a smuggling vector",
    "400-chunk-size-trailing-space": "RFC 9112 §7.1: no whitespace after chunk-size except BWS before ';'",
    "400-chunk-size-trailing-tab": "RFC 9112 §7.1: no whitespace after chunk-size except BWS before ';'",
    "400-chunk-last-size-trailing-space": "RFC 9112 §7.1: no whitespace after chunk-size except BWS before ';'",
    "400-content-type-duplicate": "two Content-Type fields: a proxy and the app could read the body differently",
    "400-fragment-in-path": "RFC 9112 §3.2.1: origin-form has no fragment; the app could not tell # from %23",
    "400-fragment-in-query": "RFC 9112 §3.2.1: origin-form has no fragment; the app could not tell # from %23",
    "400-cl-and-te": "RFC 9112 §6.1: a server MAY reject both; proxies disagree on which wins (smuggling)",
    "400-cl-duplicate": "two Content-Length fields, even equal, are rejected: parsers disagree on them",
    "400-cl-list": "a Content-Length list, even of equal values, is rejected for the same reason",
    "400-te-on-http10": "RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is suspect; rejected",
    "400-invalid-host": "RFC 9112 §3.2: an invalid Host gets 400",
    "400-invalid-host-slash": "RFC 9112 §3.2: an invalid Host gets 400",
    "400-obs-fold": "RFC 9112 §5.2: obs-fold may be rejected with 400, and is",
    "400-trailer-content-length": "RFC 9110 §6.5.1: framing fields are not allowed in trailers",
    "400-trailer-host": "RFC 9110 §6.5.1: routing fields are not allowed in trailers",
    "417-unknown-expect": "RFC 9110 §10.1.1: an expectation we cannot meet gets 417",
    "505-http09": "only HTTP/1.0 and 1.1 are served; other versions get 505",
    "505-http2": "only HTTP/1.0 and 1.1 are served; other versions get 505",
}

CORPUS = sorted((REQUESTS / "valid").glob("*.http")) + sorted((REQUESTS / "invalid").glob("*.http"))


def h11_accepts(data: bytes) -> bool:
    """Whether h11, as a server, reads one complete request from ``data``."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(data)
    connection.receive_data(b"")
    try:
        while True:
            event = connection.next_event()
            if isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                return True
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return False
    except h11.RemoteProtocolError:
        return False


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_same_verdict_as_h11_unless_listed(path):
    data = load_http(path)
    ours = status_of(data) is None
    theirs = h11_accepts(data)
    if path.stem in DIFFERENCES:
        assert ours != theirs, f"listed difference no longer differs: {path.stem}; remove it from DIFFERENCES"
    else:
        assert ours == theirs, f"preforkit {'accepts' if ours else 'rejects'}, h11 does not: {path.stem}"


def test_every_listed_difference_is_in_the_corpus():
    stems = {path.stem for path in CORPUS}
    assert set(DIFFERENCES) <= stems
