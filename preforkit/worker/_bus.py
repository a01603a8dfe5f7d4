"""The worker's end of pub/sub: local subscriptions, and the link to the master.

A worker under a master holds one end of a unix socketpair made before the
fork; the master fans every published frame out to all workers (or through
Redis to every instance).  Without a master (``preforkit.serve``), publishing
delivers straight to this process's subscribers.

Frames: 4-byte big-endian length, then the body: 2-byte topic length, the
UTF-8 topic, one tag byte (``s`` str, ``b`` bytes, ``j`` JSON) and the payload.
"""

from __future__ import annotations

import json
import logging
import struct

import gevent
from gevent.queue import Full, Queue

from .._common.frames import LINK_LIMIT, frame, split_frames
from .._common.outbox import Outbox
from ._hub import call_in_hub

log = logging.getLogger("preforkit.error")


MAX_MESSAGE = 1024 * 1024  # encoded size limit of one published message
MAX_TOPIC = 256
QUEUE_SIZE = 1024  # messages an iterator subscription holds before dropping
_TOPIC = struct.Struct("!H")


def encode(topic: str, message) -> bytes:
    """The frame body for ``message`` on ``topic`` (ValueError when invalid or too big)."""
    if not isinstance(topic, str) or not topic or len(topic) > MAX_TOPIC or "\0" in topic:
        raise ValueError(f"a topic is a non-empty str of at most {MAX_TOPIC} characters")
    if isinstance(message, str):
        tag, payload = b"s", message.encode("utf-8")
    elif isinstance(message, (bytes, bytearray, memoryview)):
        tag, payload = b"b", bytes(message)
    else:
        try:
            tag, payload = b"j", json.dumps(message, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"a message is str, bytes or JSON-able: {exc}") from None
    if len(payload) > MAX_MESSAGE:
        raise ValueError(f"a message is at most {MAX_MESSAGE} bytes once encoded ({len(payload)} given)")
    name = topic.encode("utf-8")
    return _TOPIC.pack(len(name)) + name + tag + payload


def decode(body: bytes):
    """(topic, message) from a frame body."""
    (size,) = _TOPIC.unpack_from(body)
    topic = body[2 : 2 + size].decode("utf-8")
    tag, payload = body[2 + size : 3 + size], body[3 + size :]
    if tag == b"s":
        return topic, payload.decode("utf-8")
    if tag == b"j":
        return topic, json.loads(payload)
    return topic, bytes(payload)


class Subscription:
    """A subscription: a callback, or an iterator of messages (``for m in sub``)."""

    def __init__(self, bus: Bus, topic: str, callback) -> None:
        self.bus = bus
        self.topic = topic
        self.callback = callback
        self.queue = Queue(QUEUE_SIZE) if callback is None else None
        self.dropped = 0

    def _offer(self, message) -> None:
        counts = self.bus.counts
        if self.callback is not None:
            counts[1] += 1
            gevent.spawn_raw(self._call, message)
            return
        try:
            self.queue.put_nowait(message)
            counts[1] += 1
        except Full:
            counts[2] += 1
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("pubsub: a subscriber of %r is too slow; %d messages dropped", self.topic, self.dropped)

    def _call(self, message) -> None:
        try:
            self.callback(message)
        except Exception:
            log.exception("Error in a pubsub subscriber of %r", self.topic)

    def get(self, timeout: float | None = None):
        """The next message (iterator subscriptions); blocks cooperatively."""
        return self.queue.get(timeout=timeout)

    def __iter__(self):
        while True:
            yield self.queue.get()

    def close(self) -> None:
        self.bus.unsubscribe(self)


class Bus:
    """This process's subscriptions and its link to the other workers."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, list[Subscription]] = {}
        self.hub = None  # the hub that delivers messages (set by the worker)
        self._sock = None
        self._read_watcher = None
        self._write_watcher = None
        self._inbuf = bytearray()
        self._outbox = Outbox(max_bytes=LINK_LIMIT)  # frames for the master
        self._writing = False
        self.counts = [0, 0, 0]  # messages published here, delivered to subscribers here, dropped

    # -- API --------------------------------------------------------------------------

    def subscribe(self, topic: str, callback=None) -> Subscription:
        encode(topic, "")  # validates the topic
        subscription = Subscription(self, topic, callback)
        self.subscriptions.setdefault(topic, []).append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self.subscriptions.get(subscription.topic, [])
        if subscription in subscribers:
            subscribers.remove(subscription)

    def publish(self, topic: str, message) -> None:
        body = encode(topic, message)
        self.counts[0] += 1
        hub = self.hub
        if hub is None:
            self._publish_in_hub(body)
        else:
            call_in_hub(hub, self._publish_in_hub, body)

    # -- the link (in the hub) ----------------------------------------------------------

    def attach(self, sock) -> None:
        """Use ``sock`` (non-blocking, to the master) for every publish from now on."""
        from gevent import get_hub

        self.hub = get_hub()
        self._sock = sock
        self._read_watcher = self.hub.loop.io(sock.fileno(), 1)
        self._read_watcher.start(self._readable)
        self._write_watcher = self.hub.loop.io(sock.fileno(), 2)

    def _publish_in_hub(self, body: bytes) -> None:
        if self._sock is None:
            self._deliver(body)  # no master: this process is everyone
            return
        outbox = self._outbox
        if not outbox.push(frame(body)):
            self.counts[2] += 1
            if outbox.dropped in (1, 10, 100) or outbox.dropped % 1000 == 0:
                log.warning("pubsub: the master reads too slowly; %d publishes dropped", outbox.dropped)
            return
        self._flush()

    def _flush(self) -> None:
        outbox = self._outbox
        try:
            done = outbox.flush(self._sock.send)
        except OSError as exc:
            log.error("pubsub: the link to the master failed: %s", exc)
            outbox.clear()
            done = True
        if not done:
            if not self._writing:
                self._writing = True
                self._write_watcher.start(self._flush)
            return
        if self._writing:
            self._writing = False
            self._write_watcher.stop()

    def _readable(self) -> None:
        try:
            data = self._sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._read_watcher.stop()
            return
        self._inbuf += data
        for body in split_frames(self._inbuf):
            self._deliver(body)

    def _deliver(self, body: bytes) -> None:
        topic, message = decode(body)
        for subscription in list(self.subscriptions.get(topic, ())):
            subscription._offer(message)


BUS = Bus()
