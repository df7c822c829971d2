"""What each status asks of every system, as pure decisions (tenant file → provider inputs) and as the program
registers it under mocks. The end-to-end counterpart is ``test_end_to_end.py``.

| status            | Access       | PostgreSQL role | Vault policy  | Metabase edges      | collection |
|-------------------|--------------|-----------------|---------------|---------------------|------------|
| trial / active    | people+admins| LOGIN           | reads subtree | tenant file / w, r  | open       |
| suspended         | admins       | NOLOGIN         | grants nothing| no / none           | open       |
| cancelled         | admins       | NOLOGIN         | grants nothing| no / none           | archived   |
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from components.analytics import collection_levels, query_levels
from components.config import stack_config_from_raw
from components.database import role_inputs
from components.edge import access_includes, plan_edge
from components.lifecycle import as_of, is_archived
from components.providers.postgres import diff_role, role_attributes, role_marker
from components.providers.vault_plan import desired_policy, diff_policy
from components.secrets import policy_inputs
from components.spec import TenantSpec
from tests.harness.mocks import execute, stack_config

STACK = "smarteros/prod"
ADMIN_GROUP = "2f6c8a1e-4b3d-4e5f-9a7b-0c1d2e3f4a5b"
PEOPLE = [{"email": {"email": "ana@acme.cl"}}, {"email_domain": {"domain": "acme.cl"}}]


def tenant(status: str, **extra: Any) -> TenantSpec:
    return TenantSpec.model_validate(
        {
            "rut": "76.953.480-6",
            "slug": "acme",
            "name": "Acme",
            "status": status,
            "plan": "pro",
            "products": ["chat"],
            "access": {"emails": ["ana@acme.cl"], "email_domains": ["acme.cl"]},
            "analytics": {"queries": "query-builder-and-native"},
            **extra,
        }
    )


def of_status(status: str) -> TenantSpec:
    """The tenant with ``status`` (a trial gets the fields a trial needs)."""
    extra = {"trial_expires_at": "2099-12-31", "plan": "trial"} if status == "trial" else {}
    return tenant(status, **extra)


def desired(spec: TenantSpec) -> dict[str, Any]:
    """Every lifecycle-dependent input of the tenant, from the same functions the components call."""
    cloudflare = stack_config_from_raw(stack_config("prod")).cloudflare
    return {
        "access": access_includes(plan_edge(spec, cloudflare)),
        "role_login": role_inputs(spec, STACK)["login"],
        "policy_suspended": policy_inputs(spec, "secret", STACK)["suspended"],
        "query_levels": query_levels(spec.analytics.queries, spec.status),
        "collection_levels": collection_levels(spec.status),
        "collection_archived": is_archived(spec.status),
    }


OPEN = {
    "access": [*PEOPLE, {"group": {"id": ADMIN_GROUP}}],
    "role_login": True,
    "policy_suspended": False,
    "query_levels": {"owners": "query-builder-and-native", "viewers": "query-builder-and-native"},
    "collection_levels": {"owners": "write", "viewers": "read"},
    "collection_archived": False,
}
CLOSED = {
    "access": [{"group": {"id": ADMIN_GROUP}}],
    "role_login": False,
    "policy_suspended": True,
    "query_levels": {"owners": "no", "viewers": "no"},
    "collection_levels": {"owners": "none", "viewers": "none"},
    "collection_archived": False,
}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("trial", OPEN),
        ("active", OPEN),
        ("suspended", CLOSED),
        ("cancelled", {**CLOSED, "collection_archived": True}),
    ],
)
def test_each_status_asks_each_system_for_its_row_of_the_lifecycle_table(status: str, expected: dict[str, Any]) -> None:
    assert desired(of_status(status)) == expected


def test_an_expired_trial_asks_what_a_suspended_tenant_does() -> None:
    trial = tenant("trial", trial_expires_at="2026-05-31", plan="trial")
    assert desired(as_of(trial, date(2026, 6, 1))) == CLOSED
    assert desired(as_of(trial, date(2026, 5, 31))) == OPEN


@pytest.mark.parametrize(("before", "after"), [("active", "suspended"), ("suspended", "active"),
                                                ("active", "cancelled"), ("cancelled", "active")])
def test_a_status_change_rewrites_the_policy_in_place(before: str, after: str) -> None:
    olds = {**policy_inputs(tenant(before), "secret", STACK), "policy": desired_policy(
        policy_inputs(tenant(before), "secret", STACK))}
    plan = diff_policy(olds, policy_inputs(tenant(after), "secret", STACK))
    assert plan.replaces == ()
    assert "policy" in plan.changed


def test_a_suspended_tenants_policy_has_no_rule_at_all() -> None:
    text = desired_policy(policy_inputs(tenant("suspended"), "secret", STACK))
    assert "path" not in text and "capabilities" not in text
    active = desired_policy(policy_inputs(tenant("active"), "secret", STACK))
    assert 'path "secret/data/tenants/76953480-6/*"' in active


ACME = """\
rut: 76.953.480-6
slug: acme
name: Acme
status: {status}
plan: pro
products: [chat]
access:
  emails: [ana@acme.cl]
analytics:
  queries: query-builder
"""


def registered(folder: Path, status: str) -> dict[tuple[str, str], dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme.yaml").write_text(ACME.format(status=status), encoding="utf-8")
    run = execute(config=stack_config("prod", tenantFiles=[str(folder / "*.yaml")]), stack="prod")
    return {(r.type.rsplit(":", 1)[-1], r.name): dict(r.inputs) for r in run.resources}


def test_the_program_registers_the_same_resources_for_every_status_with_the_lifecycle_inputs(tmp_path: Path) -> None:
    graphs = {status: registered(tmp_path / status, status) for status in ("active", "suspended", "cancelled")}
    # Nothing added or removed by a status change: going back restores the same resources.
    assert set(graphs["active"]) == set(graphs["suspended"]) == set(graphs["cancelled"])
    rut = "76953480-6"
    for status, login, suspended, data, owners, viewers, archived in (
        ("active", True, False, "query-builder", "write", "read", False),
        ("suspended", False, True, "no", "none", "none", False),
        ("cancelled", False, True, "no", "none", "none", True),
    ):
        graph = graphs[status]
        assert graph[("TenantRole", f"{rut}-role")]["login"] is login
        assert graph[("AclPolicy", f"{rut}-policy")]["suspended"] is suspended
        assert graph[("DataPermission", f"{rut}-owners-data")]["level"] == data
        assert graph[("DataPermission", f"{rut}-viewers-data")]["level"] == data
        assert graph[("CollectionPermission", f"{rut}-owners-collection")]["level"] == owners
        assert graph[("CollectionPermission", f"{rut}-viewers-collection")]["level"] == viewers
        assert graph[("Collection", f"{rut}-collection")]["archived"] is archived
        # Whether Metabase may be asked for a new connection now (it tests the role's login first).
        assert graph[("DatabaseConnection", f"{rut}-database")]["login"] is login
    # Secrets and the AppRole are the same whatever the status: nothing is regenerated or replaced. The
    # connection differs only in ``login``, which an existing connection's diff ignores.
    for key, inputs in graphs["active"].items():
        if key[0] in ("Secret", "AppRole", "DatabaseConnection", "PermissionsGroup", "TenantBinding"):
            same = {k: v for k, v in inputs.items() if k != "login"}
            for status in ("suspended", "cancelled"):
                assert {k: v for k, v in graphs[status][key].items() if k != "login"} == same, (status, key)


@pytest.mark.parametrize(("before", "after"), [("active", "suspended"), ("suspended", "active"),
                                                ("trial", "cancelled"), ("cancelled", "active")])
def test_a_status_change_switches_the_database_login_in_place(before: str, after: str) -> None:
    old, new = role_inputs(of_status(before), STACK), role_inputs(of_status(after), STACK)
    outputs = {
        **old,
        "role_name": "tenant_" + "0" * 24,
        "password": "kept",  # a known password is not asked for again
        "member_of": ["tenant_members"],
        "attributes": role_attributes(old["login"]),
        "comment": role_marker(STACK),
    }
    change = diff_role(outputs, new)
    assert (change.fields, change.replaces) == (("login",), ())
    # Once converged, the live attributes match the status: nothing more to do.
    assert diff_role({**outputs, **new, "attributes": role_attributes(new["login"])}, new).fields == ()
