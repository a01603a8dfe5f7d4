"""The server's TLS context (no gevent here: the master checks the files before forking)."""

from __future__ import annotations

import ssl


def make_context(certfile: str, keyfile: str | None = None, ca_certs: str | None = None) -> ssl.SSLContext:
    """A server context: TLS 1.2 and newer, ALPN ``http/1.1``, client certificates when ``ca_certs`` is set.

    Raises ``ssl.SSLError``/``OSError`` when the files cannot be loaded.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    context.set_alpn_protocols(["http/1.1"])
    context.options |= ssl.OP_NO_COMPRESSION
    if ca_certs:
        context.load_verify_locations(ca_certs)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
