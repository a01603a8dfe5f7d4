"""The client address and scheme behind trusted proxies.

``X-Forwarded-For`` / ``X-Forwarded-Proto`` and ``Forwarded`` (RFC 7239) are
believed only from peers in ``--forwarded-allow-ips``; then the chain is
walked from the right, past every trusted proxy, to the first hop that is not
one: that is the client.
"""

from __future__ import annotations


def _hop_address(value: str) -> str:
    """``"[2001:db8::1]:4711"`` → ``2001:db8::1``; ``1.2.3.4:80`` → ``1.2.3.4``."""
    value = value.strip().strip('"')
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def _parse_forwarded(header: str) -> tuple[list[str], str | None]:
    hops: list[str] = []
    proto = None
    for element in header.split(","):
        for pair in element.split(";"):
            name, _, value = pair.partition("=")
            name = name.strip().lower()
            if name == "for":
                hops.append(_hop_address(value))
            elif name == "proto":
                proto = value.strip().strip('"').lower()
    return hops, proto


def forwarded_client(headers: dict, peer: str, trusted: frozenset) -> tuple[str, str | None]:
    """(client address, scheme or None) for a request from trusted ``peer``."""
    forwarded = headers.get("forwarded")
    if forwarded is not None:
        hops, proto = _parse_forwarded(forwarded)
    else:
        xff = headers.get("x-forwarded-for")
        hops = [_hop_address(hop) for hop in xff.split(",")] if xff else []
        proto = headers.get("x-forwarded-proto")
        if proto is not None:
            proto = proto.split(",")[-1].strip().lower()
    client = peer
    trust_all = "*" in trusted
    for hop in reversed(hops):
        if not hop:
            break
        client = hop
        if not (trust_all or hop in trusted):
            break
    if proto not in ("http", "https"):
        proto = None
    return client, proto
