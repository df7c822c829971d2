"""Faults on the real OpenBao in the middle of a tenant's provisioning, as the provisioning token README's
set-up makes: the server sealed, the token revoked. Each failure names the tenant, Vault and the server's
answer and never a credential; the rerun after it converges with nothing lost (no value regenerated,
nothing dropped, nothing made twice)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
from tests.harness.openbao import OpenBaoServer, provision
from tests.harness.provider_host import ProviderCallError, ProviderHost, urn
from tests.vault.conftest import fresh_rut

STACK = "smarteros/test"


class Tenant:
    """One tenant's three Vault resources, driven through a provider host as the engine does."""

    def __init__(self, rut: str) -> None:
        self.rut = rut
        self.name = f"tenant-{rut.lower()}"
        self.secret_urn = urn(VaultSecret, f"{rut}-odoo")
        self.policy_urn = urn(VaultPolicy, f"{rut}-policy")
        self.approle_urn = urn(VaultAppRole, f"{rut}-approle")
        self.secret_inputs: dict[str, Any] = {
            "rut": rut,
            "service": "odoo",
            "mount": "secret",
            "stack": STACK,
            "generate": ["admin_password", "db_password"],
            "external": [],
            "rotate": 0,
            "provided": {"username": f"tenant_{rut.lower()}"},
        }
        self.policy_inputs = {"rut": rut, "mount": "secret", "stack": STACK}
        self.approle_inputs = {"rut": rut, "policy": self.name}
        self.outputs: dict[str, dict[str, Any]] = {}

    def converge(self, host: ProviderHost) -> None:
        """What `pulumi up` does for this tenant: create what is not in the state, else read, diff, update."""
        steps = (
            ("secret", SecretProvider(), self.secret_urn, self.secret_inputs),
            ("policy", PolicyProvider(), self.policy_urn, self.policy_inputs),
            ("approle", AppRoleProvider(), self.approle_urn, self.approle_inputs),
        )
        for kind, provider, urn_, inputs in steps:
            if kind not in self.outputs:
                _, self.outputs[kind] = host.create(provider, urn_, inputs)
                continue
            id_ = self.outputs[kind].get("path") or self.outputs[kind]["name"]
            _, live, _ = host.read(provider, id_, urn_, self.outputs[kind])
            self.outputs[kind] = live
            if host.diff(provider, id_, urn_, live, inputs).changes:
                self.outputs[kind] = host.update(provider, id_, urn_, live, inputs)


def _host(server: OpenBaoServer, token: str, factory: ProviderHostFactory) -> ProviderHost:
    return factory({"smarteros:vault": {"address": server.address, "mount": "secret"}, "smarteros:vaultToken": token})


def _live(server: OpenBaoServer, path: str) -> dict[str, Any]:
    return dict(server.request("GET", f"secret/data/{path}").json()["data"]["data"])


def _clean(failure: ProviderCallError, host: ProviderHost, *credentials: str) -> None:
    for credential in credentials:
        assert credential not in failure.details
        assert credential not in host.logs()


@pytest.fixture
def sealed_later(openbao_server: OpenBaoServer) -> Iterator[OpenBaoServer]:
    """The session's OpenBao, always unsealed again after the test."""
    try:
        yield openbao_server
    finally:
        if openbao_server.request("GET", "sys/seal-status").json()["sealed"]:
            openbao_server.unseal()


def test_sealed_in_the_middle_then_the_rerun_loses_nothing(
    sealed_later: OpenBaoServer, openbao_provisioner_token: str, provider_host_factory: ProviderHostFactory
):
    server = sealed_later
    host = _host(server, openbao_provisioner_token, provider_host_factory)
    first, second = Tenant(fresh_rut()), Tenant(fresh_rut("K"))
    first.converge(host)
    written = _live(server, f"tenants/{first.rut}/odoo")

    server.seal()
    with pytest.raises(ProviderCallError) as failure:
        second.converge(host)
    assert failure.value.message.endswith(
        f"tenant {second.rut}: Vault could not read secret secret/tenants/{second.rut}/odoo: sent GET "
        f"/v1/secret/data/tenants/{second.rut}/odoo, got 503 Vault is sealed (is Vault sealed or in standby?)"
    )
    _clean(failure.value, host, openbao_provisioner_token, server.root_token)
    server.unseal()

    for tenant in (first, second):
        tenant.converge(host)
    assert _live(server, f"tenants/{first.rut}/odoo") == written, "nothing regenerated"
    second_written = _live(server, f"tenants/{second.rut}/odoo")
    assert set(second_written) == {"admin_password", "db_password", "username"}
    for tenant in (first, second):
        assert server.request("GET", f"auth/approle/role/{tenant.name}").json()["data"]["token_policies"] == [
            tenant.name
        ]
        versions = server.request("GET", f"secret/metadata/tenants/{tenant.rut}/odoo").json()["data"]["versions"]
        assert list(versions) == ["1"], "one write per secret, none repeated"


def test_the_token_revoked_in_the_middle_then_a_new_token_loses_nothing(
    openbao_server: OpenBaoServer, openbao_provisioner_token: str, provider_host_factory: ProviderHostFactory
):
    server = openbao_server
    token = provision(server.address, server.root_token)
    host = _host(server, token, provider_host_factory)
    tenant = Tenant(fresh_rut())
    tenant.converge(host)
    written = _live(server, f"tenants/{tenant.rut}/odoo")
    policy_text = server.request("GET", f"sys/policies/acl/{tenant.name}").json()["data"]["policy"]

    server.request("POST", "auth/token/revoke", json={"token": token})
    tenant.secret_inputs["generate"] = ["admin_password", "db_password", "api_key"]
    with pytest.raises(ProviderCallError) as failure:
        tenant.converge(host)
    assert failure.value.message.endswith(
        f"tenant {tenant.rut}: Vault could not read secret secret/tenants/{tenant.rut}/odoo: sent GET "
        f"/v1/secret/data/tenants/{tenant.rut}/odoo, got 403 permission denied "
        "(check the provisioning token and its policy, vault/provisioner.hcl)"
    )
    _clean(failure.value, host, token, server.root_token)

    renewed = _host(server, openbao_provisioner_token, provider_host_factory)  # another token made as README says
    tenant.converge(renewed)
    after = _live(server, f"tenants/{tenant.rut}/odoo")
    assert {k: after[k] for k in written} == written, "nothing regenerated"
    assert set(after) == {"admin_password", "db_password", "username", "api_key"}
    assert server.request("GET", f"sys/policies/acl/{tenant.name}").json()["data"]["policy"] == policy_text
