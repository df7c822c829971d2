"""Bootstrap a fresh PostgreSQL and Vault the way README.md says, as their administrators.

Both the process platform (:mod:`components.local`) and the container platform (``local/``) call these.
Besides README's steps, each function first creates what the README takes for granted on a server of its
own: the platform database, and in Vault the KV v2 engine at the stack's mount and the AppRole method.
Every step is safe to run again: a second run changes nothing (kept passwords and still-valid tokens are
passed back in).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from components.local.steps import (
    REPO_ROOT,
    SetupError,
    VaultAdmin,
    apply_database_steps,
    apply_vault_steps,
    readme_steps,
)


@dataclass(frozen=True)
class PostgresAdmin:
    """How the administrator reaches the server (a superuser, or an owner holding CREATEROLE)."""

    host: str
    port: int
    user: str
    password: str

    def conninfo(self, dbname: str) -> str:
        return psycopg.conninfo.make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname,
            sslmode="disable",
            connect_timeout=10,
        )

    def __repr__(self) -> str:
        return f"PostgresAdmin(host={self.host!r}, port={self.port}, user={self.user!r})"


def ensure_database(admin: PostgresAdmin, database: str) -> bool:
    """CREATE DATABASE unless it exists; True when it was created."""
    with psycopg.connect(admin.conninfo("postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        return True


def bootstrap_postgres(
    admin: PostgresAdmin,
    database: str,
    *,
    known_passwords: Mapping[str, str] | None = None,
    readme: Path | None = None,
    root: Path = REPO_ROOT,
    preview: bool = False,
) -> dict[str, str]:
    """The platform database, then README's "Once per database" steps in it (with ``preview``, the psql
    steps of "Once per preview environment" instead); the passwords set, by role."""
    ensure_database(admin, database)
    found = readme_steps(readme)
    steps = found.preview_for("psql") if preview else found.database
    with psycopg.connect(admin.conninfo(database), autocommit=True) as conn:

        def execute(text: str) -> None:
            conn.execute(text.encode())

        def set_password(role: str, password: str) -> None:
            # As psql's \password does: only a SCRAM verifier made here reaches the server, never the password.
            verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier)))

        try:
            outcome = apply_database_steps(
                steps, execute, set_password, known_passwords=known_passwords, root=root
            )
        except psycopg.Error as exc:
            raise SetupError(f"PostgreSQL refused a README step: {exc.diag.message_primary or exc}") from None
    return outcome.passwords


def ensure_vault_engines(admin: VaultAdmin, mount: str) -> None:
    """KV v2 at ``mount`` and AppRole at ``approle``, unless something is mounted there already."""
    if f"{mount}/" not in admin.mounts("secrets"):
        admin.request("POST", f"sys/mounts/{mount}", json={"type": "kv", "options": {"version": "2"}})
    if "approle/" not in admin.mounts("auth"):
        admin.request("POST", "sys/auth/approle", json={"type": "approle"})


def bootstrap_vault(
    address: str,
    admin_token: str,
    mount: str,
    *,
    known_tokens: Sequence[str] = (),
    readme: Path | None = None,
    root: Path = REPO_ROOT,
    preview: bool = False,
) -> list[str]:
    """KV v2 and AppRole, then README's "Once per Vault" steps (with ``preview``, the vault steps of "Once
    per preview environment" instead); the tokens issued (or kept), in order."""
    admin = VaultAdmin(address, admin_token)
    ensure_vault_engines(admin, mount)
    found = readme_steps(readme)
    steps = found.preview_for("vault") if preview else found.vault
    outcome = apply_vault_steps(steps, admin, known_tokens=known_tokens, root=root)
    return [token for _, token in outcome.tokens]


def describe(values: Mapping[str, Any]) -> str:
    """Key names only: what a bootstrap produced, safe to print."""
    return ", ".join(sorted(values))


def ensure_app_database(admin: PostgresAdmin, database: str, role: str, password: str) -> None:
    """A login role owning its own database (Metabase's application database); password kept in sync."""
    with psycopg.connect(admin.conninfo("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verb = sql.SQL("ALTER" if exists else "CREATE")
        conn.execute(
            sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(verb, sql.Identifier(role), sql.Literal(password))
        )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(role)))


def init_and_unseal(address: str, keys: Mapping[str, str], timeout: float = 60.0) -> dict[str, str]:
    """Initialise a new OpenBao with one unseal key, unseal it, wait until it is active.

    ``keys`` holds ``unseal_key``/``root_token`` from an earlier initialisation (empty the first time);
    returns them (new or kept). Health codes: 200 active, 429 standby, 501 not initialised, 503 sealed.
    """
    import time

    import requests

    kept = dict(keys)
    deadline = time.monotonic() + timeout
    while True:
        try:
            code: int | None = requests.get(f"{address}/v1/sys/health", timeout=2).status_code
        except requests.RequestException:
            code = None
        if code == 200:
            return kept
        if code == 501:
            answer = VaultAdmin(address, "", timeout=30.0).request(
                "PUT", "sys/init", json={"secret_shares": 1, "secret_threshold": 1}
            )
            kept = {"unseal_key": answer["keys_base64"][0], "root_token": answer["root_token"]}
            continue
        if code == 503:
            if "unseal_key" not in kept:
                raise SetupError(f"OpenBao at {address} is sealed and no unseal key is known")
            VaultAdmin(address, "").request("PUT", "sys/unseal", json={"key": kept["unseal_key"]})
        if time.monotonic() > deadline:
            raise SetupError(f"OpenBao at {address} is not active after {timeout:.0f} s (health {code})")
        time.sleep(0.1)
