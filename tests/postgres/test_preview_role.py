"""The preview identity of sql/preview.sql reads everything a refresh compares, and can change nothing.

Set up as the database administrator would, in a platform database of its own on the same server (its
policies must not show in the other tests' database); the reads go through the real provider host
configured as ``smarteros_preview``, the attacks over a direct connection as that role.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from components.catalog import TENANT_TABLES
from components.database import SQL_DIR, schema_files
from components.local.bootstrap import bootstrap_postgres
from components.providers.postgres import SharedSchemaProvider
from tests.harness.postgres import PostgresServer
from tests.harness.provider_host import urn
from tests.postgres.conftest import PROVISIONER, STACK, Platform, Resource, Tenant, make_rut

PREVIEW = "smarteros_preview"
DBNAME = "smarteros_preview_check"


def config(server: PostgresServer, user: str, password: str) -> dict[str, Any]:
    return {
        "smarteros:postgres": {
            "host": server.host, "port": server.port, "database": DBNAME, "user": user, "sslmode": "disable",
        },
        "smarteros:postgresPassword": password,
    }


@dataclass
class OwnPlatform(Platform):
    """The platform, applied by the provisioner in this module's own database."""

    def admin(self) -> psycopg.Connection[Any]:
        return self.server.connect(dbname=DBNAME)


@pytest.fixture(scope="module")
def own_platform(platform: Platform, provider_host_factory: Any) -> OwnPlatform:
    server = platform.server  # roles are the cluster's: the provisioner keeps the shared fixture's password
    bootstrap_postgres(server.admin(), DBNAME, known_passwords={PROVISIONER: platform.provisioner_password})
    host = provider_host_factory(config(server, PROVISIONER, platform.provisioner_password))
    schema = Resource(
        SharedSchemaProvider(),
        urn("pulumi-python:dynamic/postgres:SharedSchema", "platform-schema"),
        {"files": schema_files(), "tenant_tables": list(TENANT_TABLES), "stack": STACK},
    )
    own = OwnPlatform(server, host, platform.provisioner_password, schema)
    own.create(schema)
    return own


@pytest.fixture(scope="module")
def preview_password(own_platform: OwnPlatform) -> str:
    password = secrets.token_urlsafe(24)
    with own_platform.admin() as admin:
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
def tenant(own_platform: OwnPlatform) -> Tenant:
    return own_platform.onboard(make_rut(76_100_200), "preview-co")


def as_preview(platform: OwnPlatform, password: str) -> psycopg.Connection[Any]:
    """A session as the preview role that has switched read-only off, as an attacker would first."""
    conn = platform.server.connect(user=PREVIEW, password=password, dbname=DBNAME)
    conn.autocommit = True
    conn.execute("SET default_transaction_read_only = off")
    return conn


def test_a_refresh_as_the_preview_role_sees_every_tenant_resource_as_it_is(
    own_platform: OwnPlatform, tenant: Tenant, preview_password: str, provider_host_factory: Any
) -> None:
    host = provider_host_factory(config(own_platform.server, PREVIEW, preview_password))
    for resource in tenant.resources():
        found, outputs, _ = host.read(resource.provider, resource.id, resource.urn, resource.outputs)
        assert found == resource.id, resource.urn
        # exactly what the provisioner itself reads back
        assert (found, outputs) == own_platform.refresh(resource), resource.urn


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
    "lock a tenant out through the provisioner's function": lambda c, t: c.execute(
        "SELECT smarteros_admin.alter_tenant_role(%s, NULL, 0, '1s', 'x', false)", (t.rut,)
    ),
    "drop a tenant role through the provisioner's function": lambda c, t: c.execute(
        "SELECT smarteros_admin.drop_tenant_role(%s)", (t.rut,)
    ),
}


@pytest.mark.parametrize("attempt", sorted(ATTACKS))
def test_the_preview_role_changes_nothing(
    own_platform: OwnPlatform, tenant: Tenant, preview_password: str, attempt: str
) -> None:
    with as_preview(own_platform, preview_password) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        ATTACKS[attempt](conn, tenant)
    with own_platform.admin() as admin:
        row = admin.execute(
            "SELECT t.status, r.rolcanlogin, (SELECT count(*) FROM public.tenant_roles WHERE tenant_rut = t.rut) "
            "FROM public.tenants t JOIN pg_catalog.pg_roles r ON r.rolname = %s WHERE t.rut = %s",
            (tenant.role_name, tenant.rut),
        ).fetchone()
    assert row == ("active", True, 1)


def test_a_preview_that_adopts_a_tenant_role_by_rut_reads_it_as_the_preview_role(
    own_platform: OwnPlatform, tenant: Tenant, preview_password: str, provider_host_factory: Any
) -> None:
    """README: "`pulumi import` takes the RUT as id" (and so does the ``import_`` option): the preview of a
    pull request that adopts a role reads it as the preview identity, which must resolve the RUT too."""
    host = provider_host_factory(config(own_platform.server, PREVIEW, preview_password))
    role = tenant.role
    found, outputs, _ = host.read(role.provider, tenant.rut, role.urn, {}, role.inputs)
    assert (found, outputs["role_name"]) == (role.id, tenant.role_name)
