"""Metabase's first run as the local platform does it, against a stand-in that mirrors Metabase's source."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components.local.metabase_setup import first_run
from components.local.steps import SetupError
from tests.local.metabase_first_run_double import MetabaseFirstRunDouble

EMAIL = "admin@smarteros.local"


@pytest.fixture
def metabase() -> Iterator[MetabaseFirstRunDouble]:
    with MetabaseFirstRunDouble() as double:
        yield double


def test_the_first_run_creates_the_administrator_and_an_administrators_api_key(metabase) -> None:
    key = first_run(metabase.url, email=EMAIL, password="pw-1-long-enough", site_name="s", key_name="prov")
    assert metabase.users[EMAIL]["is_superuser"] is True
    assert [(k["name"], k["group"]["name"], k["unmasked_key"]) for k in metabase.api_keys] == [
        ("prov", "Administrators", key)
    ]


def test_a_second_run_logs_in_and_replaces_the_key_rather_than_adding_one(metabase) -> None:
    first = first_run(metabase.url, email=EMAIL, password="pw-1-long-enough", site_name="s", key_name="prov")
    second = first_run(metabase.url, email=EMAIL, password="pw-1-long-enough", site_name="s", key_name="prov")
    assert second != first and len(metabase.api_keys) == 1 and metabase.api_keys[0]["unmasked_key"] == second
    assert ("POST", "/api/setup") in metabase.requests and metabase.requests.count(("POST", "/api/setup")) == 1


def test_a_wrong_password_fails_with_the_answer_and_without_the_password(metabase) -> None:
    first_run(metabase.url, email=EMAIL, password="pw-1-long-enough", site_name="s", key_name="prov")
    with pytest.raises(SetupError) as failure:
        first_run(metabase.url, email=EMAIL, password="other-password-x", site_name="s", key_name="prov")
    assert "session answered 401" in str(failure.value) and "other-password-x" not in str(failure.value)
