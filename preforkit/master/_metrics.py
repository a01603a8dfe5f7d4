"""``--metrics-bind HOST:PORT``: Prometheus metrics, served by the master.

Every figure comes from the shared slot board (each worker writes its
counters there with its heartbeat) or from the master's own bookkeeping, so a
scrape never touches a worker's event loop.  Counters of workers that have
exited are kept (``RetiredCounters``), so totals never go back.  The text is
Prometheus's exposition format 0.0.4, which ``promtool check metrics`` accepts.
"""

from __future__ import annotations

import socket
import struct

from .._common.stats import DURATION_BOUNDS, STATUS_CLASSES
from ._binding import address_of, parse_address
from ._control import answer_each, worker_rss, worker_state

RESTART_REASONS = ("crash", "hung", "max_requests", "memory", "reload")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TCP_INFO_UNACKED = struct.Struct("=24xI")  # tcp_info.tcpi_unacked: a listener's accept queue length


class RetiredCounters(dict):
    """Counters of the workers that exited, added up."""

    def add(self, counters: dict) -> None:
        for name, value in counters.items():
            self[name] = self.get(name, 0) + value


class MetricsServer:
    """A listening TCP socket answered from the master's loop: ``GET /metrics``."""

    def __init__(self, address: str) -> None:
        kind, *where = parse_address(address, default_port=9090)
        if kind != "tcp":
            raise OSError(f"--metrics-bind takes HOST:PORT, not {address!r}")
        host, port = where
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        sock.listen(64)
        sock.setblocking(False)
        self.sock = sock
        import psutil  # noqa: F401 - imported now, not on the first scrape

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def address(self) -> str:
        return address_of(self.sock)

    def on_readable(self, render) -> None:
        answer_each(self.sock, "Metrics", lambda client: _answer(client, render))

    def close(self) -> None:
        self.sock.close()


def _answer(client: socket.socket, render) -> None:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 16384:
        piece = client.recv(4096)
        if not piece:
            return
        data += piece
    method, _, rest = data.partition(b" ")
    path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
    if method not in (b"GET", b"HEAD"):
        status, body, kind = "405 Method Not Allowed", b"GET /metrics\n", "text/plain"
    elif path not in (b"/metrics", b"/"):
        status, body, kind = "404 Not Found", b"Metrics are at /metrics\n", "text/plain"
    else:
        status, body, kind = "200 OK", render().encode("utf-8"), CONTENT_TYPE
    head = f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    client.sendall(head.encode("latin-1") + (b"" if method == b"HEAD" else body))


def listen_backlog(sock: socket.socket) -> int | None:
    """Connections waiting in ``sock``'s accept queue (Linux TCP), or None where it cannot be read."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_UNACKED.size)
    except (OSError, AttributeError):
        return None
    return _TCP_INFO_UNACKED.unpack(info)[0]


def render(arbiter) -> str:
    """Every metric, now."""
    totals = RetiredCounters(arbiter.retired_counters)
    connections = dict.fromkeys(("idle", "active", "held", "websocket", "stream"), 0)
    worker_states = dict.fromkeys(("booting", "ready", "draining", "retiring"), 0)
    rss = []
    for worker in sorted(arbiter.workers.values(), key=lambda w: w.age):
        slot = worker.slot
        totals.add(slot.counters())
        for state, count in slot.connection_states().items():
            connections[state] += count
        worker_states[worker_state(worker)] += 1
        size = worker_rss(worker.pid)
        if size is not None:
            rss.append((worker.pid, size))
    out: list[str] = []

    def family(name: str, kind: str, text: str, samples) -> None:
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{key}="{_label(val)}"' for key, val in labels.items())
            out.append(f"{name}{{{label_text}}} {_number(value)}" if label_text else f"{name} {_number(value)}")

    family(
        "preforkit_requests_total", "counter", "Responses written, by status class.",
        [({"status": c}, totals.get(f"status_{c}", 0)) for c in STATUS_CLASSES],
    )  # fmt: skip
    buckets, cumulative = [], 0
    for index, bound in enumerate((*DURATION_BOUNDS, float("inf"))):
        cumulative += totals.get(f"bucket_{index}", 0)
        buckets.append(({"le": "+Inf" if bound == float("inf") else repr(bound)}, cumulative))
    out.append("# HELP preforkit_request_duration_seconds Time from the request head to the response written.")
    out.append("# TYPE preforkit_request_duration_seconds histogram")
    for labels, value in buckets:
        out.append(f'preforkit_request_duration_seconds_bucket{{le="{labels["le"]}"}} {value}')
    out.append(f"preforkit_request_duration_seconds_sum {_number(totals.get('duration_sum', 0.0))}")
    out.append(f"preforkit_request_duration_seconds_count {cumulative}")
    family(
        "preforkit_requests_in_flight", "gauge", "Requests being handled or held for an async response.",
        [({}, connections["active"] + connections["held"])],
    )  # fmt: skip
    family(
        "preforkit_connections", "gauge", "Open client connections, by state.",
        [({"state": state}, count) for state, count in connections.items()],
    )  # fmt: skip
    family(
        "preforkit_connections_accepted_total", "counter", "Client connections accepted.",
        [({}, totals.get("accepted", 0))],
    )  # fmt: skip
    family(
        "preforkit_connections_shed_total", "counter",
        "Connections closed or answered 503 to make room at capacity.", [({}, totals.get("shed", 0))],
    )  # fmt: skip
    backlog = [(address_of(sock), listen_backlog(sock)) for sock in arbiter.sockets]
    family(
        "preforkit_listen_backlog", "gauge", "Connections waiting in a listening socket's accept queue (Linux).",
        [({"listener": where}, value) for where, value in backlog if value is not None],
    )  # fmt: skip
    family(
        "preforkit_workers", "gauge", "Worker processes, by state.",
        [({"state": state}, count) for state, count in worker_states.items()],
    )  # fmt: skip
    family(
        "preforkit_worker_rss_bytes", "gauge", "Resident memory of each worker.",
        [({"worker": str(pid)}, size) for pid, size in rss],
    )  # fmt: skip
    family(
        "preforkit_worker_restarts_total", "counter", "Workers replaced, by reason.",
        [({"reason": reason}, arbiter.restarts.get(reason, 0)) for reason in RESTART_REASONS],
    )  # fmt: skip
    family(
        "preforkit_websocket_messages_total", "counter", "WebSocket messages, by direction.",
        [({"direction": "in"}, totals.get("ws_in", 0)), ({"direction": "out"}, totals.get("ws_out", 0))],
    )  # fmt: skip
    family(
        "preforkit_pubsub_messages_total", "counter", "Pub/sub messages, by outcome (counted in the workers).",
        [({"outcome": o}, totals.get(f"pubsub_{o}", 0)) for o in ("published", "delivered", "dropped")],
    )  # fmt: skip
    family(
        "preforkit_master_start_time_seconds",
        "gauge",
        "When the master started (Unix time).",
        [({}, arbiter.started_at)],
    )
    return "\n".join(out) + "\n"


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value) -> str:
    if isinstance(value, float):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else "NaN"
    return str(value)
