"""Metabase: the platform's locked-down scaffolding and each tenant's BI workspace.

Isolation on Metabase OSS rests on three things, all built here:

1. the database connection logs in as the tenant's PostgreSQL role, so row-level security limits every
   query, saved or ad hoc, to the tenant's rows;
2. only the tenant's two groups may query that connection: every other group, All Users included, is set
   to ``no`` on it, and a refresh reports any group that gains access;
3. only the tenant's two groups can see its collection: every other group is set to ``none`` on it.

The platform side runs first: All Users ``none`` on the root collection, every group but Administrators
``none`` on the "Tenants" collection, and All Users ``no`` query access on every database. Metabase gives a new
group All Users' level on every database, so every group created later starts closed. Ordering alone does not
close a new database (Metabase gives each group its lowest existing level, or native queries to a group with no
permission rows at all) nor a new collection (it copies its parent's permissions): the provider call that
creates a tenant's connection or collection closes it to every group but the tenant's two and Administrators
before it returns, and deletes a fresh connection it cannot close.

A suspended or cancelled tenant's groups are set to ``no`` on its connection and ``none`` on its collection, and
a cancelled tenant's collection is archived; reactivation sets them back. Groups, collection, questions and
connection are kept throughout. A tenant whose first converge is already closed gets no connection yet (Metabase
tests the login of every new connection, and a closed tenant's role may not log in): the first converge that
sees it open creates it, closed to other groups, and sets the edges on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi

from .config import StackConfig
from .lifecycle import is_archived, is_open
from .naming import metabase_group_name
from .providers.base import stack_marker
from .providers.metabase import (
    ALL_USERS,
    Collection,
    CollectionIsolation,
    CollectionPermission,
    DatabaseAccessLockdown,
    DatabaseConnection,
    DatabaseIsolation,
    DataPermission,
    PermissionsGroup,
)

if TYPE_CHECKING:
    from .spec import TenantSpec

GROUP_KINDS: tuple[str, ...] = ("owners", "viewers")
COLLECTION_LEVEL_BY_KIND: dict[str, str] = {"owners": "write", "viewers": "read"}


def database_connection_name(rut: str, name: str) -> str:
    """Name of a tenant's database connection in Metabase: ``DEMO (11111111-1)``."""
    return f"{name} ({rut})"


def collection_description(rut: str, name: str) -> str:
    """Human part of a tenant collection's description (the provider appends the ownership tag)."""
    return f"BI workspace of {name} (RUT {rut}). Only this tenant's owners and viewers can see it."


def query_levels(queries: str, status: str = "active") -> dict[str, str]:
    """create-queries level per tenant group: both groups get what the tenant file says, ``no`` while the
    tenant is suspended or cancelled.

    Viewers only read the collection, but may explore their own data with the same tools as owners.
    """
    return dict.fromkeys(GROUP_KINDS, queries if is_open(status) else "no")


def collection_levels(status: str = "active") -> dict[str, str]:
    """Collection level per tenant group: owners write, viewers read; ``none`` while suspended or cancelled."""
    if not is_open(status):
        return dict.fromkeys(GROUP_KINDS, "none")
    return dict(COLLECTION_LEVEL_BY_KIND)


def _int(value: Any) -> Any:
    """Ids travel as floats through the engine; previews and mocks may not know them yet (None)."""
    return int(value) if value is not None else None


@dataclass(frozen=True)
class SharedAnalyticsArgs:
    config: StackConfig


class SharedAnalytics(pulumi.ComponentResource):
    """The Metabase scaffolding every tenant shares: the "Tenants" parent collection and the lockdown."""

    tenants_collection_id: pulumi.Output[int]
    ready: pulumi.Resource

    def __init__(
        self, name: str, args: SharedAnalyticsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("smarteros:platform:SharedAnalytics", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        tenants = Collection(
            f"{name}-tenants-collection",
            collection_name=config.metabase.tenants_collection,
            parent_id=None,
            tenant=None,
            stack=stack_marker(),
            description="Parent of every tenant's collection. Managed by the tenant provisioning stack.",
            # Archiving it would archive every tenant's collection beneath it.
            opts=pulumi.ResourceOptions(parent=self, protect=config.protect, retain_on_delete=True),
        )
        root_closed = CollectionPermission(
            f"{name}-all-users-root-collection",
            group_id=ALL_USERS,
            collection_id="root",
            level="none",
            tenant=None,
            opts=child,
        )
        tenants_closed = CollectionPermission(
            f"{name}-all-users-tenants-collection",
            group_id=ALL_USERS,
            collection_id=tenants.collection_id,
            level="none",
            tenant=None,
            opts=child,
        )
        # Every group but Administrators closed on "Tenants", so a tenant collection is born closed.
        tenants_isolated = CollectionIsolation(
            f"{name}-tenants-collection-isolation",
            collection_id=tenants.collection_id,
            allowed_group_ids=[],
            tenant=None,
            opts=child,
        )
        lockdown = DatabaseAccessLockdown(
            f"{name}-all-users-no-queries",
            group_id=ALL_USERS,
            level="no",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[root_closed, tenants_closed, tenants_isolated]),
        )
        self.tenants_collection_id = tenants.collection_id.apply(_int)
        self.ready = lockdown
        self.register_outputs({"tenants_collection_id": self.tenants_collection_id})


@dataclass(frozen=True)
class AnalyticsArgs:
    tenant: TenantSpec
    config: StackConfig
    role_name: pulumi.Input[str]
    password: pulumi.Input[str]
    tenants_collection_id: pulumi.Input[int]
    ready: pulumi.Resource | None
    database_access: Sequence[pulumi.Resource] = ()
    """What must exist before the connection is made (role, grants, binding), so its first sync sees the
    tenant's tables."""


class Analytics(pulumi.ComponentResource):
    """One tenant's BI workspace: groups, collection, permission edges and a connection as its role."""

    owners_group_id: pulumi.Output[int]
    viewers_group_id: pulumi.Output[int]
    collection_id: pulumi.Output[int]
    database_id: pulumi.Output[int]

    def __init__(self, name: str, args: AnalyticsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("smarteros:tenant:Analytics", name, None, opts)
        spec, config = args.tenant, args.config
        rut = spec.rut
        after_platform = [args.ready] if args.ready is not None else []
        child = pulumi.ResourceOptions(parent=self, depends_on=after_platform)

        groups = {
            kind: PermissionsGroup(
                f"{rut}-{kind}", group_name=metabase_group_name(rut, kind), tenant=rut, stack=stack_marker(), opts=child
            )
            for kind in GROUP_KINDS
        }
        allowed = [group.group_id for group in groups.values()]
        collection = Collection(
            f"{rut}-collection",
            collection_name=spec.collection_name,
            parent_id=args.tenants_collection_id,
            tenant=rut,
            stack=stack_marker(),
            description=collection_description(rut, spec.name),
            allowed_group_ids=allowed,
            archived=is_archived(spec.status),
            opts=pulumi.ResourceOptions(parent=self, depends_on=after_platform, protect=config.protect),
        )
        levels = collection_levels(spec.status)
        for kind, group in groups.items():
            CollectionPermission(
                f"{rut}-{kind}-collection",
                group_id=group.group_id,
                collection_id=collection.collection_id,
                level=levels[kind],
                tenant=rut,
                opts=child,
            )
        CollectionIsolation(
            f"{rut}-collection-isolation",
            collection_id=collection.collection_id,
            allowed_group_ids=[group.group_id for group in groups.values()],
            tenant=rut,
            opts=child,
        )

        target = config.metabase.database
        database = DatabaseConnection(
            f"{rut}-database",
            connection_name=database_connection_name(rut, spec.name),
            host=target.host,
            port=target.port,
            dbname=target.dbname,
            role=args.role_name,
            user_template=target.user_template,
            password=args.password,
            ssl=target.ssl,
            additional_options=target.additional_options,
            tenant=rut,
            stack=stack_marker(),
            allowed_group_ids=allowed,
            # Metabase tests the login before storing a connection: a tenant that starts closed gets it when it
            # opens (the edges below have nothing to set until then).
            login=is_open(spec.status),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*after_platform, *args.database_access],
                retain_on_delete=True,
                protect=config.protect,
                additional_secret_outputs=["password"],
            ),
        )
        # Every other group (All Users included) is closed before the tenant's own groups are opened.
        closed = DatabaseIsolation(
            f"{rut}-database-isolation",
            database_id=database.database_id,
            allowed_group_ids=[group.group_id for group in groups.values()],
            tenant=rut,
            opts=child,
        )
        for kind, level in query_levels(spec.analytics.queries, spec.status).items():
            DataPermission(
                f"{rut}-{kind}-data",
                group_id=groups[kind].group_id,
                database_id=database.database_id,
                level=level,
                tenant=rut,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*after_platform, closed]),
            )

        self.owners_group_id = groups["owners"].group_id.apply(_int)
        self.viewers_group_id = groups["viewers"].group_id.apply(_int)
        self.collection_id = collection.collection_id.apply(_int)
        self.database_id = database.database_id.apply(_int)
        self.register_outputs(
            {
                "owners_group_id": self.owners_group_id,
                "viewers_group_id": self.viewers_group_id,
                "collection_id": self.collection_id,
                "database_id": self.database_id,
            }
        )
