"""Tenants blind to each other: what a tenant role can see of other tenants, attacked as the tenant role.

Three tenants share the schema; ``alpha`` attacks. It must learn no other tenant's RUT, slug, name or
role from anything it can read, and no other tenant's row count: what it can count is the total of all
tenants' rows in a table (pg_class.reltuples, and EXPLAIN ANALYZE of a scan the policy filters), never
one tenant's share. The proof for counts: every targeted EXPLAIN ANALYZE gives the same answer whether it
names a customer or a RUT nobody has, and the same answer before and after rows move between two other
tenants (same total, different shares).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from components.catalog import TENANT_TABLES
from tests.postgres.conftest import Platform, Tenant, make_rut

ALPHA, BRAVO, CHARLIE = make_rut(76500001), make_rut(76500002), make_rut(76500003)
NOBODY = make_rut(76500004)  # a valid RUT that is no tenant's
ZERO_UUID, MAX_UUID = "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"


def seed_events(platform: Platform, tenant: Tenant, rows: int) -> None:
    with platform.admin() as admin:
        admin.execute(
            "INSERT INTO events (tenant_rut, kind) SELECT %s, 'seed' FROM generate_series(1, %s)", (tenant.rut, rows)
        )
        admin.execute(
            "INSERT INTO contacts (tenant_rut, name) SELECT %s, 'contact ' || g FROM generate_series(1, %s) g",
            (tenant.rut, rows),
        )


@pytest.fixture(scope="module")
def fleet(platform: Platform) -> Iterator[dict[str, Tenant]]:
    tenants = {
        "alpha": platform.onboard(ALPHA, "alpha-attacker"),
        "bravo": platform.onboard(BRAVO, "bravo-victim"),
        "charlie": platform.onboard(CHARLIE, "charlie-victim"),
    }
    for key, rows in (("alpha", 40), ("bravo", 700), ("charlie", 300)):
        seed_events(platform, tenants[key], rows)
    with platform.admin() as admin:
        # Extended statistics with most-common values of tenant_rut: the kind a DBA adds for the planner.
        admin.execute("CREATE STATISTICS IF NOT EXISTS events_rut_kind (mcv) ON tenant_rut, kind FROM events")
        # Its own target: the columns' statistics are off (050_tenant_privacy.sql), which would skip it.
        admin.execute("ALTER STATISTICS events_rut_kind SET STATISTICS 100")
        admin.execute("ANALYZE")
    yield tenants
    with platform.admin() as admin:
        admin.execute("DROP STATISTICS IF EXISTS events_rut_kind")
        for table in ("events", "contacts"):
            admin.execute(
                sql.SQL("DELETE FROM {} WHERE tenant_rut = ANY(%s)").format(sql.Identifier(table)),
                ([t.rut for t in tenants.values()],),
            )
    for tenant in tenants.values():
        platform.offboard(tenant)
        platform.delete(tenant.record)


def identities(tenant: Tenant) -> list[str]:
    """Every spelling of a tenant's identity an attacker could find."""
    body, digit = tenant.rut.split("-")
    legacy_role = f"tenant_{body}_{digit.lower()}"
    return [tenant.rut, body, legacy_role, tenant.slug, f"Empresa {tenant.slug}", f"{tenant.slug}.example.cl"]


def everything_visible(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Every row of every catalog relation, information_schema view and public relation the role may read,
    every role's and object's comment, and the settings: relation name -> its rows as text."""
    relations = conn.execute(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname IN ('pg_catalog', 'information_schema', 'public') AND c.relkind IN ('r', 'v', 'm')"
        " AND has_table_privilege(c.oid, 'SELECT') ORDER BY 1"
    ).fetchall()
    seen: dict[str, str] = {}
    for (relation,) in relations:
        rows = conn.execute(sql.SQL("SELECT t::text FROM {} AS t").format(sql.SQL(relation))).fetchall()
        seen[relation] = "\n".join(r[0] for r in rows)
    seen["role comments"] = "\n".join(
        str(r) for r in conn.execute("SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_roles")
    )
    seen["database comments"] = "\n".join(
        str(r) for r in conn.execute("SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database")
    )
    return seen


def test_nothing_a_tenant_can_read_names_another_tenant(platform: Platform, fleet: dict[str, Tenant]) -> None:
    alpha = fleet["alpha"]
    # bravo is connected meanwhile, under an application name that names it.
    with (
        psycopg.connect(
            platform.server.dsn(user=fleet["bravo"].role_name, password=fleet["bravo"].password, dbname="smarteros"),
            application_name="Empresa bravo-victim console",
            autocommit=True,
        ) as bravo_session,
        platform.as_tenant(alpha) as conn,
    ):
        bravo_session.execute("SELECT 1")
        seen = everything_visible(conn)
        assert len(seen) > 100  # the whole readable catalog, not a handful of views
        # The attacker does see itself, so the search is able to find identities.
        assert any(alpha.rut in text for text in seen.values())
        assert any(alpha.slug in text for text in seen.values())
        # Every tenant role is listed, under an opaque name: it is the number of tenants, nothing more.
        roles = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'tenant\\_%'")}
        assert {t.role_name for t in fleet.values()} <= roles
        for tenant in fleet.values():
            assert re.fullmatch(r"tenant_[0-9a-f]{24}", tenant.role_name)
        found = {
            (relation, identity)
            for victim in ("bravo", "charlie")
            for identity in identities(fleet[victim])
            for relation, text in seen.items()
            if identity in text
        }
        assert found == set()


def test_statistics_with_most_common_values_are_hidden(platform: Platform, fleet: dict[str, Tenant]) -> None:
    with platform.admin() as admin:
        # No column statistics are kept for the tables with row-level security (see 050_tenant_privacy.sql).
        kept = admin.execute(
            "SELECT DISTINCT tablename::text FROM pg_stats WHERE schemaname = 'public' AND tablename = ANY(%s)",
            (list(TENANT_TABLES),),
        )
        assert kept.fetchall() == []
        # Extended statistics a DBA adds are not built either: ANALYZE builds them only from columns it
        # analyses.
        ext = admin.execute("SELECT most_common_vals FROM pg_stats_ext WHERE statistics_name = 'events_rut_kind'")
        assert ext.fetchall() == []
        assert admin.execute("SELECT count(*) FROM pg_statistic_ext_data").fetchone() == (0,)
    with platform.as_tenant(fleet["alpha"]) as conn:
        assert conn.execute("SELECT tablename, attname FROM pg_stats WHERE schemaname = 'public'").fetchall() == []
        assert conn.execute("SELECT statistics_name FROM pg_stats_ext").fetchall() == []
        assert conn.execute("SELECT statistics_name FROM pg_stats_ext_exprs").fetchall() == []
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            conn.execute("SELECT * FROM pg_statistic")


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM pg_stat_activity",
        "SELECT * FROM pg_stat_user_tables",
        "SELECT * FROM pg_statio_user_tables",
        "SELECT pg_stat_get_live_tuples('public.events'::regclass)",
        "SELECT * FROM pg_stat_get_activity(NULL)",
        "SELECT pg_relation_size('public.events')",
        "SELECT pg_total_relation_size('public.events')",
    ],
)
def test_activity_and_size_counters_are_closed_to_tenants(
    platform: Platform, fleet: dict[str, Tenant], query: str
) -> None:
    with platform.as_tenant(fleet["alpha"]) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(query)
    with platform.admin() as admin:  # monitoring keeps them
        admin.execute("CREATE ROLE smarteros_probe_monitor IN ROLE pg_monitor")
        try:
            admin.execute("SET ROLE smarteros_probe_monitor")
            admin.execute(query)
        finally:
            admin.execute("RESET ROLE")
            admin.execute("DROP ROLE smarteros_probe_monitor")


def test_the_total_of_all_tenants_is_what_remains_countable(platform: Platform, fleet: dict[str, Tenant]) -> None:
    """What README.md says stays visible: pg_class.reltuples of a shared table, i.e. all tenants together."""
    with platform.admin() as admin:
        total = admin.execute("SELECT count(*) FROM events").fetchone()
    with platform.as_tenant(fleet["alpha"]) as conn:
        reltuples = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'public.events'::regclass")
        assert reltuples.fetchone() == total
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (40,)


# Targeted attacks: each names a RUT (or a slug, name or hostname) and asks the planner to touch its rows.
DATA_ATTACKS = [
    "SELECT * FROM {table} WHERE tenant_rut = '{rut}'",
    "SELECT * FROM {table} WHERE tenant_rut = ANY(ARRAY['{rut}', '1-9'])",
    "SELECT * FROM {table} WHERE tenant_rut BETWEEN '{rut}' AND '{rut}'",
    "SELECT * FROM {table} WHERE tenant_rut LIKE '{rut}%'",
    f"SELECT * FROM {{table}} WHERE tenant_rut = '{{rut}}' OR id = '{ZERO_UUID}'",
    f"SELECT * FROM {{table}} WHERE (tenant_rut, id) BETWEEN ('{{rut}}', '{ZERO_UUID}') AND ('{{rut}}', '{MAX_UUID}')",
    "SELECT count(*) FROM {table} WHERE tenant_rut = '{rut}' GROUP BY tenant_rut",
]
EXTENDED_STATISTICS_ATTACKS = [
    "SELECT * FROM events WHERE tenant_rut = '{rut}' AND kind = 'seed'",
    "SELECT * FROM events WHERE (tenant_rut, kind) IN (('{rut}', 'seed'))",
]
REGISTRY_ATTACKS = [
    "SELECT * FROM tenant_roles WHERE tenant_rut = '{rut}'",
    "SELECT * FROM tenant_roles WHERE tenant_rut = ANY(ARRAY['{rut}', '1-9'])",
    "SELECT * FROM tenant_roles WHERE role_name = '{legacy_role}'",
    "SELECT * FROM tenant_overview WHERE rut = '{rut}'",
    "SELECT * FROM tenant_overview WHERE slug = '{slug}' OR name = 'Empresa {slug}'",
    "SELECT * FROM tenant_overview WHERE '{slug}.example.cl' = ANY(hostnames)",
    # The registry tables themselves (closed to tenant roles; their unique indexes are the oracle).
    "SELECT * FROM tenants WHERE slug = '{slug}'",
    "SELECT * FROM tenants WHERE rut = ANY(ARRAY['{rut}', '1-9'])",
    "SELECT * FROM tenant_domains WHERE hostname = '{slug}.example.cl'",
    "SELECT * FROM tenant_products WHERE tenant_rut = '{rut}'",
]
PLANNER_SETTINGS = [
    "RESET ALL",
    "SET enable_seqscan = off",
    "SET enable_seqscan = off; SET enable_indexscan = off",
    "SET enable_seqscan = off; SET enable_bitmapscan = off",
]


def explain_all(
    conn: psycopg.Connection[Any], attacks: list[str], *, costs: bool, **names: str
) -> dict[tuple[str, str], str]:
    """EXPLAIN ANALYZE of each attack under each planner setting: the plans, their actual row counts and,
    with ``costs``, the planner's estimates (never timings)."""
    options = "ANALYZE, TIMING OFF, SUMMARY OFF" + ("" if costs else ", COSTS OFF")
    plans = {}
    for setting in PLANNER_SETTINGS:
        conn.execute(setting)
        for attack in attacks:
            for table in (["events", "contacts"] if "{table}" in attack else [""]):
                statement = attack.format(table=table, **names)
                try:
                    rows = conn.execute(f"EXPLAIN ({options}) {statement}".encode()).fetchall()
                except errors.InsufficientPrivilege as exc:
                    rows = [(f"refused: {exc.diag.message_primary}",)]
                plans[(setting, anonymous(statement, names))] = anonymous("\n".join(r[0] for r in rows), names)
    conn.execute("RESET ALL")
    return plans


def anonymous(text: str, names: dict[str, str]) -> str:
    """``text`` with the names the attack used replaced by placeholders, so two attacks compare."""
    for key in ("legacy_role", "rut", "slug"):
        text = text.replace(names[key], f"<{key}>")
    return text


def names_of(tenant: Tenant) -> dict[str, str]:
    body, digit = tenant.rut.split("-")
    return {"rut": tenant.rut, "slug": tenant.slug, "legacy_role": f"tenant_{body}_{digit.lower()}"}


def test_explain_analyze_cannot_tell_a_customer_from_nobody(platform: Platform, fleet: dict[str, Tenant]) -> None:
    bravo = fleet["bravo"]
    body, digit = NOBODY.split("-")
    nobody = {"rut": NOBODY, "slug": "nobody-victim", "legacy_role": f"tenant_{body}_{digit.lower()}"}
    attacks = DATA_ATTACKS + EXTENDED_STATISTICS_ATTACKS + REGISTRY_ATTACKS
    with platform.as_tenant(fleet["alpha"]) as conn:
        customer = explain_all(conn, attacks, costs=True, **names_of(bravo))
        stranger = explain_all(conn, attacks, costs=True, **nobody)
    assert len(customer) == len(PLANNER_SETTINGS) * (len(attacks) + len(DATA_ATTACKS))
    assert any("Rows Removed by Filter" in plan for plan in customer.values())  # the counts are there to see
    differ = {key: (customer[key], stranger.get(key)) for key in customer if customer[key] != stranger.get(key)}
    assert differ == {}


def test_explain_analyze_cannot_tell_one_tenants_share_of_a_table(
    platform: Platform, fleet: dict[str, Tenant]
) -> None:
    bravo, charlie = fleet["bravo"], fleet["charlie"]
    # Without costs: moving rows leaves dead tuples and new pages, which change the total's costs only, and
    # the page counts and visibility map choose between a bitmap and an index-only scan. Both sides are
    # measured on a freshly rewritten table (VACUUM FULL), then VACUUM ANALYZE (it sets the visibility map),
    # so the physical layout is the same and only the tenants' shares differ.
    with platform.admin() as admin:
        admin.execute("VACUUM FULL events")
        admin.execute("VACUUM ANALYZE events")
    with platform.as_tenant(fleet["alpha"]) as conn:
        before = explain_all(conn, DATA_ATTACKS, costs=False, **names_of(bravo))
    with platform.admin() as admin:  # 200 of bravo's events become charlie's: same total, other shares
        moved = admin.execute(
            "UPDATE events SET tenant_rut = %s WHERE id IN"
            " (SELECT id FROM events WHERE tenant_rut = %s ORDER BY id LIMIT 200)",
            (charlie.rut, bravo.rut),
        ).rowcount
        admin.execute("VACUUM FULL events")
        admin.execute("VACUUM ANALYZE events")
    try:
        assert moved == 200
        with platform.as_tenant(fleet["alpha"]) as conn:
            after = explain_all(conn, DATA_ATTACKS, costs=False, **names_of(bravo))
        differ = {key: (before[key], after.get(key)) for key in before if before[key] != after.get(key)}
        assert differ == {}, "\n".join(f"{k}\n--before--\n{b}\n--after--\n{a}" for k, (b, a) in differ.items())
    finally:
        with platform.admin() as admin:
            admin.execute(
                "UPDATE events SET tenant_rut = %s WHERE id IN"
                " (SELECT id FROM events WHERE tenant_rut = %s ORDER BY id LIMIT 200)",
                (bravo.rut, charlie.rut),
            )
