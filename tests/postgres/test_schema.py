"""The shared schema as applied by the provisioner: what every tenant table must carry."""

from __future__ import annotations

from components.catalog import TENANT_TABLES
from components.database import schema_files
from tests.postgres.conftest import PROVISIONER, Platform

REGISTRY = {"tenants", "tenant_products", "tenant_domains", "tenant_roles"}


def test_tenant_tables_of_the_catalog_match_the_applied_schema(platform: Platform) -> None:
    with platform.admin() as admin:
        rows = admin.execute(
            "SELECT c.relname::text FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
            " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attname = 'tenant_rut'"
        ).fetchall()
    assert {r[0] for r in rows} - REGISTRY == set(TENANT_TABLES)


def test_every_tenant_owned_table_has_uuid_key_indexed_rut_rls_and_one_policy(platform: Platform) -> None:
    with platform.admin() as admin:
        for table in [*TENANT_TABLES, "tenant_products", "tenant_domains"]:
            key = admin.execute(
                "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_index i"
                " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                " WHERE i.indrelid = %s::regclass AND i.indisprimary",
                (f"public.{table}",),
            ).fetchall()
            assert key == [("uuid",)], table
            indexed = admin.execute(
                "SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                " AND a.attnum = i.indkey[0] WHERE i.indrelid = %s::regclass AND a.attname = 'tenant_rut'",
                (f"public.{table}",),
            ).fetchone()
            assert indexed is not None and indexed[0] >= 1, table
            rls = admin.execute(
                "SELECT relrowsecurity, relowner::regrole::text FROM pg_class WHERE oid = %s::regclass",
                (f"public.{table}",),
            ).fetchone()
            assert rls == (True, "smarteros_owner"), table
            policies = admin.execute(
                "SELECT policyname, roles::text, cmd, qual, with_check FROM pg_policies"
                " WHERE schemaname = 'public' AND tablename = %s",
                (table,),
            ).fetchall()
            assert len(policies) == 1, table
            name, roles, cmd, qual, with_check = policies[0]
            assert (name, roles, cmd) == ("tenant_isolation", "{tenant_members}", "ALL"), table
            assert "tenant_roles" in qual and qual == with_check, table


def test_views_run_with_the_callers_rights(platform: Platform) -> None:
    with platform.admin() as admin:
        views = admin.execute(
            "SELECT relname::text, reloptions FROM pg_class"
            " WHERE relnamespace = 'public'::regnamespace AND relkind = 'v' ORDER BY 1"
        ).fetchall()
    assert views, "the schema defines views"
    for name, options in views:
        assert "security_invoker=true" in (options or []), name


def test_the_provisioner_is_no_superuser_and_cannot_bypass_rls(platform: Platform) -> None:
    with platform.admin() as admin:
        row = admin.execute(
            "SELECT rolsuper, rolcreaterole, rolbypassrls, rolcreatedb FROM pg_roles WHERE rolname = %s",
            (PROVISIONER,),
        ).fetchone()
    assert row == (False, False, False, False)


def test_reapplying_the_schema_is_idempotent_and_deleting_it_drops_nothing(platform: Platform) -> None:
    with platform.admin() as admin:
        admin.execute(
            "INSERT INTO tenants (rut, slug, name, type, status, plan)"
            " VALUES ('5-1', 'kilo', 'K', 'customer', 'active', 'x')"
        )
    try:
        schema = platform.schema
        changed = {
            **schema.inputs,
            "files": {**schema_files(), "050_comment.sql": "COMMENT ON TABLE events IS 'audit';"},
        }
        assert platform.diff(schema, changed).changes is True
        platform.update(schema, changed)
        assert sorted(schema.outputs["rls_tables"]) == sorted(TENANT_TABLES)
        platform.delete(schema)
        with platform.admin() as admin:
            assert admin.execute("SELECT count(*) FROM tenants WHERE rut = '5-1'").fetchone() == (1,)
            assert admin.execute("SELECT obj_description('public.events'::regclass)").fetchone() == ("audit",)
            tables = admin.execute(
                "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
            ).fetchone()
        assert tables == (len(TENANT_TABLES) + 4,)
        platform.update(schema, {**schema.inputs, "files": schema_files()})
    finally:
        with platform.admin() as admin:
            admin.execute("DELETE FROM tenants WHERE rut = '5-1'")


def test_a_table_losing_rls_is_drift(platform: Platform) -> None:
    with platform.admin() as admin:
        admin.execute("ALTER TABLE csat_feedback DISABLE ROW LEVEL SECURITY")
    try:
        _, outputs = platform.refresh(platform.schema)
        assert "csat_feedback" not in outputs["rls_tables"]
        assert platform.diff(platform.schema).changes is True
    finally:
        with platform.admin() as admin:
            admin.execute("ALTER TABLE csat_feedback ENABLE ROW LEVEL SECURITY")
        platform.refresh(platform.schema)
    assert platform.diff(platform.schema).changes is False
