"""The master's link to Redis pub/sub, in two plain threads of its own.

One thread stays subscribed and hands what arrives to the master loop (a
byte on the loop's wake-up pipe); the other publishes.  Each reconnects with
backoff after an outage and logs how long it lasted; publishes made while
Redis is unreachable are dropped and counted (at-most-once delivery).  What
waits to be published is bounded by ``OUTBOUND_LIMIT`` bytes: past it the
oldest messages are dropped (and counted), so the master's memory stays flat
through any outage, like the local broker's links.
"""

from __future__ import annotations

import logging
import os
import time
from _thread import allocate_lock, start_new_thread
from collections import deque
from select import select as _select

log = logging.getLogger("preforkit.error")

CHANNEL = "preforkit:pubsub"
MAX_BACKOFF = 10.0
OUTBOUND_LIMIT = 16 * 1024 * 1024  # bytes waiting to be published; beyond, the oldest are dropped


class RedisLink:
    def __init__(self, url: str, wake_fd: int) -> None:
        try:
            import redis  # noqa: F401
        except ImportError:
            raise RuntimeError("--pubsub redis://... needs the redis package: pip install 'preforkit[redis]'") from None
        self.url = url
        self._wake_fd = wake_fd
        self._inbound: deque = deque()
        self._outbound: deque = deque()
        self._outbound_lock = allocate_lock()
        self.queued_bytes = 0
        self._kick_read, self._kick_write = os.pipe()
        os.set_blocking(self._kick_write, False)
        self._stopped = False
        self.dropped = 0
        start_new_thread(self._subscribe_forever, ())
        start_new_thread(self._publish_forever, ())

    # -- called from the master loop ------------------------------------------------------

    def publish(self, body: bytes) -> None:
        dropped = 0
        with self._outbound_lock:
            self._outbound.append(body)
            self.queued_bytes += len(body)
            while self.queued_bytes > OUTBOUND_LIMIT and len(self._outbound) > 1:
                self.queued_bytes -= len(self._outbound.popleft())
                dropped += 1
            self.dropped += dropped
            total = self.dropped
        if dropped and _worth_logging(total, dropped):
            log.warning("pubsub: Redis is not keeping up; %d messages dropped so far (the oldest first)", total)
        try:
            os.write(self._kick_write, b"p")
        except BlockingIOError:
            pass

    def received(self) -> list[bytes]:
        items = []
        while self._inbound:
            items.append(self._inbound.popleft())
        return items

    def close(self) -> None:
        self._stopped = True
        try:
            os.write(self._kick_write, b"q")
        except OSError:
            pass

    # -- threads --------------------------------------------------------------------------

    def _client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=0)

    def _subscribe_forever(self) -> None:
        down_since = None
        backoff = 0.5
        while not self._stopped:
            try:
                pubsub = self._client().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                if down_since is not None:
                    log.warning("pubsub: Redis subscription back after %.1f s", time.monotonic() - down_since)
                else:
                    log.info("pubsub: subscribed to %s on %s", CHANNEL, _safe(self.url))
                down_since, backoff = None, 0.5
                while not self._stopped:
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        self._inbound.append(message["data"])
                        try:
                            os.write(self._wake_fd, b"r")
                        except BlockingIOError:
                            pass
            except Exception as exc:
                if self._stopped:
                    return
                if down_since is None:
                    down_since = time.monotonic()
                    log.error("pubsub: Redis subscription lost (%s); reconnecting", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _publish_forever(self) -> None:
        client = None
        down_since = None
        while not self._stopped:
            if not self._outbound:
                _select([self._kick_read], [], [], 1.0)
                try:
                    os.read(self._kick_read, 4096)
                except BlockingIOError:
                    pass
                continue
            with self._outbound_lock:
                if not self._outbound:
                    continue
                body = self._outbound.popleft()
                self.queued_bytes -= len(body)
            try:
                if client is None:
                    client = self._client()
                client.publish(CHANNEL, body)
                if down_since is not None:
                    log.warning(
                        "pubsub: Redis publishing back after %.1f s; %d messages were dropped",
                        time.monotonic() - down_since,
                        self.dropped,
                    )
                    down_since = None
            except Exception as exc:
                client = None
                self.dropped += 1
                if down_since is None:
                    down_since = time.monotonic()
                    log.error("pubsub: cannot publish to Redis (%s); dropping messages until it is back", exc)
                time.sleep(0.2)


def _worth_logging(total: int, just_dropped: int) -> bool:
    """Log the drop count at 1, 10, 100 and every 1000 more (a storm logs a few lines, not one each)."""
    before = total - just_dropped
    return any(before < mark <= total for mark in (1, 10, 100)) or total // 1000 > before // 1000


def _safe(url: str) -> str:
    """The URL without a password."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
