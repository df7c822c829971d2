"""Fixtures for the Vault tests: the HTTP double, the Vault under test, and provider hosts talking to it.

``vault`` yields a :class:`VaultTarget`: by default the in-repo double; with ``-m live_vault`` the server in
``VAULT_ADDR`` / ``VAULT_TOKEN`` (a KV v2 engine mounted at ``VAULT_MOUNT``, default ``secret``, and AppRole
enabled at ``auth/approle``). The same contract tests drive both.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hvac
import pytest
from stdnum.cl import rut as cl_rut

from tests.conftest import ProviderHostFactory
from tests.harness.provider_host import ProviderHost
from tests.vault.double import VaultDouble


@dataclass
class VaultTarget:
    """A Vault to test against and an operator's view of it (edits "by hand" go over HTTP)."""

    address: str
    token: str
    mount: str
    double: VaultDouble | None

    def operator(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.address, token=token or self.token, timeout=10)

    def config(self, token: str | None = None) -> dict[str, Any]:
        return {
            "smarteros:vault": {"address": self.address, "mount": self.mount},
            "smarteros:vaultToken": token or self.token,
        }

    def token_with_policies(self, *policies: str) -> str:
        if self.double is not None:
            return self.double.mint_token(*policies)
        created = self.operator().auth.token.create(policies=list(policies), no_default_policy=True, ttl="10m")
        return str(created["auth"]["client_token"])

    def put_policy(self, name: str, text: str) -> None:
        self.operator().sys.create_or_update_acl_policy(name=name, policy=text)


@pytest.fixture(scope="session")
def vault_double() -> Iterator[VaultDouble]:
    with VaultDouble() as double:
        yield double


@pytest.fixture(
    scope="session",
    params=["double", pytest.param("live", marks=pytest.mark.live_vault)],
)
def vault(request: pytest.FixtureRequest, vault_double: VaultDouble) -> VaultTarget:
    if request.param == "double":
        return VaultTarget(vault_double.address, vault_double.root_token, "secret", vault_double)
    return VaultTarget(
        os.environ["VAULT_ADDR"], os.environ["VAULT_TOKEN"], os.environ.get("VAULT_MOUNT", "secret"), None
    )


@pytest.fixture(scope="session")
def double_target(vault_double: VaultDouble) -> VaultTarget:
    """The double alone, for faults only it can show (sealed, a racing writer)."""
    return VaultTarget(vault_double.address, vault_double.root_token, "secret", vault_double)


@pytest.fixture(scope="session")
def double_host(double_target: VaultTarget, provider_host_factory: ProviderHostFactory) -> ProviderHost:
    return provider_host_factory(double_target.config())


@pytest.fixture(scope="session")
def vault_host(vault: VaultTarget, provider_host_factory: ProviderHostFactory) -> ProviderHost:
    """A provider host configured for ``vault`` with its administrative token."""
    return provider_host_factory(vault.config())


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
