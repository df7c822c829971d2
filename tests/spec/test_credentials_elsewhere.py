"""A stack whose credentials come from the environment (``smarteros:credentials: environment``) and a
read-only run refuse *any* encrypted value in the stack config, not only the four keys the providers read:
whoever runs a preview holds the passphrase and decrypts them all, whatever their key is called
(``cloudflare:apiToken``, ``smarteros:databaseUrl``...).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pulumi
import pytest

from components.access import READ_ONLY_ENV
from components.stackfiles import check_stack_file
from tests.harness.mocks import execute, stack_config

ELSEWHERE = ["cloudflare:apiToken", "smarteros:databaseUrl", "cloudflare:apiUserServiceKey"]


@pytest.mark.parametrize("key", ELSEWHERE)
def test_validate_refuses_an_encrypted_value_under_any_key_of_an_environment_only_stack(
    tmp_path: Path, key: str
) -> None:
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(
        "config:\n"
        "  smarteros:credentials: environment\n"
        "  smarteros:cloudflare: {enabled: false}\n"
        f"  {key}: {{secure: 'v1:c2FsdA==:ZW5jcnlwdGVk'}}\n",
        encoding="utf-8",
    )
    _, problems = check_stack_file(path)
    assert [(p.line, p.message.split(";")[0]) for p in problems] == [
        (4, "a credential in a stack whose credentials come from the environment "
            "(`smarteros:credentials: environment`)")
    ]


@pytest.mark.parametrize("key", ELSEWHERE)
@pytest.mark.parametrize("read_only_run", [True, False])
def test_the_program_refuses_an_encrypted_value_under_any_key_where_credentials_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, key: str, read_only_run: bool
) -> None:
    value = secrets.token_urlsafe(16)
    if read_only_run:
        monkeypatch.setenv(READ_ONLY_ENV, "true")
        config = {k: v for k, v in stack_config("prod").items() if k != "smarteros:credentials"}
    else:
        config = stack_config("prod")
    with pytest.raises(pulumi.RunError) as raised:
        execute(config={**config, key: value}, secret_keys=[key], stack="prod")
    assert f"{key}: a credential in the stack config" in str(raised.value)
    assert value not in str(raised.value)
