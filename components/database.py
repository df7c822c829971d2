"""PostgreSQL for the platform and for each tenant.

``SharedDatabase`` (once per stack) applies ``sql/schema/``: the registry, the shared tables with their
``tenant_rut`` indexes, the ``security_invoker`` views, and row-level security keyed through
``tenant_roles``. It is retained on delete: the platform never drops a shared table.

``Database`` (one per tenant) gives the tenant its registry rows, its login role (member of
``tenant_members``, a generated password that is a secret output), exactly the grants of its tenant file,
and the binding row that row-level security keys on. Onboarding runs no DDL on the shared tables.

Everything here is keyed by the tenant's normalised RUT, so renaming a slug never recreates anything. The
role's name is not: every database role can read every role name, so the database names the role with a
keyed hash of the RUT (``tenant_<24 hex digits>``, see ``sql/provisioner.sql``) and ``role_name`` is an
output the grants, the binding, Vault and Metabase read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from . import naming
from .catalog import TENANT_TABLES
from .config import StackConfig
from .providers.base import stack_marker
from .providers.postgres import SharedSchema, TableGrants, TenantBinding, TenantRecord, TenantRole
from .spec import TenantSpec

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
SCHEMA_DIR = SQL_DIR / "schema"


def schema_files(folder: Path = SCHEMA_DIR) -> dict[str, str]:
    """The schema's SQL files by name; they run in name order (``010_…``, ``020_…``)."""
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.sql"))}



def tenant_hostnames(tenant: TenantSpec, config: StackConfig) -> list[str]:
    """The tenant's hostnames as the registry lists them (none when the stack has no zone)."""
    zone = config.cloudflare.zone
    if not config.cloudflare.enabled or not zone:
        return []
    return sorted(naming.tenant_hostnames(tenant.slug, tenant.products, zone))


def record_inputs(tenant: TenantSpec, config: StackConfig, stack: str) -> dict[str, Any]:
    """What the registry says about the tenant."""
    return {
        "rut": tenant.rut,
        "slug": tenant.slug,
        "name": tenant.name,
        "type": tenant.type,
        "status": tenant.status,
        "plan": tenant.plan,
        "trial_expires_at": tenant.trial_expires_at.isoformat() if tenant.trial_expires_at else None,
        "products": sorted(tenant.products),
        "hostnames": tenant_hostnames(tenant, config),
        "stack": stack,
    }


def role_inputs(tenant: TenantSpec, stack: str) -> dict[str, Any]:
    """The tenant's login role."""
    return {
        "tenant_rut": tenant.rut,
        "connection_limit": tenant.database.connection_limit,
        "statement_timeout": tenant.database.statement_timeout,
        "stack": stack,
    }


def grant_inputs(tenant: TenantSpec, role_name: Any) -> dict[str, Any]:
    """Exactly the tables and privileges of the tenant file, for the role named ``role_name``."""
    return {
        "role_name": role_name,
        "tenant_rut": tenant.rut,
        "tables": sorted(tenant.database.tables),
        "privileges": sorted(tenant.database.privileges),
    }


@dataclass(frozen=True)
class SharedDatabaseArgs:
    config: StackConfig


class SharedDatabase(pulumi.ComponentResource):
    """The shared schema and its row-level security, applied once per stack."""

    ready: pulumi.Resource

    def __init__(self, name: str, args: SharedDatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("smarteros:platform:SharedDatabase", name, None, opts)
        schema = SharedSchema(
            f"{name}-schema",
            {"files": schema_files(), "tenant_tables": list(TENANT_TABLES), "stack": stack_marker()},
            pulumi.ResourceOptions(parent=self, retain_on_delete=True, protect=args.config.protect),
        )
        self.ready = schema
        self.register_outputs({"rls_tables": schema.rls_tables})


@dataclass(frozen=True)
class DatabaseArgs:
    tenant: TenantSpec
    config: StackConfig
    ready: pulumi.Resource | None = None


class Database(pulumi.ComponentResource):
    """A tenant's registry rows, login role, table grants and row-level-security binding."""

    role_name: pulumi.Output[str]
    password: pulumi.Output[str]
    access: list[pulumi.Resource]
    """The role, its grants and its binding: a client logging in as the role sees its rows after these."""

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("smarteros:tenant:Database", name, None, opts)
        tenant, rut = args.tenant, args.tenant.rut
        stack = stack_marker()
        after_schema = [args.ready] if args.ready is not None else []

        record = TenantRecord(
            f"{rut}-record",
            record_inputs(tenant, args.config, stack),
            # The registry row is what every tenant table references: never deleted by a missing file.
            pulumi.ResourceOptions(
                parent=self, depends_on=after_schema, retain_on_delete=True, protect=args.config.protect
            ),
        )
        role = TenantRole(
            f"{rut}-role",
            role_inputs(tenant, stack),
            pulumi.ResourceOptions(
                parent=self,
                depends_on=after_schema,
                additional_secret_outputs=["password"],
            ),
        )
        grants = TableGrants(
            f"{rut}-grants",
            grant_inputs(tenant, role.role_name),
            pulumi.ResourceOptions(parent=self, depends_on=[role]),
        )
        binding = TenantBinding(
            f"{rut}-binding",
            {"role_name": role.role_name, "tenant_rut": rut},
            pulumi.ResourceOptions(parent=self, depends_on=[role, record]),
        )

        self.role_name = role.role_name
        self.password = pulumi.Output.secret(role.password)
        self.access = [role, grants, binding]
        self.register_outputs({"role_name": self.role_name, "password": self.password})
