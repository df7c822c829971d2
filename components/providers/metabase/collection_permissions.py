"""Collection-permission edges: one resource per (group, collection) edge of the collection graph.

Owns that one edge (``read``, ``write`` or ``none``); leaves every other edge alone, and deleting sets it to
``none``. Refuses the Administrators group. Metabase (``src/metabase/permissions/models/collection/graph.clj``,
v50 to v0.6x): ``GET|PUT /api/collection/graph`` with a global revision; a partial PUT changes only the edges
sent; the graph omits ``none`` (0.56.13+) and never lists archived collections, whose edges are dropped on
write. An edge of an archived collection therefore reads as what it was asked to be (nothing can be seen or
written there) instead of drifting on every run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi import Input, ResourceOptions
from pulumi.dynamic import CheckResult, CreateResult, ReadResult, UpdateResult

from ..base import DynamicResource
from .client import ApiFailure, MetabaseError
from .decisions import COLLECTION_LEVELS, collection_edge_patch, collection_level, collection_listed
from .edges import patch_graph
from .plumbing import (
    _collection_ref,
    _inputs,
    _is_not_found,
    _MetabaseProvider,
    _reporting,
    _unless_absent,
)
from .validation import edge_failures


class CollectionPermissionProvider(_MetabaseProvider):
    """Owns one edge of the collection graph (group -> collection); leaves every other edge alone.

    Deleting sets the edge to ``none``. The Administrators group cannot be managed.
    """

    fields = ("group_id", "collection_id", "level")
    replace_fields = ("group_id", "collection_id")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, edge_failures(news, COLLECTION_LEVELS))

    def _set(self, tenant: str | None, gid: int, cid: int | str, level: str) -> str:
        client = self._client()

        def patch_for(graph: Mapping[str, Any]) -> dict[str, Any]:
            if not collection_listed(graph, cid, client.admin_group_id()):
                return {}  # archived: Metabase drops edges written there
            return {} if collection_level(graph, gid, cid) == level else collection_edge_patch(gid, cid, level)

        with _reporting(tenant):
            if gid == client.admin_group_id():
                raise MetabaseError(f"the Administrators group (id {gid}) always has full access")
            patch_graph(client.get_collection_graph, patch_for, client.put_collection_graph)
        return level

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = _inputs(props)
        gid, cid = self._group(inputs["group_id"]), _collection_ref(inputs["collection_id"])
        self._set(inputs.get("tenant"), gid, cid, inputs["level"])
        outs = {**inputs, "group_id": gid, "group_ref": inputs["group_id"], "collection_id": cid}
        return CreateResult(f"{gid}:{cid}", outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = _inputs(props)
        gid_text, _, cid_text = id_.partition(":")
        gid, cid = int(gid_text), _collection_ref(cid_text)
        client = self._client()
        with _reporting(inputs.get("tenant")):
            graph = client.get_collection_graph(reader=f"collection-permission {id_}")
            if collection_listed(graph, cid, client.admin_group_id()):
                level = collection_level(graph, gid, cid)
            else:
                live = _unless_absent(lambda: client.get_collection(int(cid)))
                if live is None:
                    return ReadResult("", {})
                level = str(inputs.get("level") or "none")  # archived: the graph shows nothing there
            ref = self._group_ref(inputs, gid)
        return ReadResult(id_, {**inputs, "group_id": gid, "group_ref": ref, "collection_id": cid, "level": level})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = _inputs(news)
        gid, cid = self._group(inputs["group_id"]), _collection_ref(inputs["collection_id"])
        self._set(inputs.get("tenant"), gid, cid, inputs["level"])
        return UpdateResult({**inputs, "group_id": gid, "group_ref": inputs["group_id"], "collection_id": cid})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        inputs = _inputs(props)
        gid_text, _, cid_text = id_.partition(":")
        try:
            self._set(inputs.get("tenant"), int(gid_text), _collection_ref(cid_text), "none")
        except MetabaseError:
            # A group or collection that no longer exists has no edge left to close.
            if self._edge_target_gone(int(gid_text), _collection_ref(cid_text)):
                return
            raise

    def _edge_target_gone(self, gid: int, cid: int | str) -> bool:
        client = self._client()
        try:
            client.get_group(gid)
            if cid != "root":
                client.get_collection(int(cid))
        except ApiFailure as exc:
            return _is_not_found(exc)
        return False


class CollectionPermission(DynamicResource, module="metabase", name="CollectionPermission"):
    """One collection-permission edge (group -> collection: read, write or none). Owns that edge only;
    deleting it sets the edge to none. Refuses the Administrators group."""

    def __init__(
        self,
        name: str,
        *,
        group_id: Input[int] | str,
        collection_id: Input[int] | str,
        level: str,
        tenant: str | None,
        opts: ResourceOptions | None = None,
    ) -> None:
        props = {"group_id": group_id, "collection_id": collection_id, "level": level, "tenant": tenant}
        super().__init__(CollectionPermissionProvider(), name, props, opts)
