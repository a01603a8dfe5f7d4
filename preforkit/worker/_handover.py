"""Where a connection is handed to something else: an async response that answers later, or a channel.

Mixed into ``Connection``.  A held request and an open channel keep no
greenlet: the connection waits on its read watcher (noticing EOF, buffering
pipelined bytes) until ``respond`` is called or the channel ends.
"""

from __future__ import annotations

import logging

from ..http import (
    FrameDecoder,
    ProtocolError,
    advance,
    check_handshake,
    choose_subprotocol,
    error_response,
    handshake_response,
    negotiate_deflate,
)
from ._async import INTERNAL_ERROR, STOPPING_RESPONSE, AsyncResponse, Responder
from ._channel import ChannelResponse
from ._cycle import HeadSummary
from ._outcome import (
    CLOSE,
    HAND_BACK,
    HELD_BUFFER_LIMIT,
    HOLD,
    NEXT,
    PARKED,
    RESPONDED,
    RESUME,
    TAKE_OVER,
    Outcome,
)
from ._stream_channel import StreamChannel
from ._ws_channel import WebSocketChannel

log = logging.getLogger("preforkit.error")


class Handover:
    """Async responses and channel hand-over (the state lives in ``Connection``'s slots)."""

    __slots__ = ()

    # -- async responses ----------------------------------------------------------

    def _hold(self, head, remote_addr, body, response: AsyncResponse, keep_alive: bool, started: float):
        """Call ``fn(respond)``; park the connection unless it answered at once."""
        keep_alive = self._skip_body(body, keep_alive)
        self.state = advance(self.state, HOLD)
        responder = self.responder = Responder(self, response.transforms)
        if self.server.access_log is None:
            # Keep only what writing the response needs: a parked connection
            # should not pin the request's headers in memory.
            head = HeadSummary(head.method, head.http_version, head.target)
        self._held = (head, remote_addr, keep_alive, started)
        try:
            response.fn(responder)
        except Exception:
            log.exception("Error in the async response function for %s %s", head.method, head.target)
            responder(INTERNAL_ERROR)
        early = responder._take_early_response()
        if early is not None:
            return self._finish_held(responder._finish(early))
        if not self.held:
            return PARKED  # answered from another thread meanwhile: resume() is on its way
        if response.timeout is not None:
            responder._start_timer(response.timeout, response.timeout_response)
        self.read_watcher().start(self._readable_while_held)
        return PARKED

    def _readable_while_held(self) -> None:
        """In the hub: the client sent more (pipelining) or went away."""
        data = self.recv_nowait()
        if data is None:
            return
        if data:
            self.buffer += data
            if len(self.buffer) > HELD_BUFFER_LIMIT:
                self._read_watcher.stop()  # backpressure until the response is sent
            return
        self._read_watcher.stop()
        if self.responder is not None and self.responder._client_gone():
            self.close()

    def resume(self, response: dict) -> None:
        """In a pooled greenlet: send the async response, then serve on."""
        self.held = False
        if self.closed:
            return
        if self._read_watcher is not None:
            self._read_watcher.stop()
        self._guard(self._resume_serving, response)

    def _resume_serving(self, response: dict) -> Outcome:
        outcome = self._finish_held(response)
        return self._serve_loop() if outcome is NEXT else outcome

    def _finish_held(self, response: dict) -> Outcome:
        self.state = advance(self.state, RESUME)
        head, remote_addr, keep_alive, started = self._held
        self._held = None
        self.responder = None
        status, sent, keep_alive = self._write_response(head, response, keep_alive and not self.closing)
        server = self.server
        server.request_done()
        if server.timed:
            server.log_request(remote_addr, head, status, sent, started, self.request_id)
        if keep_alive:
            self.state = advance(self.state, RESPONDED)
            return NEXT
        return CLOSE

    # -- channels -------------------------------------------------------------------

    def _open_channel(self, head, remote_addr, body, response: ChannelResponse, keep_alive: bool, started: float):
        """Hand the connection to a WebSocket or stream channel, then park it."""
        server = self.server
        config = server.config
        keep_alive = self._skip_body(body, keep_alive)
        if response.websocket:
            try:
                accept = check_handshake(head.method, head.http_version, head.headers)
            except ProtocolError as exc:
                extra = [("Sec-WebSocket-Version", "13")] if exc.status == 426 else []
                log.debug("WebSocket handshake from %s refused: %s", self.peer, exc)
                self.sendall(error_response(exc.status, str(exc), config.server_header, extra))
                return CLOSE
            deflate = negotiate_deflate(head.headers.get("sec-websocket-extensions")) if config.ws_compression else None
            subprotocol = choose_subprotocol(head.headers, response.subprotocols)
            self.sendall(handshake_response(accept, subprotocol, deflate.response if deflate else None))
            server.request_done()
            if server.timed:
                server.log_request(remote_addr, head, 101, 0, started, self.request_id)
            channel = WebSocketChannel(self, response, FrameDecoder(config.max_ws_message, deflate), subprotocol)
        else:
            channel = StreamChannel(self, response, head, keep_alive)
        self.channel = channel
        self.state = advance(self.state, TAKE_OVER)
        server.channel_opened(channel)
        if response.on_open is not None:
            try:
                response.on_open(channel)
            except Exception:
                log.exception("Error in on_open of %r", channel)
        if self.closed or self.channel is not channel or channel._state == 2:
            return PARKED  # closed already, or the connection went back to serving requests
        if channel.is_websocket and self.buffer:
            leftover = bytes(self.buffer)  # frames sent right behind the handshake
            self.buffer.clear()
            channel.receive(leftover)
        if not self.closed:
            self.read_watcher().start(channel._readable)
        return PARKED

    def serve_after_channel(self) -> None:
        """A streamed response ended on a keep-alive connection: serve on."""
        self.channel = None
        if self.closed:
            return
        self.state = advance(self.state, HAND_BACK)
        self.run()

    def stop_held(self) -> None:
        """The worker stops: run on_close and answer 503 (then close)."""
        self.closing = True
        if self.responder is not None and self.responder._client_gone():
            self.server.pool.spawn(self.resume, STOPPING_RESPONSE)
