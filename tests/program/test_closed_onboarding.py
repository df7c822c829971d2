"""A tenant whose first converge is already closed: a new file with ``status: suspended`` or ``cancelled``, and
a trial added after its last day (converged as suspended). The real ``__main__.py`` converges them the way ``pulumi up``
does, every dynamic resource through the real provider host, against a real PostgreSQL and OpenBao and the
Metabase double (:mod:`tests.harness.converge`), next to an active tenant.

Metabase tests the login of every connection it is asked to create, and a closed tenant's role is
``NOLOGIN``: the closed tenants get everything but their Metabase connection, every door shut, and the first
converge that sees them open creates the connection, closed to every other group, in an update. The tests run
in file order on one set of servers and one state.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from components import naming
from components.analytics import database_connection_name
from components.providers.metabase import collection_level, query_level
from tests.harness.converge import (
    Converger,
    EngineHost,
    Pass,
    Servers,
    make_rut,
    servers_for_converge,
    tenant_yaml,
)
from tests.program.converged import MOUNT, approle_token, connect_as, metabase, vault

pytestmark = pytest.mark.xdist_group("closed-onboarding")

NEIGHBOUR, SUSPENDED, LATE_TRIAL, CANCELLED = 72_000_000, 72_000_001, 72_000_002, 72_000_003
CLOSED = (SUSPENDED, LATE_TRIAL, CANCELLED)
CONNECTION = "pulumi-python:dynamic/metabase:DatabaseConnection"


def write_tenant(folder: Path, body: int, status: str, trial_expires_at: str | None = None) -> None:
    """A generated tenant file (like the shipped ones) with this status."""
    lines = f"status: {status}\n" + (f"trial_expires_at: {trial_expires_at}\n" if trial_expires_at else "")
    text = tenant_yaml(body).replace("status: active\n", lines)
    (folder / f"cliente-{body}.yaml").write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with servers_for_converge() as found:
        yield found


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    found = tmp_path_factory.mktemp("tenants")
    write_tenant(found, NEIGHBOUR, "active")
    write_tenant(found, SUSPENDED, "suspended")
    write_tenant(found, LATE_TRIAL, "trial", "2020-01-31")  # added long after its last day
    write_tenant(found, CANCELLED, "cancelled")  # kept on file, never opened yet
    return found


@pytest.fixture(scope="module")
def converger(servers: Servers, folder: Path) -> Iterator[Converger]:
    config = servers.config([f"{folder}/*.yaml"])
    with EngineHost() as host:
        host.configure(config)
        yield Converger(host, config)


@pytest.fixture(scope="module")
def first(converger: Converger) -> Pass:
    return converger.up()


# -- what the tenant can do, each as the identity concerned --------------------------------------------------


def postgres_login(servers: Servers, rut: str) -> dict[str, str]:
    """The tenant's database login as the operator reads it from Vault (root)."""
    answer = vault(servers, "GET", f"{MOUNT}/data/{naming.vault_secret_path(rut, 'postgres')}")
    assert answer.status_code == 200, f"tenant {rut}: its postgres secret answered {answer.status_code}"
    return dict(answer.json()["data"]["data"])


def database_refusal(servers: Servers, rut: str) -> str | None:
    """None when the tenant's role logs in and reads its rows, else why PostgreSQL refused."""
    try:
        with connect_as(servers, postgres_login(servers, rut)) as conn:
            conn.execute("SELECT count(*) FROM contacts")
    except psycopg.OperationalError as error:
        return "not permitted to log in" if "not permitted to log in" in str(error) else str(error)
    return None


def approle_read(servers: Servers, rut: str) -> int:
    """The status of reading the tenant's chatwoot secret with a fresh token of its own AppRole."""
    token = approle_token(servers, rut)  # the AppRole still logs in; its tokens read nothing while closed
    return vault(servers, "GET", f"{MOUNT}/data/{naming.vault_secret_path(rut, 'chatwoot')}", token=token).status_code


def group_ids(servers: Servers, rut: str) -> list[int]:
    found = [servers.metabase.group_named(naming.metabase_group_name(rut, kind)) for kind in ("owners", "viewers")]
    assert all(found), f"tenant {rut}: its Metabase groups are missing"
    return [int(group["id"]) for group in found if group]


def connections_of(servers: Servers, body: int) -> list[int]:
    """The Metabase databases named as the tenant's connection."""
    rut = make_rut(body)
    return list(servers.metabase.databases_named(database_connection_name(rut, f"Cliente {body}")))


def query_access(servers: Servers, body: int) -> dict[str, str]:
    """Every database on which a group of the tenant may query: ``{database id: level}``."""
    found = {}
    for gid in group_ids(servers, make_rut(body)):
        graph = metabase(servers, f"/api/permissions/graph/group/{gid}")
        for dbid in (graph.get("groups") or {}).get(str(gid), {}):
            level = query_level(graph, gid, int(dbid))
            if level != "no":
                found[f"{gid} on {dbid}"] = level
    return found


def collection_id(converger: Converger, body: int) -> int:
    [entry] = [e for e in converger.entries(":Collection") if e.name == f"{make_rut(body)}-collection"]
    return int(entry.id)


def collection_access(servers: Servers, converger: Converger, body: int) -> list[str]:
    graph = metabase(servers, "/api/collection/graph")
    return [collection_level(graph, gid, collection_id(converger, body)) for gid in group_ids(servers, make_rut(body))]


def archived(servers: Servers, converger: Converger, body: int) -> bool:
    return bool(metabase(servers, f"/api/collection/{collection_id(converger, body)}").get("archived"))


def identities(converger: Converger) -> dict[str, str]:
    return {entry.urn: entry.id for entry in converger.entries()}


# -- closed from the start -----------------------------------------------------------------------------------


def test_a_tenant_closed_from_its_first_converge_converges_without_a_connection(
    first: Pass, servers: Servers, converger: Converger
) -> None:
    assert first.failure is None, first
    assert first.errors == []
    assert first.stack_outputs["tenants"][make_rut(LATE_TRIAL)]["status"] == "suspended"
    for body in CLOSED:
        rut = make_rut(body)
        assert connections_of(servers, body) == [], f"tenant {rut}"
        assert first.stack_outputs["tenants"][rut].get("database_id") is None  # no id yet
        [connection] = [e for e in converger.entries(":DatabaseConnection") if e.name == f"{rut}-database"]
        assert connection.id == f"deferred:{rut}"
    assert len(connections_of(servers, NEIGHBOUR)) == 1  # an open tenant is not held back


@pytest.mark.parametrize("body", CLOSED)
def test_every_door_of_a_tenant_closed_from_the_start_is_shut(
    first: Pass, servers: Servers, converger: Converger, body: int
) -> None:
    rut = make_rut(body)
    assert database_refusal(servers, rut) == "not permitted to log in"
    assert approle_read(servers, rut) == 403
    assert query_access(servers, body) == {}
    assert collection_access(servers, converger, body) == ["none", "none"]
    assert archived(servers, converger, body) is (body == CANCELLED)


def test_a_second_converge_reading_everything_back_writes_nothing(
    first: Pass, servers: Servers, converger: Converger
) -> None:
    mark = servers.mark()
    again = converger.up(refresh=True)
    sent = servers.requests_since(mark)
    assert again.failure is None, again
    assert [(s.name, s.op) for s in again.changed()] == []
    assert sent.writes() == {"postgres": [], "vault": [], "metabase": []}


# -- opened -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def opened(first: Pass, converger: Converger, folder: Path) -> tuple[Pass, dict[str, str], dict[str, str]]:
    """The closed tenants set ``active`` and converged: the pass, and every resource id before and after."""
    before = identities(converger)
    write_tenant(folder, SUSPENDED, "active")
    write_tenant(folder, LATE_TRIAL, "active")  # the customer signed
    write_tenant(folder, CANCELLED, "active")
    done = converger.up()
    return done, before, identities(converger)


def test_opening_creates_the_connection_in_place(
    opened: tuple[Pass, dict[str, str], dict[str, str]], servers: Servers
) -> None:
    done, before, after = opened
    assert done.failure is None, done
    assert done.ops["replace"] == 0
    assert before == after  # no resource replaced, no id changed
    updated = sorted(s.name for s in done.changed() if s.type == CONNECTION)
    assert updated == sorted(f"{make_rut(body)}-database" for body in CLOSED)
    for body in CLOSED:
        [dbid] = connections_of(servers, body)
        assert done.stack_outputs["tenants"][make_rut(body)]["database_id"] == dbid


@pytest.mark.parametrize("body", CLOSED)
def test_once_open_only_the_tenant_queries_its_new_connection(
    opened: tuple[Pass, dict[str, str], dict[str, str]], servers: Servers, converger: Converger, body: int
) -> None:
    rut = make_rut(body)
    [dbid] = connections_of(servers, body)
    assert query_access(servers, body) == {f"{gid} on {dbid}": "query-builder" for gid in group_ids(servers, rut)}
    graph = metabase(servers, f"/api/permissions/graph/db/{dbid}")
    # All Users, the other tenants' groups, and any group the graph lists but the tenant's and Administrators.
    others = {1, *group_ids(servers, make_rut(NEIGHBOUR)), *(g for b in CLOSED if b != body
                                                             for g in group_ids(servers, make_rut(b)))}
    others |= {int(gid) for gid in (graph.get("groups") or {})} - set(group_ids(servers, rut)) - {2}
    assert {gid: query_level(graph, gid, dbid) for gid in others} == dict.fromkeys(others, "no")
    assert collection_access(servers, converger, body) == ["write", "read"]
    assert archived(servers, converger, body) is False
    assert database_refusal(servers, rut) is None
    assert approle_read(servers, rut) == 200
    # The login Metabase now holds for the connection works.
    login = next(seen for seen in reversed(servers.metabase.logins) if seen.database_name.endswith(f"({rut})"))
    assert login.succeeded


def test_a_converge_after_opening_writes_nothing(
    opened: tuple[Pass, dict[str, str], dict[str, str]], servers: Servers, converger: Converger
) -> None:
    mark = servers.mark()
    again = converger.up(refresh=True)
    sent = servers.requests_since(mark)
    assert again.failure is None, again
    assert [(s.name, s.op) for s in again.changed()] == []
    assert sent.writes() == {"postgres": [], "vault": [], "metabase": []}
