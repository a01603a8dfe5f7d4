"""The app as a worker serves it: a WSGI app wrapped in the adapter."""

from __future__ import annotations

from .._common.apps import AppLoadError, Hooks, load_app, resolve_interface

__all__ = ["AppLoadError", "Hooks", "load_app", "prepare_app", "resolve_interface"]


def prepare_app(app, interface: str = "auto"):
    """``(callable the worker serves, "ring" or "wsgi")``: a WSGI app is wrapped."""
    resolved = resolve_interface(app, interface)
    if resolved == "wsgi":
        from .wsgi import WSGIAdapter

        app = WSGIAdapter(app)
    return app, resolved
