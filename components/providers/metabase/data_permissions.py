"""Data-permission edges: one group's create-queries level on one database, and the platform's lockdown of
one group (All Users) on every database.

Owns those levels; leaves view-data, downloads and every other edge alone. Refuses the Administrators group.
Metabase (``src/metabase/permissions/api.clj``, ``.../models/data_permissions.clj``,
``.../models/data_permissions/graph.clj``, v50 to v0.6x): slices ``GET /api/permissions/graph/db/:id`` and
``/group/:id`` answer 200 even for ids that do not exist, so existence is checked with ``GET
/api/database/:id`` and ``GET /api/permissions/group/:id``; graphs omit ``create-queries: no`` and empty
entries; a level other than ``no`` goes with ``view-data: unrestricted``.

An edge on a connection that is deferred (its tenant started closed: no ``database_id`` yet) has nothing to set:
it is created as ``<group>:deferred``, reads back unchanged, and is set in the update that gets the connection's
id; the id stays (Pulumi never changes an id on update) and ``database_id`` holds the Metabase id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi import Input, ResourceOptions
from pulumi.dynamic import CheckResult, CreateResult, ReadResult, UpdateResult

from components.catalog import QUERY_LEVELS

from ..base import DynamicResource
from .client import MetabaseClient, MetabaseError
from .decisions import DEFERRED, data_edge_patch, metabase_id, open_databases, query_level
from .edges import patch_graph
from .plumbing import _inputs, _MetabaseProvider, _reporting, _unless_absent
from .validation import edge_failures


def _exists(client: MetabaseClient, gid: int, dbid: int, reader: str | None = None) -> bool:
    """Both ends of an edge still exist (the slices cannot tell)."""
    database = _unless_absent(lambda: client.get_database(dbid, reader=reader))
    return database is not None and _unless_absent(lambda: client.get_group(gid, reader=reader)) is not None


class DataPermissionProvider(_MetabaseProvider):
    """Owns one group's create-queries level on one database; leaves view-data, downloads and every other
    edge alone. Deleting sets the level to ``no``. The Administrators group cannot be managed."""

    fields = ("group_id", "database_id", "level")
    replace_fields = ("group_id", "database_id")
    filled_later = ("database_id",)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, edge_failures(news, QUERY_LEVELS))

    def _set(self, tenant: str | None, gid: int, dbid: int, level: str) -> None:
        client = self._client()

        def patch_for(graph: Mapping[str, Any]) -> dict[str, Any]:
            return {} if query_level(graph, gid, dbid) == level else data_edge_patch(gid, dbid, level)

        with _reporting(tenant):
            if gid == client.admin_group_id():
                raise MetabaseError(f"the Administrators group (id {gid}) always has full access")
            patch_graph(lambda: client.get_data_graph_for_database(dbid), patch_for, client.put_data_graph)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = _inputs(props)
        gid, dbid = self._group(inputs["group_id"]), metabase_id("", inputs.get("database_id"))
        if dbid is not None:
            self._set(inputs.get("tenant"), gid, dbid, inputs["level"])
        outs = {**inputs, "group_id": gid, "group_ref": inputs["group_id"], "database_id": dbid, "seen_revision": None}
        return CreateResult(f"{gid}:{DEFERRED if dbid is None else dbid}", outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = _inputs(props)
        gid_text, _, db_text = id_.partition(":")
        gid, dbid = int(gid_text), metabase_id(db_text, inputs.get("database_id"))
        if dbid is None:
            return ReadResult(id_, inputs)  # the connection does not exist yet: no edge to read
        client = self._client()
        with _reporting(inputs.get("tenant")):
            reader = f"data-permission {id_}"
            if not _exists(client, gid, dbid, reader):
                return ReadResult("", {})
            revision = client.data_graph_revision(reader=reader)
            if inputs.get("seen_revision") == revision and inputs.get("level"):
                level = str(inputs["level"])  # no graph write since this edge was last read
            else:
                graph = client.get_data_graph_for_database(dbid, reader=reader)
                level, revision = query_level(graph, gid, dbid), int(graph.get("revision", 0))
            ref = self._group_ref(inputs, gid)
        outs = {
            **inputs,
            "group_id": gid,
            "group_ref": ref,
            "database_id": dbid,
            "level": level,
            "seen_revision": revision,
        }
        return ReadResult(id_, outs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = _inputs(news)
        gid, dbid = self._group(inputs["group_id"]), metabase_id("", inputs.get("database_id"))
        if dbid is not None:
            self._set(inputs.get("tenant"), gid, dbid, inputs["level"])
        ref = inputs["group_id"]
        return UpdateResult({**inputs, "group_id": gid, "group_ref": ref, "database_id": dbid, "seen_revision": None})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        inputs = _inputs(props)
        gid_text, _, db_text = id_.partition(":")
        gid, dbid = int(gid_text), metabase_id(db_text, inputs.get("database_id"))
        if dbid is None:
            return  # the connection never existed: no edge to close
        with _reporting(inputs.get("tenant")):
            if not _exists(self._client(), gid, dbid):
                return  # the database or the group is gone: no edge left to close
        self._set(inputs.get("tenant"), gid, dbid, "no")


class DataPermission(DynamicResource, module="metabase", name="DataPermission"):
    """One data-permission edge: a group's create-queries level on one database (query-builder,
    query-builder-and-native or no). Owns that level only; deleting it sets no. Refuses Administrators."""

    def __init__(
        self,
        name: str,
        *,
        group_id: Input[int],
        database_id: Input[int],
        level: str,
        tenant: str | None,
        opts: ResourceOptions | None = None,
    ) -> None:
        props = {"group_id": group_id, "database_id": database_id, "level": level, "tenant": tenant}
        super().__init__(DataPermissionProvider(), name, props, opts)


class DatabaseAccessLockdownProvider(_MetabaseProvider):
    """Owns one group's create-queries level on every database (the platform sets All Users to ``no``).

    Read reports the databases where the level differs, so a door opened by hand shows up as drift.
    Deleting leaves the levels as they are (closing access is never undone by removing the lock).
    """

    fields = ("group_id", "level", "open_databases")
    replace_fields = ("group_id",)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult({**news, "open_databases": []}, edge_failures(news, QUERY_LEVELS))

    def _open(self, graph: Mapping[str, Any], gid: int, level: str) -> list[int]:
        """Databases where the level differs. The group slice omits databases where the group has ``no``,
        so when locking to another level every database is looked at."""
        found = open_databases(graph, gid, level)
        if level != "no":
            listed = {int(db) for db in ((graph.get("groups") or {}).get(str(gid)) or {})}
            found = sorted(set(found) | {int(d["id"]) for d in self._client().list_databases()} - listed)
        return found

    def _apply(self, inputs: Mapping[str, Any]) -> None:
        gid, level = self._group(inputs["group_id"]), str(inputs["level"])
        client = self._client()

        def patch_for(graph: Mapping[str, Any]) -> dict[str, Any]:
            targets = self._open(graph, gid, level)
            return {str(gid): {str(db): {"create-queries": level} for db in targets}} if targets else {}

        with _reporting(inputs.get("tenant")):
            patch_graph(lambda: client.get_data_graph_for_group(gid), patch_for, client.put_data_graph)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = _inputs(props)
        self._apply(inputs)
        gid = self._group(inputs["group_id"])
        outs = {**inputs, "group_id": gid, "group_ref": inputs["group_id"], "open_databases": []}
        return CreateResult(f"{gid}:{inputs['level']}", outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = _inputs(props)
        gid_text, _, level = id_.partition(":")
        gid = int(gid_text)
        with _reporting(inputs.get("tenant")):
            graph = self._client().get_data_graph_for_group(gid)
            still_open = self._open(graph, gid, level)
        ref = self._group_ref(inputs, gid)
        outs = {**inputs, "group_id": gid, "group_ref": ref, "level": level, "open_databases": still_open}
        return ReadResult(id_, outs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = _inputs(news)
        self._apply(inputs)
        gid, ref = self._group(inputs["group_id"]), inputs["group_id"]
        return UpdateResult({**inputs, "group_id": gid, "group_ref": ref, "open_databases": []})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        return None


class DatabaseAccessLockdown(DynamicResource, module="metabase", name="DatabaseAccessLockdown"):
    """One group's create-queries level on every database Metabase knows (All Users -> no). Owns those
    levels; leaves view-data and downloads alone; removing it changes nothing in Metabase."""

    def __init__(self, name: str, *, group_id: int | str, level: str, opts: ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {"group_id": group_id, "level": level, "tenant": None, "open_databases": []}
        super().__init__(DatabaseAccessLockdownProvider(), name, props, opts)
