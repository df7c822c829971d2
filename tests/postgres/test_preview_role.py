"""The preview identity of sql/preview.sql reads everything a refresh compares, and can change nothing.

Set up as the database administrator would, on the platform database the other PostgreSQL tests use; the
reads go through the real provider host configured as ``smarteros_preview``, the attacks over a direct
connection as that role.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from components.database import SQL_DIR
from tests.postgres.conftest import DBNAME, Platform, Tenant, make_rut, provider_config

PREVIEW = "smarteros_preview"


@pytest.fixture(scope="module")
def preview_password(platform: Platform) -> str:
    password = secrets.token_urlsafe(24)
    with platform.admin() as admin:
        script = (SQL_DIR / "preview.sql").read_text(encoding="utf-8")
        admin.execute(script.encode())
        admin.execute(script.encode())  # safe to run again
        admin.execute(
            psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                psycopg.sql.Identifier(PREVIEW), psycopg.sql.Literal(password)
            )
        )
    return password


@pytest.fixture(scope="module")
def tenant(platform: Platform) -> Tenant:
    return platform.onboard(make_rut(76_100_200), "preview-co")


def as_preview(platform: Platform, password: str) -> psycopg.Connection[Any]:
    """A session as the preview role that has switched read-only off, as an attacker would first."""
    conn = platform.server.connect(user=PREVIEW, password=password, dbname=DBNAME)
    conn.autocommit = True
    conn.execute("SET default_transaction_read_only = off")
    return conn


def test_a_refresh_as_the_preview_role_sees_every_tenant_resource_as_it_is(
    platform: Platform, tenant: Tenant, preview_password: str, provider_host_factory: Any
) -> None:
    host = provider_host_factory(provider_config(platform.server, preview_password, user=PREVIEW))
    for resource in tenant.resources():
        found, outputs, _ = host.read(resource.provider, resource.id, resource.urn, resource.outputs)
        assert found == resource.id, resource.urn
        # exactly what the provisioner itself reads back
        assert (found, outputs) == platform.refresh(resource), resource.urn


ATTACKS: dict[str, Callable[[psycopg.Connection[Any], Tenant], object]] = {
    "insert a registry row": lambda c, t: c.execute(
        "INSERT INTO public.tenants (rut, slug, name, type, status, plan) "
        "VALUES ('1-9', 'evil', 'Evil', 'customer', 'active', 'x')"
    ),
    "suspend a tenant in the registry": lambda c, t: c.execute(
        "UPDATE public.tenants SET status = 'suspended' WHERE rut = %s", (t.rut,)
    ),
    "unbind a tenant role": lambda c, t: c.execute(
        "DELETE FROM public.tenant_roles WHERE role_name = %s", (t.role_name,)
    ),
    "lock a tenant out": lambda c, t: c.execute(
        psycopg.sql.SQL("ALTER ROLE {} NOLOGIN").format(psycopg.sql.Identifier(t.role_name))
    ),
    "create a role": lambda c, t: c.execute("CREATE ROLE intruder LOGIN"),
    "join the tenant group": lambda c, t: c.execute("GRANT tenant_members TO smarteros_preview"),
    "add a hostname": lambda c, t: c.execute(
        "INSERT INTO public.tenant_domains (tenant_rut, hostname) VALUES (%s, 'evil.example.cl')", (t.rut,)
    ),
    "read tenant data": lambda c, t: c.execute("SELECT count(*) FROM public.contacts"),
}


@pytest.mark.parametrize("attempt", sorted(ATTACKS))
def test_the_preview_role_changes_nothing(
    platform: Platform, tenant: Tenant, preview_password: str, attempt: str
) -> None:
    with as_preview(platform, preview_password) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        ATTACKS[attempt](conn, tenant)
    with platform.admin() as admin:
        row = admin.execute(
            "SELECT t.status, r.rolcanlogin, (SELECT count(*) FROM public.tenant_roles WHERE tenant_rut = t.rut) "
            "FROM public.tenants t JOIN pg_catalog.pg_roles r ON r.rolname = %s WHERE t.rut = %s",
            (tenant.role_name, tenant.rut),
        ).fetchone()
    assert row == ("active", True, 1)
