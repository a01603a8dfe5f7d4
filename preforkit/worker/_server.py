"""The worker's server: accept loops, capacity, the sweeper, graceful stop."""

from __future__ import annotations

import _socket
import errno
import logging
import socket
import sys
import time
from bisect import bisect_left

import gevent
from gevent import get_hub
from gevent.event import Event

from .._common.stats import DURATION_BOUNDS, WorkerCounters
from ..http import HeadLimits, HeadParser
from ._accept import Acceptor, accept_client
from ._access_log import AccessLog
from ._bus import BUS
from ._capacity import AtCapacity, Refusal, answer_now, capacity, pending
from ._connection import Connection
from ._outcome import WAITING
from ._pool import GreenletPool
from ._tls import make_context
from .wsgi import WSGIAdapter

log = logging.getLogger("preforkit.error")

# Accept balancing between workers sharing a listening socket: a worker with
# more than BALANCE_SLACK (+1/8) connections above another serving worker lets
# a new connection wait this long for that worker before taking it itself.
BALANCE_SLACK = 4
BALANCE_DELAY = 0.001

# trio's lesson: these mean "out of resources right now", not "broken".
ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
RETRY = object()  # _accept_one: accept() failed for a moment; go round again


class WorkerServer:
    """Serves ``app`` on already-bound listening sockets in the current hub.

    ``config`` needs the attributes of ``preforkit.config.Config`` that the
    worker reads (keepalive, limits, server_header, access log settings).
    Sockets are used as plain non-blocking sockets whatever monkey-patching
    is in place; waiting is done on the hub's io watchers.
    """

    def __init__(self, app, config, sockets: list[socket.socket]) -> None:
        self.app = app
        self.wsgi = app if isinstance(app, WSGIAdapter) else None
        self.request_ids = config.request_id  # --request-id
        self.trusted_proxies = frozenset(config.forwarded_allow_ips)
        self.config = config
        self.limits = HeadLimits(
            max_request_line=config.limit_request_line,
            max_fields=config.limit_request_fields,
            max_field_size=config.limit_request_field_size,
            max_body=config.max_body,
        )
        self.parser = HeadParser(self.limits)
        self.access_log = AccessLog.open(config.access_log, config.access_log_format)
        # For --metrics-bind, published in the slot with each heartbeat.  (Few attributes on this
        # object: past 30, CPython 3.11 stops sharing instance-dict keys and every lookup slows down.)
        self.counters = WorkerCounters(bool(getattr(config, "metrics_bind", None)), BUS.counts)
        self.timed = self.access_log is not None or self.counters.enabled  # each request's start time is needed
        self.listeners = [_raw(sock) for sock in sockets]
        self.tls_context = (
            make_context(config.certfile, config.keyfile, config.ca_certs)
            if getattr(config, "certfile", None)
            else None
        )
        self.capacity = capacity(config.worker_connections)
        self.connections: set[Connection] = set()
        self.channels: set = set()  # open WebSocket and stream channels
        self.pool = GreenletPool()  # greenlets lent to connections and callbacks while app code runs
        self.request_timeout = config.request_timeout
        self.requests = 0  # served so far
        self.max_requests = 0  # recycle after this many (0: never); set by the worker process
        self.on_max_requests = None
        self.stopping = False
        self._idle_grace = 0.0
        self._below_limit = Event()
        self._below_limit.set()
        self._stopped = Event()  # no connections left
        self.finished = Event()  # stop() is complete
        self.slot = None  # this worker's WorkerSlot when a master runs it: load shared with the others
        self._greenlets: list[gevent.Greenlet] = []
        self._full = AtCapacity(config.server_header)  # the spare descriptor, the 503, the warnings

    def start(self) -> None:
        """Start accepting (returns at once)."""
        from ._bus import BUS

        if BUS._sock is None:
            BUS.hub = get_hub()  # in-process pub/sub is delivered by this server's hub
        for listener in self.listeners:
            self._greenlets.append(gevent.spawn(self._accept_loop, listener))
        self._greenlets.append(gevent.spawn(self._sweep))

    def serve_forever(self) -> None:
        """Start and block the calling greenlet until ``stop`` completes."""
        self.start()
        self.finished.wait()

    def _accept_loop(self, listener: _socket.socket) -> None:
        limit = self.capacity
        connections = self.connections
        local = _local_address(listener, "https" if self.tls_context is not None else "http")
        tcp = listener.family in (socket.AF_INET, socket.AF_INET6)
        acceptor = Acceptor(self, listener, local, tcp and not _nodelay_inherited(listener))
        hub = get_hub()
        watcher = hub.loop.io(listener.fileno(), 1)
        share_accepts = self.config.workers > 1 and not (self.config.reuse_port and tcp)
        try:
            while not self.stopping:
                room = limit - len(connections)
                if room <= 0:
                    self._wait_for_room(listener, watcher, limit)
                    continue
                if share_accepts and self._busier_than_another():
                    # Leave the next connection to a less loaded worker; take it
                    # anyway if none has within a moment (busy, hung or gone).
                    gevent.sleep(BALANCE_DELAY)
                    if not pending(listener):
                        hub.wait(watcher)
                        continue
                # Sharing the socket, one connection per wake-up: the other workers,
                # woken for the same backlog, take the next ones instead of this
                # worker draining a whole burst alone.
                most = 1 if share_accepts else room
                try:
                    taken = acceptor.take(most)
                except OSError as exc:
                    if self.stopping:
                        return  # the listener was closed under us
                    if not self._accept_failed(listener, exc):
                        raise
                    continue
                if taken and self.slot is not None:
                    self.slot.count(len(connections))
                if taken < most or share_accepts:
                    hub.wait(watcher)  # none waits now
        finally:
            watcher.close()

    def _wait_for_room(self, listener: _socket.socket, watcher, limit: int) -> None:
        """Full: wait until a client knocks, then make room for it or answer 503.

        Idle keep-alive connections, longest idle first, make room (a flood
        of idle clients must not lock new ones out); when none is idle, every
        waiting client gets 503 at once.  Nothing is shed while nobody is
        waiting to connect, nor when another worker sharing the socket takes
        the newcomer within a moment.
        """
        self._below_limit.clear()
        get_hub().wait(watcher)  # level-triggered: returns while a connection is pending
        if self._below_limit.wait(0.05) or self.stopping or not pending(listener):
            return
        if self._shed_idle(max(1, limit // 10)):
            self._below_limit.wait(0.1)
            return
        self._full.full_warning.warn(len(self.connections))
        self._refuse_waiting(listener)

    def _refuse_waiting(self, listener: _socket.socket, most: int = 256) -> None:
        """Accept up to ``most`` waiting clients and answer each 503."""
        loop = get_hub().loop
        for _ in range(most):
            accepted = self._accept_one(listener)
            if accepted is None or accepted is RETRY:
                return
            Refusal(accepted[0], self._full.busy_response, loop)
            self.counters.shed += 1

    def _accept_one(self, listener: _socket.socket):
        """The next waiting client as (socket, peer); None when none waits; RETRY after
        a transient failure, already dealt with (out of descriptors: 503s; aborted)."""
        try:
            return accept_client(listener)
        except OSError as exc:
            if self._accept_failed(listener, exc):
                return RETRY
            raise

    def _accept_failed(self, listener: _socket.socket, exc: OSError) -> bool:
        """accept() failed: deal with a transient failure (True), or leave it to be raised."""
        if exc.errno in ACCEPT_CAPACITY_ERRNOS:
            self._out_of_descriptors(listener, exc)
            return True
        return exc.errno == errno.ECONNABORTED

    def _out_of_descriptors(self, listener: _socket.socket, exc: OSError) -> None:
        """accept() failed for want of descriptors: answer the waiting clients 503
        with the spare one (unless idle keep-alive connections can make room),
        then pause a moment so a full table is no busy loop."""
        self._full.emfile_warning.warn(exc.strerror)
        if self._shed_idle(max(1, len(self.connections) // 10)):
            self._below_limit.clear()
            self._below_limit.wait(0.1)
            return
        for _ in range(64):
            if not self._full.spare.give_up():
                break
            try:
                accepted = accept_client(listener)
            except OSError:
                accepted = None
            if accepted is None:
                self._full.spare.take_back()
                break
            answer_now(accepted[0], self._full.busy_response)  # closes it
            self.counters.shed += 1
            self._full.spare.take_back()
        gevent.sleep(0.01)

    def _shed_idle(self, count: int) -> int:
        """Close up to ``count`` connections idle between requests, longest idle first."""
        # Keep-alive connections between requests, not new ones whose first request is on its way.
        idle = [c for c in self.connections if c.state is WAITING and c.served and c.waiting_since and not c.closing]
        idle.sort(key=lambda c: c.waiting_since)
        for connection in idle[:count]:
            connection.closing = True
            connection.abort()
        shed = min(count, len(idle))
        if shed:
            log.debug("At capacity: closed %d idle keep-alive connections", shed)
            self.counters.shed += shed
        return shed

    def _busier_than_another(self) -> bool:
        """This worker holds clearly more connections than another serving worker."""
        fewest = self.slot.fewest_elsewhere() if self.slot is not None else None
        return fewest is not None and len(self.connections) > fewest + BALANCE_SLACK + fewest // 8

    def connection_closed(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if self.slot is not None:
            self.slot.count(len(self.connections))
        if len(self.connections) < self.capacity:
            self._below_limit.set()
        if self.stopping and not self.connections:
            self._stopped.set()

    def channel_opened(self, channel) -> None:
        self.channels.add(channel)

    def channel_closed(self, channel) -> None:
        self.channels.discard(channel)

    def log_request(self, remote_addr: str, head, status: int, sent: int, started: float, request_id) -> None:
        """A response written: the access log line, the metrics."""
        if self.access_log is not None:
            self.access_log.log(remote_addr, head, status, sent, started, request_id)
        counters = self.counters
        if counters.enabled:
            counters.statuses[status // 100 % 10] += 1
            elapsed = time.time() - started
            counters.buckets[bisect_left(DURATION_BOUNDS, elapsed)] += 1
            counters.duration_sum += elapsed

    def request_done(self) -> None:
        """Count a served request; past ``max_requests`` the worker recycles."""
        self.requests += 1
        if self.requests == self.max_requests and self.on_max_requests is not None:
            self.on_max_requests(f"served {self.requests} requests (--max-requests)")

    def _sweep(self) -> None:
        """End connections whose current read or write has waited too long.

        One greenlet for all connections instead of a timer per operation
        (http-kit does the same); it runs a few times per ``keepalive``.
        While stopping it also ends connections idle for ``idle_grace``.
        """
        config = self.config
        keepalive, header_timeout, body_timeout = config.keepalive, config.header_timeout, config.body_timeout
        ping_interval, ping_timeout = config.ws_ping_interval, config.ws_ping_timeout
        shortest = min(t for t in (keepalive, header_timeout, body_timeout, ping_interval or 4.0) if t > 0)
        interval = min(1.0, max(shortest / 4, 0.05))
        while True:
            gevent.sleep(0.05 if self.stopping else interval)
            now = time.monotonic()
            idle_deadline = now - self._idle_grace
            for connection in list(self.connections):
                if connection.head_started:
                    if header_timeout and now - connection.head_started > header_timeout:
                        connection.time_out()  # slowloris: 408 and close
                    continue
                since = connection.waiting_since
                if not since:
                    continue
                if connection.state is WAITING:  # between requests
                    expired = since < now - keepalive or (self.stopping and since < idle_deadline)
                elif connection.waiting_write:
                    expired = since < now - keepalive  # a client that stopped reading our response
                else:
                    if body_timeout and since < now - body_timeout:
                        connection.time_out()  # a stalled request body: 408 and close
                    continue
                if expired:
                    connection.closing = True
                    connection.abort()
            if ping_interval:
                for channel in list(self.channels):
                    if channel.is_websocket:
                        channel.check_ping(now, ping_interval, ping_timeout)

    def stop(self, timeout: float = 10.0, idle_grace: float = 0.0) -> None:
        """Stop accepting, let requests in flight finish, close the rest.

        Every response from now on carries ``Connection: close``.  Idle
        keep-alive connections are closed once idle for ``idle_grace``
        seconds (0: at once); a client that sends its next request within
        the grace gets it answered, so a busy client never sees its request
        cut by a close.  Whatever is still busy after ``timeout`` is cut.
        """
        if self.stopping:
            self.finished.wait(timeout)
            return
        self.stopping = True
        self._idle_grace = idle_grace
        self._below_limit.set()
        for greenlet in self._greenlets[:-1]:  # the accept loops; the sweeper stays
            greenlet.kill(block=False)
        for listener in self.listeners:
            listener.close()
        for connection in list(self.connections):
            connection.closing = True
            if connection.channel is not None:
                continue
            if connection.held:
                connection.stop_held()
            elif connection.state is WAITING and idle_grace <= 0:
                connection.abort()
        for channel in list(self.channels):
            channel.stop()
        if not self.connections:
            self._stopped.set()
        deadline = time.monotonic() + timeout
        if not self._stopped.wait(timeout):
            log.warning("Cutting %d connections still busy after %.1f s", len(self.connections), timeout)
            for connection in list(self.connections):
                connection.abort()  # pending reads and writes fail: the handlers end
            self._stopped.wait(1.0)
            for connection in list(self.connections):
                connection.close()
        self._stopped.set()
        # Let on_close callbacks (held responses, channels) run before the hub stops.
        self.pool.join(timeout=max(0.1, deadline - time.monotonic()))
        gevent.killall(self._greenlets, block=False)
        if self.access_log is not None:
            self.access_log.close()
        self._full.spare.close()
        self.finished.set()


def _raw(sock) -> _socket.socket:
    """The plain non-blocking socket for a listening socket bound elsewhere.

    Works for stdlib and gevent socket objects alike; the original object is
    detached and must not be used afterwards.
    """
    family, kind, proto = sock.family, sock.type, sock.proto
    raw = _socket.socket(family, kind, proto, sock.detach())
    raw.setblocking(False)
    return raw


def _nodelay_inherited(listener: _socket.socket) -> bool:
    """Set TCP_NODELAY on the listener, which accepted sockets inherit on Linux (no
    setsockopt per connection); False where they do not, or it cannot be set."""
    try:
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        return False
    return sys.platform.startswith("linux")


def _local_address(listener: _socket.socket, scheme: str) -> tuple[str, int | None, str]:
    """(host, port, scheme) the listener serves, for the request dict."""
    address = listener.getsockname()
    if isinstance(address, tuple):
        return address[0], address[1], scheme
    return "localhost", None, scheme
