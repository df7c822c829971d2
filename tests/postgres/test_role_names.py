"""Opaque tenant role names: keyed, deterministic per database, found again after a lost state."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from psycopg import sql

from components.providers.postgres import TenantRoleProvider
from tests.harness.provider_host import ProviderCallError, urn
from tests.postgres.conftest import STACK, Platform, Resource, make_rut, role_props

RUT = make_rut(76700001)


def test_the_name_is_an_hmac_of_the_rut_under_the_databases_key(platform: Platform) -> None:
    with platform.admin() as admin:
        pads = admin.execute("SELECT inner_pad, outer_pad FROM smarteros_admin.role_name_key").fetchone()
        assert pads is not None
        inner, outer = pads
        name = admin.execute("SELECT smarteros_admin.tenant_role_name(%s)", (RUT,)).fetchone()
    key = bytes(b ^ 0x36 for b in inner)
    assert bytes(b ^ 0x5C for b in key) == bytes(outer)  # the two pads come from one key
    expected = hmac.new(key.rstrip(b"\0"), RUT.encode(), hashlib.sha256).hexdigest()[:24]
    assert name == (f"tenant_{expected}",)
    # Without the key, the plain hash of the RUT (which anyone can compute for every RUT) is not the name.
    assert hashlib.sha256(RUT.encode()).hexdigest()[:24] != expected


def test_the_key_is_made_once_per_database(platform: Platform) -> None:
    with platform.admin() as admin:
        before = admin.execute("SELECT smarteros_admin.tenant_role_name(%s)", (RUT,)).fetchone()
    # Running the script again (as every upgrade does) keeps the key, so every name stays.
    from components.database import SQL_DIR

    with platform.admin() as admin:
        admin.execute((SQL_DIR / "provisioner.sql").read_text(encoding="utf-8").encode())
        assert admin.execute("SELECT smarteros_admin.tenant_role_name(%s)", (RUT,)).fetchone() == before
        assert admin.execute("SELECT count(*) FROM smarteros_admin.role_name_key").fetchone() == (1,)


def test_a_lost_state_finds_the_same_role_and_adopts_it(platform: Platform) -> None:
    role = Resource(TenantRoleProvider(), urn("pulumi-python:dynamic/postgres:TenantRole", f"{RUT}-role"),
                    role_props(RUT))
    platform.create(role)
    first_name, first_password = role.outputs["role_name"], role.outputs["password"]
    try:
        # The state is gone; the next `pulumi up` creates the resource again from the same inputs.
        again = Resource(TenantRoleProvider(), role.urn, role_props(RUT, connection_limit=6))
        platform.create(again)
        assert again.id == again.outputs["role_name"] == first_name
        assert again.outputs["password"] != first_password  # adopted with a new password the stack knows
        assert again.outputs["comment"] == f"managed by pulumi stack {STACK}"
        with platform.server.connect(user=first_name, password=again.outputs["password"], dbname="smarteros") as c:
            assert c.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user").fetchone() == (6,)
        # pulumi import by RUT finds it as well, and answers with the role's name as the id.
        found, outputs, _ = platform.host.read(role.provider, RUT, role.urn, {}, role.inputs)
        assert (found, outputs["role_name"], outputs["tenant_rut"]) == (first_name, first_name, RUT)
    finally:
        platform.delete(role)
    with platform.admin() as admin:
        assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (first_name,)).fetchone() == (0,)


def test_another_stacks_role_is_not_adopted(platform: Platform) -> None:
    role = Resource(TenantRoleProvider(), urn("pulumi-python:dynamic/postgres:TenantRole", f"{RUT}-role"),
                    role_props(RUT, stack="smarteros/other"))
    platform.create(role)
    try:
        mine = Resource(TenantRoleProvider(), role.urn, role_props(RUT))
        with pytest.raises(ProviderCallError) as failure:
            platform.create(mine)
        message = failure.value.message
        assert f"PostgreSQL role {role.outputs['role_name']} already exists and is not managed by stack" in message
        assert f"import_={RUT!r}" in message
    finally:
        platform.delete(role)


def test_every_table_tenants_can_query_keeps_no_planner_statistics(platform: Platform) -> None:
    with platform.admin() as admin:
        kept = admin.execute(
            "SELECT c.relname::text, a.attname::text FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
            " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relrowsecurity"
            "   AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget IS DISTINCT FROM 0"
        ).fetchall()
        readable = admin.execute(
            "SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
            " AND c.relkind IN ('r', 'p') AND has_table_privilege('tenant_members', c.oid, 'SELECT')"
            " AND NOT c.relrowsecurity"
        ).fetchall()
    assert kept == []
    assert readable == []  # every table a tenant reads has row-level security, hence no statistics


def test_the_owner_and_the_provisioner_see_every_tenant_in_the_overview(platform: Platform) -> None:
    alpha = platform.onboard(make_rut(76700002), "overview-a")
    bravo = platform.onboard(make_rut(76700003), "overview-b")
    try:
        with platform.provisioner() as prov:
            seen = {r[0] for r in prov.execute("SELECT rut FROM tenant_overview")}
        assert {alpha.rut, bravo.rut} <= seen
        with platform.as_tenant(alpha) as conn:
            assert conn.execute("SELECT rut FROM tenant_overview").fetchall() == [(alpha.rut,)]
            # A tenant naming the owner role gets nothing: it is not a member of it.
            got = conn.execute(sql.SQL("SELECT count(*) FROM tenant_overview_rows({})").format(
                sql.Literal("smarteros_owner"))).fetchone()
            assert got == (0,)
    finally:
        for tenant in (alpha, bravo):
            platform.offboard(tenant)
            platform.delete(tenant.record)


def test_a_membership_granted_by_hand_is_drift_update_removes_on_15_and_names_on_16(platform: Platform) -> None:
    tenant = platform.onboard(make_rut(76700004), "drift-member")
    role = sql.Identifier(tenant.role_name)
    with platform.admin() as admin:
        admin.execute(sql.SQL("GRANT pg_read_all_settings TO {}").format(role))
    try:
        _, outputs = platform.refresh(tenant.role)
        assert sorted(outputs["member_of"]) == ["pg_read_all_settings", "tenant_members"]
        assert platform.diff(tenant.role).changes is True
        if platform.version == "pg15":
            platform.update(tenant.role, tenant.role.inputs)
            assert tenant.role.outputs["member_of"] == ["tenant_members"]
        else:
            # 16 lets only a holder of ADMIN on the predefined role revoke it, and smarteros_role_admin holds
            # none: the change is refused with the server's answer, and an administrator revokes it.
            with pytest.raises(ProviderCallError) as failure:
                platform.update(tenant.role, tenant.role.inputs)
            message = failure.value.message
            assert f"tenant {tenant.rut}: PostgreSQL refused change of the tenant's role: 42501" in message
            assert 'permission denied to revoke role "pg_read_all_settings"' in message
    finally:
        with platform.admin() as admin:
            admin.execute(sql.SQL("REVOKE pg_read_all_settings FROM {}").format(role))
        platform.offboard(tenant)
        platform.delete(tenant.record)
