"""Tenant: everything one customer gets, composed from one child component per system.

==========  ==============================================================================
Edge        proxied CNAMEs for ``<slug>.<zone>`` and ``<slug>-<product>.<zone>``; one Access
            application over the protected ones and one allow policy (Cloudflare)
Database    an opaquely named role in ``tenant_members``, its table grants, its binding row in
            ``tenant_roles`` (row-level security), its rows in the tenant registry (PostgreSQL)
Secrets     one KV v2 secret per service plus the database login, an ACL policy that reads
            only ``<mount>/tenants/<rut>/*``, an AppRole carrying only that policy (Vault)
Analytics   owner and viewer groups, a collection under "Tenants", its permission edges, a
            database connection that logs in as the tenant role, its data edges (Metabase)
==========  ==============================================================================

The component's logical name is the normalised RUT, so renaming a slug never recreates anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from .analytics import Analytics, AnalyticsArgs
from .config import StackConfig
from .database import Database, DatabaseArgs
from .edge import Edge, EdgeArgs
from .platform import PlatformRefs
from .secrets import Secrets, SecretsArgs
from .spec import TenantSpec


@dataclass(frozen=True)
class TenantArgs:
    spec: TenantSpec
    config: StackConfig
    platform: PlatformRefs
    cloudflare: pulumi.ProviderResource | None = None


class Tenant(pulumi.ComponentResource):
    """One customer of the platform, declared by ``tenants/<slug>.yaml``."""

    summary: dict[str, Any]

    def __init__(self, args: TenantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        spec, config, platform = args.spec, args.config, args.platform
        rut = spec.rut
        super().__init__("smarteros:tenant:Tenant", rut, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        edge = (
            Edge(rut, EdgeArgs(spec, config.cloudflare, args.cloudflare), child)
            if config.cloudflare.enabled
            else None
        )
        database = Database(rut, DatabaseArgs(spec, config, platform.database_ready), child)
        secrets = Secrets(
            rut,
            SecretsArgs(
                spec,
                config,
                platform_values={"postgres": {"username": database.role_name, "password": database.password}},
            ),
            child,
        )
        analytics = (
            Analytics(
                rut,
                AnalyticsArgs(
                    tenant=spec,
                    config=config,
                    role_name=database.role_name,
                    password=database.password,
                    tenants_collection_id=platform.tenants_collection_id,
                    ready=platform.analytics_ready,
                    database_access=database.access,
                ),
                child,
            )
            if spec.analytics.enabled and config.metabase.enabled and platform.tenants_collection_id is not None
            else None
        )

        self.summary = {
            "slug": spec.slug,
            "status": spec.status,
            "hostnames": edge.hostnames if edge else [],
            "vault_path": secrets.path,
            "role_name": database.role_name,
        }
        if analytics is not None:
            self.summary.update(
                owners_group_id=analytics.owners_group_id,
                viewers_group_id=analytics.viewers_group_id,
                collection_id=analytics.collection_id,
                database_id=analytics.database_id,
            )
        self.register_outputs(self.summary)
