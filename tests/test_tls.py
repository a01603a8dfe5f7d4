"""TLS with a self-signed certificate made in the test: curl, requests, websockets."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import warnings

import pytest
import requests

from . import apps
from .conftest import ROOT
from .helpers import recv_until_closed

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A throwaway CA and a server certificate for 127.0.0.1 it signed: (CA file, cert, key)."""
    d = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run([OPENSSL, *args], check=True, capture_output=True, timeout=60, cwd=d)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=preforkit test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")  # fmt: skip
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    return str(d / "ca.pem"), str(d / "server.pem"), str(d / "server.key")


def test_requests_keep_alive_bodies_and_scheme(serve, certificate):
    ca, cert, key = certificate

    def handler(request):
        if request["uri"] == "/echo":
            return {"body": request["body"].read()}
        if request["uri"] == "/file":
            return {"body": open(apps.__file__, "rb")}
        return {"body": json.dumps({"scheme": request["scheme"]})}

    server = serve(handler, certfile=cert, keyfile=key)
    base = f"https://127.0.0.1:{server.port}"
    # verify= per request: a session-level value loses to $REQUESTS_CA_BUNDLE in requests.
    with requests.Session() as session:
        assert session.get(base + "/", verify=ca, timeout=10).json() == {"scheme": "https"}
        payload = bytes(range(256)) * 4096
        assert session.post(base + "/echo", data=payload, verify=ca, timeout=10).content == payload
        with open(apps.__file__, "rb") as file:
            assert session.get(base + "/file", verify=ca, timeout=10).content == file.read()


def test_curl_cacert_and_alpn(serve, certificate):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    ca, cert, key = certificate
    server = serve(apps.hello, certfile=cert, keyfile=key)
    result = subprocess.run(
        [curl, "-sv", "--cacert", ca, f"https://127.0.0.1:{server.port}/"],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Hello, World!"
    assert b"ALPN: server accepted http/1.1" in result.stderr


def test_tls_below_1_2_is_refused(serve, certificate):
    _ca, cert, key = certificate
    server = serve(apps.hello, certfile=cert, keyfile=key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # old versions on purpose: the server must refuse them
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw, pytest.raises(ssl.SSLError):
        context.wrap_socket(raw).do_handshake()
    # TLS 1.2 works.
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        tls = context.wrap_socket(raw)
        assert tls.version() == "TLSv1.2"
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert recv_until_closed(tls).endswith(b"Hello, World!")


def test_silent_client_dropped_after_header_timeout(serve, certificate):
    _ca, cert, key = certificate
    server = serve(apps.hello, certfile=cert, keyfile=key, header_timeout=0.3)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        assert raw.recv(1) == b"", "a client that never starts the handshake is closed"


def test_wss_echo(serve, certificate):
    import asyncio

    from websockets.asyncio.client import connect

    from preforkit import as_channel

    ca, cert, key = certificate
    server = serve(lambda r: as_channel(r, on_receive=lambda ch, m: ch.send(m)), certfile=cert, keyfile=key)
    context = ssl.create_default_context(cafile=ca)

    async def client():
        async with connect(f"wss://127.0.0.1:{server.port}/", ssl=context) as ws:
            for size in (10, 100_000):
                await ws.send("x" * size)
                assert await ws.recv() == "x" * size

    asyncio.run(asyncio.wait_for(client(), 20))


def test_bad_certificate_path_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "preforkit", "examples.hello:handler", "-b", "127.0.0.1:0",
         "--certfile", str(tmp_path / "missing.pem")],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "cannot load the TLS certificate" in result.stderr
    assert "Traceback" not in result.stderr


def test_pending_handshakes_hold_no_greenlet(serve, certificate):
    """A client that connects and says nothing keeps its TLS handshake parked on a watcher, not in a greenlet."""
    import resource

    ca, cert, key = certificate

    def handler(request):
        import gc

        from greenlet import greenlet

        return {"body": str(sum(1 for o in gc.get_objects() if issubclass(type(o), greenlet)))}

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    silent = []
    try:
        server = serve(handler, certfile=cert, keyfile=key)
        url = f"https://127.0.0.1:{server.port}/"
        before = int(requests.get(url, verify=ca, timeout=10).text)
        silent = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(300)]
        # A complete handshake behind the silent ones: every one of them has been accepted by now.
        during = int(requests.get(url, verify=ca, timeout=10).text)
    finally:
        for sock in silent:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert during < before + 20, (before, during)
