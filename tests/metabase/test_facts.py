"""Metabase as its source says it behaves (DESIGN.md section 6), one test per fact the provider used to get
wrong. Each of these failed against the single-module provider that assumed otherwise.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from components.providers.metabase import (
    Collection,
    CollectionPermission,
    CollectionPermissionProvider,
    CollectionProvider,
    DatabaseConnection,
    DatabaseConnectionProvider,
    DatabaseIsolation,
    DatabaseIsolationProvider,
    DataPermission,
    DataPermissionProvider,
    MetabaseClient,
    PermissionsGroup,
    PermissionsGroupProvider,
    collection_level,
    query_level,
    split_description,
)
from tests.harness.postgres import PostgresServer
from tests.harness.provider_host import ProviderCallError, ProviderHost
from tests.metabase.conftest import Driven, MetabaseTarget, fake_rut
from tests.metabase.double import ADMINS, MetabaseDouble
from tests.metabase.test_contract import _collection, _connection_inputs, _group, tenant_role

__all__ = ["tenant_role"]  # the fixture, shared with the contract tests


def open_to(double: MetabaseDouble, database_id: int, allowed: set[int]) -> list[int]:
    """Groups other than ``allowed`` and Administrators that may query the database."""
    graph = double.data_graph()
    return sorted(
        int(g)
        for g in graph["groups"]
        if int(g) not in allowed | {ADMINS} and query_level(graph, int(g), database_id) != "no"
    )


# 1. POST /api/database has no description: the tag is written with PUT, so a lost state adopts again.
def test_converge_from_empty_state_adopts_the_tenant_connection(
    host: ProviderHost, metabase_target: MetabaseTarget, postgres_server: PostgresServer, tenant_role: tuple[str, str]
) -> None:
    client = metabase_target.client()
    role, password = tenant_role
    rut = fake_rut()
    inputs = {**_connection_inputs(postgres_server, rut, role, password), "stack": "smarteros/test"}
    first = Driven(host, DatabaseConnectionProvider(), DatabaseConnection, f"{rut}-database")
    first.create(inputs)
    assert split_description(client.get_database(int(first.id))["description"])[1] == (
        f"tenant {rut} of smarteros/test"
    )
    again = Driven(host, DatabaseConnectionProvider(), DatabaseConnection, f"{rut}-database")  # state lost
    again.create(inputs)
    assert again.id == first.id
    assert [d["id"] for d in client.list_databases() if d["name"] == inputs["name"]] == [int(first.id)]
    first.delete()


# 2. A new database opens to every group by Metabase's defaults: closed before the create call returns.
def test_a_fresh_connection_is_closed_before_create_returns(
    bare_host: ProviderHost, bare_double: MetabaseDouble, postgres_server: PostgresServer, tenant_role: Any
) -> None:
    role, password = tenant_role
    rut = fake_rut()
    owners, viewers = int(_group(bare_host, rut).id), int(_group(bare_host, rut, "viewers").id)
    outsider = bare_double.hand_create_group(f"Analysts {secrets.token_hex(3)}")
    db = Driven(bare_host, DatabaseConnectionProvider(), DatabaseConnection, f"{rut}-database")
    db.create({**_connection_inputs(postgres_server, rut, role, password), "allowed_group_ids": [owners, viewers]})
    dbid = int(db.id)
    assert open_to(bare_double, dbid, {owners, viewers}) == []
    assert query_level(bare_double.data_graph(), outsider, dbid) == "no"
    later = bare_double.hand_create_group(f"Later {secrets.token_hex(3)}")
    assert query_level(bare_double.data_graph(), later, dbid) == "no"
    assert open_to(bare_double, dbid, {owners, viewers}) == []


# 3. ssl: false is "not required": Metabase's opportunistic SSL is neither drift nor switched off.
def test_opportunistic_ssl_is_neither_drift_nor_downgraded(
    double_host: ProviderHost, metabase_double: MetabaseDouble, postgres_server: PostgresServer, tenant_role: Any
) -> None:
    role, password = tenant_role
    rut = fake_rut()
    metabase_double.ssl_available = True
    try:
        db = Driven(double_host, DatabaseConnectionProvider(), DatabaseConnection, f"{rut}-database")
        inputs = _connection_inputs(postgres_server, rut, role, password)
        db.create(inputs)
        stored = metabase_double.state.databases[int(db.id)]["details"]
        assert stored["ssl"] is True  # Metabase tried SSL first and kept it
        db.refresh()
        assert db.diff().changes is False
        db.update({**inputs, "name": f"tenant {rut} (renamed)"})
        assert metabase_double.state.databases[int(db.id)]["details"]["ssl"] is True  # never sent back as false
        db.refresh()
        assert db.outputs["ssl_in_use"] is True and db.diff().changes is False
    finally:
        metabase_double.ssl_available = False


# 4. Graph slices answer 200 for ids that do not exist: existence comes from the object's own GET.
def test_refresh_notices_a_deleted_database_and_a_deleted_group(
    double_host: ProviderHost, metabase_double: MetabaseDouble
) -> None:
    rut = fake_rut()
    owners, viewers = _group(double_host, rut), _group(double_host, rut, "viewers")
    dbid = metabase_double.seed_database(f"tenant {rut}", {"host": "127.0.0.1"})
    edges = {}
    for group in (owners, viewers):
        edge = Driven(double_host, DataPermissionProvider(), DataPermission, f"{rut}-{group.id}-data")
        edge.create({"group_id": int(group.id), "database_id": dbid, "level": "query-builder", "tenant": rut})
        edges[group.id] = edge
    iso = Driven(double_host, DatabaseIsolationProvider(), DatabaseIsolation, f"{rut}-database-isolation")
    iso.create({"database_id": dbid, "allowed_group_ids": [int(owners.id), int(viewers.id)], "tenant": rut})

    metabase_double.hand_delete_group(int(owners.id))
    assert edges[owners.id].refresh() == ""
    assert edges[viewers.id].refresh() == edges[viewers.id].id

    MetabaseClient(metabase_double.url, metabase_double.api_key, retries=0).delete_database(dbid)
    assert edges[viewers.id].refresh() == ""
    assert iso.refresh() == ""


# 5. A 500 is not a rollback: the row exists, so the create is looked up, never sent again.
def test_a_connection_answered_500_after_the_write_is_not_duplicated(
    double_host: ProviderHost, metabase_double: MetabaseDouble, postgres_server: PostgresServer, tenant_role: Any
) -> None:
    role, password = tenant_role
    rut = fake_rut()
    inputs = _connection_inputs(postgres_server, rut, role, password)
    metabase_double.fail_next("POST", "/api/database", 500, after_write=True)
    db = Driven(double_host, DatabaseConnectionProvider(), DatabaseConnection, f"{rut}-database")
    with metabase_double.recording() as calls:
        db.create(inputs)
    assert calls.count(("POST", "/api/database")) == 1
    assert metabase_double.databases_named(inputs["name"]) == [int(db.id)]
    assert open_to(metabase_double, int(db.id), set()) == []


def test_a_duplicate_connection_found_later_is_reported_and_closed(
    double_host: ProviderHost, metabase_double: MetabaseDouble, postgres_server: PostgresServer, tenant_role: Any
) -> None:
    role, password = tenant_role
    rut = fake_rut()
    inputs = _connection_inputs(postgres_server, rut, role, password)
    first = Driven(double_host, DatabaseConnectionProvider(), DatabaseConnection, f"{rut}-database")
    first.create(inputs)
    # What a blind resend used to leave behind: the same connection again, open by Metabase's defaults.
    details = {k: v for k, v in metabase_double.state.databases[int(first.id)]["details"].items()}
    duplicate = metabase_double.hand_create_database(inputs["name"], details)
    metabase_double.hand_set_query_level(1, duplicate, "query-builder-and-native")
    again = Driven(double_host, DatabaseConnectionProvider(), DatabaseConnection, f"{rut}-database")
    with pytest.raises(ProviderCallError) as failure:
        again.create(inputs)
    assert failure.value.reason == (
        f"tenant {rut}: Metabase has 2 connections named 'tenant {rut}' that log in as this tenant "
        f"(ids {first.id}, {duplicate}); the duplicates (ids {duplicate}) were closed to every group but "
        "Administrators: delete them in Metabase (Admin > Databases) and run again"
    )
    assert open_to(metabase_double, duplicate, set()) == []
    assert open_to(metabase_double, int(first.id), set()) == []


def test_a_duplicate_collection_found_later_is_reported_and_closed(
    double_host: ProviderHost, metabase_double: MetabaseDouble
) -> None:
    rut = fake_rut()
    first = _collection(double_host, rut)
    client = MetabaseClient(metabase_double.url, metabase_double.api_key, retries=0)
    original = client.get_collection(int(first.id))
    duplicate = int(client.create_collection(original["name"], original["description"], None)["id"])
    metabase_double.hand_set_collection_edge(1, duplicate, "write")
    again = Driven(double_host, CollectionProvider(), Collection, f"{rut}-collection")
    with pytest.raises(ProviderCallError) as failure:
        again.create({"name": original["name"], "tenant": rut})
    assert failure.value.reason.startswith(
        f"tenant {rut}: Metabase has 2 collections named '{original['name']}' managed by this stack "
        f"(ids {first.id}, {duplicate}); the duplicates (ids {duplicate}) were closed"
    )
    assert collection_level(metabase_double.collection_graph(), 1, duplicate) == "none"


# 6. Error bodies: plain text, {message, errors}, {errors, specific-errors}, or a proxy's HTML page.
def test_errors_are_one_short_line_naming_tenant_system_and_answer(
    double_host: ProviderHost, metabase_double: MetabaseDouble
) -> None:
    rut = fake_rut()
    page = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
    metabase_double.fail_next("GET", "/api/permissions/group", 502, times=5, message=page)
    try:
        with pytest.raises(ProviderCallError) as failure:
            _group(double_host, rut)
    finally:
        metabase_double.faults.clear()
    assert failure.value.reason == (
        f"tenant {rut}: Metabase answered 502 to GET /api/permissions/group: 502 Bad Gateway 502 Bad Gateway"
    )

    client = MetabaseClient(metabase_double.url, metabase_double.api_key, retries=0)
    with pytest.raises(Exception) as plain:
        client.create_group("ALL USERS")
    assert str(plain.value) == (
        'Metabase answered 400 to POST /api/permissions/group {"name": "ALL USERS"}: '
        "A group with that name already exists."
    )
    with pytest.raises(Exception) as invalid:
        client.create_group(" ")
    assert str(invalid.value).endswith(": name: value must be a non-blank string.")


# 7. The collection graph never lists archived collections: their edges read as asked, not as drift.
def test_an_edge_of_an_archived_collection_does_not_drift(host: ProviderHost, metabase_target: MetabaseTarget) -> None:
    client = metabase_target.client()
    rut = fake_rut()
    owners = _group(host, rut)
    col = _collection(host, rut)
    edge = Driven(host, CollectionPermissionProvider(), CollectionPermission, f"{rut}-owners-collection")
    edge.create({"group_id": int(owners.id), "collection_id": int(col.id), "level": "write", "tenant": rut})
    client.update_collection(int(col.id), {"archived": True})
    assert str(col.id) not in client.get_collection_graph()["groups"].get(owners.id, {})
    assert edge.refresh() == edge.id
    assert edge.outputs["level"] == "write" and edge.diff().changes is False
    client.update_collection(int(col.id), {"archived": False})
    edge.refresh()
    assert edge.outputs["level"] == "write"
    assert collection_level(client.get_collection_graph(), int(owners.id), int(col.id)) == "write"


# 8. Group names are unique case-insensitively; a namesake in another case is the same group.
def test_group_names_match_case_insensitively(host: ProviderHost, metabase_target: MetabaseTarget) -> None:
    client = metabase_target.client()
    rut = fake_rut()
    existing = client.create_group(f"TENANT {rut} OWNERS")
    group = Driven(host, PermissionsGroupProvider(), PermissionsGroup, f"{rut}-owners")
    group.create({"name": f"tenant {rut} owners", "tenant": rut})
    assert int(group.id) == int(existing["id"])
    group.update({"name": f"tenant {rut} owners", "tenant": rut})
    assert client.get_group(int(group.id))["name"] == f"tenant {rut} owners"
    group.delete()
    group.delete()  # Metabase answers 204 for a group that is gone
