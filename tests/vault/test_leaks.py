"""No Vault credential and no secret value escapes: not in the serialised providers, not in outputs outside
the declared secret ones, not in the host's logs, not in error messages."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config

from components.providers.vault import (
    SECRET_OUTPUTS,
    AppRoleProvider,
    PolicyProvider,
    SecretProvider,
    VaultAppRole,
    VaultPolicy,
    VaultSecret,
)
from tests.conftest import ProviderHostFactory
from tests.harness.provider_host import ProviderCallError, ProviderHost, urn
from tests.vault.conftest import VaultTarget, fresh_rut

PROVIDERS = (SecretProvider, PolicyProvider, AppRoleProvider)


def _state_in_clear(outputs: dict[str, Any]) -> str:
    """What the engine writes to state unencrypted: every output but the declared secret ones."""
    return repr({k: v for k, v in outputs.items() if k not in SECRET_OUTPUTS})


def _configured(provider_class: type, token: str, address: str) -> Any:
    provider = provider_class()
    raw = {"smarteros:vault": f'{{"address": "{address}", "mount": "secret"}}', "smarteros:vaultToken": token}
    provider.configure(ConfigureRequest(Config(raw, "smarteros")))
    return provider


@pytest.mark.parametrize("provider_class", PROVIDERS, ids=lambda c: c.__name__)
def test_a_configured_provider_serialises_without_token_or_address(provider_class: type, vault: VaultTarget):
    provider = _configured(provider_class, vault.token, vault.address)
    text = ProviderHost.serialized(provider)
    raw = base64.b64decode(text)
    for needle in (vault.token, vault.address, vault.address.split("//")[1]):
        assert needle not in text
        assert needle.encode() not in raw
    assert text == ProviderHost.serialized(provider_class()), "configuration never changes the pickled object"


def test_token_and_generated_values_appear_only_in_declared_secret_outputs(vault: VaultTarget, vault_host):
    rut = fresh_rut()
    provider = SecretProvider()
    secret_urn = urn(VaultSecret, f"{rut}-chatwoot")
    inputs = {
        "rut": rut,
        "service": "chatwoot",
        "stack": "smarteros/test",
        "generate": ["secret_key_base"],
        "external": [],
        "rotate": 0,
        "provided": {"password": "platform-given-Pa55"},
    }
    checked = vault_host.check(provider, secret_urn, {}, inputs)
    id_, created = vault_host.create(provider, secret_urn, checked.inputs)
    _, refreshed, _ = vault_host.read(provider, id_, secret_urn, created)
    rotated = vault_host.update(provider, id_, secret_urn, refreshed, {**checked.inputs, "rotate": 1})
    policy_id, policy_out = vault_host.create(
        PolicyProvider(), urn(VaultPolicy, f"{rut}-policy"), {"rut": rut, "mount": "secret", "stack": "s/t"}
    )
    _, approle_out = vault_host.create(
        AppRoleProvider(), urn(VaultAppRole, f"{rut}-approle"), {"rut": rut, "policy": policy_id}
    )

    values = {
        "platform-given-Pa55",
        created["values"]["secret_key_base"],
        rotated["values"]["secret_key_base"],
    }
    assert len(values) == 3
    clear = [
        _state_in_clear(created),
        _state_in_clear(refreshed),
        _state_in_clear(rotated),
        repr(policy_out),
        repr(approle_out),
        vault_host.logs(),
        *(vault_host.serialized(p()) for p in PROVIDERS),
    ]
    # "provided" is an input too: it is secret because the component passes secret Outputs into it and
    # declares it in additional_secret_outputs; the clear copies above exclude it like the engine does.
    for text in clear:
        for value in values - {"platform-given-Pa55"}:
            assert value not in text
        assert vault.token not in text
    for outputs in (created, refreshed, rotated):
        assert set(outputs) >= set(SECRET_OUTPUTS)
        assert "platform-given-Pa55" not in _state_in_clear(outputs)


def test_failures_never_carry_values_or_credentials(vault: VaultTarget, provider_host_factory: ProviderHostFactory):
    limited = vault.token_with_policies("no-such-policy")
    host = provider_host_factory(vault.config(token=limited))
    rut = fresh_rut()
    inputs = {"rut": rut, "service": "odoo", "stack": "s/t", "generate": ["k"], "provided": {"pw": "leak-me-not"}}
    with pytest.raises(ProviderCallError) as failure:
        host.create(SecretProvider(), urn(VaultSecret, f"{rut}-odoo"), {"mount": "secret", **inputs})
    assert "403 permission denied" in failure.value.message
    for text in (failure.value.details, host.logs()):
        assert "leak-me-not" not in text
        assert limited not in text
        assert vault.address not in text
