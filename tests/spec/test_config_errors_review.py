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
