"""One client connection: read a request, call the app, write the response.

A connection waiting for bytes (new, idle between keep-alive requests, or
with half a request head) has no greenlet: it is parked on its read watcher,
whose callback lends it a greenlet from the worker's pool once bytes arrive.
That greenlet parses the head, calls the app and writes the response, then
goes back to the pool when the connection waits again.  Requests on a
connection are handled strictly in order, so pipelined requests get their
responses in order.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import TYPE_CHECKING

from gevent import Timeout, get_hub

from .._accel import runs_compiled
from ..http import (
    After,
    ProtocolError,
    advance,
    after_response,
    body_reader,
    may_send_continue,
    response_keeps_alive,
)
from ._async import INTERNAL_ERROR, AsyncResponse
from ._body import ClientDisconnected, RequestBody
from ._channel import ChannelResponse
from ._cycle import RequestCycle
from ._handover import Handover
from ._outcome import (
    BYTES,
    CLOSE,
    CLOSED,
    DRAIN_BODY,
    HEAD,
    MAX_DRAIN,
    NEXT,
    NEXT_REQUEST,
    ON_HEAD,
    ON_RESPONDED,
    PARKED,
    RECEIVING_HEAD,
    RESPONDED,
    WAITING,
    Outcome,
)
from ._request_id import request_id
from ._tls import TLSSocket
from ._transport import RECV_SIZE, Transport

if TYPE_CHECKING:
    from ._server import WorkerServer

log = logging.getLogger("preforkit.error")


GATEWAY_TIMEOUT = {"status": 504, "headers": {"Content-Type": "text/plain"}, "body": b"Gateway Timeout\n"}


class _CompiledState:
    """Nothing in Python.  Compiled, an extension type that ``Connection`` (then one too,
    see ``_c_connection.pxd``) must name first: its methods then read and write their
    slots as C struct fields, where a Python attribute access costs ~100 instructions."""

    __slots__ = ()


class Connection(_CompiledState, Transport, RequestCycle, Handover):
    """State of one accepted socket, served in pooled greenlets until it closes.

    The socket is a plain non-blocking one.  Waiting for a request parks the
    connection on its read watcher with no greenlet (``wait_for_request``);
    a body read or a write that would block while app code runs parks the
    lent greenlet on an io watcher of the hub.  There is no timer per
    operation; the server's sweeper ends connections whose current wait began
    more than ``keepalive`` seconds ago (``WorkerServer._sweep``).
    """

    __slots__ = (
        "_environs",
        "_held",
        "_hub",
        "_read_watcher",
        "_write_watcher",
        "buffer",
        "channel",
        "closed",
        "closing",
        "fd",
        "head_started",
        "held",
        "local",
        "peer",
        "remote_addr",
        "request_id",
        "responder",
        "served",
        "server",
        "sock",
        "state",
        "timed_out",
        "tls",
        "trusted",
        "waiting_since",
        "waiting_write",
    )

    def __init__(self, sock: socket.socket, peer, server: WorkerServer, local: tuple, hub=None) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.tls = type(sock) is TLSSocket
        self.peer = peer
        self.server = server
        self.local = local  # (host, port, scheme) of the listener
        # A unix-socket peer is a proxy on this host; a TCP peer must be listed.
        self.trusted = peer[0] in server.trusted_proxies if isinstance(peer, tuple) else True
        self.remote_addr = peer[0] if isinstance(peer, tuple) else ""
        self.buffer = bytearray()
        self.served = 0  # responses written on this connection
        self.closing = False
        self.waiting_since = 0.0  # when the current I/O wait began; 0 when not waiting
        self.waiting_write = False  # that wait is for the socket to take more output
        self.head_started = 0.0  # when the first byte of an incomplete request head arrived
        self.timed_out = False  # the sweeper ended a slow head or body (answered with 408)
        self.held = False  # parked, waiting for an async response (no greenlet)
        self.closed = False
        self.state = WAITING  # where the HTTP conversation stands (preforkit.http.State)
        self.responder = None
        self.request_id = None  # the current request's id with --request-id
        self.channel = None  # a WebSocket or stream channel owns the connection
        self._held = None  # (head, request, keep_alive, started) of the held request
        self._environs = None  # this connection's WSGI environs (wsgi.ConnectionEnvirons), made on first use
        self._hub = get_hub() if hub is None else hub  # the accept loop's, given: get_hub() costs ~700 instructions
        self._read_watcher = None
        self._write_watcher = None

    # -- the request loop ---------------------------------------------------------

    def start(self) -> None:
        """A new connection: serve it in a pooled greenlet (its request is often there
        already); with TLS, after a handshake driven by the hub's watchers, with no greenlet;
        with --proxy-protocol, after its PROXY header (from a trusted peer only)."""
        if self.server.config.proxy_protocol:
            if not self.trusted:
                log.info("PROXY protocol: closing the connection from %s, not in --forwarded-allow-ips", self.peer)
                self.close()
                return
            self.head_started = time.monotonic()  # --header-timeout bounds the wait for the header
            self._proxy_step()
            return
        if self.tls:
            self._begin()
            return
        # A plain connection: take what came with it.  Nothing yet (the usual case under
        # load: accept() beats the request): wait for it without a greenlet; bytes, EOF
        # or an error: serve it, as _begin() would.
        data = _bytes_waiting_now(self.fd) if FAST_FIRST_READ else _bytes_waiting(self.sock)  # noqa: F821
        if data is None:
            self.wait_for_request()
            return
        self.buffer += data
        self.server.pool.spawn(self._run_readable)

    def _begin(self) -> None:
        if self.tls:
            self.head_started = time.monotonic()  # --header-timeout bounds the handshake
            self._handshake_step()
        else:
            self.server.pool.spawn(self._run_readable)

    def _handshake_step(self) -> None:
        """Advance the TLS handshake as far as the bytes allow; park on a watcher for the rest."""
        for watcher in (self._read_watcher, self._write_watcher):
            if watcher is not None:
                watcher.stop()
        try:
            self.sock.handshake()
        except BlockingIOError:
            watcher = self.write_watcher() if self.sock.pending else self.read_watcher()
            watcher.start(self._handshake_step)
            return
        except OSError as exc:
            log.debug("TLS handshake with %s failed: %s", self.peer, exc)
            self.close()
            return
        except Exception:  # in the hub: never let it see an error of ours
            log.exception("Error in the TLS handshake with %s", self.peer)
            self.close()
            return
        self.head_started = 0.0
        self.server.pool.spawn(self.run)

    def wait_for_request(self) -> None:
        """Park without a greenlet until the client sends bytes (or leaves)."""
        if self.buffer and self.state is not RECEIVING_HEAD:
            self.state = advance(self.state, BYTES)
        self.waiting_since = time.monotonic()  # the sweeper applies --keepalive to an idle wait
        watcher = self._read_watcher
        if watcher is None:
            watcher = self.read_watcher()
        watcher.start(self._readable_when_waiting)

    def _readable_when_waiting(self) -> None:
        """In the hub: bytes (or EOF) arrived for a parked connection; lend it a greenlet."""
        self._read_watcher.stop()
        self.waiting_since = 0.0
        self.server.pool.spawn(self._run_readable)

    def _run_readable(self) -> None:
        """In a pooled greenlet: serve what arrived, until the connection parks or closes."""
        try:  # _guard and _serve_loop, inlined: this runs once per keep-alive request
            outcome = self._serve_one(True)
            while outcome is NEXT:
                if not self.buffer and not self.tls:
                    # Nothing more to read: park at once.  wait_for_request() with an empty
                    # buffer, inlined: the call measured ~700 instructions per keep-alive request.
                    self.waiting_since = time.monotonic()
                    (self._read_watcher or self.read_watcher()).start(self._readable_when_waiting)
                    return
                outcome = self._serve_one(False)
            if outcome is PARKED:
                return
        except (ConnectionError, ClientDisconnected):
            pass
        except OSError as exc:
            log.debug("connection error from %s: %s", self.peer, exc)
        except Exception:  # a bug of ours (an illegal state move...): log it, never leak the connection
            log.exception("Error serving %s", self.peer)
        self.close()

    def run(self) -> None:
        """Serve requests until the connection closes or parks."""
        self._guard(self._serve_loop)

    def _serve_loop(self) -> Outcome:
        """Serve requests until one says to close or to park (nothing is known to be readable)."""
        outcome = self._serve_one(False)
        while outcome is NEXT:
            outcome = self._serve_one(False)
        return outcome

    def _guard(self, step, *args) -> None:
        """Run ``step``; close the connection unless it parked. Client I/O errors end quietly."""
        try:
            if step(*args) is PARKED:
                return
        except (ConnectionError, ClientDisconnected):
            pass
        except OSError as exc:
            log.debug("connection error from %s: %s", self.peer, exc)
        except Exception:  # a bug of ours (an illegal state move...): log it, never leak the connection
            log.exception("Error serving %s", self.peer)
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.state = CLOSED
        for watcher in (self._read_watcher, self._write_watcher):
            if watcher is not None:
                watcher.close()
        self._read_watcher = self._write_watcher = None
        try:
            self.sock.close()
        except OSError:
            pass
        self.server.connection_closed(self)

    def _read_head(self, readable: bool):
        """The next request head; None at EOF, PARKED when the connection must wait for bytes.

        ``readable`` says bytes are waiting; otherwise, with nothing buffered
        (a response was just sent), the connection parks without a read
        attempt, which would cost a syscall and an exception.  Not with TLS,
        whose decrypted bytes may already wait in memory.
        """
        buffer = self.buffer
        parser = self.server.parser
        result = parser.parse(buffer) if buffer else None
        while result is None:
            if buffer and not self.head_started:
                # Only an incomplete head is timed (--header-timeout): the usual
                # head arriving in one piece costs no clock reading.
                self.head_started = time.monotonic()
            data = None
            if readable or self.tls:
                readable = False
                try:
                    data = self.sock.recv(RECV_SIZE)
                except BlockingIOError:
                    pass
            if data is None:
                self.wait_for_request()
                return PARKED
            if not data:
                return None
            buffer += data
            result = parser.parse(buffer)
        if self.head_started:
            self.head_started = 0.0
        head, used = result
        del buffer[:used]
        state = ON_HEAD[self.state]
        self.state = advance(self.state, HEAD) if state is None else state  # advance() raises: an illegal move
        return head

    def _serve_one(self, readable: bool) -> Outcome:
        """Serve one request, or park until one arrives."""
        try:
            head = self._read_head(readable)
        except ProtocolError as exc:
            self._reject(exc)
            return CLOSE
        if head is PARKED:
            return PARKED
        if head is None:
            if self.timed_out:
                self._reject(ProtocolError("the request head took too long (--header-timeout)", 408))
            return CLOSE
        server = self.server
        started = time.time() if server.timed else 0.0
        # RequestHead.has_body, then body_reader(), without a call for the usual body-less request
        reader = (
            body_reader(head.content_length, head.chunked, server.limits.max_body)
            if head.chunked or head.content_length
            else None
        )
        body = (
            RequestBody(self, reader, head.expect_continue and may_send_continue(head.http_version, True, False))
            if reader is not None
            else None
        )
        remote_addr, scheme = self._client(head)
        timer = Timeout(server.request_timeout) if server.request_timeout else None
        try:
            if timer is not None:
                timer.start()
            if server.request_ids:
                response = self._call_with_id(head, body, remote_addr, scheme)
            elif server.wsgi is None:
                response = server.app(self._request(head, body, remote_addr, scheme))
            else:
                response = server.wsgi(self._environ(head, body, remote_addr, scheme))
        except ProtocolError as exc:  # raised by the body while the app read it
            self._reject(exc)
            return CLOSE
        except ClientDisconnected:
            if self.timed_out:
                self._reject(ProtocolError("the request body stalled (--body-timeout)", 408))
            return CLOSE
        except Timeout as exc:
            if exc is not timer:
                raise
            log.error("Request %s %s took over %.1f s (--request-timeout)", head.method, head.target, timer.seconds)
            response = GATEWAY_TIMEOUT
        except Exception:
            log.exception("Error handling request %s %s", head.method, head.target)
            response = INTERNAL_ERROR
        finally:
            if timer is not None:
                timer.close()
        if type(response) is AsyncResponse:
            return self._hold(head, remote_addr, body, response, head.keep_alive and not self.closing, started)
        if type(response) is ChannelResponse:
            return self._open_channel(head, remote_addr, body, response, head.keep_alive and not self.closing, started)
        # response_keeps_alive() with nothing left to read, inlined: this runs on every request
        body_done = body is None or body.done
        if body_done:
            keep_alive = head.keep_alive and not self.closing
        else:  # say now if the unread rest of the body cannot be skipped
            keep_alive = response_keeps_alive(
                head.keep_alive, self.closing, False, body.awaiting_continue, body.remaining, MAX_DRAIN
            )
        status, sent, keep_alive = self._write_response(head, response, keep_alive)
        self.served += 1
        server.request_done()
        if server.timed:
            server.log_request(remote_addr, head, status, sent, started, self.request_id)
        # after_response() with nothing left to read, inlined (this runs on every request)
        step = (NEXT_REQUEST if keep_alive else After.CLOSE) if body_done else after_response(keep_alive, body.done)
        if step is NEXT_REQUEST or (step is DRAIN_BODY and self._skip_body(body, keep_alive)):
            state = ON_RESPONDED[self.state]
            self.state = advance(self.state, RESPONDED) if state is None else state
            return NEXT
        return CLOSE

    def _call_with_id(self, head, body, remote_addr: str, scheme: str):
        """The app's call with ``--request-id``: the id in the request, then on the response."""
        server = self.server
        self.request_id = rid = request_id(head.headers)
        if server.wsgi is None:
            request = self._request(head, body, remote_addr, scheme)
            request["request_id"] = rid
            return server.app(request)
        environ = self._environ(head, body, remote_addr, scheme)
        environ["preforkit.request_id"] = rid
        return server.wsgi(environ)

    def _skip_body(self, body, keep_alive: bool) -> bool:
        """Discard what is left of the request body (at most MAX_DRAIN bytes)
        so the connection can be reused; False when it cannot be."""
        if body is None or body.done:
            return keep_alive
        try:
            return keep_alive and body.drain(MAX_DRAIN)
        except ProtocolError:
            return False


def _bytes_waiting(sock: socket.socket) -> bytes | None:
    """What a new client sent so far: bytes (b"" at EOF, or on an error left for the
    serving greenlet to meet), or None when nothing came yet."""
    try:
        return sock.recv(RECV_SIZE)
    except BlockingIOError:
        return None
    except OSError:
        return b""


# This module's compiled twin runs: its _c_connection.pxd has _bytes_waiting_now, recv(2) from C.
FAST_FIRST_READ = runs_compiled(_bytes_waiting)

from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
