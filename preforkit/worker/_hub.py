"""Run a function in the worker's hub, from whatever thread the caller is on.

``respond``, ``ch.send`` and ``pubsub.publish`` may be called from a gevent
threadpool thread or a plain OS thread; all of them reach the hub through
this one helper (gevent's ``run_callback_threadsafe``: an async watcher).
"""

from __future__ import annotations

from typing import Any, Callable

from gevent.monkey import get_original

# The real thread id even in a monkey-patched process.
get_ident = get_original("_thread", "get_ident")


def call_in_hub(hub, function: Callable[..., Any], *args: Any) -> None:
    """``function(*args)``: now if we are in ``hub``'s thread, else soon in its loop."""
    if get_ident() == hub.thread_ident:
        function(*args)
    else:
        hub.loop.run_callback_threadsafe(function, *args)
