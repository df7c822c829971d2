"""A stack config section holding a credential where a provider does not expect one: every provider refuses
it, and its error, as the engine prints it, names the key and never the value.

``pulumi refresh`` (and the refresh of ``pulumi preview --refresh``, the drift check) configures the
providers without the program running first, so the provider's own message is the one a CI log shows.
The providers run in the real dynamic-provider host.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from components.access import READ_ONLY_ENV
from components.providers.metabase.groups import PermissionsGroupProvider
from components.providers.postgres import TenantRoleProvider
from components.providers.vault import SecretProvider
from tests.harness.provider_host import ProviderCallError, urn

CASES = [
    # An operator used to DATABASE_URL sets the section to a URL, password included.
    ("postgres", TenantRoleProvider, "postgres://p:{password}@db/smarteros", "role"),
    # Or puts the credential beside the address, in the section.
    ("vault", SecretProvider, {"address": "http://127.0.0.1:8200", "token": "{password}"}, "secret"),
    ("metabase", PermissionsGroupProvider, {"url": "http://127.0.0.1:3000", "apiKey": "{password}"}, "group"),
]


def _with(value: Any, password: str) -> Any:
    if isinstance(value, dict):
        return {k: v.replace("{password}", password) for k, v in value.items()}
    return value.replace("{password}", password)


@pytest.mark.parametrize("read_only", ["true", "false"])
@pytest.mark.parametrize(("section", "provider", "value", "kind"), CASES, ids=[c[0] for c in CASES])
def test_a_credential_inside_a_config_section_never_appears_in_the_providers_error(
    provider_host_factory: Any, section: str, provider: Any, value: Any, kind: str, read_only: str
) -> None:
    password = secrets.token_urlsafe(12)  # 16 characters, as many passwords are
    config = {f"smarteros:{section}": _with(value, password)}
    host = provider_host_factory(config, env={READ_ONLY_ENV: read_only}, fresh=True)
    with pytest.raises(ProviderCallError) as failed:
        host.check(provider(), urn(f"pulumi-python:dynamic/{section}:X", kind), {}, {})
    assert password not in failed.value.details
    assert f"smarteros:{section}" in failed.value.message


OWN_KEYS = [
    ("postgres", TenantRoleProvider, "postgresPassword", "role"),
    ("vault", SecretProvider, "vaultToken", "secret"),
    ("metabase", PermissionsGroupProvider, "metabaseApiKey", "group"),
]


@pytest.mark.parametrize(
    ("env", "extra", "why"),
    [
        ({READ_ONLY_ENV: "true"}, {}, "this run is read-only (SMARTEROS_READ_ONLY=true)"),
        ({}, {"smarteros:credentials": "environment"}, "the stack declares `smarteros:credentials: environment`"),
    ],
    ids=["read-only run", "environment-only stack"],
)
@pytest.mark.parametrize(("section", "provider", "key", "kind"), OWN_KEYS, ids=[c[0] for c in OWN_KEYS])
def test_every_provider_refuses_its_credential_in_the_config_naming_the_key_only(
    provider_host_factory: Any,
    section: str,
    provider: Any,
    key: str,
    kind: str,
    env: dict[str, str],
    extra: dict[str, str],
    why: str,
) -> None:
    value = secrets.token_urlsafe(12)
    host = provider_host_factory({f"smarteros:{key}": value, **extra}, env=env, fresh=True)
    with pytest.raises(ProviderCallError) as failed:
        host.check(provider(), urn(f"pulumi-python:dynamic/{section}:X", kind), {}, {})
    assert failed.value.reason.startswith(f"smarteros:{key}: a credential in the stack config, and {why}")
    assert value not in failed.value.details
