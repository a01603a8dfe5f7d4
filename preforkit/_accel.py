"""The compiled hot path: Cython builds of our own modules, swapped in at import.

Each accelerated module (``ACCELERATED``) is plain Python and stays the
reference.  ``pip install -e .`` (or a wheel build) also compiles it with
Cython into a sibling extension named ``_c_<name>`` (``preforkit/http/_head.py``
-> ``preforkit.http._c_head``), typed by a ``_c_<name>.pxd`` beside it.  The
last line of the Python module calls ``accelerate(globals())``, which replaces
the module's names with the compiled ones, so every importer gets the same
objects whichever path runs.

The pure-Python path runs instead when:

- ``PREFORKIT_PURE_PYTHON`` is set to anything but ``""`` or ``0``;
- no extension was built (no compiler, no Cython: logged at debug);
- the extension was built from other source than the module's or its
  ``.pxd`` (a checkout edited after ``pip install -e .``): a warning, once,
  says to rebuild.

``compiled_modules()`` names the modules running compiled.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import types

log = logging.getLogger("preforkit.error")

# The modules with a compiled twin: read -> parse -> app -> write, and the WebSocket codec.
ACCELERATED = (
    "preforkit.http._head",
    "preforkit.http._memo",
    "preforkit.http._response",
    "preforkit.http._conversation",
    "preforkit.http._body",
    "preforkit.http._websocket",
    "preforkit.worker._connection",
    "preforkit.worker._cycle",
    "preforkit.worker._transport",
    "preforkit.worker._response",
    "preforkit.worker._body",
    "preforkit.worker._pool",
    "preforkit.worker._accept",
    "preforkit.worker.wsgi",
)

# Written by the build beside the extensions: module -> SHA-256 of the source it was compiled from.
SOURCE_HASHES = "_compiled_sources.json"

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where preforkit/ is
_compiled: list[str] = []
_stale: list[str] = []
_hashes: dict[str, str] | None = None


def compiled_name(module: str) -> str:
    """``preforkit.http._head`` -> ``preforkit.http._c_head``."""
    package, _, name = module.rpartition(".")
    return f"{package}._c_{name.lstrip('_')}"


def source_path(module: str) -> str:
    """``preforkit.http._head`` -> ``preforkit/http/_head.py`` (relative to the checkout)."""
    return module.replace(".", "/") + ".py"


def declarations_path(module: str) -> str:
    """The ``.pxd`` that types the twin: ``preforkit/http/_c_head.pxd``."""
    return compiled_name(module).replace(".", "/") + ".pxd"


def build_hash(root: str, module: str) -> str:
    """SHA-256 of what the twin is compiled from: the module and, if there is one, its ``.pxd``."""
    digest = hashlib.sha256()
    for path in (source_path(module), declarations_path(module)):
        try:
            with open(os.path.join(root, path), "rb") as file:
                digest.update(file.read())
        except FileNotFoundError:
            continue
    return digest.hexdigest()


def pure_python_requested() -> bool:
    return os.environ.get("PREFORKIT_PURE_PYTHON", "") not in ("", "0")


def accelerate(namespace: dict) -> None:
    """At the end of an accelerated module: take the compiled twin's names, if it may run."""
    module = namespace["__name__"]
    if module not in ACCELERATED or pure_python_requested():
        return  # the compiled twin runs this same line: nothing to do there
    try:
        twin = importlib.import_module(compiled_name(module))
    except ImportError as exc:
        log.debug("preforkit: %s runs as Python (no compiled module: %s)", module, exc)
        return
    if _built_hashes().get(module) != build_hash(_ROOT, module):
        _stale.append(module)
        if len(_stale) == 1:
            log.warning(
                "preforkit: the compiled modules are older than their source (%s); running the Python ones. "
                "Rebuild them with: pip install -e .",
                module,
            )
        return
    namespace.update({name: value for name, value in vars(twin).items() if not name.startswith("__")})
    _compiled.append(module)


def _built_hashes() -> dict[str, str]:
    global _hashes
    if _hashes is None:
        try:
            with open(os.path.join(os.path.dirname(__file__), SOURCE_HASHES), encoding="utf-8") as file:
                _hashes = json.load(file)
        except (OSError, ValueError):
            _hashes = {}
    return _hashes


def runs_compiled(function) -> bool:
    """``function`` of an accelerated module is its compiled twin's: what that module's
    ``.pxd``-only C helpers may be called from (it is false on the Python path)."""
    return not isinstance(function, types.FunctionType)


def compiled_modules() -> list[str]:
    """The accelerated modules imported so far that run compiled."""
    return list(_compiled)
