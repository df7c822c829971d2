#!/usr/bin/env python3
"""Row-level security cost: one tenant's aggregate under RLS versus the admin's hand-written WHERE.

Starts a throwaway PostgreSQL cluster (the test harness's ``initdb``/``pg_ctl`` code), applies ``sql/``,
provisions ten tenants through the PostgreSQL providers (as ``smarteros_provisioner``), loads 1,000,000
rows into ``events`` spread evenly across them, runs ANALYZE, warms the cache, then times the same aggregate

* as one tenant's role, relying on the policy ``tenant_rut = (SELECT tenant_rut FROM tenant_roles ...)``;
* as the superuser (no RLS) with an explicit ``WHERE tenant_rut = '<rut>'``;

nine times each, interleaved, and prints both medians and their ratio (target: at most 1.2).

    .venv/bin/python scripts/bench_rls.py [--rows 1000000] [--tenants 10] [--runs 9]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from pulumi.dynamic import ConfigureRequest  # noqa: E402
from pulumi.dynamic.config import Config  # noqa: E402
from stdnum.cl import rut as cl_rut  # noqa: E402

from components.catalog import TENANT_TABLES  # noqa: E402
from components.database import schema_files  # noqa: E402
from components.local.bootstrap import bootstrap_postgres  # noqa: E402
from components.providers.postgres import (  # noqa: E402
    SharedSchemaProvider,
    TableGrantsProvider,
    TenantBindingProvider,
    TenantRecordProvider,
    TenantRoleProvider,
)
from tests.harness.postgres import PostgresServer, postgres_cluster  # noqa: E402

DBNAME = "smarteros"
STACK = "smarteros/bench"
QUERY = "SELECT count(*), count(DISTINCT kind), max(occurred_at) FROM events"


def configured(provider: Any, server: PostgresServer, password: str) -> Any:
    config = {
        "smarteros:postgres": {
            "host": server.host,
            "port": server.port,
            "database": DBNAME,
            "user": "smarteros_provisioner",
            "sslmode": "disable",
        },
        "smarteros:postgresPassword": password,
    }
    provider.configure(ConfigureRequest(Config(config, "smarteros")))
    return provider


def provision(server: PostgresServer, tenants: int) -> list[tuple[str, str, str]]:
    """The database, the roles script, the schema and ``tenants`` tenants; returns (rut, role, password)."""
    password = secrets.token_urlsafe(24)
    bootstrap_postgres(server.admin(), DBNAME, known_passwords={"smarteros_provisioner": password})
    configured(SharedSchemaProvider(), server, password).create(
        {"files": schema_files(), "tenant_tables": list(TENANT_TABLES), "stack": STACK}
    )
    record = configured(TenantRecordProvider(), server, password)
    role = configured(TenantRoleProvider(), server, password)
    grants = configured(TableGrantsProvider(), server, password)
    binding = configured(TenantBindingProvider(), server, password)
    out = []
    for i in range(tenants):
        body = 76_300_000 + i
        rut = f"{body}-{cl_rut.calc_check_digit(str(body))}"
        record.create(
            {
                "rut": rut,
                "slug": f"bench-{i:02d}",
                "name": f"Bench {i}",
                "type": "customer",
                "status": "active",
                "plan": "pro",
                "products": [],
                "hostnames": [],
                "stack": STACK,
            }
        )
        created = role.create({"tenant_rut": rut, "connection_limit": 5, "statement_timeout": "60s", "stack": STACK})
        assert created.outs is not None
        name = str(created.outs["role_name"])  # the database names the role
        grants.create({"role_name": name, "tenant_rut": rut, "tables": ["events"], "privileges": ["select"]})
        binding.create({"role_name": name, "tenant_rut": rut})
        assert created.outs is not None
        out.append((rut, name, str(created.outs["password"])))
    return out


def load(server: PostgresServer, ruts: list[str], rows: int) -> None:
    with server.connect(dbname=DBNAME) as admin:
        admin.execute("SET session_replication_role = replica")  # bulk load: skip per-row FK triggers
        admin.execute(
            "INSERT INTO events (tenant_rut, kind, payload, occurred_at)"
            " SELECT (%s::text[])[1 + i %% %s], 'kind-' || (i %% 40), '{}'::jsonb,"
            "        now() - i * interval '1 second'"
            "   FROM generate_series(0, %s - 1) AS i",
            (ruts, len(ruts), rows),
        )
        admin.execute("VACUUM (ANALYZE) events")
        admin.execute("ANALYZE tenant_roles")


def timed(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> tuple[float, Any]:
    started = time.perf_counter()
    row = conn.execute(query, params).fetchone()
    return time.perf_counter() - started, row


def plan_of(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> str:
    rows = conn.execute("EXPLAIN " + query, params).fetchall()
    return "\n".join("    " + r[0] for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()

    with postgres_cluster() as server:
        began = time.perf_counter()
        tenants = provision(server, args.tenants)
        load(server, [t[0] for t in tenants], args.rows)
        print(f"setup: {args.rows:,} rows for {args.tenants} tenants in {time.perf_counter() - began:.1f} s")

        rut, role, password = tenants[len(tenants) // 2]
        admin_query = QUERY + " WHERE tenant_rut = %s"
        with (
            server.connect(user=role, password=password, dbname=DBNAME) as tenant_conn,
            server.connect(dbname=DBNAME) as admin_conn,
        ):
            for _ in range(3):  # warm the cache and the plans
                _, tenant_row = timed(tenant_conn, QUERY)
                _, admin_row = timed(admin_conn, admin_query, (rut,))
            if tenant_row != admin_row:
                print(f"results differ: tenant {tenant_row} admin {admin_row}", file=sys.stderr)
                return 1
            tenant_times, admin_times = [], []
            for _ in range(args.runs):
                tenant_times.append(timed(tenant_conn, QUERY)[0])
                admin_times.append(timed(admin_conn, admin_query, (rut,))[0])
            print(f"tenant {rut}: {tenant_row[0]:,} rows of {args.rows:,}")
            print("plan as the tenant role (RLS):\n" + plan_of(tenant_conn, QUERY))
            print("plan as the admin (WHERE):\n" + plan_of(admin_conn, admin_query, (rut,)))

    rls = statistics.median(tenant_times)
    admin = statistics.median(admin_times)
    ratio = rls / admin
    print(f"median of {args.runs}, warm cache:")
    print(f"  tenant role under RLS        {rls * 1000:8.2f} ms")
    print(f"  admin with WHERE tenant_rut  {admin * 1000:8.2f} ms")
    print(f"  ratio                        {ratio:8.3f}  (target <= 1.2: {'met' if ratio <= 1.2 else 'MISSED'})")
    return 0 if ratio <= 1.2 else 2


if __name__ == "__main__":
    sys.exit(main())
