"""Fixtures for the Vault tests: the Vault under test, the provisioning token README's set-up makes, and
provider hosts talking to them.

``vault`` yields a :class:`VaultTarget`: by default the throwaway OpenBao server of the session
(``openbao_server``, ``bao server -dev``); with ``-m live_vault`` the server in ``VAULT_ADDR`` / ``VAULT_TOKEN``
(a KV v2 engine mounted at ``VAULT_MOUNT``, default ``secret``, and AppRole enabled at ``auth/approle``), such
as HashiCorp Vault. The same contract tests drive both.

``provisioner_token`` is a token made exactly as README's "Once per Vault" set-up says (see
:func:`tests.harness.openbao.provision`); the converge tests can call that function on their own server.
``fault_proxy`` puts :class:`tests.vault.double.VaultFaultProxy` in front of the real server, for the faults
a server cannot be made to show on demand.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hvac
import pytest
import requests
from stdnum.cl import rut as cl_rut

from tests.conftest import ProviderHostFactory
from tests.harness.openbao import OpenBaoServer, approle_login, provision
from tests.harness.provider_host import ProviderHost
from tests.vault.double import VaultFaultProxy


@dataclass
class VaultTarget:
    """A Vault to test against and an operator's view of it (edits "by hand" go over HTTP)."""

    address: str
    token: str
    mount: str
    server: OpenBaoServer | None = None
    """The throwaway server when the target is one (it can then be sealed on demand)."""

    def __repr__(self) -> str:  # keeps the root token out of assertion output
        return f"VaultTarget(address={self.address!r}, mount={self.mount!r})"

    def operator(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.address, token=token or self.token, timeout=10)

    def config(self, token: str | None = None, address: str | None = None) -> dict[str, Any]:
        return {
            "smarteros:vault": {"address": address or self.address, "mount": self.mount},
            "smarteros:vaultToken": token or self.token,
        }

    def token_with_policies(self, *policies: str) -> str:
        created = self.operator().auth.token.create(policies=list(policies), no_default_policy=True, ttl="10m")
        return str(created["auth"]["client_token"])

    def put_policy(self, name: str, text: str) -> None:
        self.operator().sys.create_or_update_acl_policy(name=name, policy=text)

    def call(self, method: str, path: str, token: str | None, body: Any = None) -> requests.Response:
        """One raw API call (no client-side interpretation), to record the server's exact answer."""
        headers = {"X-Vault-Token": token} if token else {}
        return requests.request(method, f"{self.address}/v1/{path}", headers=headers, json=body, timeout=10)

    def tenant_login(self, rut: str) -> str:
        """Log in with the tenant's AppRole as its service would, with a role-id and a fresh secret-id that the
        operator (this target's administrative token) reads and mints."""
        return approle_login(self.address, self.token, f"tenant-{rut.lower()}")


@pytest.fixture(
    scope="session",
    params=["openbao", pytest.param("live", marks=pytest.mark.live_vault)],
)
def vault(request: pytest.FixtureRequest) -> VaultTarget:
    if request.param == "openbao":
        server: OpenBaoServer = request.getfixturevalue("openbao_server")
        return VaultTarget(server.address, server.root_token, server.mount, server)
    return VaultTarget(
        os.environ["VAULT_ADDR"], os.environ["VAULT_TOKEN"], os.environ.get("VAULT_MOUNT", "secret"), None
    )


@pytest.fixture(scope="session")
def vault_host(vault: VaultTarget, provider_host_factory: ProviderHostFactory) -> ProviderHost:
    """A provider host configured for ``vault`` with its administrative token."""
    return provider_host_factory(vault.config())


@pytest.fixture(scope="session")
def provisioner_token(vault: VaultTarget) -> str:
    """A token made exactly as README's "Once per Vault" set-up says, on ``vault``."""
    return provision(vault.address, vault.token, vault.mount)


@pytest.fixture(scope="session")
def provisioner_host(
    vault: VaultTarget, provisioner_token: str, provider_host_factory: ProviderHostFactory
) -> ProviderHost:
    """A provider host that runs with the provisioning token only, as `pulumi up` does."""
    return provider_host_factory(vault.config(token=provisioner_token))


@pytest.fixture(scope="session")
def fault_proxy(vault: VaultTarget) -> Iterator[VaultFaultProxy]:
    with VaultFaultProxy(vault.address) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def fault_host(
    vault: VaultTarget, fault_proxy: VaultFaultProxy, provider_host_factory: ProviderHostFactory
) -> ProviderHost:
    """A provider host whose requests reach ``vault`` through the fault proxy."""
    return provider_host_factory(vault.config(address=fault_proxy.address))


def fresh_rut(check_digit: str | None = None) -> str:
    """A random valid RUT in normal form, optionally with a given check digit (``"K"``)."""
    while True:
        body = str(secrets.randbelow(89_000_000) + 1_000_000)
        digit = cl_rut.calc_check_digit(body)
        if check_digit is None or digit == check_digit:
            return f"{body}-{digit}"


@pytest.fixture
def rut() -> str:
    return fresh_rut()
