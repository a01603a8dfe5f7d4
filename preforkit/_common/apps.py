"""Finding the application and the hooks: ``MODULE:ATTR`` and which interface an app speaks."""

from __future__ import annotations

import importlib
import inspect
import sys


class AppLoadError(Exception):
    """The ``MODULE:ATTR`` spec cannot be resolved (a one-line message)."""


def split_spec(spec: str) -> tuple[str, str]:
    """``MODULE:ATTR`` as (module, attr); ``AppLoadError`` when it is not of that form.

    The one parser of such paths: the app, the config file's hooks and the CLI use it.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise AppLoadError(f"{spec!r} is not of the form MODULE:ATTR (for example examples.hello:handler)")
    return module_name, attr


def load_app(spec: str):
    """Import ``MODULE:ATTR`` and return the callable.

    Raises ``AppLoadError`` when the spec is malformed, the module does not
    exist, or the attribute is missing or not callable.  Any other exception
    raised while importing the module (a bug in the user's code) propagates
    with its own traceback.
    """
    module_name, attr = split_spec(spec)
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # the current directory is importable, as with gunicorn
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise AppLoadError(f"cannot import {module_name!r}: no module named {missing!r}") from None
        raise
    target = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AppLoadError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise AppLoadError(f"{spec} is a {type(target).__name__}, not a callable")
    return target


def resolve_interface(app, interface: str = "auto") -> str:
    """``ring`` or ``wsgi``: the given one, or guessed from the signature.

    A callable taking two positional arguments is WSGI (environ,
    start_response); one taking one is a Ring handler.
    """
    if interface in ("ring", "wsgi"):
        return interface
    try:
        signature = inspect.signature(app)
    except (TypeError, ValueError):
        return "ring"
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return "wsgi" if len(positional) >= 2 else "ring"


class Hooks:
    """Server hooks named by ``MODULE:FUNCTION`` settings, resolved on first use."""

    NAMES = ("on_starting", "when_ready", "post_fork", "post_worker_init", "worker_exit", "on_reload")

    def __init__(self, config) -> None:
        self.config = config
        self._resolved: dict[str, object] = {}

    def call(self, name: str, *args) -> None:
        """Call hook ``name`` if configured; its errors are logged, not raised."""
        import logging

        spec = getattr(self.config, name, None)
        if not spec:
            return
        try:
            function = self._resolved.get(spec)
            if function is None:
                function = self._resolved[spec] = load_app(spec)
            function(*args)
        except Exception:
            logging.getLogger("preforkit.error").exception("Error in the %s hook %s", name, spec)
