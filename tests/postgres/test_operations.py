"""Onboarding under load, no-change rounds, drift, hostile inputs and ownership, on a real PostgreSQL."""

from __future__ import annotations

import re
import time

import pytest
from psycopg import errors, sql

from components.catalog import TENANT_TABLES
from components.providers.postgres import (
    GrantPlan,
    TableGrantsProvider,
    TenantRecordProvider,
    TenantRoleProvider,
    grant_statements,
    guarded_tables,
)
from tests.harness.provider_host import ProviderCallError, urn
from tests.postgres.conftest import (
    PROVISIONER,
    Platform,
    Resource,
    binding_props,
    grant_props,
    make_rut,
    record_props,
    role_props,
    server_log_size,
    server_log_tail,
)

STATEMENT = re.compile(r"LOG:\s+(statement|execute [^:]*|smarteros_admin): ")


def provisioner_statements(platform: Platform, offset: int) -> list[str]:
    """Statements the provisioner sent since ``offset`` that log_statement=mod records (writes and DDL), and
    the role changes the smarteros_admin functions made for it."""
    return [line for line in server_log_tail(platform.server, offset).splitlines() if STATEMENT.search(line)]


def test_onboarding_does_not_wait_for_open_transactions_on_shared_tables(platform: Platform) -> None:
    rut = make_rut(76200001)
    with platform.admin() as admin:
        admin.execute(sql.SQL("ALTER ROLE {} SET lock_timeout = '300ms'").format(sql.Identifier(PROVISIONER)))
    reader = platform.admin()
    try:
        reader.autocommit = False
        for table in TENANT_TABLES:  # holds ACCESS SHARE on every shared table until rollback
            reader.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        started = time.perf_counter()
        tenant = platform.onboard(rut, "charlie")
        elapsed = time.perf_counter() - started
        assert elapsed < 5, elapsed
        # The same lock timeout does stop DDL on a shared table: the measurement can fail.
        with platform.provisioner() as prov, pytest.raises(errors.LockNotAvailable), prov.transaction():
            prov.execute("ALTER TABLE contacts ENABLE ROW LEVEL SECURITY")
    finally:
        reader.rollback()
        reader.close()
        with platform.admin() as admin:
            admin.execute(sql.SQL("ALTER ROLE {} SET lock_timeout = '5s'").format(sql.Identifier(PROVISIONER)))
    with platform.as_tenant(tenant) as conn:
        assert conn.execute("SELECT rut FROM tenant_overview").fetchall() == [(rut,)]
    platform.offboard(tenant)


def test_unchanged_inputs_report_no_changes_and_write_nothing(platform: Platform) -> None:
    tenant = platform.onboard(make_rut(76200002), "delta")
    resources = [platform.schema, *tenant.resources()]
    offset = server_log_size(platform.server)
    for resource in resources:
        check = platform.host.check(resource.provider, resource.urn, resource.inputs, resource.inputs)
        assert check.failures == []
        assert (
            platform.host.diff(resource.provider, resource.id, resource.urn, resource.outputs, check.inputs).changes
            is False
        )
        platform.refresh(resource)  # pulumi refresh reads only
        assert platform.diff(resource).changes is False, resource.urn
    assert provisioner_statements(platform, offset) == []
    # A real change is visible to the same count.
    platform.update(tenant.role, role_props(tenant.rut, connection_limit=7))
    platform.update(tenant.record, record_props(tenant.rut, "delta", plan="enterprise"))
    logged = provisioner_statements(platform, offset)
    assert any("CONNECTION LIMIT 7" in line for line in logged), logged
    # The provisioner's own writes are counted too (log_statement = mod, set by the fixture for the tests).
    assert any("smarteros_admin:" not in line for line in logged), logged
    platform.offboard(tenant)


def test_drift_made_by_hand_is_read_back_and_repaired(platform: Platform) -> None:
    tenant = platform.onboard(make_rut(76200003), "echo", tables=["contacts", "orders"], privileges=["select"])
    other = make_rut(76200004)
    platform.create(
        Resource(
            tenant.record.provider,
            urn("pulumi-python:dynamic/postgres:TenantRecord", f"{other}-record"),
            record_props(other, "foxtrot"),
        )
    )
    role = sql.Identifier(tenant.role_name)
    with platform.admin() as admin:
        admin.execute(sql.SQL("GRANT DELETE ON orders TO {}").format(role))
        admin.execute(sql.SQL("REVOKE SELECT ON contacts FROM {}").format(role))
        admin.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT 50").format(role))
        admin.execute(sql.SQL("ALTER ROLE {} SET statement_timeout = '5min'").format(role))
        # From 16 on a membership is revoked by (or on behalf of) its grantor.
        by = sql.SQL(" GRANTED BY smarteros_role_admin" if platform.version == "pg16" else "")
        admin.execute(sql.SQL("REVOKE tenant_members FROM {}{}").format(role, by))
        admin.execute("UPDATE tenant_roles SET tenant_rut = %s WHERE role_name = %s", (other, tenant.role_name))

    _, grants = platform.refresh(tenant.grants)
    assert grants["granted"] == {"orders": ["delete", "select"]}
    _, role_out = platform.refresh(tenant.role)
    assert role_out["connection_limit"] == 50
    assert role_out["statement_timeout"] == "5min"
    assert "tenant_members" not in role_out["member_of"]
    _, binding = platform.refresh(tenant.binding)
    assert binding["tenant_rut"] == other

    for resource in (tenant.grants, tenant.role, tenant.binding):
        outcome = platform.diff(resource)
        assert outcome.changes is True, resource.urn
        assert outcome.replaces == [], resource.urn

    for resource in (tenant.grants, tenant.role, tenant.binding):
        platform.update(resource, resource.inputs)
        platform.refresh(resource)
        assert platform.diff(resource).changes is False, resource.urn
    assert tenant.grants.outputs["granted"] == {"contacts": ["select"], "orders": ["select"]}
    with platform.as_tenant(tenant) as conn:
        assert conn.execute("SELECT tenant_rut FROM tenant_roles").fetchall() == [(tenant.rut,)]
        assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",)
    platform.offboard(tenant)
    platform.host.delete(tenant.record.provider, other, "", {"rut": other})


def table_census(platform: Platform) -> dict[str, int]:
    with platform.admin() as admin:
        rows = admin.execute(
            "SELECT c.relname::text, c.relrowsecurity FROM pg_class c"
            " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'"
        ).fetchall()
        policies = admin.execute("SELECT count(*) FROM pg_policies WHERE schemaname = 'public'").fetchone()
    census = {name: int(rls) for name, rls in rows}
    census["__policies"] = policies[0] if policies else 0
    return census


def test_hostile_names_fail_validation_or_are_quoted(platform: Platform) -> None:
    before = table_census(platform)
    rut = make_rut(76200005)
    hostile_table = 'contacts"; DROP TABLE orders; --'
    grants = Resource(
        TableGrantsProvider(),
        urn("pulumi-python:dynamic/postgres:TableGrants", f"{rut}-grants"),
        grant_props(rut, tables=["contacts", hostile_table]),
    )
    check = platform.host.check(grants.provider, grants.urn, {}, grants.inputs)
    assert [f[0] for f in check.failures] == ["tables"]
    # The engine never creates what check rejects; a direct create is refused before anything is sent.
    with pytest.raises(ProviderCallError, match="inputs rejected before sending anything"):
        platform.host.create(grants.provider, grants.urn, grants.inputs)
    # RUT-shaped injections.
    injected = "1-9'); DROP TABLE contacts; --"
    role = platform.host.check(
        TenantRoleProvider(),
        urn("pulumi-python:dynamic/postgres:TenantRole", "x"),
        {},
        role_props("1-9", tenant_rut=injected),
    )
    assert {f[0] for f in role.failures} >= {"tenant_rut"}
    # Values that do reach SQL travel as parameters or quoted identifiers: the display name is free text.
    name = 'Ferretería Juanito\'); DROP TABLE contacts; -- "x"'
    record = Resource(
        TenantRecordProvider(),
        urn("pulumi-python:dynamic/postgres:TenantRecord", f"{rut}-record"),
        record_props(rut, "golf", name=name),
    )
    platform.create(record)
    with platform.admin() as admin:
        assert admin.execute("SELECT name FROM tenants WHERE rut = %s", (rut,)).fetchone() == (name,)
    # A hostile identifier handed to the live helpers stays one (non-existent) identifier.
    with platform.provisioner() as prov:
        assert guarded_tables(prov, [hostile_table, "contacts"]) == ["contacts"]
        statements = grant_statements("tenant_1_9", GrantPlan(grant={hostile_table: ["select"]}))
        with pytest.raises(errors.UndefinedTable, match=re.escape('contacts"; DROP TABLE orders; --')):
            prov.execute(statements[0])
    platform.delete(record)
    assert table_census(platform) == before


def test_create_refuses_an_unmarked_role_and_import_adopts_it(platform: Platform) -> None:
    rut = make_rut(76200006)
    with platform.admin() as admin:
        row = admin.execute("SELECT smarteros_admin.tenant_role_name(%s)", (rut,)).fetchone()
        assert row is not None
        name = str(row[0])
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        admin.execute(sql.SQL("COMMENT ON ROLE {} IS 'made by hand'").format(sql.Identifier(name)))
        if platform.version == "pg16":  # README: from 16 on, a hand-made role is adopted after this grant
            admin.execute(
                sql.SQL("GRANT {} TO smarteros_role_admin WITH ADMIN TRUE, INHERIT FALSE, SET FALSE").format(
                    sql.Identifier(name)
                )
            )
    role = Resource(
        TenantRoleProvider(), urn("pulumi-python:dynamic/postgres:TenantRole", f"{rut}-role"), role_props(rut)
    )
    with pytest.raises(ProviderCallError) as failure:
        platform.create(role)
    assert f"import_={rut!r}" in failure.value.message
    assert name in failure.value.message
    assert f"tenant {rut}" in failure.value.message
    with platform.admin() as admin:
        assert admin.execute(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", (name,)
        ).fetchone() == ("made by hand",)
    # Adopting with import_ (the id is the RUT): the engine reads with the program's inputs, then diffs
    # and updates; the read answers with the role's name as the id.
    found, outputs, _ = platform.host.read(role.provider, rut, role.urn, {}, role.inputs)
    assert found == name
    assert outputs["comment"] == "made by hand"
    role.id, role.outputs = found, outputs
    outcome = platform.diff(role)
    assert outcome.changes is True and outcome.replaces == []
    platform.update(role, role.inputs)
    assert role.outputs["password"]
    assert role.outputs["comment"].startswith("managed by pulumi stack smarteros/test")
    with platform.server.connect(user=name, password=role.outputs["password"], dbname="smarteros") as conn:
        assert conn.execute("SELECT pg_has_role(current_user, 'tenant_members', 'MEMBER')").fetchone() == (True,)
    platform.delete(role)


def test_deleting_what_is_already_gone_succeeds(platform: Platform) -> None:
    tenant = platform.onboard(make_rut(76200007), "hotel")
    platform.offboard(tenant)
    for resource in tenant.resources():
        assert platform.refresh(resource)[0] == ""
    platform.offboard(tenant)  # a second time: nothing left, no error


def test_create_refuses_a_binding_to_another_tenant(platform: Platform) -> None:
    tenant = platform.onboard(make_rut(76200008), "india")
    other = make_rut(76200009)
    binding = Resource(
        tenant.binding.provider,
        urn("pulumi-python:dynamic/postgres:TenantBinding", "stolen"),
        {**binding_props(other), "role_name": tenant.role_name},
    )
    with pytest.raises(ProviderCallError, match="import_"):
        platform.create(binding)
    platform.offboard(tenant)


def test_secrets_stay_out_of_logs_state_and_errors(platform: Platform, provider_host_factory) -> None:
    from pulumi.dynamic import ConfigureRequest
    from pulumi.dynamic.config import Config

    from components.providers.postgres import ConnectionSettings
    from tests.harness.provider_host import secret_leaks
    from tests.postgres.conftest import provider_config

    offset = server_log_size(platform.server)
    tenant = platform.onboard(make_rut(76200010), "juliet")
    # The provider as the engine stores it, even once configured, carries no credential.
    configured = TenantRoleProvider()
    configured.configure(
        ConfigureRequest(Config(provider_config(platform.server, platform.provisioner_password), "smarteros"))
    )
    assert isinstance(configured._settings, ConnectionSettings)
    assert platform.provisioner_password not in repr(configured._settings)
    assert secret_leaks(platform.provisioner_password, platform.host.serialized(configured)) == []
    for resource in tenant.resources():
        assert platform.provisioner_password not in str(resource.outputs)
    logs = platform.host.logs() + server_log_tail(platform.server, offset)
    assert platform.provisioner_password not in logs
    assert tenant.password not in logs  # the server only ever sees the SCRAM verifier
    # The role changes are logged, the verifier withheld: the log does record them.
    assert f"smarteros_admin: CREATE ROLE {tenant.role_name} " in logs
    assert "PASSWORD (verifier withheld)" in logs and "SCRAM-SHA-256$" not in logs
    # A wrong provisioning password: short message, tenant and system named, no credential.
    wrong = "wrong-" + platform.provisioner_password[:8]
    host = provider_host_factory(provider_config(platform.server, wrong), fresh=True)
    with pytest.raises(ProviderCallError) as failure:
        host.create(TenantRoleProvider(), tenant.role.urn, role_props(make_rut(76200011)))
    message = failure.value.message
    assert "tenant 76200011" in message and "PostgreSQL" in message and "password authentication failed" in message
    assert wrong not in failure.value.details and platform.provisioner_password not in failure.value.details
    platform.offboard(tenant)
