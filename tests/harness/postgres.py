"""A throwaway PostgreSQL cluster for integration tests: ``initdb`` + ``pg_ctl`` on a free local port.

The cluster lives in a fresh directory under the system temp dir, listens on 127.0.0.1 only and on a unix
socket in that directory, and asks every login for a scram-sha-256 password (the superuser ``postgres`` has a
generated one). Creating, starting and stopping it is the local platform's own code
(:class:`components.local.processes.PostgresProcess`: the binaries, the server account, ``initdb`` and
``pg_ctl``); what only tests want is added here: durability is switched off (``fsync``,
``synchronous_commit``, ``full_page_writes``, and ``initdb --no-sync``) because nothing here needs to survive a
crash, JIT compilation is off, :meth:`PostgresServer.halt` and :meth:`PostgresServer.resume` stop and start it
in the middle of a test, and stopping it removes every file. The server dies with the process that started it,
however that process ends (:mod:`tests.harness.lifeline`).

``initdb`` refuses to run as root, so when the tests run as root the server binaries run as the ``postgres``
system user (override with ``SMARTEROS_PG_OS_USER``) in a directory that user owns. The binaries are found on
``PATH`` or under ``/usr/lib/postgresql/<version>/bin`` (Debian's PostgreSQL 15 here), or in the directory
given to :meth:`PostgresServer.start` (``bin_dir``): :func:`pgserver_bin_dir` is the PostgreSQL 16 that PyPI's
``pgserver`` wheel carries, so one test session can run both versions side by side.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from components.local.bootstrap import PostgresAdmin
from components.local.processes import HOST, LocalPlatformError, PostgresProcess
from tests.harness.lifeline import POSTGRES, Lifeline, claim, start_on_a_free_port

SUPERUSER = "postgres"
_TEST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    # Debian's build compiles expensive plans with LLVM (a quarter second each); tests only lose time to it.
    "jit": "off",
}


class PostgresHarnessError(RuntimeError):
    """The throwaway cluster could not be created."""


def pgserver_bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL build inside the installed ``pgserver`` wheel (16.2)."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresHarnessError("the pgserver package is not installed (requirements-dev.txt pins it)")
    found = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (found / "initdb").exists():
        raise PostgresHarnessError(f"pgserver carries no initdb under {found}")
    return found


@dataclass
class PostgresServer:
    """A running throwaway cluster. Build it with :meth:`start`; stop it with :meth:`stop`."""

    lifeline: Lifeline = field(repr=False)
    port: int = 0
    superuser_password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    host: str = HOST
    superuser: str = SUPERUSER
    start_seconds: float = 0.0
    bin_dir: Path | None = None
    _process: PostgresProcess = field(init=False, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self._process = PostgresProcess(self.base_dir, self.bin_dir)

    def __repr__(self) -> str:  # keeps the password out of assertion output
        return f"PostgresServer(host={self.host!r}, port={self.port}, base_dir={str(self.base_dir)!r})"

    @property
    def base_dir(self) -> Path:
        return self.lifeline.base_dir

    @property
    def data_dir(self) -> Path:
        return self._process.data_dir

    @property
    def socket_dir(self) -> Path:
        return self._process.socket_dir

    @property
    def log_file(self) -> Path:
        return self._process.log_file

    # -- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def start(cls, *, attempts: int = 3, bin_dir: Path | None = None) -> PostgresServer:
        """initdb a new cluster in a fresh directory and start it on a free port.

        ``bin_dir`` holds ``initdb`` and ``pg_ctl`` of the version to run; without it they come from
        :func:`components.local.processes.find_pg_binary`.
        """
        began = time.perf_counter()
        lifeline = claim(POSTGRES, "smarteros-pg-", bin_dir)
        server = cls(lifeline, bin_dir=bin_dir)
        with lifeline.starting(server.stop):
            server._process.init(server.superuser, server.superuser_password, sync=False)
            server.port = start_on_a_free_port(
                lambda port: server._process.start(port, _TEST_SETTINGS), attempts=attempts, retry_on=LocalPlatformError
            )
        server.start_seconds = time.perf_counter() - began
        return server

    def stop(self) -> None:
        """Stop the server at once and remove every file of the cluster. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._process.stop(mode="immediate")
        finally:
            self.lifeline.close(self.stop)

    def halt(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended) and keep its files, for :meth:`resume`.
        Returns once the postmaster is gone, whatever ``pg_ctl`` answered."""
        try:
            self._process.stop()
        finally:
            self._wait_until_down()

    def resume(self) -> None:
        """Start a server stopped with :meth:`halt` again, on the same port (once the old postmaster is gone:
        on a loaded machine its shutdown can outlast a halt that failed, and a start then finds its lock)."""
        self._wait_until_down()
        self._process.start(self.port, _TEST_SETTINGS)

    def _wait_until_down(self, timeout: float = 60.0) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + timeout
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    # -- connecting -----------------------------------------------------------------------------

    def dsn(self, user: str | None = None, password: str | None = None, dbname: str = "postgres") -> str:
        """A libpq connection string over TCP; without ``user``, the superuser with its password."""
        user = user or self.superuser
        if password is None and user == self.superuser:
            password = self.superuser_password
        params: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": user,
            "dbname": dbname,
            "connect_timeout": 10,
            "sslmode": "disable",
        }
        if password is not None:
            params["password"] = password
        return make_conninfo(**params)

    def connect(
        self, user: str | None = None, password: str | None = None, dbname: str = "postgres"
    ) -> psycopg.Connection[Any]:
        """An autocommit connection (close it, or use it as a context manager)."""
        return psycopg.connect(self.dsn(user=user, password=password, dbname=dbname), autocommit=True)

    def admin(self) -> PostgresAdmin:
        """How the product's bootstrap (:mod:`components.local.bootstrap`) reaches this server: its superuser."""
        return PostgresAdmin(self.host, self.port, self.superuser, self.superuser_password)

    def create_database(self, name: str) -> None:
        """CREATE DATABASE ``name`` (owned by the superuser)."""
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def env(self, dbname: str = "postgres") -> dict[str, str]:
        """libpq environment variables for the superuser (``PGHOST``… ``PGPASSWORD``)."""
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.superuser,
            "PGPASSWORD": self.superuser_password,
            "PGDATABASE": dbname,
            "PGSSLMODE": "disable",
        }


@contextlib.contextmanager
def postgres_cluster(bin_dir: Path | None = None) -> Iterator[PostgresServer]:
    """A started cluster, stopped and removed on exit (also when the body fails)."""
    server = PostgresServer.start(bin_dir=bin_dir)
    try:
        yield server
    finally:
        server.stop()
