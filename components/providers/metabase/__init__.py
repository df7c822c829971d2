"""Metabase objects of the tenant platform, managed as Pulumi dynamic resources over the REST API.

Each tenant gets a BI workspace on Metabase OSS that only its people can see and that can only ever query its
own rows: the database connection logs in as the tenant's PostgreSQL role (row-level security does the
isolation) and permission edges keep every other group out. A tenant's collection and connection are closed
to every other group inside the provider call that creates them, so no failure leaves them open.

One module per resource, as terraform-provider-metabase keeps one file per resource:

* :mod:`.client` -- the thin REST client (one method per endpoint; no blind resend of a create);
* :mod:`.decisions` -- pure decisions: ownership tags, connection details, diffs, reading the graphs;
* :mod:`.edges` -- the one way graphs are written and objects created (one edge, revision retry, lookup
  before any resend);
* :mod:`.groups` -- :class:`PermissionsGroup`;
* :mod:`.collections` -- :class:`Collection` (deleting archives it);
* :mod:`.collection_permissions` -- :class:`CollectionPermission` (group -> collection: read/write/none);
* :mod:`.data_permissions` -- :class:`DataPermission` (group -> database: create-queries level) and
  :class:`DatabaseAccessLockdown` (one group's level on every database);
* :mod:`.isolation` -- :class:`CollectionIsolation` and :class:`DatabaseIsolation` (every other group closed);
* :mod:`.databases` -- :class:`DatabaseConnection` (a connection as the tenant's role; deferred while the
  tenant is closed and none exists yet, since Metabase tests the login before storing one).

Type tokens are ``pulumi-python:dynamic/metabase:<Kind>``. Serialised state refers to provider classes by
their import path ``components.providers.metabase.<Class>``: every name that path ever exported stays
importable from it. The Metabase URL and API key come from stack config (``smarteros:metabase``, secret
``smarteros:metabaseApiKey``) in ``configure``, with ``METABASE_URL`` / ``METABASE_API_KEY`` as fallback; they
are never stored on the provider objects that Pulumi serialises into the state.

Supported: Metabase OSS v50 and later (the v50 data-permission format), to the current v0.6x line.
"""

from __future__ import annotations

from .client import (
    GRAPH_CACHE_SECONDS,
    TIMEOUT,
    ApiFailure,
    MetabaseClient,
    MetabaseError,
    _Retry,
    _seg,
    _session,
    describe_body,
    error_text,
    server_message,
)
from .collection_permissions import CollectionPermission, CollectionPermissionProvider
from .collections import Collection, CollectionProvider
from .data_permissions import (
    DatabaseAccessLockdown,
    DatabaseAccessLockdownProvider,
    DataPermission,
    DataPermissionProvider,
)
from .databases import DatabaseConnection, DatabaseConnectionProvider
from .decisions import (
    _TAG_PREFIX,
    _TAG_RE,
    ADMINISTRATORS_GROUP_ID,
    ALL_USERS,
    ALL_USERS_GROUP_ID,
    COLLECTION_LEVELS,
    MASKED_PASSWORD,
    TAG_PREFIX,
    TenantWorkspace,
    changed_fields,
    closing_patch,
    collection_edge_patch,
    collection_level,
    collection_listed,
    connection_details,
    data_edge_patch,
    isolation_violations,
    open_databases,
    others_with_access,
    ownership_tag,
    parent_from_location,
    plan_diff,
    query_level,
    render_user,
    split_description,
    tag_owner,
    tagged_description,
    template_problem,
)
from .edges import GRAPH_LOCK, GRAPH_WRITE_ATTEMPTS, patch_graph, post_without_resend
from .edges import patch_graph as _patch_graph
from .groups import PermissionsGroup, PermissionsGroupProvider
from .isolation import (
    CollectionIsolation,
    CollectionIsolationProvider,
    DatabaseIsolation,
    DatabaseIsolationProvider,
    _Isolation,
    _IsolationProvider,
)
from .plumbing import (
    _CLIENTS,
    _CLIENTS_LOCK,
    _absent_is_done,
    _check_known,
    _collection_ref,
    _fail,
    _inputs,
    _int,
    _is_not_found,
    _is_unknown,
    _MetabaseProvider,
    _norm,
    _plain,
    _reporting,
    _unless_absent,
    owner_label,
)
from .validation import ADMINS_REFUSED as _ADMINS_REFUSED
from .validation import edge_failures as _edge_failures

__all__ = [
    "ADMINISTRATORS_GROUP_ID",
    "ALL_USERS",
    "ALL_USERS_GROUP_ID",
    "COLLECTION_LEVELS",
    "GRAPH_CACHE_SECONDS",
    "GRAPH_LOCK",
    "GRAPH_WRITE_ATTEMPTS",
    "MASKED_PASSWORD",
    "TAG_PREFIX",
    "TIMEOUT",
    "ApiFailure",
    "Collection",
    "CollectionIsolation",
    "CollectionIsolationProvider",
    "CollectionPermission",
    "CollectionPermissionProvider",
    "CollectionProvider",
    "DataPermission",
    "DataPermissionProvider",
    "DatabaseAccessLockdown",
    "DatabaseAccessLockdownProvider",
    "DatabaseConnection",
    "DatabaseConnectionProvider",
    "DatabaseIsolation",
    "DatabaseIsolationProvider",
    "MetabaseClient",
    "MetabaseError",
    "PermissionsGroup",
    "PermissionsGroupProvider",
    "TenantWorkspace",
    "changed_fields",
    "closing_patch",
    "collection_edge_patch",
    "collection_level",
    "collection_listed",
    "connection_details",
    "data_edge_patch",
    "describe_body",
    "error_text",
    "isolation_violations",
    "open_databases",
    "others_with_access",
    "owner_label",
    "ownership_tag",
    "parent_from_location",
    "patch_graph",
    "plan_diff",
    "post_without_resend",
    "query_level",
    "render_user",
    "server_message",
    "split_description",
    "tag_owner",
    "tagged_description",
    "template_problem",
]

# Private names the single-module layout had, kept importable for anything that reached for them.
_PRIVATE_COMPAT = (
    _ADMINS_REFUSED, _CLIENTS, _CLIENTS_LOCK, _Isolation, _IsolationProvider, _MetabaseProvider, _Retry,
    _TAG_PREFIX, _TAG_RE, _absent_is_done, _check_known, _collection_ref, _edge_failures, _fail, _inputs, _int,
    _is_not_found, _is_unknown, _norm, _patch_graph, _plain, _reporting, _seg, _session, _unless_absent,
)
