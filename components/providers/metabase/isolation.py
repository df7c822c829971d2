"""Isolation: one collection or one database kept closed to every group but the tenant's and Administrators.

Owns the other groups' edges on that one object (``none`` on a collection, create-queries ``no`` on a
database) and reports, on read, every group that can still reach it (``open_groups``), so access granted by
hand or inherited from Metabase's defaults shows up as drift. Leaves the allowed groups' edges, view-data and
downloads alone; deleting changes nothing. Administrators are found by ``magic_group_type``
(``src/metabase/permissions/models/permissions_group.clj``); a database's existence by ``GET /api/database/:id``
(the data-graph slice answers 200 for ids that do not exist). A database isolation on a deferred connection
(no ``database_id`` yet) closes nothing until the update that gets the id, and keeps its ``deferred:`` id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pulumi import Input, ResourceOptions
from pulumi.dynamic import CheckResult, CreateResult, ReadResult, UpdateResult

from ..base import DynamicResource
from .client import MetabaseClient
from .decisions import DEFERRED, closing_patch, collection_listed, metabase_id, others_with_access
from .edges import patch_graph
from .plumbing import _collection_ref, _group_ids, _inputs, _MetabaseProvider, _reporting, _unless_absent


class _IsolationProvider(_MetabaseProvider):
    """Closes one object (a collection or a database) to every group but the allowed ones and Administrators.

    Read reports the groups that can still reach it (``open_groups``), so access granted by hand, or a group
    that inherited access from Metabase's defaults, shows up as drift. Deleting changes nothing.
    """

    key_field: ClassVar[str] = ""
    closed: ClassVar[str] = ""
    data: ClassVar[bool] = False
    fields: ClassVar[tuple[str, ...]] = ("allowed_group_ids", "open_groups")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult({**news, "open_groups": []}, [])

    def _graph(self, client: MetabaseClient, key: Any, *, reader: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _put(self, client: MetabaseClient, revision: int, patch: dict[str, Any]) -> None:
        raise NotImplementedError

    def _exists(self, client: MetabaseClient, key: Any, reader: str, graph: Mapping[str, Any] | None) -> bool:
        raise NotImplementedError

    def _revision(self, client: MetabaseClient, reader: str) -> int | None:
        """The graph revision a read can be skipped on, or None where no cheap probe exists."""
        return None

    def _open(self, graph: Mapping[str, Any], inputs: Mapping[str, Any], admin: int) -> list[int]:
        allowed = _group_ids(inputs.get("allowed_group_ids"))
        key = inputs[self.key_field]
        return others_with_access(graph, allowed, key, self.closed, data=self.data, admin_group_id=admin)

    def _key(self, inputs: Mapping[str, Any]) -> Any:
        return metabase_id("", inputs.get(self.key_field)) if self.data else _collection_ref(inputs[self.key_field])

    def _id_key(self, id_: str, inputs: Mapping[str, Any]) -> Any:
        """The key a resource id names (a database isolation made while its connection was deferred keeps its
        ``deferred:`` id and records the key)."""
        return metabase_id(id_, inputs.get(self.key_field)) if self.data else _collection_ref(id_)

    def _apply(self, inputs: dict[str, Any]) -> dict[str, Any]:
        key = self._key(inputs)
        inputs = {**inputs, self.key_field: key}
        if key is None:
            return {**inputs, "open_groups": [], "seen_revision": None}  # deferred: nothing to close yet
        client = self._client()
        allowed = _group_ids(inputs.get("allowed_group_ids"))

        with _reporting(inputs.get("tenant")):
            admin = client.admin_group_id()
            patch_graph(
                lambda: self._graph(client, key),
                lambda graph: closing_patch(graph, allowed, key, data=self.data, admin_group_id=admin),
                lambda rev, patch: self._put(client, rev, patch),
            )
        return {**inputs, "open_groups": [], "seen_revision": None}

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._apply(_inputs(props))
        key = outs[self.key_field]
        return CreateResult(f"{DEFERRED}:{outs.get('tenant')}" if key is None else str(key), outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = _inputs(props)
        key = self._id_key(id_, inputs)
        if key is None:
            return ReadResult(id_, inputs)  # deferred: nothing to read, nothing drifted
        inputs[self.key_field] = key
        client = self._client()
        with _reporting(inputs.get("tenant")):
            reader = f"{self.key_field} isolation {id_}"
            revision = self._revision(client, reader)
            if revision is not None and inputs.get("seen_revision") == revision and inputs.get("open_groups") == []:
                # Closed when last read, and no graph write since: only the object's existence can have changed.
                if not self._exists(client, key, reader, None):
                    return ReadResult("", {})
                return ReadResult(id_, {**inputs, "open_groups": [], "seen_revision": revision})
            graph = self._graph(client, key, reader=reader)
            if not self._exists(client, key, reader, graph):
                return ReadResult("", {})
            admin = client.admin_group_id()
            seen = int(graph.get("revision", 0)) if revision is not None else None
        return ReadResult(id_, {**inputs, "open_groups": self._open(graph, inputs, admin), "seen_revision": seen})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._apply(_inputs(news)))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        return None


class CollectionIsolationProvider(_IsolationProvider):
    """Sets ``none`` on one collection for every group but the allowed ones and Administrators."""

    key_field = "collection_id"
    closed = "none"
    data = False
    fields = ("collection_id", "allowed_group_ids", "open_groups")
    replace_fields = ("collection_id",)

    def _graph(self, client: MetabaseClient, key: Any, *, reader: str | None = None) -> dict[str, Any]:
        return client.get_collection_graph(reader=reader)

    def _put(self, client: MetabaseClient, revision: int, patch: dict[str, Any]) -> None:
        client.put_collection_graph(revision, patch)

    def _exists(self, client: MetabaseClient, key: Any, reader: str, graph: Mapping[str, Any] | None) -> bool:
        if graph is not None and collection_listed(graph, key, client.admin_group_id()):
            return True
        # Archived collections are not in the graph (nothing to close there); gone ones answer 404.
        return _unless_absent(lambda: client.get_collection(int(key))) is not None


class DatabaseIsolationProvider(_IsolationProvider):
    """Sets create-queries ``no`` on one database for every group but the allowed ones and Administrators."""

    key_field = "database_id"
    closed = "no"
    data = True
    fields = ("database_id", "allowed_group_ids", "open_groups")
    replace_fields = ("database_id",)
    filled_later = ("database_id",)

    def _graph(self, client: MetabaseClient, key: Any, *, reader: str | None = None) -> dict[str, Any]:
        return client.get_data_graph_for_database(int(key), reader=reader)

    def _put(self, client: MetabaseClient, revision: int, patch: dict[str, Any]) -> None:
        client.put_data_graph(revision, patch)

    def _exists(self, client: MetabaseClient, key: Any, reader: str, graph: Mapping[str, Any] | None) -> bool:
        return _unless_absent(lambda: client.get_database(int(key), reader=reader)) is not None

    def _revision(self, client: MetabaseClient, reader: str) -> int | None:
        return client.data_graph_revision(reader=reader)


class _Isolation(DynamicResource):
    """One object kept closed by an :class:`_IsolationProvider`, keyed by the provider's ``key_field``."""

    def __init__(
        self,
        provider: _IsolationProvider,
        name: str,
        key: Input[int],
        allowed_group_ids: list[Input[int]],
        tenant: str | None,
        opts: ResourceOptions | None,
    ) -> None:
        props = {
            provider.key_field: key,
            "allowed_group_ids": allowed_group_ids,
            "tenant": tenant,
            "open_groups": [],
        }
        super().__init__(provider, name, props, opts)


class CollectionIsolation(_Isolation, module="metabase", name="CollectionIsolation"):
    """Keeps one collection closed (``none``) to every group except the allowed ones and Administrators.
    Owns those other groups' edges on this collection; leaves the allowed groups' edges alone."""

    def __init__(
        self,
        name: str,
        *,
        collection_id: Input[int],
        allowed_group_ids: list[Input[int]],
        tenant: str | None,
        opts: ResourceOptions | None = None,
    ) -> None:
        super().__init__(CollectionIsolationProvider(), name, collection_id, allowed_group_ids, tenant, opts)


class DatabaseIsolation(_Isolation, module="metabase", name="DatabaseIsolation"):
    """Keeps one database closed (create-queries ``no``) to every group except the allowed ones and
    Administrators. Owns those other groups' query levels on it; leaves view-data and the allowed groups alone."""

    def __init__(
        self,
        name: str,
        *,
        database_id: Input[int],
        allowed_group_ids: list[Input[int]],
        tenant: str | None,
        opts: ResourceOptions | None = None,
    ) -> None:
        super().__init__(DatabaseIsolationProvider(), name, database_id, allowed_group_ids, tenant, opts)
