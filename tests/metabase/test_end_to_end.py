"""End to end on the throwaway PostgreSQL: two tenants through the PostgreSQL, Vault and Metabase providers.

One provider host carries all three configurations, as ``pulumi up`` would. Each tenant gets its role,
grants and binding (PostgreSQL), its database login stored in Vault, and its Metabase workspace whose
connection uses the password read back from Vault. The Metabase double's connection test really logs in;
the test then logs in with exactly the credentials Metabase received and proves each tenant sees only its
own rows, and that the double's permission graphs keep every other group out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hvac
import psycopg
import pytest
from psycopg import sql

from components import naming
from components.analytics import collection_description, database_connection_name
from components.catalog import TENANT_TABLES
from components.database import SQL_DIR, schema_files
from components.providers.metabase import (
    ADMINISTRATORS_GROUP_ID,
    ALL_USERS_GROUP_ID,
    Collection,
    CollectionIsolation,
    CollectionIsolationProvider,
    CollectionPermission,
    CollectionPermissionProvider,
    CollectionProvider,
    DatabaseAccessLockdown,
    DatabaseAccessLockdownProvider,
    DatabaseConnection,
    DatabaseConnectionProvider,
    DatabaseIsolation,
    DatabaseIsolationProvider,
    DataPermission,
    DataPermissionProvider,
    PermissionsGroup,
    PermissionsGroupProvider,
    TenantWorkspace,
    collection_level,
    isolation_violations,
    query_level,
)
from components.providers.postgres import (
    SharedSchemaProvider,
    TableGrantsProvider,
    TenantBindingProvider,
    TenantRecordProvider,
    TenantRoleProvider,
)
from components.providers.vault import SecretProvider, VaultSecret
from tests.harness.openbao import OpenBaoServer
from tests.harness.postgres import PostgresServer
from tests.harness.provider_host import ProviderHost
from tests.metabase.conftest import Driven
from tests.metabase.double import MetabaseDouble, ReceivedLogin
from tests.postgres.conftest import binding_props, grant_props, make_rut, record_props, role_props

DBNAME = "smarteros_bi"
STACK = "smarteros/test"
ALPHA, BRAVO = make_rut(76300001), make_rut(76300002)


@dataclass
class Provisioned:
    rut: str
    role: str
    password: str
    owners: int
    viewers: int
    collection: int
    database: int
    login: ReceivedLogin


def _drive(host: ProviderHost, provider: Any, kind: Any, name: str, inputs: dict[str, Any]) -> Driven:
    resource = Driven(host, provider, kind, name)
    resource.create(inputs)
    return resource


def _platform(host: ProviderHost, metabase: MetabaseDouble) -> int:
    """The shared schema and the Metabase scaffolding, as SharedDatabase and SharedAnalytics build them."""
    _drive(
        host,
        SharedSchemaProvider(),
        "pulumi-python:dynamic/postgres:SharedSchema",
        "platform-schema",
        {"files": schema_files(), "tenant_tables": list(TENANT_TABLES), "stack": STACK},
    )
    return _metabase_platform(host)


def _metabase_platform(host: ProviderHost) -> int:
    """What SharedAnalytics builds in Metabase."""
    tenants = _drive(
        host, CollectionProvider(), Collection, "platform-tenants-collection", {"name": "Tenants", "stack": STACK}
    )
    _drive(
        host,
        CollectionIsolationProvider(),
        CollectionIsolation,
        "platform-tenants-collection-isolation",
        {"collection_id": int(tenants.id), "allowed_group_ids": []},
    )
    for name, cid in (("root", "root"), ("tenants", int(tenants.id))):
        _drive(
            host,
            CollectionPermissionProvider(),
            CollectionPermission,
            f"platform-all-users-{name}-collection",
            {"group_id": ALL_USERS_GROUP_ID, "collection_id": cid, "level": "none"},
        )
    _drive(
        host,
        DatabaseAccessLockdownProvider(),
        DatabaseAccessLockdown,
        "platform-all-users-no-queries",
        {"group_id": ALL_USERS_GROUP_ID, "level": "no"},
    )
    return int(tenants.id)


def _tenant(
    host: ProviderHost,
    server: PostgresServer,
    metabase: MetabaseDouble,
    vault: OpenBaoServer,
    rut: str,
    slug: str,
    tenants_collection: int,
) -> Provisioned:
    # PostgreSQL: what the Database child creates.
    pg = "pulumi-python:dynamic/postgres:"
    _drive(host, TenantRecordProvider(), pg + "TenantRecord", f"{rut}-record", record_props(rut, slug))
    role = _drive(host, TenantRoleProvider(), pg + "TenantRole", f"{rut}-role", role_props(rut))
    role_name = str(role.outputs["role_name"])  # the database names the role; the rest reads the output
    _drive(
        host,
        TableGrantsProvider(),
        pg + "TableGrants",
        f"{rut}-grants",
        grant_props(rut, privileges=["select"], role_name=role_name),
    )
    _drive(host, TenantBindingProvider(), pg + "TenantBinding", f"{rut}-binding", binding_props(rut, role_name))

    # Vault: the Secrets child stores the database login under the tenant's subtree.
    _drive(
        host,
        SecretProvider(),
        VaultSecret,
        f"{rut}-postgres",
        {
            "rut": rut,
            "service": "postgres",
            "mount": "secret",
            "stack": STACK,
            "generate": [],
            "external": [],
            "rotate": 0,
            "provided": {"username": role_name, "password": role.outputs["password"]},
        },
    )
    stored = hvac.Client(url=vault.address, token=vault.root_token).secrets.kv.v2.read_secret_version(
        path=naming.vault_secret_path(rut, "postgres"), mount_point="secret", raise_on_deleted_version=True
    )["data"]["data"]

    # Metabase: the Analytics child, with the login read back from Vault.
    ids = _workspace(host, server, metabase, rut, slug, tenants_collection, stored["username"], stored["password"])
    return Provisioned(
        rut=rut,
        role=role_name,
        password=str(role.outputs["password"]),
        login=metabase.logins[ids.pop("login")],
        **ids,
    )


def _workspace(
    host: ProviderHost,
    server: PostgresServer,
    metabase: MetabaseDouble,
    rut: str,
    slug: str,
    tenants_collection: int,
    user: str,
    password: str,
) -> dict[str, int]:
    """What the Analytics component builds in Metabase for one tenant; the ids it got (and the login's index)."""
    groups = {
        kind: _drive(
            host,
            PermissionsGroupProvider(),
            PermissionsGroup,
            f"{rut}-{kind}",
            {"name": naming.metabase_group_name(rut, kind), "tenant": rut, "stack": STACK},
        )
        for kind in ("owners", "viewers")
    }
    allowed = [int(g.id) for g in groups.values()]
    collection = _drive(
        host,
        CollectionProvider(),
        Collection,
        f"{rut}-collection",
        {
            "name": naming.default_collection_name(rut, slug.title()),
            "parent_id": tenants_collection,
            "description": collection_description(rut, slug.title()),
            "tenant": rut,
            "stack": STACK,
            "allowed_group_ids": allowed,
        },
    )
    for kind, level in (("owners", "write"), ("viewers", "read")):
        _drive(
            host,
            CollectionPermissionProvider(),
            CollectionPermission,
            f"{rut}-{kind}-collection",
            {"group_id": int(groups[kind].id), "collection_id": int(collection.id), "level": level, "tenant": rut},
        )
    _drive(
        host,
        CollectionIsolationProvider(),
        CollectionIsolation,
        f"{rut}-collection-isolation",
        {"collection_id": int(collection.id), "allowed_group_ids": allowed, "tenant": rut},
    )
    database = _drive(
        host,
        DatabaseConnectionProvider(),
        DatabaseConnection,
        f"{rut}-database",
        {
            "name": database_connection_name(rut, slug.title()),
            "host": server.host,
            "port": server.port,
            "dbname": DBNAME,
            "role": user,
            "user_template": "{role}",
            "password": password,
            "ssl": False,
            "additional_options": "",
            "tenant": rut,
            "stack": STACK,
            "allowed_group_ids": allowed,
        },
    )
    login = max(i for i, seen in enumerate(metabase.logins) if seen.succeeded)
    _drive(
        host,
        DatabaseIsolationProvider(),
        DatabaseIsolation,
        f"{rut}-database-isolation",
        {"database_id": int(database.id), "allowed_group_ids": allowed, "tenant": rut},
    )
    for kind in ("owners", "viewers"):
        _drive(
            host,
            DataPermissionProvider(),
            DataPermission,
            f"{rut}-{kind}-data",
            {
                "group_id": int(groups[kind].id),
                "database_id": int(database.id),
                "level": "query-builder",
                "tenant": rut,
            },
        )
    return {
        "owners": int(groups["owners"].id),
        "viewers": int(groups["viewers"].id),
        "collection": int(collection.id),
        "database": int(database.id),
        "login": login,
    }


@dataclass
class World:
    metabase: MetabaseDouble
    tenants: list[Provisioned]
    admin_db: int
    host: ProviderHost
    tenants_collection: int


@pytest.fixture(scope="module")
def world(
    postgres_server: PostgresServer, openbao_server: OpenBaoServer, provider_host_factory: Any
) -> Iterator[World]:
    server = postgres_server
    server.create_database(DBNAME)
    with server.connect(dbname=DBNAME) as admin:
        admin.execute((SQL_DIR / "provisioner.sql").read_text(encoding="utf-8").encode())
    metabase = MetabaseDouble(sample_database=False).start()
    vault = openbao_server
    try:
        # What exists before this stack: the admin connection (All Users may query it, as Metabase grants by
        # default) and an "Analysts" group with native queries there, so its lowest level is the highest.
        admin_db = metabase.seed_database("smarteros (admin)", {"host": server.host, "dbname": DBNAME})
        analysts = metabase.hand_create_group("Analysts")
        metabase.hand_set_query_level(analysts, admin_db, "query-builder-and-native")
        host = provider_host_factory(
            {
                "smarteros:postgres": {
                    "host": server.host,
                    "port": server.port,
                    "database": DBNAME,
                    "user": server.superuser,
                    "sslmode": "disable",
                },
                "smarteros:postgresPassword": server.superuser_password,
                "smarteros:vault": {"address": vault.address, "mount": "secret"},
                "smarteros:vaultToken": vault.root_token,
                "smarteros:metabase": {"url": metabase.url},
                "smarteros:metabaseApiKey": metabase.api_key,
            }
        )
        tenants_collection = _platform(host, metabase)
        tenants = [
            _tenant(host, server, metabase, vault, rut, slug, tenants_collection)
            for rut, slug in ((ALPHA, "alpha"), (BRAVO, "bravo"))
        ]
        with server.connect(dbname=DBNAME) as admin:
            for tenant, rows in zip(tenants, (3, 2), strict=True):
                for i in range(rows):
                    admin.execute(
                        "INSERT INTO contacts (tenant_rut, name) VALUES (%s, %s)", (tenant.rut, f"{tenant.rut}-{i}")
                    )
        yield World(metabase, tenants, admin_db, host, tenants_collection)
    finally:
        metabase.stop()


def test_metabase_logged_in_as_each_tenant_role(world: World) -> None:
    tenants = world.tenants
    for tenant in tenants:
        login = tenant.login
        assert (login.database_name, login.user, login.dbname, login.succeeded) == (
            database_connection_name(tenant.rut, "Alpha" if tenant.rut == ALPHA else "Bravo"),
            tenant.role,
            DBNAME,
            True,
        )
        assert login.password == tenant.password  # the password that went through Vault


def test_metabase_credentials_see_only_their_tenant_rows(
    postgres_server: PostgresServer, world: World
) -> None:
    tenants = world.tenants
    for tenant, rows in zip(tenants, (3, 2), strict=True):
        login = tenant.login
        with psycopg.connect(
            host=login.host,
            port=login.port,
            dbname=login.dbname,
            user=login.user,
            password=login.password,
            sslmode="disable",
            autocommit=True,
        ) as conn:
            seen = conn.execute("SELECT tenant_rut, count(*) FROM contacts GROUP BY 1").fetchall()
            assert seen == [(tenant.rut, rows)]
            other = next(t.rut for t in tenants if t.rut != tenant.rut)
            assert conn.execute("SELECT count(*) FROM contacts WHERE tenant_rut = %s", (other,)).fetchone() == (0,)
            for table in TENANT_TABLES:
                visible = conn.execute(
                    sql.SQL("SELECT DISTINCT tenant_rut FROM {}").format(sql.Identifier(table))
                ).fetchall()
                assert set(visible) <= {(tenant.rut,)}, table


def test_isolation_holds_on_the_metabase_graphs(world: World) -> None:
    metabase, tenants, admin_db = world.metabase, world.tenants, world.admin_db
    workspaces = [TenantWorkspace(t.rut, (t.owners, t.viewers), t.collection, t.database) for t in tenants]
    cgraph, dgraph = metabase.collection_graph(), metabase.data_graph()
    assert isolation_violations(cgraph, dgraph, workspaces) == []
    # The tenants' own groups got in, and nobody else can query the admin connection but Administrators
    # and the group that was there before this stack (left alone: it is not ours).
    for t in tenants:
        assert query_level(dgraph, t.owners, t.database) == "query-builder"
        assert collection_level(cgraph, t.owners, t.collection) == "write"
        assert collection_level(cgraph, t.viewers, t.collection) == "read"
        assert query_level(dgraph, t.owners, admin_db) == "no"
    assert query_level(dgraph, ALL_USERS_GROUP_ID, admin_db) == "no"
    # Metabase's defaults gave "Analysts" native queries on each new tenant database (its lowest existing
    # level); the tenant's isolation closed it again.
    analysts = metabase.group_named("Analysts")
    assert analysts is not None
    opened = [
        (method, path) for method, path in metabase.requests if (method, path) == ("PUT", "/api/permissions/graph")
    ]
    assert opened
    for t in tenants:
        assert query_level(dgraph, analysts["id"], t.database) == "no"
    assert query_level(dgraph, analysts["id"], admin_db) == "query-builder-and-native"
    assert collection_level(cgraph, ALL_USERS_GROUP_ID, "root") == "none"
    assert query_level(dgraph, ADMINISTRATORS_GROUP_ID, tenants[0].database) == "query-builder-and-native"


def test_isolation_check_notices_a_door_opened_by_hand(world: World) -> None:
    metabase, tenants = world.metabase, world.tenants
    alpha, bravo = tenants
    metabase.hand_set_query_level(bravo.owners, alpha.database, "query-builder")
    try:
        workspaces = [TenantWorkspace(t.rut, (t.owners, t.viewers), t.collection, t.database) for t in tenants]
        assert isolation_violations(metabase.collection_graph(), metabase.data_graph(), workspaces) == [
            f"group {bravo.owners} has query-builder on database {alpha.database} of tenant {alpha.rut}"
        ]
    finally:
        metabase.hand_set_query_level(bravo.owners, alpha.database, "no")


def test_a_converge_from_empty_state_adopts_everything_this_stack_owns(
    postgres_server: PostgresServer, world: World
) -> None:
    """State lost: the same resources created again find the stack's own objects (groups with members too:
    they hold the stack's tagged collection), with no error, no POST and no duplicate, and every tenant stays
    isolated."""
    metabase, host = world.metabase, world.host
    for t in world.tenants:  # the tenant's people are in its groups by now
        metabase.hand_add_member(t.owners)
        metabase.hand_add_member(t.viewers)
    with metabase.lock:
        counts_before = (len(metabase.state.groups), len(metabase.state.collections), len(metabase.state.databases))
    with metabase.recording() as calls:
        assert _metabase_platform(host) == world.tenants_collection
        for t in world.tenants:
            ids = _workspace(
                host, postgres_server, metabase, t.rut, "alpha" if t.rut == ALPHA else "bravo",
                world.tenants_collection, t.role, t.password,
            )
            ids.pop("login")
            assert ids == {"owners": t.owners, "viewers": t.viewers, "collection": t.collection, "database": t.database}
    assert [c for c in calls if c[0] == "POST"] == []
    with metabase.lock:
        counts_after = (len(metabase.state.groups), len(metabase.state.collections), len(metabase.state.databases))
    assert counts_after == counts_before
    workspaces = [TenantWorkspace(t.rut, (t.owners, t.viewers), t.collection, t.database) for t in world.tenants]
    assert isolation_violations(metabase.collection_graph(), metabase.data_graph(), workspaces) == []
