"""A tenant's lifecycle end to end: active → suspended → active, and active → cancelled → active.

Every resource the Tenant component registers for PostgreSQL, Vault and Metabase is driven through the real
provider host, its inputs computed by the same functions the components call (``role_inputs``,
``policy_inputs``, ``query_levels``, ``collection_levels``, ``is_archived``), against PostgreSQL 15 and 16
provisioned as README.md says (the provider logs in as ``smarteros_provisioner``), OpenBao with README's
provisioning token, and the Metabase double. Each status change is converged as ``pulumi up`` would: diff,
then update what changed. The test then acts as the tenant: logs in to the database, logs in with its AppRole
and reads a secret, and checks what Metabase lets its groups do with the login Metabase holds.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hvac
import psycopg
import pytest
import requests

from components import naming
from components.analytics import collection_levels, database_connection_name, query_levels
from components.catalog import TENANT_TABLES
from components.config import stack_config_from_raw
from components.database import grant_inputs, record_inputs, role_inputs, schema_files
from components.lifecycle import is_archived, is_open
from components.providers.metabase import (
    Collection,
    CollectionIsolation,
    CollectionIsolationProvider,
    CollectionPermission,
    CollectionPermissionProvider,
    CollectionProvider,
    DatabaseConnection,
    DatabaseConnectionProvider,
    DatabaseIsolation,
    DatabaseIsolationProvider,
    DataPermission,
    DataPermissionProvider,
    MetabaseClient,
    PermissionsGroup,
    PermissionsGroupProvider,
    collection_level,
    query_level,
)
from components.providers.postgres import (
    SharedSchemaProvider,
    TableGrantsProvider,
    TenantBindingProvider,
    TenantRecordProvider,
    TenantRoleProvider,
)
from components.providers.vault import AppRoleProvider, PolicyProvider, SecretProvider, VaultAppRole, VaultPolicy
from components.providers.vault import VaultSecret as VaultSecretResource
from components.secrets import policy_inputs
from components.spec import TenantSpec
from tests.harness.openbao import OpenBaoServer, approle_login
from tests.harness.postgres import PostgresServer, pgserver_bin_dir
from tests.harness.provider_host import DiffOutcome, ProviderHost
from tests.metabase.conftest import Driven
from tests.metabase.double import MetabaseDouble
from tests.postgres.conftest import PROVISIONER, bootstrap_database, make_rut

DBNAME = "smarteros_lifecycle"
STACK = "smarteros/test"
MOUNT = "secret"
PG = "pulumi-python:dynamic/postgres:"
CONFIG = stack_config_from_raw({"smarteros:cloudflare": {"enabled": False}})
ROWS = 3


@pytest.fixture(scope="module", params=["pg15", "pg16"])
def database(request: pytest.FixtureRequest) -> Iterator[tuple[PostgresServer, str]]:
    """A platform database set up as README.md says, on PostgreSQL 15 (the session's) or 16 (pgserver's)."""
    own = request.param == "pg16"
    server = PostgresServer.start(bin_dir=pgserver_bin_dir()) if own else request.getfixturevalue("postgres_server")
    try:
        password = secrets.token_urlsafe(24)
        bootstrap_database(server, password, DBNAME)
        yield server, password
    finally:
        if own:
            server.stop()


@pytest.fixture(scope="module")
def metabase() -> Iterator[MetabaseDouble]:
    double = MetabaseDouble(sample_database=False).start()
    try:
        yield double
    finally:
        double.stop()


@dataclass
class World:
    server: PostgresServer
    vault: OpenBaoServer
    metabase: MetabaseDouble
    host: ProviderHost
    tenants_collection: int


@pytest.fixture(scope="module")
def world(
    database: tuple[PostgresServer, str],
    metabase: MetabaseDouble,
    openbao_server: OpenBaoServer,
    openbao_provisioner_token: str,
    provider_host_factory: Any,
) -> World:
    server, password = database
    host = provider_host_factory(
        {
            "smarteros:postgres": {
                "host": server.host,
                "port": server.port,
                "database": DBNAME,
                "user": PROVISIONER,
                "sslmode": "disable",
            },
            "smarteros:postgresPassword": password,
            "smarteros:vault": {"address": openbao_server.address, "mount": MOUNT},
            "smarteros:vaultToken": openbao_provisioner_token,
            "smarteros:metabase": {"url": metabase.url},
            "smarteros:metabaseApiKey": metabase.api_key,
        }
    )
    schema = Driven(host, SharedSchemaProvider(), PG + "SharedSchema", f"schema-{server.port}")
    schema.create({"files": schema_files(), "tenant_tables": list(TENANT_TABLES), "stack": STACK})
    tenants = Driven(host, CollectionProvider(), Collection, f"tenants-collection-{server.port}")
    tenants.create({"name": f"Tenants {server.port}", "stack": STACK})
    return World(server, openbao_server, metabase, host, int(tenants.id))


def spec(rut: str, status: str) -> TenantSpec:
    return TenantSpec.model_validate(
        {
            "rut": rut,
            "slug": f"t{rut.split('-')[0]}",
            "name": f"Tenant {rut}",
            "status": status,
            "plan": "pro",
            "database": {"tables": ["contacts"], "privileges": ["select"]},
            "secrets": {"chatwoot": {"generate": ["secret_key_base"]}},
            "analytics": {"queries": "query-builder"},
        }
    )


@dataclass
class TenantStack:
    """One tenant's PostgreSQL, Vault and Metabase resources, converged to a status as ``pulumi up`` would."""

    world: World
    rut: str
    resources: dict[str, Driven] = field(default_factory=dict)

    def _resource(self, name: str, provider: Any, kind: Any) -> Driven:
        if name not in self.resources:
            self.resources[name] = Driven(self.world.host, provider, kind, f"{self.rut}-{name}")
        return self.resources[name]

    def id_of(self, name: str) -> int:
        return int(self.resources[name].id)

    @property
    def role_name(self) -> str:
        return str(self.resources["role"].outputs["role_name"])

    @property
    def password(self) -> str:
        return str(self.resources["role"].outputs["password"])

    def plan(self, status: str) -> list[tuple[str, Any, Any, Any]]:
        """(name, provider, kind, inputs) in dependency order; inputs may read outputs of earlier ones."""
        tenant = spec(self.rut, status)
        levels, queries = collection_levels(status), query_levels(tenant.analytics.queries, status)
        steps: list[tuple[str, Any, Any, Any]] = [
            ("record", TenantRecordProvider(), PG + "TenantRecord", lambda: record_inputs(tenant, CONFIG, STACK)),
            ("role", TenantRoleProvider(), PG + "TenantRole", lambda: role_inputs(tenant, STACK)),
            ("grants", TableGrantsProvider(), PG + "TableGrants", lambda: grant_inputs(tenant, self.role_name)),
            (
                "binding",
                TenantBindingProvider(),
                PG + "TenantBinding",
                lambda: {"role_name": self.role_name, "tenant_rut": self.rut},
            ),
            (
                "chatwoot",
                SecretProvider(),
                VaultSecretResource,
                lambda: {"rut": self.rut, "service": "chatwoot", "mount": MOUNT, "stack": STACK,
                         "generate": list(tenant.secrets["chatwoot"].generate), "external": [], "rotate": 0,
                         "provided": {}},
            ),
            (
                "postgres",
                SecretProvider(),
                VaultSecretResource,
                lambda: {"rut": self.rut, "service": "postgres", "mount": MOUNT, "stack": STACK, "generate": [],
                         "external": [], "rotate": 0,
                         "provided": {"username": self.role_name, "password": self.password}},
            ),
            ("policy", PolicyProvider(), VaultPolicy, lambda: policy_inputs(tenant, MOUNT, STACK)),
            (
                "approle",
                AppRoleProvider(),
                VaultAppRole,
                lambda: {"rut": self.rut, "policy": naming.vault_policy_name(self.rut)},
            ),
        ]
        for kind in ("owners", "viewers"):
            steps.append(
                (
                    kind,
                    PermissionsGroupProvider(),
                    PermissionsGroup,
                    lambda kind=kind: {
                        "name": naming.metabase_group_name(self.rut, kind), "tenant": self.rut, "stack": STACK
                    },
                )
            )
        steps.append(
            (
                "collection",
                CollectionProvider(),
                Collection,
                lambda: {
                    "name": tenant.collection_name,
                    "parent_id": self.world.tenants_collection,
                    "tenant": self.rut,
                    "stack": STACK,
                    "description": f"Workspace of {self.rut}",
                    "allowed_group_ids": [self.id_of("owners"), self.id_of("viewers")],
                    "archived": is_archived(status),
                },
            )
        )
        for kind in ("owners", "viewers"):
            steps.append(
                (
                    f"{kind}-collection",
                    CollectionPermissionProvider(),
                    CollectionPermission,
                    lambda kind=kind: {
                        "group_id": self.id_of(kind),
                        "collection_id": self.id_of("collection"),
                        "level": levels[kind],
                        "tenant": self.rut,
                    },
                )
            )
        steps.append(
            (
                "collection-isolation",
                CollectionIsolationProvider(),
                CollectionIsolation,
                lambda: {
                    "collection_id": self.id_of("collection"),
                    "allowed_group_ids": [self.id_of("owners"), self.id_of("viewers")],
                    "tenant": self.rut,
                },
            )
        )
        steps.append(
            (
                "database",
                DatabaseConnectionProvider(),
                DatabaseConnection,
                lambda: {
                    "name": database_connection_name(self.rut, tenant.name),
                    "host": self.world.server.host,
                    "port": self.world.server.port,
                    "dbname": DBNAME,
                    "role": self.role_name,
                    "user_template": "{role}",
                    "password": self.password,
                    "ssl": False,
                    "additional_options": "",
                    "tenant": self.rut,
                    "stack": STACK,
                    "allowed_group_ids": [self.id_of("owners"), self.id_of("viewers")],
                    "login": is_open(status),
                },
            )
        )
        steps.append(
            (
                "database-isolation",
                DatabaseIsolationProvider(),
                DatabaseIsolation,
                lambda: {
                    "database_id": self.id_of("database"),
                    "allowed_group_ids": [self.id_of("owners"), self.id_of("viewers")],
                    "tenant": self.rut,
                },
            )
        )
        for kind in ("owners", "viewers"):
            steps.append(
                (
                    f"{kind}-data",
                    DataPermissionProvider(),
                    DataPermission,
                    lambda kind=kind: {
                        "group_id": self.id_of(kind),
                        "database_id": self.id_of("database"),
                        "level": queries[kind],
                        "tenant": self.rut,
                    },
                )
            )
        return steps

    def converge(self, status: str, *, refresh: bool = False) -> dict[str, DiffOutcome]:
        """Create what is missing, diff the rest against the status's inputs and update what changed; with
        ``refresh``, read every resource back first (``pulumi up --refresh``)."""
        diffs: dict[str, DiffOutcome] = {}
        for name, provider, kind, inputs in self.plan(status):
            resource = self._resource(name, provider, kind)
            if refresh and resource.id:
                resource.refresh()
            news = inputs()
            if not resource.id:
                resource.create(news)
                continue
            diffs[name] = outcome = resource.diff(news)
            assert outcome.replaces == [], f"{name} would be replaced: {outcome.replaces}"
            if outcome.changes:
                resource.update(news)
        return diffs


# -- what the tenant and the operator observe ---------------------------------------------------------------


def rows_seen_as_tenant(world: World, tenant: TenantStack) -> int:
    with psycopg.connect(
        world.server.dsn(user=tenant.role_name, password=tenant.password, dbname=DBNAME), autocommit=True
    ) as conn:
        row = conn.execute("SELECT count(*) FROM contacts").fetchone()
    assert row is not None
    return int(row[0])


def rows_kept(world: World, rut: str) -> int:
    with world.server.connect(dbname=DBNAME) as admin:
        row = admin.execute("SELECT count(*) FROM contacts WHERE tenant_rut = %s", (rut,)).fetchone()
    assert row is not None
    return int(row[0])


def read_with_token(world: World, token: str, rut: str) -> requests.Response:
    path = f"{MOUNT}/data/{naming.vault_secret_path(rut, 'chatwoot')}"
    return requests.get(f"{world.vault.address}/v1/{path}", headers={"X-Vault-Token": token}, timeout=10)


def digest(data: Any) -> str:
    """A fingerprint of secret data, so a failing comparison never prints a value."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def vault_secret(world: World, rut: str) -> tuple[str, dict[str, Any]]:
    """The secret's data (fingerprinted) and its metadata (versions, current version), as an operator sees them."""
    client = hvac.Client(url=world.vault.address, token=world.vault.root_token, timeout=10)
    path = naming.vault_secret_path(rut, "chatwoot")
    data = client.secrets.kv.v2.read_secret_version(path=path, mount_point=MOUNT, raise_on_deleted_version=True)
    meta = client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=MOUNT)["data"]
    return digest(data["data"]["data"]), {"current_version": meta["current_version"], "versions": meta["versions"]}


def metabase_access(world: World, tenant: TenantStack) -> dict[str, Any]:
    """What Metabase lets the tenant's groups do: query levels, collection levels, and whether the login it
    holds for the tenant's connection still opens a session."""
    client = MetabaseClient(world.metabase.url, world.metabase.api_key, retries=0)
    data = client.get_data_graph_for_database(tenant.id_of("database"))
    collections = client.get_collection_graph()
    groups = {kind: tenant.id_of(kind) for kind in ("owners", "viewers")}
    login = next(seen for seen in reversed(world.metabase.logins) if seen.user == tenant.role_name)
    try:
        with psycopg.connect(
            host=login.host, port=login.port, dbname=login.dbname, user=login.user, password=login.password,
            connect_timeout=5, sslmode="disable",
        ) as conn:
            conn.execute("SELECT count(*) FROM contacts")
        connection = "logs in"
    except psycopg.OperationalError as exc:
        connection = "refused: not permitted to log in" if "not permitted to log in" in str(exc) else str(exc)
    return {
        "queries": {kind: query_level(data, gid, tenant.id_of("database")) for kind, gid in groups.items()},
        "collection": {kind: collection_level(collections, gid, tenant.id_of("collection"))
                       for kind, gid in groups.items()},
        "archived": bool(client.get_collection(tenant.id_of("collection")).get("archived")),
        # What Metabase keeps for the collection even while it is archived (the graph no longer lists it, but
        # people who could read it would still find it in the Trash).
        "kept edges": {kind: world.metabase.state.collection_perms.get(gid, {}).get(
            str(tenant.id_of("collection")), "none") for kind, gid in groups.items()},
        "connection": connection,
    }


def identities(tenant: TenantStack) -> dict[str, str]:
    """The id of every resource: equal before and after means nothing was replaced."""
    return {name: resource.id for name, resource in tenant.resources.items()}


OPEN = {
    "queries": {"owners": "query-builder", "viewers": "query-builder"},
    "collection": {"owners": "write", "viewers": "read"},
    "archived": False,
    "kept edges": {"owners": "write", "viewers": "read"},
    "connection": "logs in",
}
CLOSED = {
    "queries": {"owners": "no", "viewers": "no"},
    "collection": {"owners": "none", "viewers": "none"},
    "archived": False,
    "kept edges": {"owners": "none", "viewers": "none"},
    "connection": "refused: not permitted to log in",
}


def onboard(world: World, body: int) -> TenantStack:
    rut = make_rut(body + world.server.port)
    tenant = TenantStack(world, rut)
    tenant.converge("active")
    with world.server.connect(dbname=DBNAME) as admin:
        for i in range(ROWS):
            admin.execute("INSERT INTO contacts (tenant_rut, name) VALUES (%s, %s)", (rut, f"contact {i}"))
    world.metabase.add_question(tenant.id_of("database"))
    return tenant


@pytest.mark.parametrize("closed_status", ["suspended", "cancelled"])
def test_closing_a_tenant_shuts_every_door_keeps_every_thing_and_reopening_restores_it(
    world: World, closed_status: str
) -> None:
    tenant = onboard(world, 76_400_000 if closed_status == "suspended" else 76_500_000)
    rut = tenant.rut
    approle = naming.vault_policy_name(rut)
    secret_before, versions_before = vault_secret(world, rut)
    ids_before = identities(tenant)
    questions = world.metabase.questions_on(tenant.id_of("database"))

    # Open: every door works.
    assert rows_seen_as_tenant(world, tenant) == ROWS
    early_token = approle_login(world.vault.address, world.vault.root_token, approle)
    assert digest(read_with_token(world, early_token, rut).json()["data"]["data"]) == secret_before
    assert metabase_access(world, tenant) == OPEN
    open_session = psycopg.connect(
        world.server.dsn(user=tenant.role_name, password=tenant.password, dbname=DBNAME), autocommit=True
    )

    # Closed.
    diffs = tenant.converge(closed_status)
    changed = sorted(name for name, outcome in diffs.items() if outcome.changes)
    assert changed == sorted(
        ["record", "role", "policy", "owners-collection", "viewers-collection", "owners-data", "viewers-data"]
        + (["collection"] if closed_status == "cancelled" else [])
    )
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        rows_seen_as_tenant(world, tenant)
    with pytest.raises(psycopg.OperationalError):  # the session it had open was ended
        open_session.execute("SELECT 1")
    open_session.close()
    fresh_token = approle_login(world.vault.address, world.vault.root_token, approle)  # login works, reads fail
    assert read_with_token(world, fresh_token, rut).status_code == 403
    assert read_with_token(world, early_token, rut).status_code == 403
    assert metabase_access(world, tenant) == (
        {**CLOSED, "archived": True} if closed_status == "cancelled" else CLOSED
    )
    # Everything is kept.
    assert rows_kept(world, rut) == ROWS
    assert vault_secret(world, rut) == (secret_before, versions_before)
    assert world.metabase.questions_on(tenant.id_of("database")) == questions
    assert identities(tenant) == ids_before
    # Read back, everything is as the closed status wants it: nothing drifts while closed.
    assert [name for name, outcome in tenant.converge(closed_status, refresh=True).items() if outcome.changes] == []

    # Active again: nothing replaced (converge asserts no diff replaces), nothing regenerated.
    diffs = tenant.converge("active")
    assert sorted(name for name, outcome in diffs.items() if outcome.changes) == changed
    assert rows_seen_as_tenant(world, tenant) == ROWS  # the same password as before
    assert digest(read_with_token(world, early_token, rut).json()["data"]["data"]) == secret_before
    assert read_with_token(world, approle_login(world.vault.address, world.vault.root_token, approle), rut).ok
    assert metabase_access(world, tenant) == OPEN
    assert vault_secret(world, rut) == (secret_before, versions_before)
    assert world.metabase.questions_on(tenant.id_of("database")) == questions
    assert identities(tenant) == ids_before
    # A second converge, reading everything back first, finds nothing to do.
    assert [name for name, outcome in tenant.converge("active", refresh=True).items() if outcome.changes] == []
