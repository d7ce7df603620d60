"""A real PostgreSQL server (Debian's) in a temporary folder, on a free loopback port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.processes import free_port, log_tail


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: apt-get install postgresql")
    return found


class PostgresServer:
    """initdb once, then start and stop at will (fault tests stop it under traffic)."""

    def __init__(self) -> None:
        # Not under pytest's tmp folder: that one is private to root, and the server runs as
        # the postgres user.
        root = Path(tempfile.mkdtemp(prefix="driftline-pg-"))
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.log = root / "postgres.log"
        # PostgreSQL refuses to run as root; CI runs as root, so run it as the postgres user.
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_user:
            shutil.chown(root, "postgres", "postgres")
        done = subprocess.run(
            [
                *self._as_user,
                _pg_bin("initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "driftline",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()[-2000:]}")

    @property
    def url(self) -> str:
        return f"postgresql://driftline@127.0.0.1:{self.port}/postgres"

    def fresh_database(self, name: str) -> str:
        """The URL of a new, empty database ``name`` (dropped first if a run left it)."""
        # Imported here: benchmarks start this server from scripts that need no SQLAlchemy.
        import sqlalchemy as sa

        admin = sa.create_engine(
            self.url.replace("postgresql://", "postgresql+psycopg://"),
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            connection.execute(sa.text(f"CREATE DATABASE {name}"))
        admin.dispose()
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.root} -c fsync=off"
        )
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log), "-o", options)

    def stop(self) -> None:
        # A fast shutdown: clients are disconnected, as when a database goes away for real.
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-w", "-m", "fast")

    def _pg_ctl(self, *args: str) -> None:
        command = [*self._as_user, _pg_bin("pg_ctl"), "-D", str(self.data), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"pg_ctl {args[0]} failed: {done.stderr.strip()}\n{log_tail(self.log)}"
            )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
