"""Everything a tenant gets, as the real program registers it under Pulumi mocks."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest

from components.graph import Registered
from tests.harness.mocks import ProgramRun, children, execute, one, run_program, stack_config

TENANT = "smarteros:tenant:Tenant"
PLATFORM = "smarteros:platform:Platform"


@pytest.fixture(scope="module")
def prod() -> ProgramRun:
    return execute(config=stack_config("prod"), stack="prod")


def subtree(resources: list[Registered], root: Registered) -> list[Registered]:
    found, frontier = [], [root.urn]
    while frontier:
        urn = frontier.pop()
        for r in children(resources, urn):
            found.append(r)
            frontier.append(r.urn)
    return found


@pytest.mark.parametrize(
    ("rut", "parts"),
    [
        ("99999999-9", ["Analytics", "Database", "Edge", "Secrets"]),
        ("11111111-1", ["Analytics", "Database", "Edge", "Secrets"]),
        ("0-0", ["Database", "Edge", "Secrets"]),  # analytics.enabled: false
    ],
)
def test_each_shipped_tenant_is_one_component_with_one_child_per_system(
    prod: ProgramRun, rut: str, parts: list[str]
) -> None:
    tenant = one(prod.resources, type=TENANT, name=rut)
    assert tenant.parent is None
    assert sorted(r.type.split(":")[-1] for r in children(prod.resources, tenant)) == parts
    assert all(r.name == rut for r in children(prod.resources, tenant))


def test_platform_is_built_once_and_no_tenant_depends_on_another(prod: ProgramRun) -> None:
    assert len([r for r in prod.resources if r.type == PLATFORM]) == 1
    tenants = [r for r in prod.resources if r.type == TENANT]
    owner = {r.urn: t.name for t in tenants for r in [t, *subtree(prod.resources, t)]}
    for urn, rut in owner.items():
        resource = one(prod.resources, urn=urn)
        for dependency in resource.options.depends_on:
            assert owner.get(dependency, rut) == rut, f"{resource.name} depends on {dependency}"


def test_stack_outputs_name_each_tenants_hostnames_path_role_and_workspace(prod: ProgramRun) -> None:
    exported = prod.stack_outputs["tenants"]
    assert sorted(exported) == ["0-0", "11111111-1", "99999999-9"]
    demo = exported["11111111-1"]
    assert demo["hostnames"] == ["demo.smarterbot.cl", "demo-chat.smarterbot.cl", "demo-erp.smarterbot.cl"]
    assert demo["vault_path"] == "secret/tenants/11111111-1"
    # The database names the role at apply time (a keyed hash of the RUT): under mocks it is not known yet.
    assert demo.get("role_name") is None
    assert exported["0-0"]["hostnames"] == ["smartermcp.smarterbot.cl", "smartermcp-automation.smarterbot.cl"]


def test_stack_outputs_carry_no_secret_value() -> None:
    run = execute(
        config=stack_config(
            "prod", credentials="config-or-environment", cloudflareApiToken="cf-token-only-in-this-test"
        ),
        secret_keys=["smarteros:cloudflareApiToken"],
        stack="prod",
    )
    text = json.dumps(run.stack_outputs, default=str)
    assert "cf-token-only-in-this-test" not in text
    assert "password" not in text


def test_one_bad_file_among_good_ones_registers_nothing(tmp_path: Path) -> None:
    for name in ("demo", "smarterbot"):
        (tmp_path / f"{name}.yaml").write_text(
            (Path("tenants") / f"{name}.yaml").read_text(encoding="utf-8"), encoding="utf-8"
        )
    (tmp_path / "acme.yaml").write_text(
        "rut: 76.953.480-7\nslug: acme\nname: Acme\nstatus: active\nplan: pro\n", encoding="utf-8"
    )
    registered: list[Registered] = []
    with pytest.raises(pulumi.RunError) as caught:
        registered = run_program(config=stack_config("prod", tenantFiles=[f"{tmp_path}/*.yaml"]), stack="prod")
    assert registered == []
    assert "acme.yaml:1:6: rut:" in str(caught.value)
    assert "expected 6" in str(caught.value)


def test_data_bearing_resources_survive_a_removed_file_and_are_protected_in_production(prod: ProgramRun) -> None:
    record = one(prod.resources, name="11111111-1-record")
    tenants_collection = one(prod.resources, name="platform-tenants-collection")
    connection = one(prod.resources, name="11111111-1-database")
    for resource in (record, tenants_collection, connection):
        assert resource.options.retain_on_delete, resource.name
        assert resource.options.protect, resource.name


def test_metabase_connects_only_after_the_role_can_see_its_rows(prod: ProgramRun) -> None:
    connection = one(prod.resources, name="11111111-1-database")
    for part in ("role", "grants", "binding"):
        assert one(prod.resources, name=f"11111111-1-{part}").urn in connection.options.depends_on


def test_an_incomplete_cloudflare_config_is_refused_before_anything_registers() -> None:
    cloudflare = {k: v for k, v in stack_config("prod")["smarteros:cloudflare"].items() if k != "adminGroupId"}
    registered: list[Registered] = []
    with pytest.raises(pulumi.RunError) as caught:
        registered = run_program(config=stack_config("prod", cloudflare=cloudflare), stack="prod")
    assert registered == []
    assert str(caught.value) == (
        "stack config is not valid:\nsmarteros:cloudflare: required when Cloudflare is enabled: adminGroupId"
    )
