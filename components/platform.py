"""Platform: what every tenant of a stack shares, built once per stack.

- PostgreSQL: the shared schema of ``sql/``, the ``tenant_members`` group role, the ``tenant_roles``
  mapping table and one row-level-security policy per tenant-owned table (retained on delete: the
  platform never drops a table).
- Metabase: the "Tenants" parent collection, closed to every group but Administrators (so tenant collections
  are born closed), the root collection closed to All Users, and All Users set to no query access on every
  database (so every group created later starts with ``no``). A new database still opens to groups by
  Metabase's defaults: the tenant's connection closes itself when it is created.

Tenants depend on :class:`PlatformRefs`, never on each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .analytics import SharedAnalytics, SharedAnalyticsArgs
from .config import StackConfig
from .database import SharedDatabase, SharedDatabaseArgs


@dataclass(frozen=True)
class PlatformRefs:
    """What a tenant needs from the platform."""

    database_ready: pulumi.Resource | None
    analytics_ready: pulumi.Resource | None
    tenants_collection_id: pulumi.Input[int] | None


@dataclass(frozen=True)
class PlatformArgs:
    config: StackConfig


class Platform(pulumi.ComponentResource):
    """The shared database objects and the Metabase scaffolding of one stack."""

    refs: PlatformRefs

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("smarteros:platform:Platform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        database = SharedDatabase(name, SharedDatabaseArgs(config=args.config), child)
        analytics = (
            SharedAnalytics(name, SharedAnalyticsArgs(config=args.config), child)
            if args.config.metabase.enabled
            else None
        )
        self.refs = PlatformRefs(
            database_ready=database.ready,
            analytics_ready=analytics.ready if analytics else None,
            tenants_collection_id=analytics.tenants_collection_id if analytics else None,
        )
        self.register_outputs({})
