"""A no-change refresh reads each shared Metabase document once per pass, not once per resource: the
collection graph (one document for the whole instance), each tenant database, and the data-graph revision.
A database's data-graph slice (which lists every group) is read again only when the revision moved since the
edge last read it. A resource refreshed again reads afresh, so a change made between two passes is seen."""

from __future__ import annotations

from collections import Counter
from typing import Any

from components.providers.metabase import (
    CollectionIsolation,
    CollectionIsolationProvider,
    CollectionPermission,
    CollectionPermissionProvider,
    DatabaseIsolation,
    DatabaseIsolationProvider,
    DataPermission,
    DataPermissionProvider,
)
from tests.harness.provider_host import ProviderHost
from tests.metabase.conftest import Driven, fake_rut
from tests.metabase.double import MetabaseDouble
from tests.metabase.test_contract import _collection, _group


def _workspace(host: ProviderHost, double: MetabaseDouble) -> tuple[list[Driven], int, int]:
    rut = fake_rut()
    owners, viewers = _group(host, rut), _group(host, rut, "viewers")
    allowed = [int(owners.id), int(viewers.id)]
    col = _collection(host, rut)
    dbid = double.seed_database(f"tenant {rut}", {"host": "127.0.0.1"})
    made = [owners, viewers, col]
    for group, level in ((owners, "write"), (viewers, "read")):
        edge = Driven(host, CollectionPermissionProvider(), CollectionPermission, f"{rut}-{group.id}-collection")
        edge.create({"group_id": int(group.id), "collection_id": int(col.id), "level": level, "tenant": rut})
        made.append(edge)
        data = Driven(host, DataPermissionProvider(), DataPermission, f"{rut}-{group.id}-data")
        data.create({"group_id": int(group.id), "database_id": dbid, "level": "query-builder", "tenant": rut})
        made.append(data)
    for provider, kind, key, value in (
        (CollectionIsolationProvider(), CollectionIsolation, "collection_id", int(col.id)),
        (DatabaseIsolationProvider(), DatabaseIsolation, "database_id", dbid),
    ):
        iso = Driven(host, provider, kind, f"{rut}-{key}-isolation")
        iso.create({key: value, "allowed_group_ids": allowed, "tenant": rut})
        made.append(iso)
    return made, int(col.id), dbid


def _refresh(double: MetabaseDouble, resources: list[Driven]) -> tuple[Counter[str], list[Any]]:
    with double.recording() as calls:
        for resource in resources:
            resource.refresh()
            assert resource.diff().changes is False, resource.name
    return Counter(path for method, path in calls if method == "GET"), calls


def _refresh_expecting_drift(double: MetabaseDouble, resources: list[Driven]) -> tuple[Counter[str], list[Any]]:
    with double.recording() as calls:
        for resource in resources:
            resource.refresh()
    return Counter(path for method, path in calls if method == "GET"), calls


def test_a_no_change_pass_reads_shared_documents_once(double_host: ProviderHost, metabase_double: Any) -> None:
    first, _, db_a = _workspace(double_host, metabase_double)
    second, col_b, db_b = _workspace(double_host, metabase_double)
    probe = "/api/permissions/graph/group/2147483647"
    slices = [f"/api/permissions/graph/db/{db}" for db in (db_a, db_b)]
    shared = ["/api/collection/graph", probe, *(f"/api/database/{db}" for db in (db_a, db_b))]
    # The first pass may reuse what the creates just read (nothing was written since) and reads each slice at
    # most once; a later pass reads each shared document afresh, once, and no slice: no graph write since.
    reads, calls = _refresh(metabase_double, first + second)
    assert all(reads[path] <= 1 for path in shared + slices), reads
    reads, calls = _refresh(metabase_double, first + second)
    assert [reads[path] for path in shared] == [1, 1, 1, 1], reads
    assert [reads[path] for path in slices] == [0, 0], reads
    assert {method for method, _ in calls} == {"GET"}

    # A door opened by hand between two passes shows in the next one.
    metabase_double.hand_set_collection_edge(1, col_b, "read")
    isolation = next(r for r in second if r.name.endswith("collection_id-isolation"))
    isolation.refresh()
    assert isolation.outputs["open_groups"] == [1]

    # A query level changed by hand (a graph write) is seen on the next pass.
    metabase_double.hand_set_query_level(1, db_a, "query-builder")
    reads, _ = _refresh_expecting_drift(metabase_double, first)
    assert reads[f"/api/permissions/graph/db/{db_a}"] == 1
    isolation_a = next(r for r in first if r.name.endswith("database_id-isolation"))
    assert isolation_a.outputs["open_groups"] == [1]
    metabase_double.hand_set_query_level(1, db_a, "no")
