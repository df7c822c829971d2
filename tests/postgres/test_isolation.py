"""Two tenants on one shared schema: each reaches only its own rows, proven on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from components.catalog import TENANT_TABLES
from tests.postgres.conftest import Platform, Tenant, make_rut

ALPHA = make_rut(76100001)
BRAVO = make_rut(76100002)


def seed(platform: Platform, tenant: Tenant, rows: int) -> None:
    """The admin writes rows for a tenant in every shared table."""
    with platform.admin() as admin:
        for i in range(rows):
            contact = admin.execute(
                "INSERT INTO contacts (tenant_rut, name) VALUES (%s, %s) RETURNING id", (tenant.rut, f"c{i}")
            ).fetchone()
            assert contact is not None
            conversation = admin.execute(
                "INSERT INTO conversations (tenant_rut, contact_id) VALUES (%s, %s) RETURNING id",
                (tenant.rut, contact[0]),
            ).fetchone()
            assert conversation is not None
            admin.execute(
                "INSERT INTO messages (tenant_rut, conversation_id, direction, body)"
                " VALUES (%s, %s, 'inbound', 'hola')",
                (tenant.rut, conversation[0]),
            )
            admin.execute(
                "INSERT INTO orders (tenant_rut, contact_id, total) VALUES (%s, %s, 1000)", (tenant.rut, contact[0])
            )
            admin.execute("INSERT INTO events (tenant_rut, kind) VALUES (%s, 'login')", (tenant.rut,))
            admin.execute(
                "INSERT INTO csat_feedback (tenant_rut, conversation_id, score) VALUES (%s, %s, 5)",
                (tenant.rut, conversation[0]),
            )
            admin.execute(
                "INSERT INTO audit_logs (tenant_rut, actor, action) VALUES (%s, 'admin', 'seed')", (tenant.rut,)
            )


@pytest.fixture(scope="module")
def tenants(platform: Platform) -> Iterator[tuple[Tenant, Tenant]]:
    alpha = platform.onboard(ALPHA, "alpha")
    bravo = platform.onboard(BRAVO, "bravo")
    seed(platform, alpha, 3)
    seed(platform, bravo, 2)
    yield alpha, bravo


def ruts_visible(conn: psycopg.Connection, table: str) -> dict[str, int]:
    rows = conn.execute(
        psycopg.sql.SQL("SELECT tenant_rut, count(*) FROM {} GROUP BY 1").format(psycopg.sql.Identifier(table))
    ).fetchall()
    return {rut: count for rut, count in rows}


def assert_isolated(platform: Platform, me: Tenant, other: Tenant, my_rows: int) -> None:
    """Everything a tenant role must and must not be able to do to the other tenant's data."""
    with platform.as_tenant(me) as conn:
        for table in TENANT_TABLES:
            assert ruts_visible(conn, table) == {me.rut: my_rows}, table
        assert conn.execute("SELECT rut, slug FROM tenant_overview").fetchall() == [(me.rut, me.slug)]
        # Naming another role does not help: the caller must be that role.
        assert conn.execute("SELECT rut FROM tenant_overview_rows(%s)", (other.role_name,)).fetchall() == []
        assert conn.execute("SELECT rut FROM tenant_overview_rows('smarteros_owner')").fetchall() == []
        for registry in ("tenants", "tenant_products", "tenant_domains"):
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(psycopg.sql.SQL("SELECT 1 FROM {}").format(psycopg.sql.Identifier(registry)))
        # Its own binding and nobody else's.
        assert conn.execute("SELECT role_name, tenant_rut FROM tenant_roles").fetchall() == [(me.role_name, me.rut)]
        # Writing a row for the other tenant is refused by the policy's WITH CHECK.
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            conn.execute("INSERT INTO events (tenant_rut, kind) VALUES (%s, 'forged')", (other.rut,))
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            conn.execute("UPDATE audit_logs SET tenant_rut = %s", (other.rut,))
        # The other tenant's rows are invisible to UPDATE and DELETE.
        assert conn.execute("UPDATE orders SET total = 0 WHERE tenant_rut = %s", (other.rut,)).rowcount == 0
        assert conn.execute("DELETE FROM events WHERE tenant_rut = %s", (other.rut,)).rowcount == 0
        # No way around the policies.
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(other.role_name)))
        with pytest.raises(errors.InsufficientPrivilege, match="must be owner"):
            conn.execute("ALTER TABLE contacts DISABLE ROW LEVEL SECURITY")
        with pytest.raises(errors.InsufficientPrivilege, match="must be owner"):
            conn.execute("ALTER POLICY tenant_isolation ON contacts USING (true)")
        with pytest.raises(errors.InsufficientPrivilege, match="must be owner"):
            conn.execute("DROP POLICY tenant_isolation ON orders")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("INSERT INTO tenant_roles (role_name, tenant_rut) VALUES (%s, %s)", (me.role_name, other.rut))
        assert conn.execute("SET row_security = off") is not None
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            conn.execute("SELECT count(*) FROM contacts")
    with platform.admin() as admin:
        assert ruts_visible(admin, "events")[other.rut] > 0


def test_each_tenant_reads_and_writes_only_its_own_rows(platform: Platform, tenants: tuple[Tenant, Tenant]) -> None:
    alpha, bravo = tenants
    assert_isolated(platform, alpha, bravo, 3)
    assert_isolated(platform, bravo, alpha, 2)


def test_a_tenant_writes_its_own_rows(platform: Platform, tenants: tuple[Tenant, Tenant]) -> None:
    alpha, _ = tenants
    with platform.as_tenant(alpha) as conn:
        conn.execute("INSERT INTO audit_logs (tenant_rut, actor, action) VALUES (%s, 'me', 'own')", (alpha.rut,))
        assert conn.execute("DELETE FROM audit_logs WHERE action = 'own'").rowcount == 1


def test_role_settings_reach_the_session(platform: Platform, tenants: tuple[Tenant, Tenant]) -> None:
    alpha, _ = tenants
    with platform.as_tenant(alpha) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",)
        row = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolreplication, rolconnlimit,"
            " pg_has_role(current_user, 'tenant_members', 'MEMBER') FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row == (False, False, False, False, False, 5, True)


def test_isolation_holds_after_a_privileges_update(platform: Platform, tenants: tuple[Tenant, Tenant]) -> None:
    alpha, bravo = tenants
    platform.update(alpha.grants, alpha.grant_props(tables=["contacts", "orders"], privileges=["select"]))
    try:
        assert platform.diff(alpha.grants).changes is False
        with platform.as_tenant(alpha) as conn:
            assert ruts_visible(conn, "contacts") == {alpha.rut: 3}
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                conn.execute("SELECT count(*) FROM events")
        with platform.as_tenant(alpha) as conn, pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            conn.execute("INSERT INTO orders (tenant_rut) VALUES (%s)", (alpha.rut,))
        assert_isolated(platform, bravo, alpha, 2)
    finally:
        platform.update(alpha.grants, alpha.grant_props())
    assert_isolated(platform, alpha, bravo, 3)


def test_isolation_holds_after_a_refresh(platform: Platform, tenants: tuple[Tenant, Tenant]) -> None:
    alpha, bravo = tenants
    for tenant in tenants:
        for resource in tenant.resources():
            before = dict(resource.outputs)
            found, outputs = platform.refresh(resource)
            assert found == resource.id
            assert outputs == before, resource.urn
            assert platform.diff(resource).changes is False, resource.urn
    assert_isolated(platform, alpha, bravo, 3)
    assert_isolated(platform, bravo, alpha, 2)


def test_a_role_without_binding_sees_nothing(platform: Platform, tenants: tuple[Tenant, Tenant]) -> None:
    alpha, _ = tenants
    platform.delete(alpha.binding)
    try:
        assert platform.refresh(alpha.binding)[0] == ""
        with platform.as_tenant(alpha) as conn:
            for table in TENANT_TABLES:
                assert ruts_visible(conn, table) == {}, table
            assert conn.execute("SELECT count(*) FROM tenant_overview").fetchone() == (0,)
            with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
                conn.execute("INSERT INTO events (tenant_rut, kind) VALUES (%s, 'x')", (alpha.rut,))
    finally:
        platform.create(alpha.binding)
    with platform.as_tenant(alpha) as conn:
        assert ruts_visible(conn, "events") == {alpha.rut: 3}
