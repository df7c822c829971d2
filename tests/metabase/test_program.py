"""What the program registers in Metabase for the shipped tenants and for edge cases (Pulumi mocks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.harness.mocks import Registered, by_type, children, one, redacted, run_program, stack_config

MB = "pulumi-python:dynamic/metabase:"
GROUP, COLLECTION, CEDGE = MB + "PermissionsGroup", MB + "Collection", MB + "CollectionPermission"
DATABASE, DEDGE, LOCKDOWN = MB + "DatabaseConnection", MB + "DataPermission", MB + "DatabaseAccessLockdown"
TENANT, ANALYTICS = "smarteros:tenant:Tenant", "smarteros:tenant:Analytics"
SHARED = "smarteros:platform:SharedAnalytics"


def _inputs(resource: Registered) -> dict[str, Any]:
    return {k: v for k, v in redacted([resource])[0]["inputs"].items() if k != "__provider"}


def analytics_of(resources: list[Registered], rut: str) -> tuple[Registered, list[Registered]]:
    tenant = one(resources, type=TENANT, name=rut)
    analytics = one(children(resources, tenant), type=ANALYTICS)
    return analytics, children(resources, analytics)


@pytest.fixture(scope="module")
def shipped() -> list[Registered]:
    return run_program(config=stack_config("prod"), stack="prod")


@pytest.mark.parametrize(
    ("rut", "collection_name", "queries"),
    [
        ("11111111-1", "11111111-1 (DEMO)", "query-builder"),
        ("99999999-9", "SMARTERBOT (platform)", "query-builder-and-native"),
    ],
)
def test_each_shipped_tenant_gets_its_workspace(
    shipped: list[Registered], rut: str, collection_name: str, queries: str
) -> None:
    _, leaves = analytics_of(shipped, rut)
    assert sorted((r.type.removeprefix(MB), r.name) for r in leaves) == sorted(
        [
            ("PermissionsGroup", f"{rut}-owners"),
            ("PermissionsGroup", f"{rut}-viewers"),
            ("Collection", f"{rut}-collection"),
            ("CollectionPermission", f"{rut}-owners-collection"),
            ("CollectionPermission", f"{rut}-viewers-collection"),
            ("CollectionIsolation", f"{rut}-collection-isolation"),
            ("DatabaseConnection", f"{rut}-database"),
            ("DataPermission", f"{rut}-owners-data"),
            ("DataPermission", f"{rut}-viewers-data"),
            ("DatabaseIsolation", f"{rut}-database-isolation"),
        ]
    )
    groups = {r.name: _inputs(r) for r in by_type(leaves, GROUP)}
    assert groups[f"{rut}-owners"]["name"] == f"tenant {rut} owners"
    assert groups[f"{rut}-viewers"]["name"] == f"tenant {rut} viewers"

    collection = one(leaves, type=COLLECTION)
    assert _inputs(collection)["name"] == collection_name
    levels = {r.name: _inputs(r)["level"] for r in by_type(leaves, CEDGE)}
    assert levels == {f"{rut}-owners-collection": "write", f"{rut}-viewers-collection": "read"}
    for isolation in (one(leaves, type=MB + "CollectionIsolation"), one(leaves, type=MB + "DatabaseIsolation")):
        assert len(_inputs(isolation)["allowed_group_ids"]) == 2  # the tenant's own two groups, nobody else
    # The collection and the connection close themselves to everyone else in the call that creates them.
    for created_closed in (one(leaves, type=COLLECTION), one(leaves, type=DATABASE)):
        assert len(_inputs(created_closed)["allowed_group_ids"]) == 2, created_closed.name

    database = one(leaves, type=DATABASE)
    assert database.options.retain_on_delete is True
    assert database.options.protect is True  # production stack
    assert database.options.additional_secret_outputs == ["password"]
    db_inputs = _inputs(database)
    assert db_inputs["password"] == "[secret]"
    assert {k: db_inputs[k] for k in ("host", "port", "dbname", "user_template", "ssl", "additional_options")} == {
        "host": "aws-0-sa-east-1.pooler.supabase.com",
        "port": 6543,
        "dbname": "postgres",
        "user_template": "{role}.smarterosprodref",
        "ssl": True,
        "additional_options": "prepareThreshold=0",
    }

    data = {r.name: _inputs(r)["level"] for r in by_type(leaves, DEDGE)}
    assert data == {f"{rut}-owners-data": queries, f"{rut}-viewers-data": queries}
    isolation = one(leaves, type=MB + "DatabaseIsolation")
    for edge in by_type(leaves, DEDGE):
        assert isolation.urn in edge.options.depends_on  # closed to others before opened to the tenant


def test_tenant_workspace_waits_for_the_platform_lockdown(shipped: list[Registered]) -> None:
    lockdown = one(shipped, type=LOCKDOWN)
    _, leaves = analytics_of(shipped, "11111111-1")
    for leaf in by_type(leaves, GROUP) + by_type(leaves, DATABASE) + by_type(leaves, COLLECTION):
        assert lockdown.urn in leaf.options.depends_on, leaf.name


def test_platform_closes_root_tenants_and_every_database_to_all_users(shipped: list[Registered]) -> None:
    shared = one(shipped, type=SHARED)
    leaves = children(shipped, shared)
    tenants = one(leaves, type=COLLECTION)
    assert _inputs(tenants)["name"] == "Tenants" and "parent_id" not in _inputs(tenants)
    edges = {(r.name, _inputs(r)["group_id"], _inputs(r)["level"]) for r in by_type(leaves, CEDGE)}
    assert edges == {
        ("platform-all-users-root-collection", "all-internal-users", "none"),
        ("platform-all-users-tenants-collection", "all-internal-users", "none"),
    }
    lockdown = one(leaves, type=LOCKDOWN)
    # All Users by its magic_group_type: Metabase's built-in groups are not identified by id.
    assert (_inputs(lockdown)["group_id"], _inputs(lockdown)["level"]) == ("all-internal-users", "no")
    tenants_isolation = one(leaves, type=MB + "CollectionIsolation")
    assert _inputs(tenants_isolation)["allowed_group_ids"] == []  # only Administrators reach "Tenants"
    assert tenants_isolation.urn in lockdown.options.depends_on
    assert {r.urn for r in by_type(leaves, CEDGE)} <= set(lockdown.options.depends_on)


def test_tenant_without_analytics_gets_nothing_in_metabase(shipped: list[Registered]) -> None:
    tenant = one(shipped, type=TENANT, name="0-0")
    assert by_type(children(shipped, tenant), ANALYTICS) == []
    owned = [r for r in shipped if r.type.startswith(MB) and r.name.startswith("0-0-")]
    assert owned == []


def test_metabase_disabled_in_the_stack_registers_no_metabase_resource(tmp_path: Path) -> None:
    resources = run_program(config=stack_config("prod", metabase={"enabled": False}), stack="prod")
    assert [r for r in resources if r.type.startswith(MB)] == []
    assert by_type(resources, SHARED) == []
