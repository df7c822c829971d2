"""What each shipped tenant gets in Vault, seen through the real program under Pulumi mocks."""

from __future__ import annotations

from pathlib import Path

from pulumi.runtime import rpc

from components.spec import load_tenants
from tests.harness.mocks import Registered, by_type, children, one, run_program, stack_config

SECRETS = "smarteros:tenant:Secrets"
SECRET = "pulumi-python:dynamic/vault:Secret"
POLICY = "pulumi-python:dynamic/vault:AclPolicy"
APPROLE = "pulumi-python:dynamic/vault:AppRole"
ROOT = Path(__file__).resolve().parents[2]


def _program(tmp: Path | None = None, stack: str = "prod") -> list[Registered]:
    overrides = {"tenantFiles": [str(tmp / "*.yaml")]} if tmp else {}
    return run_program(config=stack_config(stack, **overrides), stack=stack)


def test_each_shipped_tenant_gets_one_secret_per_service_a_policy_and_an_approle():
    resources = _program()
    tenants = load_tenants([str(ROOT / "tenants" / "*.yaml")])
    assert len(tenants) == 3
    for tenant in tenants:
        rut = tenant.rut
        component = one(resources, type=SECRETS, name=rut)
        inside = children(resources, component)
        secrets = by_type(inside, SECRET)
        assert sorted(s.inputs["service"] for s in secrets) == sorted([*tenant.secrets, "postgres"])
        for secret in secrets:
            assert secret.name == f"{rut}-{secret.inputs['service']}"
            assert set(secret.options.additional_secret_outputs) == {"values", "provided"}
            assert secret.options.retain_on_delete is True
            assert secret.options.protect is True, "Pulumi.prod.yaml sets smarteros:protect"
            assert secret.inputs["mount"] == "secret"
            assert secret.inputs["stack"] == "smarteros/prod"
            service = tenant.secrets.get(secret.inputs["service"])
            if service is not None:
                assert secret.inputs["generate"] == list(service.generate)
                assert secret.inputs["external"] == list(service.external)
        postgres = one(secrets, name=f"{rut}-postgres")
        provided = postgres.inputs["provided"]
        assert provided.get(rpc._special_sig_key) == rpc._special_secret_sig, "the database login goes as a secret"
        # The username is the role's name, which the database computes at apply time: under mocks it is
        # not known yet and the mock engine leaves the key out.
        assert sorted(provided["value"]) == ["password"]
        policy = one(inside, type=POLICY)
        approle = one(inside, type=APPROLE)
        assert policy.name == f"{rut}-policy" and policy.inputs["rut"] == rut
        assert approle.name == f"{rut}-approle"
        assert approle.inputs["rut"] == rut


def test_a_rut_with_a_k_check_digit_gets_a_lower_case_policy_with_upper_case_paths(tmp_path: Path):
    (tmp_path / "ferreteria.yaml").write_text(
        "rut: 10.000.013-k\nslug: ferreteria\nname: Ferretería Juanito\ntype: customer\nstatus: active\n"
        "plan: pro\nproducts: [chat]\naccess:\n  emails: [juan@ferreteria.cl]\n"
        "secrets:\n  chatwoot:\n    generate: [secret_key_base]\nanalytics:\n  enabled: false\n",
        encoding="utf-8",
    )
    resources = _program(tmp_path, stack="dev")
    policy = one(resources, type=POLICY, name="10000013-K-policy")
    assert policy.inputs["rut"] == "10000013-K"

    from components.providers.vault import render_policy, vault_policy_name

    assert vault_policy_name(policy.inputs["rut"]) == "tenant-10000013-k"
    text = render_policy(policy.inputs["rut"], policy.inputs["mount"], policy.inputs["stack"])
    assert 'path "secret/data/tenants/10000013-K/*"' in text
    assert 'path "secret/metadata/tenants/10000013-K/*"' in text
    assert "10000013-k/" not in text
    secret = one(resources, type=SECRET, name="10000013-K-chatwoot")
    assert secret.options.protect is False and secret.options.retain_on_delete is True
