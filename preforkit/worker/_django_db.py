"""Django's database connections under the greenlet pool.

Django keeps one connection per thread (a ``threading.local``, which
monkey-patching turns into a gevent ``local``: one per greenlet).  The pool
would drop a runner's locals after each request, leaving every persistent
connection (``CONN_MAX_AGE`` > 0) to the garbage collector, still open on the
server: a few thousand requests exhaust PostgreSQL's ``max_connections``.
Instead each runner keeps its connections from request to request, as a
thread of a threaded server does (Django itself checks their age and health
at the start and end of each request), and closes them when it ends: at most
one connection per runner, and runners are bounded by the concurrency.
"""

from __future__ import annotations

import logging
from types import ModuleType

from gevent.local import local

from ._pool import keep_across_tasks

log = logging.getLogger("preforkit.error")


def keep_django_connections(db_module: ModuleType) -> None:
    """Called once ``django.db`` is imported."""
    handler = getattr(db_module, "connections", None)
    storage = getattr(getattr(handler, "_connections", None), "_storage", None)
    if not isinstance(storage, local):
        log.debug("Django's connections are not kept in a gevent local here; left alone")
        return
    keep_across_tasks(storage, _close)


def _close(values: dict) -> None:
    for connection in values.values():
        close = getattr(connection, "close", None)
        if close is not None:
            close()
