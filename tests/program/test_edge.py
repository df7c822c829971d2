"""The Cloudflare edge each tenant gets, seen through the real program under Pulumi mocks."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

from components.config import CloudflareConfig
from components.edge import access_includes, plan_edge
from components.spec import load_tenants
from tests.harness.mocks import Registered, by_type, children, load_stack_file, one, run_program, stack_config

DNS = "cloudflare:index/dnsRecord:DnsRecord"
APP = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"
POLICY = "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy"
PROVIDER = "pulumi:providers:cloudflare"
TENANT = "smarteros:tenant:Tenant"
EDGE = "smarteros:tenant:Edge"

PROD, _ = load_stack_file("prod")
ZONE_ID = PROD["smarteros:cloudflare"]["zoneId"]
ACCOUNT_ID = PROD["smarteros:cloudflare"]["accountId"]
ADMIN_GROUP = PROD["smarteros:cloudflare"]["adminGroupId"]

TENANT_FILE = """\
rut: {rut}
slug: {slug}
name: {name}
type: customer
status: {status}
plan: pro
products: {products}
access:
  emails: [owner@{slug}.cl]
  email_domains: [{slug}.cl]
analytics:
  enabled: false
"""


def write_tenant(folder: Path, slug: str, rut: str, products: str = "[]", status: str = "active") -> None:
    text = TENANT_FILE.format(rut=rut, slug=slug, name=slug.title(), status=status, products=products)
    (folder / f"{slug}.yaml").write_text(text, encoding="utf-8")


def edge_of(resources: list[Registered], rut: str) -> tuple[Registered, list[Registered]]:
    tenant = one(resources, type=TENANT, name=rut)
    edge = one(children(resources, tenant), type=EDGE)
    return edge, children(resources, edge)


@pytest.fixture(scope="module")
def shipped() -> list[Registered]:
    return run_program(config=stack_config("prod"), stack="prod")


SHIPPED_HOSTNAMES = {
    "99999999-9": {
        "app": "smarterbot.smarterbot.cl",
        "chat": "smarterbot-chat.smarterbot.cl",
        "erp": "smarterbot-erp.smarterbot.cl",
        "automation": "smarterbot-automation.smarterbot.cl",
        "store": "smarterbot-store.smarterbot.cl",
    },
    "11111111-1": {
        "app": "demo.smarterbot.cl",
        "chat": "demo-chat.smarterbot.cl",
        "erp": "demo-erp.smarterbot.cl",
    },
    "0-0": {
        "app": "smartermcp.smarterbot.cl",
        "automation": "smartermcp-automation.smarterbot.cl",
    },
}


@pytest.mark.parametrize("rut", sorted(SHIPPED_HOSTNAMES))
def test_shipped_tenant_gets_exactly_its_records_application_and_policy(
    shipped: list[Registered], rut: str
) -> None:
    _, parts = edge_of(shipped, rut)
    expected = SHIPPED_HOSTNAMES[rut]
    assert sorted((r.type, r.name) for r in parts) == sorted(
        [(DNS, f"{rut}-{key}") for key in expected] + [(APP, f"{rut}-access"), (POLICY, f"{rut}-access-allow")]
    )
    for key, hostname in expected.items():
        record = one(parts, name=f"{rut}-{key}")
        assert record.inputs["name"] == hostname
        assert record.inputs["type"] == "CNAME"
        assert record.inputs["proxied"] is True
        assert record.inputs["ttl"] == 1
        assert record.inputs["zoneId"] == ZONE_ID
        target = PROD["smarteros:cloudflare"]["products"][key]["target"] if key != "app" else None
        assert record.inputs["content"] == (target or PROD["smarteros:cloudflare"]["appTarget"])
    application = one(parts, type=APP)
    policy = one(parts, type=POLICY)
    assert application.inputs["accountId"] == ACCOUNT_ID
    assert policy.inputs["accountId"] == ACCOUNT_ID
    protected = [h for k, h in expected.items() if k != "store"]
    assert [d["uri"] for d in application.inputs["destinations"]] == protected
    assert application.inputs["policies"] == [{"id": f"{rut}-access-allow-id", "precedence": 1}]
    assert policy.inputs["decision"] == "allow"
    assert {"group": {"id": ADMIN_GROUP}} in policy.inputs["includes"]


def test_every_cloudflare_resource_uses_the_explicit_provider(shipped: list[Registered]) -> None:
    provider = one(shipped, type=PROVIDER)
    reference = f"{provider.urn}::{provider.name}-id"
    edge_resources = [r for r in shipped if r.type in (DNS, APP, POLICY)]
    assert len(edge_resources) == (5 + 3 + 2) + 3 + 3
    assert {r.options.provider for r in edge_resources} == {reference}


def test_store_stays_public_and_every_other_product_is_protected(tmp_path: Path) -> None:
    write_tenant(tmp_path, "ferreteria", "76.953.480-6", products="[chat, erp, automation, store]")
    resources = run_program(config=stack_config("prod", tenantFiles=[f"{tmp_path}/*.yaml"]), stack="prod")
    _, parts = edge_of(resources, "76953480-6")
    records = {r.inputs["name"] for r in by_type(parts, DNS)}
    assert records == {
        "ferreteria.smarterbot.cl",
        "ferreteria-chat.smarterbot.cl",
        "ferreteria-erp.smarterbot.cl",
        "ferreteria-automation.smarterbot.cl",
        "ferreteria-store.smarterbot.cl",
    }
    application = one(parts, type=APP)
    assert [d["uri"] for d in application.inputs["destinations"]] == [
        "ferreteria.smarterbot.cl",
        "ferreteria-chat.smarterbot.cl",
        "ferreteria-erp.smarterbot.cl",
        "ferreteria-automation.smarterbot.cl",
    ]
    assert application.inputs["domain"] == "ferreteria.smarterbot.cl"
    policy = one(parts, type=POLICY)
    assert policy.inputs["includes"] == [
        {"email": {"email": "owner@ferreteria.cl"}},
        {"emailDomain": {"domain": "ferreteria.cl"}},
        {"group": {"id": ADMIN_GROUP}},
    ]


def test_tenant_without_products_still_gets_its_app_hostname(tmp_path: Path) -> None:
    write_tenant(tmp_path, "kiosko", "10000013-K")
    resources = run_program(config=stack_config("prod", tenantFiles=[f"{tmp_path}/*.yaml"]), stack="prod")
    _, parts = edge_of(resources, "10000013-K")
    assert [(r.type, r.inputs.get("name")) for r in by_type(parts, DNS)] == [(DNS, "kiosko.smarterbot.cl")]
    assert [d["uri"] for d in one(parts, type=APP).inputs["destinations"]] == ["kiosko.smarterbot.cl"]


def test_suspended_tenant_keeps_its_records_but_admits_only_admins(tmp_path: Path) -> None:
    write_tenant(tmp_path, "moroso", "76.953.480-6", products="[chat]", status="suspended")
    resources = run_program(config=stack_config("prod", tenantFiles=[f"{tmp_path}/*.yaml"]), stack="prod")
    _, parts = edge_of(resources, "76953480-6")
    assert len(by_type(parts, DNS)) == 2
    assert one(parts, type=POLICY).inputs["includes"] == [{"group": {"id": ADMIN_GROUP}}]


def test_renaming_a_slug_keeps_every_logical_name(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    write_tenant(first, "acme", "76.953.480-6", products="[chat]")
    write_tenant(second, "acme-spa", "76953480-6", products="[chat]")
    before = run_program(config=stack_config("prod", tenantFiles=[f"{first}/*.yaml"]), stack="prod")
    after = run_program(config=stack_config("prod", tenantFiles=[f"{second}/*.yaml"]), stack="prod")
    assert sorted(r.urn for r in before) == sorted(r.urn for r in after)
    assert one(after, name="76953480-6-chat").inputs["name"] == "acme-spa-chat.smarterbot.cl"


def test_local_stack_without_a_zone_registers_no_cloudflare_resource() -> None:
    resources = run_program(config=stack_config("dev"), stack="dev")
    assert [r for r in resources if r.type.startswith(("cloudflare:", "pulumi:providers:cloudflare"))] == []
    assert len(by_type(resources, TENANT)) == 3


def test_api_token_reaches_the_provider_only_as_a_secret() -> None:
    config = stack_config(
        "prod", credentials="config-or-environment", cloudflareApiToken="cf-token-for-this-test-only"
    )
    resources = run_program(config=config, secret_keys=["smarteros:cloudflareApiToken"], stack="prod")
    provider = one(resources, type=PROVIDER)
    from pulumi.runtime import rpc

    assert rpc.is_rpc_secret(provider.inputs["apiToken"])
    assert rpc.unwrap_rpc_secret(provider.inputs["apiToken"]) == "cf-token-for-this-test-only"


def test_a_product_without_ingress_in_stack_config_is_refused_before_anything_registers(tmp_path: Path) -> None:
    write_tenant(tmp_path, "acme", "76.953.480-6", products="[chat, erp]")
    cloudflare = dict(PROD["smarteros:cloudflare"])
    cloudflare["products"] = {k: v for k, v in cloudflare["products"].items() if k != "erp"}
    config = stack_config("prod", tenantFiles=[f"{tmp_path}/*.yaml"], cloudflare=cloudflare)
    with pytest.raises(pulumi.RunError) as caught:
        run_program(config=config, stack="prod")
    assert f"{tmp_path}/acme.yaml:7:18: products[1]: product 'erp' has no ingress in stack config" in str(
        caught.value
    )


def test_plan_lists_app_then_products_in_file_order() -> None:
    (demo,) = [t for t in load_tenants(["tenants"]) if t.slug == "demo"]
    config = CloudflareConfig.model_validate(PROD["smarteros:cloudflare"])
    plan = plan_edge(demo, config)
    assert [h.fqdn for h in plan.hostnames] == [
        "demo.smarterbot.cl",
        "demo-chat.smarterbot.cl",
        "demo-erp.smarterbot.cl",
    ]
    assert [r for r in access_includes(plan) if "email" in r] == [
        {"email": {"email": e}} for e in demo.access.emails
    ]
