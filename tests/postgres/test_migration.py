"""Upgrading a stack set up by the release before opaque role names, on PostgreSQL 15 and 16.

``tests/postgres/legacy/`` holds that release's ``sql/`` files. A database is set up with them, a tenant
onboarded the way that release did it (the provisioner, then holding CREATEROLE, makes ``tenant_<rut>``),
and rows written. Then the upgrade as README.md describes it: the new ``sql/provisioner.sql`` as a
superuser, then ``pulumi up``, replayed here step by step through the real provider host in the order
the engine uses for a delete-before-replace. No row is lost, the old role is gone, the new one logs in
and sees exactly the tenant's rows, and the provisioner holds nothing the old release gave it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pulumi.runtime import rpc

from components.catalog import TENANT_TABLES
from components.database import SQL_DIR, schema_files
from components.providers.postgres import (
    ROLE_ATTRIBUTES,
    SharedSchemaProvider,
    TableGrantsProvider,
    TenantBindingProvider,
    TenantRoleProvider,
    ownership_marker,
)
from tests.harness.provider_host import ProviderHost, urn
from tests.postgres.conftest import (
    DBNAME,
    PROVISIONER,
    STACK,
    Platform,
    grant_props,
    make_rut,
    provider_config,
    record_props,
)

LEGACY = Path(__file__).resolve().parent / "legacy"
LEGACY_DB = "smarteros_legacy"
RUT = make_rut(76600001)
LEGACY_ROLE = "tenant_" + RUT.replace("-", "_").lower()


def run_as_superuser(platform: Platform, dbname: str, script: Path) -> None:
    with platform.server.connect(dbname=dbname) as admin:
        admin.execute(script.read_text(encoding="utf-8").encode())


@pytest.fixture
def legacy_stack(platform: Platform) -> Iterator[dict[str, Any]]:
    """A database as the previous release left it, with one tenant and its rows; the old state's outputs."""
    server = platform.server
    server.create_database(LEGACY_DB)
    legacy_password = secrets.token_urlsafe(16)
    old_state: dict[str, Any] = {}
    try:
        run_as_superuser(platform, LEGACY_DB, LEGACY / "provisioner.sql")
        with server.connect(dbname=LEGACY_DB) as admin:
            admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(PROVISIONER),
                                                                       sql.Literal(platform.provisioner_password)))
        with server.connect(user=PROVISIONER, password=platform.provisioner_password, dbname=LEGACY_DB) as prov:
            for path in sorted((LEGACY / "schema").glob("*.sql")):
                prov.execute(path.read_text(encoding="utf-8").encode())
                prov.execute("RESET ROLE")
            # What the previous release's providers did for a tenant, as that release's provisioner.
            record = record_props(RUT, "legacy")
            prov.execute(
                "INSERT INTO tenants (rut, slug, name, type, status, plan, managed_by)"
                " VALUES (%s, %s, %s, 'customer', 'active', 'pro', %s)",
                (RUT, record["slug"], record["name"], ownership_marker(STACK, RUT)),
            )
            verifier = prov.pgconn.encrypt_password(legacy_password.encode(), b"", b"scram-sha-256").decode()
            role = sql.Identifier(LEGACY_ROLE)
            prov.execute(sql.SQL("CREATE ROLE {} WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE "
                                 "NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5 PASSWORD {}").format(
                                     role, sql.Literal(verifier)))
            prov.execute(sql.SQL("ALTER ROLE {} SET statement_timeout = '30s'").format(role))
            prov.execute(sql.SQL("GRANT tenant_members TO {}").format(role))
            prov.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(role, sql.Literal(ownership_marker(STACK, RUT))))
            prov.execute("SET ROLE smarteros_owner")
            for table in TENANT_TABLES:
                prov.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
                    sql.Identifier("public", table), role))
            prov.execute("RESET ROLE")
            prov.execute("INSERT INTO tenant_roles (role_name, tenant_rut) VALUES (%s, %s)", (LEGACY_ROLE, RUT))
        with server.connect(user=LEGACY_ROLE, password=legacy_password, dbname=LEGACY_DB) as tenant:
            for i in range(25):  # the tenant writes its own rows, as its applications do
                tenant.execute("INSERT INTO events (tenant_rut, kind) VALUES (%s, %s)", (RUT, f"k{i}"))
            tenant.execute("INSERT INTO contacts (tenant_rut, name) VALUES (%s, 'Juan')", (RUT,))
            assert tenant.execute("SELECT rut FROM tenants").fetchall() == [(RUT,)]
        old_state.update({
            "role": {
                "role_name": LEGACY_ROLE, "tenant_rut": RUT, "connection_limit": 5, "statement_timeout": "30s",
                "stack": STACK, "member_of": ["tenant_members"], "attributes": dict(ROLE_ATTRIBUTES),
                "comment": ownership_marker(STACK, RUT), "password": legacy_password,
            },
            "grants": {
                **grant_props(RUT, role_name=LEGACY_ROLE),
                "role_name": LEGACY_ROLE,
                "granted": {t: ["delete", "insert", "select", "update"] for t in TENANT_TABLES},
            },
            "binding": {"role_name": LEGACY_ROLE, "tenant_rut": RUT},
            "schema": {"files": {p.name: p.read_text(encoding="utf-8") for p in (LEGACY / "schema").glob("*.sql")},
                       "tenant_tables": list(TENANT_TABLES), "stack": STACK, "rls_tables": sorted(TENANT_TABLES)},
        })
        yield old_state
    finally:
        # The cluster's roles are shared with the other tests: put the current release back in any case.
        run_as_superuser(platform, DBNAME, SQL_DIR / "provisioner.sql")
        with server.connect() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(LEGACY_DB)))
            # Roles are the cluster's: the old one, and the one the upgrade made (named with this database's key).
            for name in (LEGACY_ROLE, *old_state.get("created", [])):
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    found = {}
    for table in ("events", "contacts", "tenants"):
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        assert row is not None
        found[table] = int(row[0])
    return found


def test_an_upgrade_replaces_rut_named_roles_and_keeps_every_row(
    platform: Platform, legacy_stack: dict[str, Any], provider_host_factory: Any
) -> None:
    server = platform.server
    with server.connect(dbname=LEGACY_DB) as admin:
        before = counts(admin)
        old_provisioner = admin.execute(
            "SELECT rolcreaterole FROM pg_roles WHERE rolname = %s", (PROVISIONER,)
        ).fetchone()
    assert before == {"events": 25, "contacts": 1, "tenants": 1}
    assert old_provisioner == (True,)  # what the old release gave it
    with server.connect(dbname=LEGACY_DB) as admin:
        admin.execute("ANALYZE")
        assert admin.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'events'").fetchone() != (0,)

    # 1. The administrator runs the new sql/provisioner.sql as a superuser.
    run_as_superuser(platform, LEGACY_DB, SQL_DIR / "provisioner.sql")
    with server.connect(dbname=LEGACY_DB) as admin:
        standing = admin.execute(
            "SELECT rolcreaterole, ARRAY(SELECT roleid::regrole::text FROM pg_auth_members WHERE member = r.oid)"
            " FROM pg_roles r WHERE rolname = %s",
            (PROVISIONER,),
        ).fetchone()
    assert standing == (False, ["smarteros_owner"])
    with server.connect(dbname=LEGACY_DB) as admin:  # the statistics gathered so far are gone, and stay gone
        admin.execute("ANALYZE")
        kept = admin.execute(
            "SELECT DISTINCT tablename::text FROM pg_stats WHERE schemaname = 'public' AND tablename = ANY(%s)",
            (list(TENANT_TABLES),),
        ).fetchall()
        assert kept == []
    # Between the two steps the tenant keeps working under its old role.
    with server.connect(user=LEGACY_ROLE, password=legacy_stack["role"]["password"], dbname=LEGACY_DB) as tenant:
        assert tenant.execute("SELECT count(*) FROM events").fetchone() == (25,)

    # 2. pulumi up, as the engine runs it: the schema update, then the role's delete-before-replace.
    host: ProviderHost = provider_host_factory({**provider_config(server, platform.provisioner_password),
                                                "smarteros:postgres": {**provider_config(
                                                    server, platform.provisioner_password)["smarteros:postgres"],
                                                    "database": LEGACY_DB}})
    kinds = "pulumi-python:dynamic/postgres:"
    schema_urn = urn(kinds + "SharedSchema", "platform-schema")
    new_schema = {"files": schema_files(), "tenant_tables": list(TENANT_TABLES), "stack": STACK}
    assert host.diff(SharedSchemaProvider(), f"{STACK}/public", schema_urn, legacy_stack["schema"],
                     new_schema).changes is True
    host.update(SharedSchemaProvider(), f"{STACK}/public", schema_urn, legacy_stack["schema"], new_schema)

    role_urn, grants_urn, binding_urn = (urn(kinds + k, f"{RUT}-{n}") for k, n in
                                         (("TenantRole", "role"), ("TableGrants", "grants"),
                                          ("TenantBinding", "binding")))
    new_role_inputs = {"tenant_rut": RUT, "connection_limit": 5, "statement_timeout": "30s", "stack": STACK}
    role_diff = host.diff(TenantRoleProvider(), LEGACY_ROLE, role_urn, legacy_stack["role"], new_role_inputs)
    assert role_diff.replaces == ["role_name"] and role_diff.delete_before_replace is True
    # The dependents see an unknown role name: they are replaced too, so the engine deletes them first.
    unknown_name = {"role_name": rpc.UNKNOWN}
    assert host.diff(TableGrantsProvider(), LEGACY_ROLE, grants_urn, legacy_stack["grants"],
                     {**grant_props(RUT), **unknown_name}).replaces == ["role_name"]
    assert host.diff(TenantBindingProvider(), LEGACY_ROLE, binding_urn, legacy_stack["binding"],
                     {"tenant_rut": RUT, **unknown_name}).replaces == ["role_name"]
    host.delete(TenantBindingProvider(), LEGACY_ROLE, binding_urn, legacy_stack["binding"])
    host.delete(TableGrantsProvider(), LEGACY_ROLE, grants_urn, legacy_stack["grants"])
    host.delete(TenantRoleProvider(), LEGACY_ROLE, role_urn, legacy_stack["role"])
    role_id, role_out = host.create(TenantRoleProvider(), role_urn, new_role_inputs)
    new_name = role_out["role_name"]
    legacy_stack["created"] = [new_name]
    assert role_id == new_name and new_name != LEGACY_ROLE and RUT.split("-")[0] not in new_name
    host.create(TableGrantsProvider(), grants_urn, grant_props(RUT, role_name=new_name))
    host.create(TenantBindingProvider(), binding_urn, {"role_name": new_name, "tenant_rut": RUT})

    # Every row is still there; the old role is gone; the new one sees exactly the tenant's rows.
    with server.connect(dbname=LEGACY_DB) as admin:
        assert counts(admin) == before
        assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (LEGACY_ROLE,)).fetchone() == (0,)
        assert admin.execute("SELECT role_name FROM tenant_roles").fetchall() == [(new_name,)]
        assert admin.execute(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", (new_name,)
        ).fetchone() == (f"managed by pulumi stack {STACK}",)
    with server.connect(user=new_name, password=role_out["password"], dbname=LEGACY_DB) as tenant:
        assert tenant.execute("SELECT tenant_rut, count(*) FROM events GROUP BY 1").fetchall() == [(RUT, 25)]
        assert tenant.execute("SELECT rut, slug FROM tenant_overview").fetchall() == [(RUT, "legacy")]
    with platform.server.connect(dbname=LEGACY_DB) as admin:
        index = admin.execute("SELECT to_regclass('public.tenant_roles_tenant_rut_idx')").fetchone()
        assert index == (None,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            admin.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(new_name)))
            admin.execute("SELECT count(*) FROM tenants")
