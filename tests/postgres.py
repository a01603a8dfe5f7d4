"""A real PostgreSQL server for the tests, from Debian's packages, on a free port.

``initdb`` into a fresh directory and ``pg_ctl start`` with the unix socket in
that directory.  initdb refuses to run as root, so as root the server runs as
the ``postgres`` user the Debian package creates.  Clients connect over TCP
to 127.0.0.1 as the superuser ``preforkit`` (trust authentication: loopback only).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

USER = "preforkit"


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def available() -> str | None:
    """Why no server can be started here, or None."""
    if not _bin("initdb") or not _bin("pg_ctl"):
        return "PostgreSQL is not installed (Debian package postgresql; .ci/run installs it)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """``start()``, ``url``, ``dsn``, ``query(sql)``, ``stop()``."""

    def __init__(self, max_connections: int = 300) -> None:
        self.max_connections = max_connections
        self.directory = tempfile.mkdtemp(prefix="preforkit-pg-")
        self.data = os.path.join(self.directory, "data")
        self.port = _free_port()
        self.dsn = f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres"
        self.url = f"postgres://{USER}@127.0.0.1:{self.port}/postgres"
        self._as = []
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str, timeout: float = 60) -> None:
        result = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=timeout)
        if result.returncode:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}")

    def start(self) -> PostgresServer:
        self._run(_bin("initdb"), "-D", self.data, "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
            f" -c max_connections={self.max_connections} -c fsync=off -c shared_buffers=32MB"
        )
        log = os.path.join(self.directory, "server.log")
        self._run(_bin("pg_ctl"), "-D", self.data, "-l", log, "-o", options, "-w", "-t", "60", "start", timeout=90)
        return self

    def query(self, sql: str) -> list[tuple]:
        """Run ``sql`` on a connection of its own (psycopg2), return the rows."""
        import psycopg2

        connection = psycopg2.connect(self.dsn)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def client_connections(self) -> int:
        """Client backends connected now, not counting the one asking."""
        rows = self.query(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return rows[0][0]

    def stop(self) -> None:
        try:
            self._run(_bin("pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
