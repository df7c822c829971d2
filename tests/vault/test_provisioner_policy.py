"""The provisioning token's shipped policy (vault/provisioner.hcl) is enough for the whole lifecycle and
no more: it cannot write other policies, other AppRoles, AppRoles granting other policies, or other paths."""

from __future__ import annotations

from pathlib import Path

import hvac
import pytest

from components.providers.vault import (
    AppRoleProvider,
    PolicyProvider,
    SecretProvider,
    VaultAppRole,
    VaultPolicy,
    VaultSecret,
)
from tests.conftest import ProviderHostFactory
from tests.harness.provider_host import urn
from tests.vault.conftest import VaultTarget, fresh_rut

POLICY_FILE = Path(__file__).resolve().parents[2] / "vault" / "provisioner.hcl"


@pytest.fixture(scope="module")
def provisioner_token(vault: VaultTarget) -> str:
    vault.put_policy("smarteros-provisioner", POLICY_FILE.read_text(encoding="utf-8"))
    return vault.token_with_policies("smarteros-provisioner")


def test_the_provisioner_policy_runs_the_whole_lifecycle(
    vault: VaultTarget, provisioner_token: str, provider_host_factory: ProviderHostFactory
):
    host = provider_host_factory(vault.config(token=provisioner_token))
    rut = fresh_rut("K")
    secret, policy, approle = SecretProvider(), PolicyProvider(), AppRoleProvider()
    s_urn, p_urn, a_urn = urn(VaultSecret, "s"), urn(VaultPolicy, "p"), urn(VaultAppRole, "a")
    inputs = {
        "rut": rut,
        "service": "odoo",
        "mount": "secret",
        "stack": "s/t",
        "generate": ["admin_password"],
        "external": [],
        "rotate": 0,
        "provided": {},
    }

    s_id, s_out = host.create(secret, s_urn, inputs)
    s_out = host.update(secret, s_id, s_urn, s_out, {**inputs, "rotate": 1})
    assert host.read(secret, s_id, s_urn, s_out)[0] == s_id
    p_id, p_out = host.create(policy, p_urn, {"rut": rut, "mount": "secret", "stack": "s/t"})
    a_id, a_out = host.create(approle, a_urn, {"rut": rut, "policy": p_id})
    assert host.read(approle, a_id, a_urn, a_out)[1]["token_policies"] == [p_id]

    host.delete(approle, a_id, a_urn, a_out)
    host.delete(policy, p_id, p_urn, p_out)
    host.delete(secret, s_id, s_urn, s_out)
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.operator().sys.read_acl_policy(p_id)


@pytest.mark.parametrize(
    "attempt",
    [
        "write a policy outside tenant-*",
        "write an AppRole outside tenant-*",
        "grant another policy through a tenant AppRole",
        "grant the default policy through a tenant AppRole",
        "write a secret outside the tenants subtree",
        "read a secret outside the tenants subtree",
    ],
)
def test_the_provisioner_policy_reaches_nothing_else(vault: VaultTarget, provisioner_token: str, attempt: str):
    client = vault.operator(provisioner_token)
    kv = client.secrets.kv.v2
    actions = {
        "write a policy outside tenant-*": lambda: client.sys.create_or_update_acl_policy(
            name="admin", policy='path "*" {\n  capabilities = ["sudo", "read"]\n}\n'
        ),
        "write an AppRole outside tenant-*": lambda: client.auth.approle.create_or_update_approle(
            "ops", token_policies=["tenant-1-9"]
        ),
        "grant another policy through a tenant AppRole": lambda: client.auth.approle.create_or_update_approle(
            "tenant-1-9", token_policies=["smarteros-provisioner"]
        ),
        "grant the default policy through a tenant AppRole": lambda: client.adapter.post(
            "/v1/auth/approle/role/tenant-1-9",
            json={"token_policies": ["tenant-1-9"], "token_no_default_policy": False},
        ),
        "write a secret outside the tenants subtree": lambda: kv.create_or_update_secret(
            path="platform/root", secret={"k": "v"}, mount_point="secret"
        ),
        "read a secret outside the tenants subtree": lambda: kv.read_secret_version(
            path="platform/root", mount_point="secret", raise_on_deleted_version=True
        ),
    }
    with pytest.raises(hvac.exceptions.Forbidden):
        actions[attempt]()
