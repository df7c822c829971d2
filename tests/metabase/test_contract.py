"""Contract tests of the Metabase providers through the real provider host (gRPC + dill serialisation).

Each resource goes through create, a no-op diff, update, refresh after a change made by hand, delete and
delete-when-absent. Changes "by hand" go through Metabase's own API, as the UI would make them, so the same
tests run against a real Metabase (``-m live_metabase``).
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from psycopg import sql

from components.providers.metabase import (
    ADMINISTRATORS_GROUP_ID,
    ALL_USERS_GROUP_ID,
    Collection,
    CollectionIsolation,
    CollectionIsolationProvider,
    CollectionPermission,
    CollectionPermissionProvider,
    CollectionProvider,
    DatabaseAccessLockdown,
    DatabaseAccessLockdownProvider,
    DatabaseConnection,
    DatabaseConnectionProvider,
    DatabaseIsolation,
    DatabaseIsolationProvider,
    DataPermission,
    DataPermissionProvider,
    PermissionsGroup,
    PermissionsGroupProvider,
    collection_level,
    query_level,
    split_description,
)
from tests.harness.postgres import PostgresServer
from tests.harness.provider_host import ProviderCallError, ProviderHost
from tests.metabase.conftest import Driven, MetabaseTarget, fake_rut


def _group(host: ProviderHost, rut: str, kind: str = "owners") -> Driven:
    group = Driven(host, PermissionsGroupProvider(), PermissionsGroup, f"{rut}-{kind}")
    group.create({"name": f"tenant {rut} {kind}", "tenant": rut})
    return group


def _collection(host: ProviderHost, rut: str, parent_id: int | None = None) -> Driven:
    col = Driven(host, CollectionProvider(), Collection, f"{rut}-collection")
    news: dict[str, Any] = {"name": f"{rut} (Ferretería Juanito)", "tenant": rut}
    if parent_id is not None:
        news["parent_id"] = parent_id
    col.create(news)
    return col


@pytest.fixture
def tenant_role(postgres_server: PostgresServer) -> tuple[str, str]:
    """A login role with a generated password, as the Database child creates it."""
    role = f"tenant_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    with postgres_server.connect() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )
    return role, password


def _connection_inputs(server: PostgresServer, rut: str, role: str, password: str) -> dict[str, Any]:
    return {
        "name": f"tenant {rut}",
        "host": server.host,
        "port": server.port,
        "dbname": "postgres",
        "role": role,
        "user_template": "{role}",
        "password": password,
        "ssl": False,
        "additional_options": "",
        "tenant": rut,
    }


# ---------------------------------------------------------------------------------------------------------
# Permissions group


def test_group_lifecycle(host: ProviderHost, metabase_target: MetabaseTarget) -> None:
    client = metabase_target.client()
    rut = fake_rut()
    group = _group(host, rut)
    gid = int(group.id)
    assert group.outputs["group_id"] == gid
    assert client.get_group(gid)["name"] == f"tenant {rut} owners"

    assert group.diff().changes is False

    renamed = {"name": f"tenant {rut} owners (renamed)", "tenant": rut}
    plan = group.diff(renamed)
    assert plan.changes is True and plan.replaces == []
    group.update(renamed)
    assert client.get_group(gid)["name"] == renamed["name"]

    client.update_group(gid, "someone renamed this")
    group.refresh()
    assert group.outputs["name"] == "someone renamed this"
    assert group.diff(renamed).changes is True
    group.update(renamed)
    assert client.get_group(gid)["name"] == renamed["name"]

    group.delete()
    assert all(g["id"] != gid for g in client.list_groups())
    group.delete()  # already gone: succeeds


def test_group_deleted_by_hand_reads_as_gone(host: ProviderHost, metabase_target: MetabaseTarget) -> None:
    group = _group(host, fake_rut(), "viewers")
    metabase_target.client().delete_group(int(group.id))
    assert group.refresh() == ""


def test_group_create_refuses_a_foreign_group_with_members(
    double_host: ProviderHost, metabase_double: Any
) -> None:
    rut = fake_rut()
    existing = metabase_double.url and _group(double_host, rut)
    metabase_double.hand_add_member(int(existing.id))
    again = Driven(double_host, PermissionsGroupProvider(), PermissionsGroup, f"{rut}-owners-again")
    with pytest.raises(ProviderCallError) as failure:
        again.create({"name": f"tenant {rut} owners", "tenant": rut})
    assert failure.value.reason == (
        f"tenant {rut}: Metabase group 'tenant {rut} owners' already exists (id {existing.id}) with members and "
        f"is not managed by this stack; adopt it with the import_ resource option (id {existing.id}) after "
        "checking its members"
    )


def test_group_check_reports_an_empty_name(host: ProviderHost) -> None:
    outcome = host.check(PermissionsGroupProvider(), "urn:x", {}, {"name": "  ", "tenant": "1-9"})
    assert outcome.failures == [("name", "a group needs a name")]


# ---------------------------------------------------------------------------------------------------------
# Collection


def test_collection_lifecycle(host: ProviderHost, metabase_target: MetabaseTarget) -> None:
    client = metabase_target.client()
    parent = Driven(host, CollectionProvider(), Collection, "platform-tenants")
    parent.create({"name": f"Tenants {secrets.token_hex(3)}"})
    rut = fake_rut()
    col = _collection(host, rut, parent_id=int(parent.id))
    cid = int(col.id)

    live = client.get_collection(cid)
    assert live["location"] == f"/{parent.id}/"
    assert split_description(live["description"]) == ("", f"tenant {rut}")
    assert col.outputs["collection_id"] == cid and col.outputs["archived"] is False

    assert col.diff().changes is False

    renamed = {**col.inputs, "name": f"{rut} (Ferretería Juanito SpA)", "description": "BI of the tenant"}
    col.update(renamed)
    live = client.get_collection(cid)
    assert live["name"] == renamed["name"]
    assert split_description(live["description"]) == ("BI of the tenant", f"tenant {rut}")

    # Renamed, moved to the root and archived by hand: refresh shows it, update puts it back.
    client.update_collection(cid, {"name": "moved away", "parent_id": None, "archived": True})
    col.refresh()
    assert (col.outputs["name"], col.outputs.get("parent_id"), col.outputs["archived"]) == ("moved away", None, True)
    assert col.diff(renamed).changes is True
    col.update(renamed)
    live = client.get_collection(cid)
    assert (live["name"], live["location"], live["archived"]) == (renamed["name"], f"/{parent.id}/", False)

    col.delete()
    assert client.get_collection(cid)["archived"] is True  # archived, nothing lost
    col.delete()  # already archived: succeeds


def test_collection_create_refuses_an_untagged_namesake(host: ProviderHost, metabase_target: MetabaseTarget) -> None:
    client = metabase_target.client()
    parent = Driven(host, CollectionProvider(), Collection, "platform-tenants")
    parent.create({"name": f"Tenants {secrets.token_hex(3)}"})
    rut = fake_rut()
    foreign = client.create_collection(f"{rut} (Ferretería Juanito)", "made by hand", int(parent.id))
    col = Driven(host, CollectionProvider(), Collection, f"{rut}-collection")
    with pytest.raises(ProviderCallError) as failure:
        col.create({"name": f"{rut} (Ferretería Juanito)", "tenant": rut, "parent_id": int(parent.id)})
    assert failure.value.reason == (
        f"tenant {rut}: Metabase collection '{rut} (Ferretería Juanito)' already exists (id {foreign['id']}) "
        f"without this stack's ownership tag; adopt it with the import_ resource option (id {foreign['id']})"
    )


def test_collection_of_another_stack_is_never_adopted(host: ProviderHost, metabase_target: MetabaseTarget) -> None:
    """Staging and production sharing one Metabase: each stack refuses the other's collection."""
    parent = Driven(host, CollectionProvider(), Collection, "platform-tenants")
    parent.create({"name": f"Tenants {secrets.token_hex(3)}"})
    rut = fake_rut()
    news = {"name": f"{rut} (Ferretería Juanito)", "tenant": rut, "parent_id": int(parent.id)}
    staging = Driven(host, CollectionProvider(), Collection, f"{rut}-collection")
    staging.create({**news, "stack": "smarteros/staging"})
    assert staging.outputs["owner"] == f"tenant {rut} of smarteros/staging"

    production = Driven(host, CollectionProvider(), Collection, f"{rut}-collection")
    with pytest.raises(ProviderCallError) as failure:
        production.create({**news, "stack": "smarteros/prod"})
    assert failure.value.reason.startswith(f"tenant {rut}: Metabase collection '{rut} (Ferretería Juanito)' already")
    assert "import_" in failure.value.reason

    again = Driven(host, CollectionProvider(), Collection, f"{rut}-collection")
    again.create({**news, "stack": "smarteros/staging"})
    assert again.id == staging.id, "the stack that owns it finds it again"


def test_collection_import_adopts_the_existing_one(host: ProviderHost, metabase_target: MetabaseTarget) -> None:
    client = metabase_target.client()
    rut = fake_rut()
    existing = client.create_collection(f"{rut} (Imported)", "made by hand", None)
    col = Driven(host, CollectionProvider(), Collection, f"{rut}-collection")
    inputs = col.check({"name": f"{rut} (Imported)", "tenant": rut})
    col.id, col.outputs, _ = host.read(col.provider, str(existing["id"]), col.urn, {}, inputs)
    assert col.id == str(existing["id"]) and col.outputs.get("owner") is None
    plan = col.diff(inputs)
    assert plan.changes is True and plan.replaces == []  # the description gains the tag, nothing is recreated
    col.inputs = inputs
    col.update(inputs)
    assert split_description(client.get_collection(existing["id"])["description"])[1] == f"tenant {rut}"


def test_collection_deleted_in_metabase_reads_as_gone(double_host: ProviderHost, metabase_double: Any) -> None:
    col = _collection(double_host, fake_rut())
    with metabase_double.lock:
        metabase_double.state.collections.pop(int(col.id))
    cid = col.id
    assert col.refresh() == ""
    col.id = cid
    col.delete()  # absent: succeeds


# ---------------------------------------------------------------------------------------------------------
# Collection-permission edge


def test_collection_edge_lifecycle(host: ProviderHost, metabase_target: MetabaseTarget) -> None:
    client = metabase_target.client()
    rut = fake_rut()
    owners, viewers = _group(host, rut), _group(host, rut, "viewers")
    col = _collection(host, rut)
    cid = int(col.id)
    before = client.get_collection_graph()

    edge = Driven(host, CollectionPermissionProvider(), CollectionPermission, f"{rut}-owners-collection")
    edge.create({"group_id": int(owners.id), "collection_id": cid, "level": "write", "tenant": rut})
    assert edge.id == f"{owners.id}:{cid}"
    after = client.get_collection_graph()
    assert collection_level(after, int(owners.id), cid) == "write"
    # Only that edge changed.
    for gid, edges in before["groups"].items():
        for key, level in edges.items():
            if (gid, key) != (owners.id, str(cid)):
                assert after["groups"][gid][key] == level, (gid, key)

    assert edge.diff().changes is False
    edge.update({**edge.inputs, "level": "read"})
    assert collection_level(client.get_collection_graph(), int(owners.id), cid) == "read"

    graph = client.get_collection_graph()
    client.put_collection_graph(graph["revision"], {owners.id: {str(cid): "none"}})
    edge.refresh()
    assert edge.outputs["level"] == "none"
    assert edge.diff().changes is True
    edge.update(edge.inputs)
    assert collection_level(client.get_collection_graph(), int(owners.id), cid) == "read"

    moved = {**edge.inputs, "group_id": int(viewers.id)}
    plan = edge.diff(moved)
    assert plan.replaces == ["group_id"] and plan.delete_before_replace is False

    edge.delete()
    assert collection_level(client.get_collection_graph(), int(owners.id), cid) == "none"
    client.delete_group(int(owners.id))
    edge.delete()  # the group is gone: succeeds


def test_collection_edge_refuses_administrators(host: ProviderHost) -> None:
    outcome = host.check(
        CollectionPermissionProvider(),
        "urn:x",
        {},
        {"group_id": ADMINISTRATORS_GROUP_ID, "collection_id": 5, "level": "none", "tenant": "1-9"},
    )
    assert outcome.failures == [
        ("group_id", "the Administrators group (id 2) always has full access; Metabase does not let it change")
    ]


def test_collection_edge_retries_a_stale_revision(double_host: ProviderHost, metabase_double: Any) -> None:
    rut = fake_rut()
    owners = _group(double_host, rut)
    col = _collection(double_host, rut)
    metabase_double.fail_next("PUT", "/api/collection/graph", 409)
    edge = Driven(double_host, CollectionPermissionProvider(), CollectionPermission, f"{rut}-edge")
    with metabase_double.recording() as calls:
        edge.create({"group_id": int(owners.id), "collection_id": int(col.id), "level": "write", "tenant": rut})
    assert calls == [
        ("GET", "/api/collection/graph"),
        ("PUT", "/api/collection/graph"),
        ("GET", "/api/collection/graph"),
        ("PUT", "/api/collection/graph"),
    ]
    assert collection_level(metabase_double.collection_graph(), int(owners.id), int(col.id)) == "write"


# ---------------------------------------------------------------------------------------------------------
# Database connection


def test_database_lifecycle(
    host: ProviderHost,
    metabase_target: MetabaseTarget,
    postgres_server: PostgresServer,
    tenant_role: tuple[str, str],
) -> None:
    client = metabase_target.client()
    role, password = tenant_role
    rut = fake_rut()
    db = Driven(host, DatabaseConnectionProvider(), DatabaseConnection, f"{rut}-database")
    inputs = _connection_inputs(postgres_server, rut, role, password)
    db.create(inputs)
    dbid = int(db.id)
    live = client.get_database(dbid)
    assert live["engine"] == "postgres"
    assert live["details"]["user"] == role and live["details"]["password"] != password
    if metabase_target.double is not None:
        login = metabase_target.double.logins[-1]
        assert (login.user, login.password, login.succeeded) == (role, password, True)

    assert db.diff().changes is False
    db.refresh()  # Metabase answers with the password masked
    assert db.outputs["password"] == password
    assert db.diff().changes is False

    # A real password change is seen through the input, and Metabase logs in with the new one.
    new_password = secrets.token_urlsafe(18)
    with postgres_server.connect() as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(new_password))
        )
    changed = {**inputs, "password": new_password}
    plan = db.diff(changed)
    assert plan.changes is True and plan.replaces == []
    db.update(changed)
    if metabase_target.double is not None:
        login = metabase_target.double.logins[-1]
        assert (login.password, login.succeeded) == (new_password, True)

    # Details changed by hand show as drift and converge back.
    if metabase_target.double is not None:
        metabase_target.double.hand_update_database(dbid, host="10.0.0.9")
        db.refresh()
        assert db.outputs["host"] == "10.0.0.9"
        assert db.diff(changed).changes is True
        db.update(changed)
        assert client.get_database(dbid)["details"]["host"] == postgres_server.host

    db.delete()
    assert all(d["id"] != dbid for d in client.list_databases())
    db.delete()  # already gone: succeeds


def test_database_connection_failure_quotes_metabase(
    host: ProviderHost, postgres_server: PostgresServer, tenant_role: tuple[str, str]
) -> None:
    role, _ = tenant_role
    wrong = secrets.token_urlsafe(18)
    rut = fake_rut()
    db = Driven(host, DatabaseConnectionProvider(), DatabaseConnection, f"{rut}-database")
    with pytest.raises(ProviderCallError) as failure:
        db.create(_connection_inputs(postgres_server, rut, role, wrong))
    reason = failure.value.reason
    assert reason.startswith(f"tenant {rut}: Metabase answered 400 to POST /api/database ")
    assert '"password": "[secret]"' in reason
    assert reason.endswith(": Looks like your password is incorrect.")  # Metabase's humanised message
    assert wrong not in failure.value.details


def test_database_user_template_for_the_supabase_pooler(
    double_host: ProviderHost, metabase_double: Any, postgres_server: PostgresServer
) -> None:
    rut = fake_rut()
    db = Driven(double_host, DatabaseConnectionProvider(), DatabaseConnection, f"{rut}-database")
    news = {
        **_connection_inputs(postgres_server, rut, "tenant_76953480_6", secrets.token_urlsafe(12)),
        "user_template": "{role}.abcdefghij",
    }
    with pytest.raises(ProviderCallError):
        db.create(news)  # no such user on this PostgreSQL: what matters is what Metabase was sent
    assert metabase_double.logins[-1].user == "tenant_76953480_6.abcdefghij"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{role}.{project}", "'{role}.{project}' may only use the field {role}, not {project}"),
        ("{role!r}", "'{role!r}' may only use the field {role}, not {role!r}"),
        ("{role.__class__}", "'{role.__class__}' may only use the field {role}, not {role.__class__}"),
        ("metabase", "'metabase' must contain {role} so each tenant logs in as its own PostgreSQL role"),
        ("{role", "'{role' is not a valid template: expected '}' before end of string"),
    ],
)
def test_database_check_rejects_bad_user_templates(host: ProviderHost, template: str, reason: str) -> None:
    news = {
        "name": "tenant 1-9",
        "host": "db.internal",
        "port": 5432,
        "dbname": "smarteros",
        "role": "tenant_1_9",
        "user_template": template,
        "password": "generated-elsewhere",
        "tenant": "1-9",
    }
    outcome = host.check(DatabaseConnectionProvider(), "urn:x", {}, news)
    assert outcome.failures == [("user_template", reason)]


def test_database_deletion_removes_questions_so_components_retain_it(
    double_host: ProviderHost,
    metabase_double: Any,
    postgres_server: PostgresServer,
    tenant_role: tuple[str, str],
) -> None:
    role, password = tenant_role
    rut = fake_rut()
    db = Driven(double_host, DatabaseConnectionProvider(), DatabaseConnection, f"{rut}-database")
    db.create(_connection_inputs(postgres_server, rut, role, password))
    metabase_double.add_question(int(db.id))
    assert len(metabase_double.questions_on(int(db.id))) == 1
    db.delete()
    assert metabase_double.questions_on(int(db.id)) == []


# ---------------------------------------------------------------------------------------------------------
# Data-permission edge and the platform lockdown


def _seed_db(target: MetabaseTarget, double: Any) -> int:
    return int(double.seed_database(f"seed {secrets.token_hex(3)}", {"host": "127.0.0.1", "dbname": "x"}))


def test_data_edge_lifecycle(double_host: ProviderHost, metabase_double: Any) -> None:
    client = MetabaseTarget(metabase_double.url, metabase_double.api_key).client()
    rut = fake_rut()
    owners = _group(double_host, rut)
    dbid = metabase_double.seed_database(f"tenant {rut}", {"host": "127.0.0.1"})
    edge = Driven(double_host, DataPermissionProvider(), DataPermission, f"{rut}-owners-data")
    with metabase_double.recording() as calls:
        edge.create({"group_id": int(owners.id), "database_id": dbid, "level": "query-builder", "tenant": rut})
    assert ("GET", f"/api/permissions/graph/db/{dbid}") in calls and ("GET", "/api/permissions/graph") not in calls
    assert query_level(metabase_double.data_graph(), int(owners.id), dbid) == "query-builder"

    assert edge.diff().changes is False
    edge.update({**edge.inputs, "level": "query-builder-and-native"})
    assert query_level(metabase_double.data_graph(), int(owners.id), dbid) == "query-builder-and-native"

    metabase_double.hand_set_query_level(int(owners.id), dbid, "no")
    with metabase_double.recording() as calls:
        edge.refresh()
    assert calls == [
        ("GET", f"/api/database/{dbid}"),  # the slice answers 200 for a database that does not exist
        ("GET", f"/api/permissions/group/{owners.id}"),
        ("GET", "/api/permissions/graph/group/2147483647"),  # the revision: it changed, so read the slice
        ("GET", f"/api/permissions/graph/db/{dbid}"),
    ]
    assert edge.outputs["level"] == "no" and edge.diff().changes is True
    edge.update(edge.inputs)
    assert query_level(metabase_double.data_graph(), int(owners.id), dbid) == "query-builder-and-native"

    edge.delete()
    assert query_level(metabase_double.data_graph(), int(owners.id), dbid) == "no"
    client.delete_database(dbid)
    edge.delete()  # the database is gone: succeeds


def test_data_edge_retries_409_and_500(double_host: ProviderHost, metabase_double: Any) -> None:
    rut = fake_rut()
    owners = _group(double_host, rut)
    dbid = metabase_double.seed_database(f"tenant {rut}", {"host": "127.0.0.1"})
    metabase_double.fail_next("PUT", "/api/permissions/graph", 409)
    metabase_double.fail_next("GET", f"/api/permissions/graph/db/{dbid}", 500)
    edge = Driven(double_host, DataPermissionProvider(), DataPermission, f"{rut}-owners-data")
    with metabase_double.recording() as calls:
        edge.create({"group_id": int(owners.id), "database_id": dbid, "level": "query-builder", "tenant": rut})
    slice_path = f"/api/permissions/graph/db/{dbid}"
    assert calls == [
        ("GET", slice_path),  # 500
        ("GET", slice_path),
        ("PUT", "/api/permissions/graph"),  # 409
        ("GET", slice_path),
        ("PUT", "/api/permissions/graph"),
    ]
    assert query_level(metabase_double.data_graph(), int(owners.id), dbid) == "query-builder"


def test_group_create_retries_a_500(double_host: ProviderHost, metabase_double: Any) -> None:
    metabase_double.fail_next("POST", "/api/permissions/group", 500)
    rut = fake_rut()
    group = _group(double_host, rut)
    assert metabase_double.group_named(f"tenant {rut} owners")["id"] == int(group.id)


def test_a_create_that_failed_before_the_write_is_looked_up_then_sent_again(
    double_host: ProviderHost, metabase_double: Any
) -> None:
    """A 502 from a proxy: nothing was written, the lookup finds nothing, so the create is sent once more."""
    rut = fake_rut()
    metabase_double.fail_next("POST", "/api/permissions/group", 502)
    with metabase_double.recording() as calls:
        group = _group(double_host, rut)
    assert calls == [
        ("GET", "/api/permissions/group"),
        ("POST", "/api/permissions/group"),  # 502
        ("GET", "/api/permissions/group"),  # nothing there
        ("POST", "/api/permissions/group"),
    ]
    assert metabase_double.group_named(f"tenant {rut} owners")["id"] == int(group.id)


def test_a_500_after_the_write_is_never_resent(double_host: ProviderHost, metabase_double: Any) -> None:
    """Metabase inserts, then an event handler fails: the group exists, and the provider finds it."""
    rut = fake_rut()
    metabase_double.fail_next("POST", "/api/permissions/group", 500, after_write=True)
    with metabase_double.recording() as calls:
        group = _group(double_host, rut)
    assert calls.count(("POST", "/api/permissions/group")) == 1
    named = [g for g in metabase_double.state.groups.values() if g["name"] == f"tenant {rut} owners"]
    assert [g["id"] for g in named] == [int(group.id)]


def test_persistent_500_names_the_tenant_and_the_answer(double_host: ProviderHost, metabase_double: Any) -> None:
    rut = fake_rut()
    metabase_double.fail_next("POST", "/api/permissions/group", 503, times=10, message="Metabase is starting")
    with pytest.raises(ProviderCallError) as failure:
        _group(double_host, rut)
    metabase_double.faults.clear()
    assert failure.value.reason == (
        f"tenant {rut}: Metabase answered 503 to POST /api/permissions/group "
        f'{{"name": "tenant {rut} owners"}}: Metabase is starting'
    )


def test_data_edge_refuses_administrators(host: ProviderHost) -> None:
    outcome = host.check(
        DataPermissionProvider(),
        "urn:x",
        {},
        {"group_id": ADMINISTRATORS_GROUP_ID, "database_id": 5, "level": "sometimes", "tenant": "1-9"},
    )
    assert outcome.failures == [
        ("group_id", "the Administrators group (id 2) always has full access; Metabase does not let it change"),
        ("level", "'sometimes' is not one of: query-builder, query-builder-and-native, no"),
    ]


def test_lockdown_closes_every_database_and_reports_reopened_ones(
    double_host: ProviderHost, metabase_double: Any
) -> None:
    first = metabase_double.seed_database(f"admin {secrets.token_hex(3)}", {"host": "127.0.0.1"})
    lock = Driven(double_host, DatabaseAccessLockdownProvider(), DatabaseAccessLockdown, "all-users-no-queries")
    lock.create({"group_id": ALL_USERS_GROUP_ID, "level": "no"})
    graph = metabase_double.data_graph()
    assert {query_level(graph, ALL_USERS_GROUP_ID, int(db)) for db in graph["groups"]["1"]} == {"no"}
    assert lock.diff().changes is False

    metabase_double.hand_set_query_level(ALL_USERS_GROUP_ID, first, "query-builder")
    lock.refresh()
    assert lock.outputs["open_databases"] == [first]
    assert lock.diff().changes is True
    lock.update(lock.inputs)
    assert query_level(metabase_double.data_graph(), ALL_USERS_GROUP_ID, first) == "no"
    lock.delete()
    assert query_level(metabase_double.data_graph(), ALL_USERS_GROUP_ID, first) == "no"


def test_database_isolation_closes_every_other_group(double_host: ProviderHost, metabase_double: Any) -> None:
    rut = fake_rut()
    owners, viewers = _group(double_host, rut), _group(double_host, rut, "viewers")
    dbid = metabase_double.seed_database(f"tenant {rut}", {"host": "127.0.0.1"})
    outsider = _group(double_host, fake_rut())
    for gid in (ALL_USERS_GROUP_ID, int(outsider.id), int(owners.id)):
        metabase_double.hand_set_query_level(gid, dbid, "query-builder-and-native")
    iso = Driven(double_host, DatabaseIsolationProvider(), DatabaseIsolation, f"{rut}-database-isolation")
    iso.create({"database_id": dbid, "allowed_group_ids": [int(owners.id), int(viewers.id)], "tenant": rut})
    graph = metabase_double.data_graph()
    assert query_level(graph, ALL_USERS_GROUP_ID, dbid) == "no"
    assert query_level(graph, int(outsider.id), dbid) == "no"
    assert query_level(graph, int(owners.id), dbid) == "query-builder-and-native"  # allowed: left alone
    assert iso.diff().changes is False

    metabase_double.hand_set_query_level(int(outsider.id), dbid, "query-builder")
    with metabase_double.recording() as calls:
        iso.refresh()
    assert calls == [
        ("GET", "/api/permissions/graph/group/2147483647"),
        ("GET", f"/api/permissions/graph/db/{dbid}"),
        ("GET", f"/api/database/{dbid}"),
    ]
    assert iso.outputs["open_groups"] == [int(outsider.id)]
    assert iso.diff().changes is True
    iso.update(iso.inputs)
    assert query_level(metabase_double.data_graph(), int(outsider.id), dbid) == "no"
    iso.delete()


def test_collection_isolation_closes_every_other_group(host: ProviderHost, metabase_target: MetabaseTarget) -> None:
    client = metabase_target.client()
    rut = fake_rut()
    owners = _group(host, rut)
    outsider = _group(host, fake_rut())
    col = _collection(host, rut)  # top level: All Users inherits root's access
    cid = int(col.id)
    graph = client.get_collection_graph()
    client.put_collection_graph(graph["revision"], {outsider.id: {str(cid): "read"}})
    iso = Driven(host, CollectionIsolationProvider(), CollectionIsolation, f"{rut}-collection-isolation")
    iso.create({"collection_id": cid, "allowed_group_ids": [int(owners.id)], "tenant": rut})
    graph = client.get_collection_graph()
    assert {gid for gid, edges in graph["groups"].items() if edges.get(str(cid), "none") != "none"} <= {
        owners.id,
        str(ADMINISTRATORS_GROUP_ID),
    }
    assert iso.diff().changes is False
    graph = client.get_collection_graph()
    client.put_collection_graph(graph["revision"], {str(ALL_USERS_GROUP_ID): {str(cid): "write"}})
    iso.refresh()
    assert iso.outputs["open_groups"] == [ALL_USERS_GROUP_ID]
    iso.update(iso.inputs)
    assert collection_level(client.get_collection_graph(), ALL_USERS_GROUP_ID, cid) == "none"
    iso.delete()


# ---------------------------------------------------------------------------------------------------------
# Credentials, errors and concurrency


def test_rejected_api_key_gives_a_clear_message(
    metabase_double: Any, provider_host_factory: Any
) -> None:
    wrong = secrets.token_urlsafe(24)
    host = provider_host_factory(
        {"smarteros:metabase": {"url": metabase_double.url}, "smarteros:metabaseApiKey": wrong}
    )
    rut = fake_rut()
    group = Driven(host, PermissionsGroupProvider(), PermissionsGroup, f"{rut}-owners")
    with pytest.raises(ProviderCallError) as failure:
        group.create({"name": f"tenant {rut} owners", "tenant": rut})
    assert failure.value.reason == (
        f"tenant {rut}: Metabase answered 401 to GET /api/permissions/group: Unauthenticated "
        "(the API key was rejected; check smarteros:metabaseApiKey or METABASE_API_KEY)"
    )
    assert wrong not in failure.value.details and metabase_double.url not in failure.value.details
    assert wrong not in host.logs()


def test_environment_fallback_for_url_and_key(metabase_double: Any, provider_host_factory: Any) -> None:
    host = provider_host_factory(
        {}, env={"METABASE_URL": metabase_double.url, "METABASE_API_KEY": metabase_double.api_key}
    )
    rut = fake_rut()
    group = _group(host, rut)
    assert metabase_double.group_named(f"tenant {rut} owners")["id"] == int(group.id)


def test_serialised_providers_and_outputs_carry_no_credentials(
    double_host: ProviderHost,
    metabase_double: Any,
    postgres_server: PostgresServer,
    tenant_role: tuple[str, str],
) -> None:
    from tests.harness.provider_host import secret_leaks

    providers = [
        PermissionsGroupProvider(),
        CollectionProvider(),
        CollectionPermissionProvider(),
        DataPermissionProvider(),
        DatabaseConnectionProvider(),
        DatabaseAccessLockdownProvider(),
        CollectionIsolationProvider(),
        DatabaseIsolationProvider(),
    ]
    rut = fake_rut()
    role, password = tenant_role
    group = _group(double_host, rut)
    db = Driven(double_host, providers[4], DatabaseConnection, f"{rut}-database")
    db.create(_connection_inputs(postgres_server, rut, role, password))
    for provider in [*providers, group.provider]:
        serialized = double_host.serialized(provider)
        assert secret_leaks(metabase_double.api_key, serialized) == []
        assert secret_leaks(metabase_double.url, serialized) == []
    for outputs in (group.outputs, db.outputs):
        assert metabase_double.api_key not in repr(outputs) and metabase_double.url not in repr(outputs)
    assert metabase_double.api_key not in double_host.logs() and password not in double_host.logs()


def test_two_tenants_edges_written_at_once_both_land(double_host: ProviderHost, metabase_double: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    tenants = [fake_rut() for _ in range(4)]
    groups = {rut: _group(double_host, rut) for rut in tenants}
    cols = {rut: _collection(double_host, rut) for rut in tenants}
    dbs = {rut: metabase_double.seed_database(f"tenant {rut}", {"host": "127.0.0.1"}) for rut in tenants}
    # Another writer bumps the revision under us once per graph.
    metabase_double.fail_next("PUT", "/api/collection/graph", 409)
    metabase_double.fail_next("PUT", "/api/permissions/graph", 409)

    def write(rut: str) -> None:
        gid = int(groups[rut].id)
        Driven(double_host, CollectionPermissionProvider(), CollectionPermission, f"{rut}-c").create(
            {"group_id": gid, "collection_id": int(cols[rut].id), "level": "write", "tenant": rut}
        )
        Driven(double_host, DataPermissionProvider(), DataPermission, f"{rut}-d").create(
            {"group_id": gid, "database_id": dbs[rut], "level": "query-builder", "tenant": rut}
        )

    with ThreadPoolExecutor(len(tenants)) as pool:
        list(pool.map(write, tenants))
    cgraph, dgraph = metabase_double.collection_graph(), metabase_double.data_graph()
    for rut in tenants:
        gid = int(groups[rut].id)
        assert collection_level(cgraph, gid, int(cols[rut].id)) == "write", rut
        assert query_level(dgraph, gid, dbs[rut]) == "query-builder", rut


def test_all_users_is_named_by_its_magic_group_type(double_host: ProviderHost, metabase_double: Any) -> None:
    """Metabase identifies its built-in groups by ``magic_group_type``; state written with the id 1 stays
    unchanged when the program names the group ``all-internal-users``."""
    lock = Driven(double_host, DatabaseAccessLockdownProvider(), DatabaseAccessLockdown, "all-users-no-queries")
    lock.create({"group_id": "all-internal-users", "level": "no"})
    assert lock.id == f"{ALL_USERS_GROUP_ID}:no" and lock.outputs["group_id"] == ALL_USERS_GROUP_ID
    assert lock.diff({"group_id": "all-internal-users", "level": "no"}).changes is False
    edge = Driven(double_host, CollectionPermissionProvider(), CollectionPermission, "all-users-root")
    edge.create({"group_id": "all-internal-users", "collection_id": "root", "level": "none"})
    assert edge.id == f"{ALL_USERS_GROUP_ID}:root"
    outcome = double_host.check(
        CollectionPermissionProvider(), "urn:x", {}, {"group_id": "admin", "collection_id": 5, "level": "none"}
    )
    assert [field for field, _ in outcome.failures] == ["group_id"]
    outcome = double_host.check(
        CollectionPermissionProvider(), "urn:x", {}, {"group_id": "everyone", "collection_id": 5, "level": "none"}
    )
    assert outcome.failures == [("group_id", "'everyone' is neither a group id nor one of: all-internal-users")]
