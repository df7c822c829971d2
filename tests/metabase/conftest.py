"""Fixtures for the Metabase tests: the HTTP test double, the target under test and provider hosts.

``metabase_target`` is the double by default. With ``-m live_metabase`` the same contract tests run against
the real server in ``METABASE_URL`` / ``METABASE_API_KEY`` (and its connection checks reach the throwaway
PostgreSQL on 127.0.0.1, so run that Metabase on this machine).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from components.providers.metabase import MetabaseClient
from tests.harness.provider_host import ProviderHost, urn
from tests.metabase.double import MetabaseDouble


@dataclass
class MetabaseTarget:
    """A Metabase to test against: the double, or a real server."""

    url: str
    api_key: str
    double: MetabaseDouble | None = None

    def client(self) -> MetabaseClient:
        """An administrator's client, for changes "by hand" and for checking results."""
        return MetabaseClient(self.url, self.api_key, retries=0)

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"smarteros:metabase": {"url": self.url}, "smarteros:metabaseApiKey": self.api_key, **extra}


@pytest.fixture(scope="session")
def metabase_double() -> Iterator[MetabaseDouble]:
    double = MetabaseDouble().start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture(scope="session")
def bare_double() -> Iterator[MetabaseDouble]:
    """A Metabase whose Sample Database was removed: groups made before any database have no permission rows."""
    double = MetabaseDouble(sample_database=False).start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def bare_host(bare_double: MetabaseDouble, provider_host_factory: Any) -> ProviderHost:
    """A provider host configured for :func:`bare_double`."""
    return provider_host_factory(MetabaseTarget(bare_double.url, bare_double.api_key, bare_double).config())


@pytest.fixture(
    scope="session", params=["double", pytest.param("live", marks=pytest.mark.live_metabase)]
)
def metabase_target(request: pytest.FixtureRequest, metabase_double: MetabaseDouble) -> MetabaseTarget:
    if request.param == "double":
        return MetabaseTarget(metabase_double.url, metabase_double.api_key, metabase_double)
    url, key = os.environ.get("METABASE_URL"), os.environ.get("METABASE_API_KEY")
    if not url or not key:
        pytest.fail("the live_metabase tests need METABASE_URL and METABASE_API_KEY of a disposable Metabase")
    return MetabaseTarget(url, key)


@pytest.fixture
def host(metabase_target: MetabaseTarget, provider_host_factory: Any) -> ProviderHost:
    """A provider host configured for the target (shared by every test using the same target)."""
    return provider_host_factory(metabase_target.config())


@pytest.fixture
def double_host(metabase_double: MetabaseDouble, provider_host_factory: Any) -> ProviderHost:
    """A provider host configured for the double (for fault injection and request counting)."""
    target = MetabaseTarget(metabase_double.url, metabase_double.api_key, metabase_double)
    return provider_host_factory(target.config())


def fake_rut() -> str:
    """A RUT-shaped tenant identity no other test uses (names in a live Metabase must not collide)."""
    return f"{secrets.randbelow(89_999_999) + 10_000_000}-{secrets.choice('0123456789K')}"


@dataclass
class Driven:
    """One resource driven through the host the way the engine drives it: Check, then Create/Update."""

    host: ProviderHost
    provider: Any
    kind: Any  # a dynamic Resource class or a type token
    name: str
    id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def urn(self) -> str:
        return urn(self.kind, self.name)

    def check(self, news: Mapping[str, Any]) -> dict[str, Any]:
        outcome = self.host.check(self.provider, self.urn, self.inputs, news)
        assert outcome.failures == [], outcome.failures
        return outcome.inputs

    def create(self, news: Mapping[str, Any]) -> dict[str, Any]:
        self.inputs = self.check(news)
        self.id, self.outputs = self.host.create(self.provider, self.urn, self.inputs)
        return self.outputs

    def diff(self, news: Mapping[str, Any] | None = None) -> Any:
        news = self.check(news if news is not None else self.inputs)
        return self.host.diff(self.provider, self.id, self.urn, self.outputs, news)

    def update(self, news: Mapping[str, Any]) -> dict[str, Any]:
        checked = self.check(news)
        self.outputs = self.host.update(self.provider, self.id, self.urn, self.outputs, checked)
        self.inputs = checked
        return self.outputs

    def refresh(self) -> str:
        self.id, self.outputs, _ = self.host.read(self.provider, self.id, self.urn, self.outputs)
        return self.id

    def delete(self) -> None:
        self.host.delete(self.provider, self.id, self.urn, self.outputs)
