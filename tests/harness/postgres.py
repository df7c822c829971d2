"""A throwaway PostgreSQL cluster for integration tests: ``initdb`` + ``pg_ctl`` on a free local port.

The cluster lives in a fresh directory under the system temp dir, listens on 127.0.0.1 only and on a unix
socket in that directory, and asks every login for a scram-sha-256 password (the superuser ``postgres`` has a
generated one). Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``) because
nothing here needs to survive a crash, and JIT compilation is off.

``initdb`` refuses to run as root, so when the tests run as root the server binaries run as the ``postgres``
system user (override with ``SMARTEROS_PG_OS_USER``) in a directory that user owns. The binaries are found on
``PATH`` or under ``/usr/lib/postgresql/<version>/bin`` (Debian's PostgreSQL 15 here), or in the directory
given to :meth:`PostgresServer.start` (``bin_dir``): :func:`pgserver_bin_dir` is the PostgreSQL 16 that PyPI's
``pgserver`` wheel carries, so one test session can run both versions side by side.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from components.local.bootstrap import PostgresAdmin
from components.local.processes import find_pg_binary as find_binary
from components.local.processes import free_port
from components.local.processes import pg_os_user as _os_user

SUPERUSER = "postgres"
HOST = "127.0.0.1"
_SERVER_SETTINGS = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
    # Debian's build compiles expensive plans with LLVM (a quarter second each); tests only lose time to it.
    "jit": "off",
}


class PostgresHarnessError(RuntimeError):
    """The throwaway cluster could not be created, started or stopped."""


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

    base_dir: Path
    port: int
    superuser_password: str
    host: str = HOST
    superuser: str = SUPERUSER
    start_seconds: float = 0.0
    bin_dir: Path | None = None
    _os_user: pwd.struct_passwd | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def __repr__(self) -> str:  # keeps the password out of assertion output
        return f"PostgresServer(host={self.host!r}, port={self.port}, base_dir={str(self.base_dir)!r})"

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "socket"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    # -- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def start(cls, *, attempts: int = 3, bin_dir: Path | None = None) -> PostgresServer:
        """initdb a new cluster in a fresh directory and start it on a free port.

        ``bin_dir`` holds ``initdb`` and ``pg_ctl`` of the version to run; without it they come from
        :func:`find_binary`.
        """
        began = time.perf_counter()
        os_user = _os_user()
        base_dir = Path(tempfile.mkdtemp(prefix="smarteros-pg-"))
        server = cls(
            base_dir=base_dir,
            port=0,
            superuser_password=secrets.token_urlsafe(24),
            bin_dir=bin_dir,
            _os_user=os_user,
        )
        try:
            server._init()
            for attempt in range(attempts):
                server.port = free_port()
                try:
                    server._pg_ctl(
                        "start", "-w", "-t", "60", "-l", str(server.log_file), "-o", server._options()
                    )
                    break
                except PostgresHarnessError:
                    if attempt == attempts - 1:
                        raise
            server.start_seconds = time.perf_counter() - began
        except BaseException:
            server.stop()
            raise
        atexit.register(server.stop)
        return server

    def _run(self, *argv: str) -> None:
        # As root, the binaries run as the cluster's system user through runuser. Switching user in
        # Python (subprocess's user=/group=) forces a plain fork(), which runs the fork handlers that
        # gRPC registers in this process, and those can crash the child before it execs.
        kwargs: dict[str, Any] = {}
        if self._os_user is not None:
            runuser = shutil.which("runuser")
            if runuser is not None:
                argv = (runuser, "-u", self._os_user.pw_name, "--", *argv)
            else:
                kwargs = {"user": self._os_user.pw_uid, "group": self._os_user.pw_gid, "extra_groups": []}
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "LANG": "C",
            "HOME": str(self.base_dir),
        }
        result = subprocess.run(
            argv,
            cwd=self.base_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **kwargs,
        )
        if result.returncode != 0:
            log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            raise PostgresHarnessError(
                f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{log}"
            )

    def _binary(self, name: str) -> str:
        return str(self.bin_dir / name) if self.bin_dir is not None else find_binary(name)

    def _pg_ctl(self, *args: str) -> None:
        self._run(self._binary("pg_ctl"), "-D", str(self.data_dir), *args)

    def _options(self) -> str:
        settings = {
            **_SERVER_SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
        }
        return " ".join(f"-c {key}={value}" for key, value in settings.items())

    def _init(self) -> None:
        self.socket_dir.mkdir()
        password_file = self.base_dir / "superuser.pw"
        password_file.write_text(self.superuser_password + "\n")
        password_file.chmod(0o600)
        if self._os_user is not None:
            for path in (self.base_dir, self.socket_dir, password_file):
                os.chown(path, self._os_user.pw_uid, self._os_user.pw_gid)
        try:
            self._run(
                self._binary("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            )
        finally:
            password_file.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop the server at once and remove every file of the cluster. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "30")
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            atexit.unregister(self.stop)

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

    def halt(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended) and keep its files, for :meth:`resume`."""
        self._pg_ctl("stop", "-m", "fast", "-w", "-t", "30")

    def resume(self) -> None:
        """Start a server stopped with :meth:`halt` again, on the same port."""
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log_file), "-o", self._options())

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
