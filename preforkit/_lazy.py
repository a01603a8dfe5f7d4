"""Package attributes imported on first use (PEP 562).

Importing ``preforkit`` or ``preforkit.worker`` must stay cheap: the master
process never imports gevent, which the exported names would pull in.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_getattr(package: str, exports: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``exports`` maps each name to the
    module (relative to ``package``) that defines it; a loaded name is kept in
    ``namespace`` so the next access is an ordinary global."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    return __getattr__
