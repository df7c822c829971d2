"""The local platform as processes: PostgreSQL and OpenBao on 127.0.0.1, set up the way README.md says.

API (what ``python -m components local`` and test fixtures use)::

    platform = start(directory)     # start, or reuse, and bootstrap; returns a LocalPlatform
    platform.env()                  # PG*/VAULT_* for the dev stack's providers (provisioning identities)
    status(directory)               # PlatformStatus: what runs, on which addresses (no credentials)
    stop(directory)                 # stop both; data stays in directory for the next start

Everything lives in ``directory``: ``postgres/`` (the cluster), ``openbao/`` (configuration, raft data, log),
``platform.json`` (ports, the administrators' secrets: the PostgreSQL superuser's password, OpenBao's unseal
key and root token, and the provisioning credentials) and ``credentials.env`` (the ``PG*``/``VAULT_*``
lines the dev stack needs). Both files are created readable by their owner only (0600).

The bootstrap (:mod:`components.local.bootstrap`) runs on every start and changes nothing the second time:
it reads README.md's "Once per database" and "Once per Vault" steps, applies ``sql/provisioner.sql`` and
``vault/*.hcl`` as written, keeps the provisioner's password and reuses its token while it is valid.
Metabase does not run as a process here: it ships as a container image (see ``local/``).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.local.bootstrap import PostgresAdmin, bootstrap_postgres, bootstrap_vault, init_and_unseal
from components.local.processes import (
    HOST,
    LocalPlatformError,
    OpenBaoProcess,
    PostgresProcess,
    free_port,
    port_in_use,
)
from components.local.steps import REPO_ROOT, SetupError

__all__ = [
    "DEFAULT_DIR",
    "LocalPlatform",
    "LocalPlatformError",
    "PlatformStatus",
    "SetupError",
    "start",
    "status",
    "stop",
]

DEFAULT_DIR = REPO_ROOT / ".local-platform"
STATE_FILE = "platform.json"
ENV_FILE = "credentials.env"
SUPERUSER = "postgres"
DATABASE = "smarteros"
PROVISIONER = "smarteros_provisioner"
MOUNT = "secret"
METABASE_OFF = "Metabase: off (it ships only as a container image; with Docker, ./scripts/up runs it)"


@dataclass(frozen=True)
class LocalPlatform:
    """A running local platform: addresses, and the provisioning credentials the dev stack uses."""

    directory: Path
    postgres_port: int
    vault_port: int
    postgres_password: str = field(repr=False)
    vault_token: str = field(repr=False)
    postgres_host: str = HOST
    database: str = DATABASE
    postgres_user: str = PROVISIONER
    vault_mount: str = MOUNT
    reused: bool = False
    start_seconds: float = 0.0
    bootstrap_seconds: float = 0.0

    @property
    def vault_address(self) -> str:
        return OpenBaoProcess.address_for(self.vault_port)

    @property
    def env_file(self) -> Path:
        return self.directory / ENV_FILE

    def env(self) -> dict[str, str]:
        """The environment the dev stack's providers fall back to (``PG*``, ``VAULT_*``)."""
        return {
            "PGHOST": self.postgres_host,
            "PGPORT": str(self.postgres_port),
            "PGDATABASE": self.database,
            "PGUSER": self.postgres_user,
            "PGPASSWORD": self.postgres_password,
            "PGSSLMODE": "disable",
            "VAULT_ADDR": self.vault_address,
            "VAULT_TOKEN": self.vault_token,
        }

    def admin_secrets(self) -> dict[str, str]:
        """The administrators' secrets kept in ``platform.json`` (superuser password, root token...)."""
        return dict(read_state(self.directory)["admin"])

    def postgres_admin(self) -> PostgresAdmin:
        return PostgresAdmin(self.postgres_host, self.postgres_port, SUPERUSER, self.admin_secrets()["postgres"])

    def addresses(self) -> list[str]:
        """One line per system, without credentials."""
        return [
            f"PostgreSQL: {self.postgres_host}:{self.postgres_port} database {self.database} "
            f"(provisioner {self.postgres_user})",
            f"OpenBao:    {self.vault_address} (KV v2 at {self.vault_mount}/, AppRole at approle/)",
        ]


@dataclass(frozen=True)
class PlatformStatus:
    """What runs in a directory; never carries a credential."""

    directory: Path
    postgres: str
    vault: str

    @property
    def running(self) -> bool:
        return self.postgres.startswith("running") and self.vault.startswith("running")

    def lines(self) -> list[str]:
        return [f"PostgreSQL: {self.postgres}", f"OpenBao:    {self.vault}", METABASE_OFF]


# -- state files -----------------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read, created so from the start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)


def read_state(directory: Path) -> dict[str, Any]:
    path = directory / STATE_FILE
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise LocalPlatformError(f"{path}: not a platform state file ({exc})") from None


def _save_state(directory: Path, state: dict[str, Any]) -> None:
    _write_private(directory / STATE_FILE, json.dumps(state, indent=2, sort_keys=True) + "\n")


def _env_text(env: dict[str, str]) -> str:
    import shlex

    lines = ["# The dev stack's provisioning credentials. Load with: set -a; . ./credentials.env; set +a"]
    lines += [f"{key}={shlex.quote(value)}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def _choose_port(wanted: int | None, default: int) -> int:
    return free_port() if wanted == 0 else (wanted or default)


# -- lifecycle -------------------------------------------------------------------------------------------


def start(
    directory: Path = DEFAULT_DIR,
    *,
    postgres_port: int | None = None,
    vault_port: int | None = None,
    readme: Path | None = None,
) -> LocalPlatform:
    """Start (or reuse) PostgreSQL and OpenBao in ``directory`` and bootstrap them as README.md says.

    Ports default to the dev stack's (5432 and 8200), or to those of an earlier start in the same directory;
    0 picks a free port. A second call reuses the running servers and the data.
    """
    began = time.perf_counter()
    directory = Path(directory).resolve()
    if not directory.exists():
        directory.mkdir(parents=True)
        directory.chmod(0o755)  # as root, the postgres system account must reach postgres/ below it
    state = read_state(directory)
    reused = bool(state)
    state.setdefault("admin", {})
    state.setdefault("postgres_port", _choose_port(postgres_port, 5432))
    state.setdefault("vault_port", _choose_port(vault_port, 8200))
    for key, wanted in (("postgres_port", postgres_port), ("vault_port", vault_port)):
        if wanted and wanted != state[key]:
            raise LocalPlatformError(f"{directory} already runs on port {state[key]} ({key}); use another --dir")
    pg = PostgresProcess(directory / "postgres")
    bao = OpenBaoProcess(directory / "openbao")
    address = bao.address_for(state["vault_port"])
    pg_running, bao_running = pg.running(), bao.pid() is not None
    for system, port, running, flag in (
        ("PostgreSQL", state["postgres_port"], pg_running, "--postgres-port"),
        ("OpenBao", state["vault_port"], bao_running, "--vault-port"),
    ):
        if not running and port_in_use(port):
            where = "in a new --dir" if reused else "N, or 0 for any free port"
            raise LocalPlatformError(f"{system}: port {port} on {HOST} is taken by another program ({flag} {where})")
    state.setdefault("vault_cluster_port", free_port())
    admin = state["admin"]
    admin.setdefault("postgres", secrets.token_urlsafe(24))
    _save_state(directory, state)

    if not pg.initialised:
        pg.init(SUPERUSER, admin["postgres"])
    if not pg_running:
        pg.start(state["postgres_port"])
    if not bao_running:
        bao.write_config(state["vault_port"], state["vault_cluster_port"])
        bao.start(address)
    _init_and_unseal(address, state, directory)
    started = time.perf_counter()

    passwords = bootstrap_postgres(
        PostgresAdmin(HOST, state["postgres_port"], SUPERUSER, admin["postgres"]),
        DATABASE,
        known_passwords=state.get("passwords", {}),
        readme=readme,
    )
    tokens = bootstrap_vault(
        address, admin["vault_root_token"], MOUNT, known_tokens=state.get("tokens", []), readme=readme
    )
    if PROVISIONER not in passwords or not tokens:
        raise SetupError(
            f"README.md's set-up gave no password for {PROVISIONER} or no Vault token: "
            "the dev stack could not log in"
        )
    state["passwords"], state["tokens"] = passwords, tokens
    _save_state(directory, state)
    platform = LocalPlatform(
        directory=directory,
        postgres_port=state["postgres_port"],
        vault_port=state["vault_port"],
        postgres_password=passwords[PROVISIONER],
        vault_token=tokens[0],
        reused=reused,
        start_seconds=started - began,
        bootstrap_seconds=time.perf_counter() - started,
    )
    _write_private(platform.env_file, _env_text(platform.env()))
    return platform


def _init_and_unseal(address: str, state: dict[str, Any], directory: Path) -> None:
    """Initialise a new OpenBao (its unseal key and root token kept in platform.json) and unseal it."""
    admin = state["admin"]
    kept = {"unseal_key": admin["vault_unseal_key"], "root_token": admin["vault_root_token"]} if (
        "vault_unseal_key" in admin
    ) else {}
    keys = init_and_unseal(address, kept)
    if keys != kept:
        admin["vault_unseal_key"], admin["vault_root_token"] = keys["unseal_key"], keys["root_token"]
        _save_state(directory, state)


def status(directory: Path = DEFAULT_DIR) -> PlatformStatus:
    """What runs in ``directory``: each server's state and address; no credentials."""
    directory = Path(directory).resolve()
    state = read_state(directory)
    if not state:
        return PlatformStatus(directory, "not set up", "not set up")
    pg = PostgresProcess(directory / "postgres")
    postgres = f"running on {HOST}:{state['postgres_port']}" if pg.running() else "stopped (data kept)"
    bao = OpenBaoProcess(directory / "openbao")
    address = bao.address_for(state["vault_port"])
    health = {200: "running", 429: "running (standby)", 503: "sealed", 501: "not initialised"}
    code = bao.health(address) if bao.pid() is not None else None
    vault = f"{health.get(code, f'answering {code}')} on {address}" if code else "stopped (data kept)"
    return PlatformStatus(directory, postgres, vault)


def stop(directory: Path = DEFAULT_DIR) -> list[str]:
    """Stop both servers of ``directory`` and wait until they are gone; the data stays. What was stopped."""
    directory = Path(directory).resolve()
    stopped = []
    if OpenBaoProcess(directory / "openbao").stop():
        stopped.append("OpenBao")
    pg = PostgresProcess(directory / "postgres")
    if pg.initialised and pg.stop():
        stopped.append("PostgreSQL")
    return stopped
