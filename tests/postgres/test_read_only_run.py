"""A read-only run (``SMARTEROS_READ_ONLY=true``) cannot write to PostgreSQL, even handed the provisioner.

The provider host is given the *writing* identity by mistake, through the environment as CI would: it still
refuses every change before connecting, and its connections are read-only on the server, so a read that
tried to write would be refused by PostgreSQL itself.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from components.access import READ_ONLY_ENV
from components.providers.postgres import TenantRoleProvider, _Session, settings_from_config
from tests.harness.provider_host import ProviderCallError, urn
from tests.postgres.conftest import DBNAME, PROVISIONER, Platform, make_rut, role_props


def read_only_env(platform: Platform) -> dict[str, str]:
    return {
        READ_ONLY_ENV: "true",
        "PGHOST": platform.server.host,
        "PGPORT": str(platform.server.port),
        "PGDATABASE": DBNAME,
        "PGUSER": PROVISIONER,
        "PGPASSWORD": platform.provisioner_password,
        "PGSSLMODE": "disable",
    }


def role_exists(platform: Platform, rut: str) -> bool:
    with platform.admin() as admin:
        row = admin.execute("SELECT count(*) FROM tenant_roles WHERE tenant_rut = %s", (rut,)).fetchone()
    return bool(row and row[0])


def test_a_read_only_host_refuses_to_create_or_change_a_tenant_role(
    platform: Platform, provider_host_factory: Any
) -> None:
    tenant = platform.onboard(make_rut(76_300_101), "read-only-co")
    host = provider_host_factory({}, env=read_only_env(platform))
    rut = make_rut(76_300_102)
    resource_urn = urn("pulumi-python:dynamic/postgres:TenantRole", f"{rut}-role")
    with pytest.raises(ProviderCallError) as created:
        host.create(TenantRoleProvider(), resource_urn, role_props(rut))
    assert created.value.reason == (
        f"tenant {rut}: PostgreSQL: creation of the tenant's role not sent: this run is read-only "
        f"({READ_ONLY_ENV}=true); changes are applied by `pulumi up` with the writing credentials"
    )
    assert not role_exists(platform, rut)

    with pytest.raises(ProviderCallError, match="not sent: this run is read-only"):
        host.update(
            TenantRoleProvider(),
            tenant.role.id,
            tenant.role.urn,
            tenant.role.outputs,
            {**tenant.role.inputs, "connection_limit": 9},
        )
    # Reads work as usual, with the same identity.
    found, outputs, _ = host.read(TenantRoleProvider(), tenant.role.id, tenant.role.urn, tenant.role.outputs)
    assert found == tenant.role.id
    assert outputs["connection_limit"] == tenant.role.outputs["connection_limit"]


def test_a_read_only_runs_connections_cannot_write_even_as_the_provisioner(platform: Platform) -> None:
    settings = settings_from_config(None, read_only_env(platform))
    assert (settings.user, settings.read_only) == (PROVISIONER, True)
    session = _Session(settings, "platform")
    conn = session.open()
    try:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE read_only_probe (id int)")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("UPDATE tenants SET status = status")
        assert conn.execute("SELECT current_user").fetchone() == (PROVISIONER,)
    finally:
        session.close()
