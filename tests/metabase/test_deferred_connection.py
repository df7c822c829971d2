"""A tenant's connection while its role may not log in: creating it waits, and the edges on it wait with it.

Metabase tests the login before it stores a connection, with no way to skip the test
(``src/metabase/warehouses_rest/api.clj``, ``POST /``), so a ``NOLOGIN`` role cannot get one. The pure
decisions first, then the providers through the real provider host against the Metabase double, whose
connection test logs in to the real PostgreSQL as the tenant's role.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from components.providers.metabase import (
    DatabaseConnection,
    DatabaseConnectionProvider,
    DatabaseIsolation,
    DatabaseIsolationProvider,
    DataPermission,
    DataPermissionProvider,
    plan_diff,
    query_level,
)
from components.providers.metabase.decisions import connection_step, metabase_id, opens_deferred
from tests.harness.postgres import PostgresServer
from tests.harness.provider_host import ProviderCallError, ProviderHost
from tests.metabase.conftest import Driven, fake_rut
from tests.metabase.double import ALL_USERS, MetabaseDouble

OLD = json.loads((Path(__file__).parent / "fixtures" / "providers_before_package.json").read_text(encoding="utf-8"))

# -- pure decisions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "found", "step"),
    [(True, False, "create"), (False, False, "defer"), (True, True, "adopt"), (False, True, "adopt")],
)
def test_a_connection_is_created_when_the_role_may_log_in_and_deferred_otherwise(
    login: bool, found: bool, step: str
) -> None:
    assert connection_step(login, found) == step


def test_the_metabase_id_comes_from_the_resource_id_or_else_from_what_was_recorded() -> None:
    assert metabase_id("17", None) == 17  # created at once (or imported): the id is the Metabase id
    assert metabase_id("17", 99) == 17
    assert metabase_id("deferred:76953480-6", None) is None  # not created yet
    assert metabase_id("deferred:76953480-6", 23.0) == 23  # created later: the id stayed, the output has it
    assert metabase_id("", "") is None


def test_a_deferred_connection_is_due_only_once_its_tenant_may_log_in() -> None:
    deferred, created = "deferred:76953480-6", "17"
    assert opens_deferred({"database_id": None}, {"login": True}, deferred) is True
    assert opens_deferred({"database_id": None}, {"login": False}, deferred) is False
    assert opens_deferred({"database_id": 23}, {"login": True}, deferred) is False  # already created
    assert opens_deferred({"database_id": 17}, {"login": True}, created) is False
    assert opens_deferred({}, {}, created) is False  # state of the previous version: no login input


def test_filling_in_a_deferred_id_is_an_update_and_changing_a_real_one_a_replacement() -> None:
    fields, replace = ("group_id", "database_id", "level"), ("group_id", "database_id")
    filled = plan_diff({"group_id": 5, "database_id": None}, {"group_id": 5, "database_id": 23}, fields, replace,
                       filled_later=("database_id",))
    assert (filled.changes, filled.replaces) == (True, [])
    moved = plan_diff({"group_id": 5, "database_id": 17}, {"group_id": 5, "database_id": 23}, fields, replace,
                      filled_later=("database_id",))
    assert (moved.changes, moved.replaces) == (True, ["database_id"])
    regrouped = plan_diff({"group_id": None, "database_id": None}, {"group_id": 6, "database_id": None}, fields,
                          replace, filled_later=("database_id",))
    assert regrouped.replaces == ["group_id"]


# -- through the provider host ----------------------------------------------------------------------------


@pytest.fixture
def closed_role(postgres_server: PostgresServer) -> tuple[str, str]:
    """A tenant role as a closed tenant's is: NOLOGIN, with its password kept."""
    role, password = f"tenant_{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    with postgres_server.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
    return role, password


def open_role(server: PostgresServer, role: str) -> None:
    with server.connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role)))


def connection_inputs(server: PostgresServer, rut: str, role: str, password: str, login: bool) -> dict[str, Any]:
    return {
        "name": f"tenant {rut}", "host": server.host, "port": server.port, "dbname": "postgres", "role": role,
        "user_template": "{role}", "password": password, "ssl": False, "additional_options": "", "tenant": rut,
        "login": login,
    }


def test_metabase_refuses_a_connection_for_a_role_that_may_not_log_in(
    double_host: ProviderHost, postgres_server: PostgresServer, closed_role: tuple[str, str]
) -> None:
    """What deferring avoids: asked to create the connection anyway, Metabase's login test fails."""
    rut = fake_rut()
    db = Driven(double_host, DatabaseConnectionProvider(), DatabaseConnection, f"{rut}-database")
    with pytest.raises(ProviderCallError) as failure:
        db.create(connection_inputs(postgres_server, rut, *closed_role, login=True))
    assert failure.value.reason.startswith(f"tenant {rut}: Metabase answered 400 to POST /api/database ")
    assert "not permitted to log in" in failure.value.reason


def test_a_closed_tenants_connection_waits_for_it_to_open_and_its_edges_with_it(
    double_host: ProviderHost,
    metabase_double: MetabaseDouble,
    postgres_server: PostgresServer,
    closed_role: tuple[str, str],
) -> None:
    rut = fake_rut()
    role, password = closed_role
    owners = metabase_double.hand_create_group(f"tenant {rut} owners")
    closed = connection_inputs(postgres_server, rut, role, password, login=False)
    db = Driven(double_host, DatabaseConnectionProvider(), DatabaseConnection, f"{rut}-database")
    isolation = Driven(double_host, DatabaseIsolationProvider(), DatabaseIsolation, f"{rut}-database-isolation")
    edge = Driven(double_host, DataPermissionProvider(), DataPermission, f"{rut}-owners-data")

    def edge_inputs(level: str) -> dict[str, Any]:
        return {"group_id": owners, "database_id": db.outputs.get("database_id"), "level": level, "tenant": rut}

    def isolation_inputs() -> dict[str, Any]:
        return {"database_id": db.outputs.get("database_id"), "allowed_group_ids": [owners], "tenant": rut,
                "open_groups": []}

    # Closed from the start: everything is created, nothing is sent but the lookup for a namesake.
    with metabase_double.recording() as sent:
        db.create({**closed, "allowed_group_ids": [owners]})
        isolation.create(isolation_inputs())
        edge.create(edge_inputs("no"))
    assert [(m, p) for m, p in sent if m != "GET"] == []
    assert metabase_double.databases_named(f"tenant {rut}") == []
    assert (db.id, db.outputs.get("database_id")) == (f"deferred:{rut}", None)
    assert (isolation.id, edge.id) == (f"deferred:{rut}", f"{owners}:deferred")

    # Read back and converged again while closed: no drift, no write, even with a changed name.
    with metabase_double.recording() as sent:
        for resource in (db, isolation, edge):
            before = dict(resource.outputs)
            assert resource.refresh() == resource.id
            assert resource.outputs == before
        assert db.diff().changes is False
        assert isolation.diff(isolation_inputs()).changes is False
        assert edge.diff(edge_inputs("no")).changes is False
        renamed = {**closed, "name": f"tenant {rut} (renamed)", "allowed_group_ids": [owners]}
        assert db.diff(renamed).changes is True
        db.update(renamed)
    assert [(m, p) for m, p in sent if m != "GET"] == []
    assert db.outputs.get("database_id") is None

    # Opened: the connection is created in an update, closed to every other group; the edges follow.
    open_role(postgres_server, role)
    opened = {**renamed, "login": True}
    plan = db.diff(opened)
    assert (plan.changes, plan.replaces) == (True, [])
    db.update(opened)
    [dbid] = metabase_double.databases_named(f"tenant {rut} (renamed)")
    assert db.outputs["database_id"] == dbid and db.id == f"deferred:{rut}"
    graph = metabase_double.data_graph()
    assert query_level(graph, ALL_USERS, dbid) == "no"
    for resource, news in ((isolation, isolation_inputs()), (edge, edge_inputs("query-builder"))):
        plan = resource.diff(news)
        assert (plan.changes, plan.replaces) == (True, []), resource.name
        resource.update(news)
    assert query_level(metabase_double.data_graph(), owners, dbid) == "query-builder"
    assert (isolation.id, edge.id) == (f"deferred:{rut}", f"{owners}:deferred")  # ids never change

    # From now on the recorded Metabase id is used: reads see the live objects, drift shows, delete works.
    metabase_double.hand_set_query_level(ALL_USERS, dbid, "query-builder")  # a door opened by hand
    assert isolation.refresh() == f"deferred:{rut}" and isolation.outputs["open_groups"] == [ALL_USERS]
    assert db.refresh() == f"deferred:{rut}" and db.diff(opened).changes is False
    assert edge.refresh() == f"{owners}:deferred" and edge.outputs["level"] == "query-builder"
    edge.delete()
    assert query_level(metabase_double.data_graph(), owners, dbid) == "no"
    db.delete()
    assert metabase_double.databases_named(f"tenant {rut} (renamed)") == []


def test_a_connection_from_the_previous_version_keeps_working_whatever_the_status(
    double_host: ProviderHost,
    metabase_double: MetabaseDouble,
    postgres_server: PostgresServer,
    tenant_login_role: tuple[str, str],
) -> None:
    """State the previous version wrote: the provider serialised by the old module path, the connection's id
    its Metabase id, and no ``login`` in its inputs or outputs."""
    assert b"components.providers.metabase\x94" in base64.b64decode(OLD["DatabaseConnectionProvider"])
    rut = fake_rut()
    role, password = tenant_login_role
    db = Driven(double_host, OLD["DatabaseConnectionProvider"], DatabaseConnection, f"{rut}-database")
    previous = connection_inputs(postgres_server, rut, role, password, login=True)
    previous.pop("login")
    db.create(previous)
    dbid = int(db.id)
    assert "login" not in db.outputs
    for login in (True, False):  # the program now sends login; an existing connection ignores it
        assert db.diff({**previous, "login": login}).changes is False
    assert db.refresh() == str(dbid) and db.outputs["database_id"] == dbid
    renamed = {**previous, "name": f"tenant {rut} (renamed)", "login": False}
    db.update(renamed)
    assert metabase_double.databases_named(f"tenant {rut} (renamed)") == [dbid]
    db.delete()
    assert metabase_double.databases_named(f"tenant {rut} (renamed)") == []


@pytest.fixture
def tenant_login_role(postgres_server: PostgresServer) -> tuple[str, str]:
    role, password = f"tenant_{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    with postgres_server.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
    return role, password
