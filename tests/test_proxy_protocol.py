"""The PROXY protocol: the sans-I/O parser (h11-style), then real connections, then a real HAProxy."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import struct
import subprocess
import time

import pytest
import requests

from preforkit.http import ProtocolError
from preforkit.http._proxy_protocol import V2_SIGNATURE, ProxyHeader, parse

from .helpers import read_response, recv_until_closed

APP = "tests.fixtures.misc_app:client_report"


def v2(command: int = 1, family: int = 0x11, addresses: bytes | None = None, tlvs: bytes = b"") -> bytes:
    if addresses is None:
        addresses = socket.inet_aton("192.0.2.7") + socket.inet_aton("10.0.0.1") + struct.pack("!HH", 51000, 443)
    body = addresses + tlvs
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


def ssl_tlv(client_ssl: bool) -> bytes:
    value = bytes([0x01 if client_ssl else 0x00]) + b"\x00\x00\x00\x00"
    return bytes([0x20]) + struct.pack("!H", len(value)) + value


# -- the parser -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\nGET", (ProxyHeader(1, ("192.0.2.7", 51000)), 41)),
        (b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n", (ProxyHeader(1, ("2001:db8::7", 51000)), 46)),
        (b"PROXY UNKNOWN\r\n", (ProxyHeader(1, None), 15)),
        (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", (ProxyHeader(1, None), 35)),
        (v2(), (ProxyHeader(2, ("192.0.2.7", 51000)), 28)),
        (v2(tlvs=ssl_tlv(True)), (ProxyHeader(2, ("192.0.2.7", 51000), True), 36)),
        (v2(tlvs=ssl_tlv(False)), (ProxyHeader(2, ("192.0.2.7", 51000), False), 36)),
        (v2(command=0, family=0, addresses=b""), (ProxyHeader(2, None), 16)),  # LOCAL: a health check
        (
            v2(family=0x21, addresses=ipaddress.IPv6Address("2001:db8::7").packed + bytes(16) + b"\x00\x50\x01\xbb"),
            (ProxyHeader(2, ("2001:db8::7", 80)), 52),
        ),
    ],
)
def test_well_formed_headers(data, expected):
    assert parse(data) == expected
    assert parse(bytearray(data)) == expected


@pytest.mark.parametrize("data", [b"", b"PRO", b"PROXY TCP4 192.0.2.7", V2_SIGNATURE[:5], v2()[:20], v2()[:-1]])
def test_incomplete_headers_wait_for_more(data):
    assert parse(data) is None


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",  # no header at all
        b"PROXY TCP4 192.0.2.7 10.0.0.1 51000\r\n",  # a field missing
        b"PROXY TCP5 192.0.2.7 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",  # family and address disagree
        b"PROXY TCP4 192.0.2.300 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 65536 2\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 -1 2\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 01 2\r\n",
        b"PROXY TCP4  192.0.2.7 10.0.0.1 1 2\r\n",  # two spaces
        b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\n",  # bare LF
        b"PROXY " + b"x" * 120,  # no CRLF within 107 bytes
        b"PROXY TCP4 192.0.2.\xff 10.0.0.1 1 2\r\n",
        V2_SIGNATURE + b"\x11\x11\x00\x0c" + bytes(12),  # version 1 in a v2 header
        V2_SIGNATURE + b"\x22\x11\x00\x0c" + bytes(12),  # command 2
        v2(family=0x41),  # unknown family
        v2(addresses=bytes(8)),  # too short for IPv4 addresses
        v2(tlvs=b"\x20\x00"),  # a truncated TLV
        v2(tlvs=b"\x20\x00\x09\x01"),  # a TLV longer than the header
        v2(tlvs=b"\x20\x00\x01\x01"),  # an SSL TLV too short
    ],
)
def test_malformed_headers_are_refused(data):
    with pytest.raises(ProtocolError):
        parse(data)


# -- real connections ----------------------------------------------------------------------


def _ask(port: int, preamble: bytes, source: str | None = None) -> bytes:
    """Send ``preamble`` + a GET; the whole answer (b"" when the server just closed)."""
    sock = socket.socket()
    if source:
        sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    with sock:
        try:
            sock.sendall(preamble + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return recv_until_closed(sock)
        except ConnectionResetError:
            return b""  # closed with our bytes unread: the same refusal


def _body(answer: bytes) -> str:
    return answer.split(b"\r\n\r\n", 1)[1].decode()


def test_v1_and_v2_set_the_client(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "--proxy-protocol")
    port = server.port
    assert _body(_ask(port, b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\n")) == "192.0.2.7 http"
    assert _body(_ask(port, b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n")) == "2001:db8::7 http"
    assert _body(_ask(port, v2())) == "192.0.2.7 http"
    assert _body(_ask(port, v2(tlvs=ssl_tlv(True)))) == "192.0.2.7 https"
    assert _body(_ask(port, b"PROXY UNKNOWN\r\n")) == "127.0.0.1 http"  # the peer itself
    assert _body(_ask(port, v2(command=0, family=0, addresses=b""))) == "127.0.0.1 http"  # LOCAL: a health check
    # the header in pieces, then keep-alive requests after it
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for piece in (b"PROXY TCP4 192.0", b".2.9 10.0.0.1 1 2\r", b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"):
            sock.sendall(piece)
            time.sleep(0.05)  # separate segments: the parser must wait for the rest
        assert read_response(sock)[2] == b"192.0.2.9 http"
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[2] == b"192.0.2.9 http"


def test_x_forwarded_for_from_the_proxied_client_is_not_believed(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "--proxy-protocol")
    answer = _ask(server.port, b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\n")
    assert _body(answer) == "192.0.2.7 http"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(v2() + b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
        assert read_response(sock)[2] == b"192.0.2.7 http"  # 192.0.2.7 is no trusted proxy


@pytest.mark.parametrize(
    "preamble",
    [b"", b"PROXY TCP4 192.0.2.300 10.0.0.1 1 2\r\n", v2(family=0x41), b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\n"],
)
def test_a_malformed_or_missing_header_closes_the_connection(cli_server, preamble):
    server = cli_server(APP, "-b", "127.0.0.1:0", "--proxy-protocol")
    assert _ask(server.port, preamble) == b""
    assert server.wait_for(r"PROXY protocol: closing the connection from", timeout=5)


def test_an_untrusted_peer_is_closed_at_once(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "--proxy-protocol", "--forwarded-allow-ips", "10.9.9.9")
    assert _ask(server.port, b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\n") == b""
    assert server.wait_for(r"not in --forwarded-allow-ips", timeout=5)


def test_without_the_option_a_header_is_just_a_bad_request(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0")
    assert _ask(server.port, b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\n").startswith(b"HTTP/1.1 400 ")


# -- behind a real HAProxy -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (Debian package haproxy)")
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_behind_haproxy_send_proxy_v2(cli_server, tmp_path):
    import ssl

    server = cli_server(APP, "-b", "127.0.0.1:0", "--proxy-protocol")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "2",
         "-keyout", "key.pem", "-out", "cert.pem"],
        cwd=tmp_path, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    combined = tmp_path / "haproxy.pem"
    combined.write_bytes((tmp_path / "cert.pem").read_bytes() + (tmp_path / "key.pem").read_bytes())
    plain, tls = _free_port(), _free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n"
        f"frontend plain\n  bind 127.0.0.1:{plain}\n  default_backend preforkit\n"
        f"frontend tls\n  bind 127.0.0.1:{tls} ssl crt {combined}\n  default_backend preforkit_tls\n"
        f"backend preforkit\n  server app 127.0.0.1:{server.port} send-proxy-v2\n"
        f"backend preforkit_tls\n  server app 127.0.0.1:{server.port} send-proxy-v2-ssl\n"
    )
    haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", tls), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "haproxy did not start"
                time.sleep(0.05)
        # The client comes from 127.0.0.2 while HAProxy's own address is 127.0.0.1: only the header can say so.
        assert _body(_ask(plain, b"", source="127.0.0.2")) == "127.0.0.2 http"
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        raw = socket.socket()
        raw.bind(("127.0.0.3", 0))
        raw.settimeout(5)
        raw.connect(("127.0.0.1", tls))
        with context.wrap_socket(raw) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = recv_until_closed(sock)
        assert _body(answer) == "127.0.0.3 https"  # the scheme from v2's SSL TLV
        with requests.Session() as session:  # keep-alive through HAProxy
            for _ in range(3):
                assert session.get(f"http://127.0.0.1:{plain}/", timeout=5).text == "127.0.0.1 http"
    finally:
        haproxy.terminate()
        haproxy.wait(timeout=15)
