"""Process titles, so that ``ps`` tells the master and the workers apart."""

from __future__ import annotations

import ctypes

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
        # CDLL(None) is the running program, which links libc; unlike
        # ctypes.util.find_library it starts no subprocess (which would hang
        # in a freshly forked, monkey-patched worker).
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass
