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
) -> dict[str, str]:
    """The platform database, then README's "Once per database" steps in it; the passwords set, by role."""
    ensure_database(admin, database)
    steps = readme_steps(readme).database
    with psycopg.connect(admin.conninfo(database), autocommit=True) as conn:

        def execute(text: str) -> None:
            conn.execute(text.encode())

        def set_password(role: str, password: str) -> None:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))

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
) -> list[str]:
    """KV v2 and AppRole, then README's "Once per Vault" steps; the tokens issued (or kept), in order."""
    admin = VaultAdmin(address, admin_token)
    ensure_vault_engines(admin, mount)
    outcome = apply_vault_steps(readme_steps(readme).vault, admin, known_tokens=known_tokens, root=root)
    return [token for _, token in outcome.tokens]


def describe(values: Mapping[str, Any]) -> str:
    """Key names only: what a bootstrap produced, safe to print."""
    return ", ".join(sorted(values))
