"""Process titles, so that ``ps`` tells the master and the workers apart."""

from __future__ import annotations

import ctypes
import ctypes.util

PR_SET_NAME = 15


def set_proctitle(role: str) -> None:
    """``preforkit: master [app]`` in ``ps`` output.

    Uses ``setproctitle`` when installed (``pip install preforkit[proctitle]``),
    which rewrites the whole command line; otherwise sets the 15-character
    kernel name (``ps -o comm``, ``top``) to ``pfk-master`` / ``pfk-worker``.
    """
    try:
        import setproctitle
    except ImportError:
        _set_comm("pfk-" + role.split()[0])
    else:
        setproctitle.setproctitle(f"preforkit: {role}")


def _set_comm(name: str) -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass
