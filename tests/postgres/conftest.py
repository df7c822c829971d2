"""A platform database on throwaway clusters, provisioned the way production is, on PostgreSQL 15 and 16.

The superuser plays the database administrator: it creates the database and runs ``sql/provisioner.sql``
(:func:`bootstrap_database`, exactly the steps of README.md). Everything after that goes through the real
provider host as ``smarteros_provisioner`` (no CREATEROLE, not a superuser): the shared schema, then each
tenant's registry rows, role, grants and binding. The provisioner's statements that write anything are
logged (``log_statement = mod`` on that role only), and so is every role change the ``smarteros_admin``
functions make (``LOG:  smarteros_admin: ...``), so tests can count them in the server log.

``platform`` is parametrised by server version: every test that uses it runs once on Debian's PostgreSQL
15 and once on the PostgreSQL 16 of PyPI's ``pgserver`` wheel (one cluster per version and session).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from stdnum.cl import rut as cl_rut

from components.catalog import TENANT_TABLES
from components.database import schema_files
from components.local.bootstrap import bootstrap_postgres
from components.providers.postgres import (
    SharedSchemaProvider,
    TableGrantsProvider,
    TenantBindingProvider,
    TenantRecordProvider,
    TenantRoleProvider,
)
from tests.harness.postgres import PostgresServer, pgserver_bin_dir
from tests.harness.provider_host import ProviderHost, urn

DBNAME = "smarteros"
PROVISIONER = "smarteros_provisioner"
STACK = "smarteros/test"


def make_rut(body: int) -> str:
    """A valid RUT in normal form for a body number."""
    return f"{body}-{cl_rut.calc_check_digit(str(body))}"


def record_props(rut: str, slug: str, **extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "rut": rut,
        "slug": slug,
        "name": f"Empresa {slug}",
        "type": "customer",
        "status": "active",
        "plan": "pro",
        "products": ["chat", "erp"],
        "hostnames": [f"{slug}.example.cl", f"{slug}-chat.example.cl"],
        "stack": STACK,
    }
    props.update(extra)
    return props


def sample_role_name(rut: str) -> str:
    """An opaque role name for pure tests (a live database computes its own, keyed, name)."""
    return "tenant_" + hashlib.sha256(rut.encode()).hexdigest()[:24]


def role_props(rut: str, **extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "tenant_rut": rut,
        "connection_limit": 5,
        "statement_timeout": "30s",
        "stack": STACK,
    }
    props.update(extra)
    return props


def grant_props(
    rut: str,
    tables: list[str] | None = None,
    privileges: list[str] | None = None,
    *,
    role_name: str | None = None,
) -> dict[str, Any]:
    return {
        "role_name": role_name or sample_role_name(rut),
        "tenant_rut": rut,
        "tables": sorted(tables if tables is not None else TENANT_TABLES),
        "privileges": sorted(privileges if privileges is not None else ["select", "insert", "update", "delete"]),
    }


def binding_props(rut: str, role_name: str | None = None) -> dict[str, Any]:
    return {"role_name": role_name or sample_role_name(rut), "tenant_rut": rut}


@dataclass
class Resource:
    """One provisioned resource: the provider, its URN, id, inputs and last outputs."""

    provider: Any
    urn: str
    inputs: dict[str, Any]
    id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Tenant:
    rut: str
    slug: str
    record: Resource
    role: Resource
    grants: Resource
    binding: Resource

    @property
    def role_name(self) -> str:
        return str(self.role.outputs["role_name"])

    def grant_props(self, tables: list[str] | None = None, privileges: list[str] | None = None) -> dict[str, Any]:
        return grant_props(self.rut, tables, privileges, role_name=self.role_name)

    @property
    def password(self) -> str:
        return str(self.role.outputs["password"])

    def resources(self) -> list[Resource]:
        return [self.record, self.role, self.grants, self.binding]


@dataclass
class Platform:
    server: PostgresServer
    host: ProviderHost
    provisioner_password: str
    schema: Resource
    version: str = "pg15"
    """``pg15`` or ``pg16``: the server's major version, for the few steps that differ."""

    def admin(self) -> psycopg.Connection[Any]:
        """The superuser on the platform database (bypasses RLS, as the platform's admin)."""
        return self.server.connect(dbname=DBNAME)

    def as_tenant(self, tenant: Tenant) -> psycopg.Connection[Any]:
        return self.server.connect(user=tenant.role_name, password=tenant.password, dbname=DBNAME)

    def provisioner(self) -> psycopg.Connection[Any]:
        return self.server.connect(user=PROVISIONER, password=self.provisioner_password, dbname=DBNAME)

    def create(self, resource: Resource) -> Resource:
        check = self.host.check(resource.provider, resource.urn, {}, resource.inputs)
        assert check.failures == [], check.failures
        resource.id, resource.outputs = self.host.create(resource.provider, resource.urn, check.inputs)
        return resource

    def update(self, resource: Resource, inputs: dict[str, Any]) -> Resource:
        check = self.host.check(resource.provider, resource.urn, resource.inputs, inputs)
        assert check.failures == [], check.failures
        resource.outputs = self.host.update(resource.provider, resource.id, resource.urn, resource.outputs, inputs)
        resource.inputs = check.inputs
        return resource

    def refresh(self, resource: Resource) -> tuple[str, dict[str, Any]]:
        """Read (as ``pulumi refresh`` does) and keep the live outputs."""
        found, outputs, _ = self.host.read(resource.provider, resource.id, resource.urn, resource.outputs)
        if found:
            resource.outputs = outputs
        return found, outputs

    def diff(self, resource: Resource, inputs: dict[str, Any] | None = None) -> Any:
        news = inputs if inputs is not None else resource.inputs
        return self.host.diff(resource.provider, resource.id, resource.urn, resource.outputs, news)

    def delete(self, resource: Resource) -> None:
        self.host.delete(resource.provider, resource.id, resource.urn, resource.outputs)

    def onboard(self, rut: str, slug: str, **grants: Any) -> Tenant:
        """Everything a Database component creates for a tenant, in dependency order."""
        tenant = Tenant(
            rut=rut,
            slug=slug,
            record=Resource(
                TenantRecordProvider(),
                urn("pulumi-python:dynamic/postgres:TenantRecord", f"{rut}-record"),
                record_props(rut, slug),
            ),
            role=Resource(
                TenantRoleProvider(), urn("pulumi-python:dynamic/postgres:TenantRole", f"{rut}-role"), role_props(rut)
            ),
            grants=Resource(
                TableGrantsProvider(),
                urn("pulumi-python:dynamic/postgres:TableGrants", f"{rut}-grants"),
                grant_props(rut, **grants),
            ),
            binding=Resource(
                TenantBindingProvider(),
                urn("pulumi-python:dynamic/postgres:TenantBinding", f"{rut}-binding"),
                binding_props(rut),
            ),
        )
        self.create(tenant.record)
        self.create(tenant.role)
        # The grants and the binding read the role's name from its outputs, as the component does.
        tenant.grants.inputs["role_name"] = tenant.binding.inputs["role_name"] = tenant.role_name
        self.create(tenant.grants)
        self.create(tenant.binding)
        return tenant

    def offboard(self, tenant: Tenant) -> None:
        for resource in reversed(tenant.resources()):
            self.delete(resource)


def bootstrap_database(server: PostgresServer, provisioner_password: str, dbname: str = DBNAME) -> None:
    """What the database administrator does once, as README.md says, through the product's own bootstrap
    (:func:`components.local.bootstrap.bootstrap_postgres`): the database, the roles script as the
    superuser, the provisioner's password. Then, for the tests only, :func:`log_provisioner_writes`."""
    passwords = bootstrap_postgres(server.admin(), dbname, known_passwords={PROVISIONER: provisioner_password})
    assert passwords == {PROVISIONER: provisioner_password}, "README's steps set a different password"
    log_provisioner_writes(server)


def log_provisioner_writes(server: PostgresServer, level: str = "mod") -> None:
    """Test-only, not part of README's set-up: log the provisioning role's statements (``mod``: writes only;
    ``all``: every statement), which is how tests count what the provisioner sends."""
    with server.connect() as admin:
        admin.execute(
            psycopg.sql.SQL("ALTER ROLE {} SET log_statement = {}").format(
                psycopg.sql.Identifier(PROVISIONER), psycopg.sql.Literal(level)
            )
        )


def provider_config(server: PostgresServer, password: str, *, user: str = PROVISIONER) -> dict[str, Any]:
    return {
        "smarteros:postgres": {
            "host": server.host,
            "port": server.port,
            "database": DBNAME,
            "user": user,
            "sslmode": "disable",
        },
        "smarteros:postgresPassword": password,
    }


def make_platform(server: PostgresServer, provider_host_factory: Any, version: str = "") -> Platform:
    """A platform database set up exactly as README.md says (:func:`bootstrap_database`), its shared schema
    applied through the provider host as the provisioner. Reusable outside the ``platform`` fixture, e.g.
    for a whole-program converge test; call it once per server (the database is ``smarteros``)."""
    password = secrets.token_urlsafe(24)
    bootstrap_database(server, password)
    host = provider_host_factory(provider_config(server, password))
    schema = Resource(
        SharedSchemaProvider(),
        urn("pulumi-python:dynamic/postgres:SharedSchema", "platform-schema"),
        {"files": schema_files(), "tenant_tables": list(TENANT_TABLES), "stack": STACK},
    )
    plat = Platform(server, host, password, schema, version or f"pg{server_version(server)}")
    plat.create(schema)
    return plat


def server_version(server: PostgresServer) -> int:
    with server.connect() as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10000


@pytest.fixture(scope="session")
def postgres16_server() -> Iterator[PostgresServer]:
    """PostgreSQL 16 from PyPI's pgserver wheel, beside the session's Debian PostgreSQL 15."""
    server = PostgresServer.start(bin_dir=pgserver_bin_dir())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", params=["pg15", "pg16"])
def platform(request: pytest.FixtureRequest, provider_host_factory: Any) -> Iterator[Platform]:
    wanted = int(request.param.removeprefix("pg"))
    postgres_server: PostgresServer = request.getfixturevalue(
        "postgres_server" if wanted == 15 else "postgres16_server"
    )
    assert server_version(postgres_server) == wanted, "the cluster is not the version the test is for"
    plat = make_platform(postgres_server, provider_host_factory, request.param)
    yield plat


def server_log_tail(server: PostgresServer, offset: int) -> str:
    return Path(server.log_file).read_bytes()[offset:].decode(errors="replace")


def server_log_size(server: PostgresServer) -> int:
    return Path(server.log_file).stat().st_size
