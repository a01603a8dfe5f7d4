"""The open-file limit: raised once by the master, read by every worker."""

from __future__ import annotations

import logging
import resource

log = logging.getLogger("preforkit.error")


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard one (workers inherit it); log both.

    Returns (soft, hard) as they are afterwards.  Shells and systemd start
    services with a soft limit of 1024, far below what a worker holding
    thousands of connections needs, while the hard limit is usually high.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("Cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
            return soft, hard
        log.info("Open-file limit: soft %d raised to the hard limit %s", soft, _show(hard))
        return hard, hard
    log.info("Open-file limit: %s (soft = hard)", _show(soft))
    return soft, hard


def _show(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)
