"""``--user`` / ``--group``: started as root to bind (port 80), served as someone else.

The master drops its privileges once the sockets are bound and before the app
is imported (with ``--preload``) or any worker forked, so no app code ever
runs as root.  Files the server made or opened as root and keeps using - the
pid file, the error log, the access log - are handed to the new owner first,
so it can rewrite, reopen after rotation and remove them.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd

log = logging.getLogger("preforkit.error")


class PrivilegeError(Exception):
    """The user or group is unknown, or this process may not become them (one line)."""


def resolve(user: str | None, group: str | None) -> tuple[int, int, str] | None:
    """(uid, gid, description) for ``--user``/``--group``, or None when neither is set."""
    if not user and not group:
        return None
    try:
        entry = pwd.getpwnam(user) if user and not user.isdigit() else pwd.getpwuid(int(user or os.getuid()))
    except KeyError:
        raise PrivilegeError(f"--user: no such user {user!r}") from None
    uid, gid = entry.pw_uid, entry.pw_gid
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid if not group.isdigit() else grp.getgrgid(int(group)).gr_gid
        except KeyError:
            raise PrivilegeError(f"--group: no such group {group!r}") from None
    return uid, gid, f"{entry.pw_name} (uid {uid}, gid {gid})"


def drop(user: str | None, group: str | None, files: list[str]) -> None:
    """Become ``user``/``group``, giving ``files`` (those that exist) to them first."""
    target = resolve(user, group)
    if target is None:
        return
    uid, gid, description = target
    if (os.geteuid(), os.getegid()) == (uid, gid):
        return  # already them: nothing to drop
    if os.geteuid() != 0:
        raise PrivilegeError(f"--user/--group: only root can become {description}; running as uid {os.geteuid()}")
    for path in files:
        if path and path != "-":
            if not os.path.lexists(path):
                open(path, "a").close()  # the access log: made here, where root may write
            os.chown(path, uid, gid)
    name = pwd.getpwuid(uid).pw_name
    os.initgroups(name, gid)  # the user's supplementary groups, not root's
    os.setgid(gid)
    os.setuid(uid)
    log.info("Serving as %s", description)
