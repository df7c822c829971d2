"""A suspended tenant's role, as the provisioner changes it through ``smarteros_admin``: NOLOGIN, and only that
role's open sessions ended; reactivation lets the same password in again. On PostgreSQL 15 and 16."""

from __future__ import annotations

import psycopg
import psycopg.sql
import pytest

from tests.postgres.conftest import Platform, make_rut


def test_suspending_ends_only_the_tenants_sessions_and_reactivating_restores_its_login(platform: Platform) -> None:
    alpha = platform.onboard(make_rut(76600001), "lifecycle-alpha")
    bravo = platform.onboard(make_rut(76600002), "lifecycle-bravo")
    alpha_session, bravo_session, provisioner_session = (
        platform.as_tenant(alpha), platform.as_tenant(bravo), platform.provisioner()
    )
    password = alpha.password

    platform.update(alpha.role, {**alpha.role.inputs, "login": False})
    assert alpha.role.outputs["attributes"]["login"] is False
    assert alpha.role.outputs["password"] == password  # kept for reactivation
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        platform.as_tenant(alpha)
    with pytest.raises(psycopg.OperationalError):  # its open session was ended
        alpha_session.execute("SELECT 1")
    # Everyone else's sessions stay: the functions end only the suspended role's.
    for session in (bravo_session, provisioner_session):
        assert session.execute("SELECT 1").fetchone() == (1,)
    with platform.as_tenant(bravo) as again:
        assert again.execute("SELECT current_user").fetchone() == (bravo.role_name,)
    # A refresh reads NOLOGIN back as wanted: nothing to do.
    platform.refresh(alpha.role)
    assert platform.diff(alpha.role).changes is False

    # LOGIN given back by hand while suspended is drift that the next converge takes away again.
    with platform.admin() as admin:
        admin.execute(psycopg.sql.SQL("ALTER ROLE {} LOGIN").format(psycopg.sql.Identifier(alpha.role_name)))
    platform.refresh(alpha.role)
    assert platform.diff(alpha.role).changes is True
    platform.update(alpha.role, alpha.role.inputs)
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        platform.as_tenant(alpha)

    platform.update(alpha.role, {**alpha.role.inputs, "login": True})
    assert alpha.role.outputs["attributes"]["login"] is True
    with platform.as_tenant(alpha) as back:
        assert back.execute("SELECT current_user").fetchone() == (alpha.role_name,)
    for session in (alpha_session, bravo_session, provisioner_session):
        session.close()
