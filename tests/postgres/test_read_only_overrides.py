"""A read-only run's connections stay read-only whatever the environment or the role's own settings say:
the switch travels in the connection's startup options, which outrank both ``PGOPTIONS`` and
``ALTER ROLE ... SET`` (PostgreSQL's precedence: client startup options over role and database defaults)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from components.providers.postgres import _Session, settings_from_config
from tests.postgres.conftest import PROVISIONER, Platform
from tests.postgres.test_read_only_run import read_only_env

ROLE = sql.Identifier(PROVISIONER)


def test_neither_pgoptions_nor_a_role_setting_turns_a_read_only_connection_writable(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGOPTIONS", "-c default_transaction_read_only=off")
    with platform.admin() as admin:
        admin.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = off").format(ROLE))
    try:
        session = _Session(settings_from_config(None, read_only_env(platform)), "platform")
        conn = session.open()
        try:
            assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("UPDATE tenants SET status = status")
        finally:
            session.close()
    finally:
        with platform.admin() as admin:
            admin.execute(sql.SQL("ALTER ROLE {} RESET default_transaction_read_only").format(ROLE))
