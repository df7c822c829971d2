"""vault/preview.hcl, on a real OpenBao: a refresh reads every tenant object, and the token writes nothing.

The tenant's secret, policy and AppRole are created through the real provider host (as the server's root
token); the preview token then refreshes them through a host configured with it, and attacks each object
directly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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
from tests.harness.openbao import OpenBaoServer
from tests.harness.provider_host import urn
from tests.vault.conftest import fresh_rut

VAULT_DIR = Path(__file__).resolve().parents[2] / "vault"


def config(server: OpenBaoServer, token: str) -> dict[str, Any]:
    return {"smarteros:vault": {"address": server.address, "mount": "secret"}, "smarteros:vaultToken": token}


def preview_token(server: OpenBaoServer, name: str = "smarteros-preview") -> str:
    root = hvac.Client(url=server.address, token=server.root_token, timeout=10)
    root.sys.create_or_update_acl_policy(name=name, policy=(VAULT_DIR / "preview.hcl").read_text(encoding="utf-8"))
    created = root.auth.token.create(policies=[name], no_default_policy=True, ttl="10m")
    return str(created["auth"]["client_token"])


@pytest.fixture(scope="module")
def tenant(openbao_server: OpenBaoServer, provider_host_factory: ProviderHostFactory) -> dict[str, Any]:
    host = provider_host_factory(config(openbao_server, openbao_server.root_token))
    rut = fresh_rut("K")
    inputs = {
        "rut": rut, "service": "odoo", "mount": "secret", "stack": "s/t",
        "generate": ["admin_password"], "external": [], "rotate": 0, "provided": {},
    }
    made: dict[str, Any] = {"rut": rut}
    s_urn, p_urn, a_urn = urn(VaultSecret, "s"), urn(VaultPolicy, "p"), urn(VaultAppRole, "a")
    made["secret"] = (SecretProvider(), s_urn, *host.create(SecretProvider(), s_urn, inputs))
    p_id, p_out = host.create(PolicyProvider(), p_urn, {"rut": rut, "mount": "secret", "stack": "s/t"})
    made["policy"] = (PolicyProvider(), p_urn, p_id, p_out)
    made["approle"] = (AppRoleProvider(), a_urn, *host.create(AppRoleProvider(), a_urn, {"rut": rut, "policy": p_id}))
    made["writer_host"] = host
    return made


@pytest.mark.parametrize("kind", ["secret", "policy", "approle"])
def test_a_refresh_with_the_preview_token_reads_what_a_writer_reads(
    openbao_server: OpenBaoServer, provider_host_factory: ProviderHostFactory, tenant: dict[str, Any], kind: str
) -> None:
    preview = provider_host_factory(config(openbao_server, preview_token(openbao_server)))
    provider, resource_urn, resource_id, outputs = tenant[kind]
    seen = preview.read(provider, resource_id, resource_urn, outputs)
    assert seen[0] == resource_id
    assert seen == tenant["writer_host"].read(provider, resource_id, resource_urn, outputs)


def attacks(rut: str) -> dict[str, Callable[[hvac.Client], object]]:
    role = f"tenant-{rut}".lower()
    return {
        "overwrite a tenant secret": lambda c: c.secrets.kv.v2.create_or_update_secret(
            path=f"tenants/{rut}/odoo", secret={"admin_password": "x"}, mount_point="secret"
        ),
        "delete a tenant secret": lambda c: c.secrets.kv.v2.delete_metadata_and_all_versions(
            path=f"tenants/{rut}/odoo", mount_point="secret"
        ),
        "widen a tenant policy": lambda c: c.sys.create_or_update_acl_policy(
            name=role, policy='path "*" {\n  capabilities = ["read"]\n}\n'
        ),
        "give a tenant AppRole more policies": lambda c: c.auth.approle.create_or_update_approle(
            role, token_policies=["smarteros-preview"]
        ),
        "log in as a tenant": lambda c: c.auth.approle.generate_secret_id(role),
        "read a tenant's role-id": lambda c: c.auth.approle.read_role_id(role),
        "write its own policy": lambda c: c.sys.create_or_update_acl_policy(
            name="smarteros-preview", policy='path "*" {\n  capabilities = ["sudo", "create"]\n}\n'
        ),
        "read outside the tenants subtree": lambda c: c.secrets.kv.v2.read_secret_version(
            path="platform/root", mount_point="secret", raise_on_deleted_version=True
        ),
    }


@pytest.mark.parametrize("attempt", sorted(attacks("1-9")))
def test_the_preview_token_changes_nothing(
    openbao_server: OpenBaoServer, tenant: dict[str, Any], attempt: str
) -> None:
    client = hvac.Client(url=openbao_server.address, token=preview_token(openbao_server), timeout=10)
    with pytest.raises(hvac.exceptions.Forbidden):
        attacks(tenant["rut"])[attempt](client)
