"""Where credentials come from, and when a run is read-only (``components.access``, ``components.config``)."""

from __future__ import annotations

import pulumi
import pytest

from components.access import READ_ONLY_ENV, AccessError, read_only
from components.config import ConfigError, credential_problems, secret_from_raw
from components.providers.postgres import settings_from_config
from tests.harness.mocks import execute, stack_config

TOKEN = "hvs.CAESIJ8sZLkqN3xR2mVt7YwPq4HbUe9FgKd"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("", False),
        ("false", False),
        ("0", False),
        ("no", False),
    ],
)
def test_the_read_only_switch_reads_the_usual_spellings(value: str, expected: bool) -> None:
    assert read_only({READ_ONLY_ENV: value}) is expected


def test_an_unclear_read_only_switch_is_an_error_not_a_guess() -> None:
    assert read_only({}) is False
    for value in ("ture", "hvs.CAESIJ8sZLkqN3xR2mVt7YwPq4HbUe9FgKd"):
        with pytest.raises(AccessError) as raised:
            read_only({READ_ONLY_ENV: value})
        assert str(raised.value) == (
            "SMARTEROS_READ_ONLY must be true or false (got something else): it decides whether this run may write"
        )


def test_a_writing_run_prefers_the_stack_config_then_the_environment() -> None:
    raw = {"smarteros:vaultToken": "from-config"}
    assert secret_from_raw(raw, "vaultToken", {"VAULT_TOKEN": "from-env"}) == "from-config"
    assert secret_from_raw({}, "vaultToken", {"VAULT_TOKEN": "from-env"}) == "from-env"
    assert secret_from_raw(None, "vaultToken", {}) is None


def test_a_read_only_run_takes_the_environment_only_and_refuses_a_credential_in_config() -> None:
    env = {READ_ONLY_ENV: "true", "VAULT_TOKEN": "read-only-token"}
    assert secret_from_raw({}, "vaultToken", env) == "read-only-token"
    with pytest.raises(ConfigError) as raised:
        secret_from_raw({"smarteros:vaultToken": TOKEN}, "vaultToken", env)
    assert str(raised.value).startswith(
        "smarteros:vaultToken: a credential in the stack config, and this run is read-only "
        "(SMARTEROS_READ_ONLY=true): credentials come from the environment only"
    )
    assert TOKEN not in str(raised.value)


def test_a_stack_whose_credentials_come_from_the_environment_refuses_them_in_config() -> None:
    raw = {"smarteros:credentials": "environment", "smarteros:postgresPassword": "secret-from-config"}
    with pytest.raises(ConfigError, match=r"declares `smarteros:credentials: environment`") as raised:
        secret_from_raw(raw, "postgresPassword", {"PGPASSWORD": "from-env"})
    assert "secret-from-config" not in str(raised.value)
    assert secret_from_raw({"smarteros:credentials": "environment"}, "postgresPassword", {"PGPASSWORD": "e"}) == "e"


def test_credential_problems_name_keys_and_never_values() -> None:
    values = {"vaultToken": TOKEN, "postgresPassword": "pw-in-config", "metabaseApiKey": None}
    secret = {"smarteros:vaultToken", "smarteros:postgresPassword"}
    assert credential_problems(values.get, secret.__contains__, {}) == []
    problems = credential_problems(values.get, secret.__contains__, {READ_ONLY_ENV: "true"})
    assert len(problems) == 1
    assert problems[0].startswith("smarteros:postgresPassword, smarteros:vaultToken: a credential in the stack config")
    assert "through PGPASSWORD, VAULT_TOKEN" in problems[0]
    assert TOKEN not in problems[0] and "pw-in-config" not in problems[0]
    clear = credential_problems(values.get, {"smarteros:vaultToken"}.__contains__, {})
    assert clear == ["smarteros:postgresPassword: a credential in clear; store it with `pulumi config set --secret`"]


def test_a_read_only_run_reaches_postgresql_as_the_preview_role_unless_pguser_says() -> None:
    raw = {"smarteros:postgres": '{"host": "db", "user": "smarteros_provisioner"}'}
    writing = settings_from_config(raw, {"PGPASSWORD": "pw"})
    assert (writing.user, writing.read_only) == ("smarteros_provisioner", False)
    reading = settings_from_config(raw, {READ_ONLY_ENV: "true", "PGPASSWORD": "pw"})
    assert (reading.host, reading.user, reading.password, reading.read_only) == ("db", "smarteros_preview", "pw", True)
    chosen = settings_from_config(raw, {READ_ONLY_ENV: "true", "PGUSER": "auditor"})
    assert chosen.user == "auditor"


def test_the_production_stack_previews_read_only_and_refuses_credentials_in_its_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(READ_ONLY_ENV, "true")
    registered = execute(config=stack_config("prod"), stack="prod")
    assert registered  # Pulumi.prod.yaml holds no credential: the read-only program runs
    monkeypatch.delenv(READ_ONLY_ENV)
    config = stack_config("prod", vaultToken=TOKEN)
    with pytest.raises(pulumi.RunError) as raised:  # even in a writing run: the stack declares it
        execute(config=config, secret_keys=["smarteros:vaultToken"], stack="prod")
    assert str(raised.value).startswith(
        "stack config is not valid:\nsmarteros:vaultToken: a credential in the stack config, and the stack "
        "declares `smarteros:credentials: environment`"
    )
    assert TOKEN not in str(raised.value)
