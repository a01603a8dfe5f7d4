"""C drivers made to cooperate with gevent once the app imports them.

Monkey-patching replaces Python's sockets, but a driver written in C talks to
its server through libpq's (or its own) sockets, which gevent cannot see: a
slow query would hold the worker's only thread.  Under monkey-patching each
worker arranges, before the app is imported, that every known driver that is
installed is made cooperative as soon as it is imported (not before: importing
psycopg2, psycopg and grpc up front would cost every worker ~50 MiB):

- psycopg2: a wait callback (``psycopg2.extensions.set_wait_callback``) that
  waits for libpq's socket in the hub - unless the app set one of its own;
- psycopg 3: nothing to do - it waits through the patched ``select`` by itself
  when it sees monkey-patching; checked, and a warning if it would block;
- grpcio: ``grpc.experimental.gevent.init_gevent()``.

Drivers that cannot cooperate (``BLOCKING``) get one warning naming a
pure-Python alternative.  Nothing here imports gevent until a driver is used.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import threading
from types import ModuleType
from typing import Callable

log = logging.getLogger("preforkit.error")

# Installed driver module -> what to say about it: they block the worker's thread.
BLOCKING = {
    "MySQLdb": "mysqlclient (MySQLdb) cannot cooperate with gevent: each query blocks the worker;"
    " PyMySQL (pure Python) can",
    "pylibmc": "pylibmc cannot cooperate with gevent: each call blocks the worker; pymemcache (pure Python) can",
    "pymssql": "pymssql cannot cooperate with gevent: each query blocks the worker; python-tds (pure Python) can",
}


def _psycopg2(module: ModuleType) -> str:
    extensions = importlib.import_module("psycopg2.extensions")
    current = extensions.get_wait_callback()
    if current is _psycopg2_wait:
        return "psycopg2: queries wait in the hub (wait callback, set before the fork)"
    if current is not None:
        return f"psycopg2: the app's own wait callback {current!r} kept"
    extensions.set_wait_callback(_psycopg2_wait)
    return "psycopg2: queries wait in the hub (wait callback)"


def _psycopg2_wait(connection, timeout=None) -> None:
    """psycopg2's wait callback: poll libpq, waiting for its socket in the gevent hub."""
    from gevent.socket import wait_read, wait_write
    from psycopg2 import OperationalError
    from psycopg2.extensions import POLL_OK, POLL_READ, POLL_WRITE

    try:
        while True:
            state = connection.poll()
            if state == POLL_OK:
                return
            if state == POLL_READ:
                wait_read(connection.fileno())
            elif state == POLL_WRITE:
                wait_write(connection.fileno())
            else:
                raise OperationalError(f"psycopg2: unexpected poll() result {state!r}")
    except BaseException:
        # Interrupted (a gevent.Timeout, the greenlet killed): ask the server to
        # stop the query; the connection is left for its owner to close.
        try:
            connection.cancel()
        except Exception:
            pass
        raise


def _psycopg(module: ModuleType) -> str:
    waiting = importlib.import_module("psycopg.waiting")
    if getattr(waiting, "wait_c", None) is not None and waiting.wait is waiting.wait_c:
        log.warning(
            "psycopg %s waits in C and would block the worker under gevent; upgrade psycopg",
            getattr(module, "__version__", "?"),
        )
        return "psycopg: blocking (upgrade psycopg)"
    return f"psycopg: waits through the patched select ({waiting.wait.__name__})"


def _grpc(module: ModuleType) -> str:
    importlib.import_module("grpc.experimental.gevent").init_gevent()
    return "grpc: init_gevent()"


# Driver module -> how to make it cooperate once imported; the result is logged.
COOPERATIVE: dict[str, Callable[[ModuleType], str]] = {
    "psycopg2": _psycopg2,
    "psycopg": _psycopg,
    "grpc": _grpc,
}


def installed(names) -> list[str]:
    """Those of ``names`` that could be imported here (without importing them)."""
    found = []
    for name in names:
        try:
            if name in sys.modules or importlib.util.find_spec(name) is not None:
                found.append(name)
        except (ImportError, ValueError):
            pass
    return found


def warn_blocking_drivers() -> None:
    """One warning line per installed driver that cannot cooperate."""
    for name in installed(BLOCKING):
        log.warning("%s", BLOCKING[name])


def make_drivers_cooperative(who: str) -> list[str]:
    """Make every installed known driver cooperative when it is imported; the ones arranged.

    Call after monkey-patching and before the app is imported.  ``who`` starts
    the log line each integration writes when it is applied ("Worker 123").
    """
    names = installed(COOPERATIVE)
    for name in names:
        after_import(name, _applier(who, COOPERATIVE[name]))
    return names


def _applier(who: str, apply: Callable[[ModuleType], str]) -> Callable[[ModuleType], None]:
    def applied(module: ModuleType) -> None:
        try:
            log.info("%s: %s", who, apply(module))
        except Exception:
            log.exception("%s: could not make %s cooperate with gevent", who, module.__name__)

    return applied


_pending: dict[str, list[Callable[[ModuleType], None]]] = {}
_lock = threading.Lock()


def after_import(name: str, callback: Callable[[ModuleType], None]) -> None:
    """Call ``callback(module)`` once module ``name`` is imported: now if it already is."""
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return
    with _lock:
        _pending.setdefault(name, []).append(callback)
        if not any(isinstance(finder, _AfterImportFinder) for finder in sys.meta_path):
            sys.meta_path.insert(0, _AfterImportFinder())


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of a watched module so its callbacks run once it has executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _pending:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _ThenCall(spec.loader)
                return spec
        return None


class _ThenCall(importlib.abc.Loader):
    """A module's own loader, then the callbacks waiting for that module."""

    def __init__(self, loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        module.__loader__ = module.__spec__.loader = self._loader  # done: the module's own loader again
        with _lock:
            callbacks = _pending.pop(module.__name__, [])
        for callback in callbacks:
            callback(module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)  # get_data, resource readers, is_package...
