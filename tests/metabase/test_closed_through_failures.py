"""Closed through every failure: once the provider call that creates a tenant's connection or collection
returns, successfully or not, no group but the tenant's two and Administrators can query that connection or
see that collection, and neither can a group created afterwards.

The Metabase here has no Sample Database, so groups made before any database have no permission rows and a
new database opens to them with native queries (``new-database-permissions``); an outside group was given
access to the "Tenants" parent collection by hand, so a new collection would copy it. Each test injects one
failure into one step (a 409 until the retries run out, a 500 after the write, the connection lost before or
after the write), checks the graphs, then runs the create again as the next ``pulumi up`` would.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest

from components.providers.metabase import (
    Collection,
    CollectionIsolation,
    CollectionIsolationProvider,
    CollectionProvider,
    DatabaseConnection,
    DatabaseConnectionProvider,
)
from tests.harness.postgres import PostgresServer
from tests.harness.provider_host import ProviderCallError, ProviderHost
from tests.metabase.conftest import Driven, fake_rut
from tests.metabase.double import ADMINS, MetabaseDouble
from tests.metabase.test_contract import _connection_inputs, _group, tenant_role
from tests.metabase.test_facts import open_to

__all__ = ["tenant_role"]  # the fixture, shared with the contract tests


@dataclass
class Tenant:
    rut: str
    owners: int
    viewers: int

    @property
    def allowed(self) -> set[int]:
        return {self.owners, self.viewers}


@pytest.fixture
def tenant(bare_host: ProviderHost, bare_double: MetabaseDouble) -> Tenant:
    bare_double.hand_create_group(f"Analysts {secrets.token_hex(3)}")  # made before the tenant's database
    rut = fake_rut()
    return Tenant(rut, int(_group(bare_host, rut).id), int(_group(bare_host, rut, "viewers").id))


def _faulted(double: MetabaseDouble, method: str, path: str, fault: dict[str, Any], call: Any) -> str | None:
    """Run ``call`` with the fault armed; the error it raised (None when it succeeded)."""
    double.fail_next(method, path, **fault)
    try:
        call()
    except ProviderCallError as exc:
        return exc.reason
    finally:
        double.faults.clear()
    return None


DATABASE_FAULTS = [
    pytest.param("PUT", "/api/permissions/graph", {"status": 409, "times": 100}, id="close-409-until-retries-run-out"),
    pytest.param("PUT", "/api/permissions/graph", {"status": 500, "times": 100}, id="close-answers-500"),
    pytest.param("PUT", "/api/permissions/graph", {"drop": True, "after_write": True}, id="close-connection-lost"),
    pytest.param("POST", "/api/database", {"status": 500, "after_write": True}, id="create-500-after-the-write"),
    pytest.param("POST", "/api/database", {"drop": True, "after_write": True}, id="create-connection-lost-after"),
    pytest.param("POST", "/api/database", {"drop": True}, id="create-connection-lost-before"),
    pytest.param("PUT", "/api/database/*", {"status": 500, "times": 100}, id="tag-answers-500"),
]


@pytest.mark.parametrize(("method", "path", "fault"), DATABASE_FAULTS)
def test_a_tenant_connection_is_never_left_open(
    bare_host: ProviderHost,
    bare_double: MetabaseDouble,
    postgres_server: PostgresServer,
    tenant_role: tuple[str, str],
    tenant: Tenant,
    method: str,
    path: str,
    fault: dict[str, Any],
) -> None:
    role, password = tenant_role
    inputs = {
        **_connection_inputs(postgres_server, tenant.rut, role, password),
        "allowed_group_ids": sorted(tenant.allowed),
    }
    db = Driven(bare_host, DatabaseConnectionProvider(), DatabaseConnection, f"{tenant.rut}-database")
    error = _faulted(bare_double, method, path, fault, lambda: db.create(inputs))
    if error is not None:
        assert error.startswith(f"tenant {tenant.rut}: Metabase "), error
    made = bare_double.databases_named(inputs["name"])
    assert len(made) <= 1
    for dbid in made:
        assert open_to(bare_double, dbid, tenant.allowed) == [], error
    bare_double.hand_create_group(f"Later {secrets.token_hex(3)}")
    for dbid in made:
        assert open_to(bare_double, dbid, tenant.allowed) == []

    # The next run converges to exactly one closed connection, whatever the failure left.
    again = Driven(bare_host, DatabaseConnectionProvider(), DatabaseConnection, f"{tenant.rut}-database")
    again.create(inputs)
    assert bare_double.databases_named(inputs["name"]) == [int(again.id)]
    assert open_to(bare_double, int(again.id), tenant.allowed) == []


COLLECTION_FAULTS = [
    # The parent stays closed (as the platform keeps it): the collection is born closed even when closing fails.
    pytest.param("PUT", "/api/collection/graph", {"status": 409, "times": 100}, False, id="close-409-until-retries"),
    # The parent was opened by hand: only the closing step keeps the collection closed.
    pytest.param("PUT", "/api/collection/graph", {"drop": True, "after_write": True}, True, id="close-connection-lost"),
    pytest.param("POST", "/api/collection", {"status": 500, "after_write": True}, True, id="create-500-after-write"),
    pytest.param("POST", "/api/collection", {"drop": True, "after_write": True}, True, id="create-connection-lost"),
    pytest.param("POST", "/api/collection", {"drop": True}, True, id="create-connection-lost-before"),
]


def _collection_open_to(double: MetabaseDouble, cid: int, allowed: set[int]) -> list[int]:
    """Groups other than ``allowed`` and Administrators with access to the collection, as Metabase stores it
    (archived collections included, which the graph does not show)."""
    with double.lock:
        return sorted(
            gid
            for gid, edges in double.state.collection_perms.items()
            if gid not in allowed | {ADMINS} and edges.get(str(cid), "none") != "none"
        )


@pytest.mark.parametrize(("method", "path", "fault", "parent_opened"), COLLECTION_FAULTS)
def test_a_tenant_collection_is_never_left_open(
    bare_host: ProviderHost,
    bare_double: MetabaseDouble,
    tenant: Tenant,
    method: str,
    path: str,
    fault: dict[str, Any],
    parent_opened: bool,
) -> None:
    parent = Driven(bare_host, CollectionProvider(), Collection, "platform-tenants-collection")
    parent.create({"name": f"Tenants {secrets.token_hex(3)}"})
    closed = Driven(bare_host, CollectionIsolationProvider(), CollectionIsolation, "platform-tenants-isolation")
    closed.create({"collection_id": int(parent.id), "allowed_group_ids": []})
    if parent_opened:
        outsider = bare_double.hand_create_group(f"Curious {secrets.token_hex(3)}")
        bare_double.hand_set_collection_edge(outsider, int(parent.id), "read")
    inputs = {
        "name": f"{tenant.rut} (Ferretería Juanito)",
        "parent_id": int(parent.id),
        "tenant": tenant.rut,
        "allowed_group_ids": sorted(tenant.allowed),
    }
    col = Driven(bare_host, CollectionProvider(), Collection, f"{tenant.rut}-collection")
    error = _faulted(bare_double, method, path, fault, lambda: col.create(inputs))
    if error is not None:
        assert error.startswith(f"tenant {tenant.rut}: Metabase "), error
    made = [cid for cid, c in bare_double.state.collections.items() if c["name"] == inputs["name"]]
    assert len(made) <= 1
    for cid in made:
        assert _collection_open_to(bare_double, cid, tenant.allowed) == [], error
    later = bare_double.hand_create_group(f"Later {secrets.token_hex(3)}")
    for cid in made:
        assert _collection_open_to(bare_double, cid, tenant.allowed) == []
        assert str(cid) not in bare_double.state.collection_perms.get(later, {})

    again = Driven(bare_host, CollectionProvider(), Collection, f"{tenant.rut}-collection")
    again.create(inputs)
    assert [cid for cid, c in bare_double.state.collections.items() if c["name"] == inputs["name"]] == [int(again.id)]
    assert _collection_open_to(bare_double, int(again.id), tenant.allowed) == []
