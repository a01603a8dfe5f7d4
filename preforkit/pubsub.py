"""Publish/subscribe across every worker of a server and, with Redis, across hosts.

    from preforkit import pubsub

    pubsub.subscribe("chat", lambda message: ...)   # at import time or in a handler
    pubsub.publish("chat", {"text": "hi"})            # from a handler, a greenlet or an OS thread

Messages are ``str``, ``bytes`` or anything JSON-able (delivered as the
decoded JSON value), at most 1 MiB encoded.  Delivery is at-most-once, in
order per publisher; see the README for what happens when a worker is slow
or Redis is down.
"""

from __future__ import annotations

from typing import Any, Callable

from .worker._bus import BUS, MAX_MESSAGE, Subscription

__all__ = ["MAX_MESSAGE", "Subscription", "publish", "subscribe"]


def publish(topic: str, message: Any) -> None:
    """Send ``message`` to every subscriber of ``topic`` in every worker (this one included)."""
    BUS.publish(topic, message)


def subscribe(topic: str, callback: Callable[[Any], Any] | None = None) -> Subscription:
    """Receive ``topic``'s messages in this worker.

    With ``callback``, it is called as ``callback(message)`` in a greenlet of
    the worker's hub for each message.  Without, the returned subscription is
    an iterator (``for message in subscription``, or ``.get(timeout=)``)
    that holds up to 1024 messages before dropping the newest.
    ``subscription.close()`` stops it.
    """
    return BUS.subscribe(topic, callback)
