"""Shared fixtures: a throwaway PostgreSQL cluster and real dynamic-provider hosts.

* ``postgres_server`` (session): a :class:`tests.harness.postgres.PostgresServer`, removed at the end.
  Under pytest-xdist every worker gets its own cluster.
* ``openbao_server`` (session): a :class:`tests.harness.openbao.OpenBaoServer` (``bao server -dev``, AppRole
  enabled, KV v2 at ``secret``), stopped at the end. Under pytest-xdist every worker gets its own server.
* ``openbao_provisioner_token`` (session): a provisioning token on that server, made exactly as README's
  "Once per Vault" set-up says (:func:`tests.harness.openbao.provision`).
* ``provider_host_factory`` (session): ``factory(config, env=None, fresh=False) -> ProviderHost``. A host
  is configured once, so hosts are cached per ``(config, env)``: asking twice for the same config returns
  the same running host; ``fresh=True`` always starts a new one. Every host is stopped at session end.

Every throwaway server dies with the process that started it, however that process ends; the session
start reaps what an earlier run left behind all the same (:mod:`tests.harness.lifeline`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.harness.lifeline import reap_orphans
from tests.harness.openbao import OpenBaoServer, provision
from tests.harness.openbao import openbao_server as started_openbao
from tests.harness.postgres import PostgresServer
from tests.harness.provider_host import ProviderHost, ProviderHostFactory


def pytest_sessionstart(session: pytest.Session) -> None:
    """Throwaway servers that an earlier, killed run left behind are stopped and removed first."""
    reap_orphans()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def openbao_server() -> Iterator[OpenBaoServer]:
    with started_openbao() as server:
        yield server


@pytest.fixture(scope="session")
def openbao_provisioner_token(openbao_server: OpenBaoServer) -> str:
    return provision(openbao_server.address, openbao_server.root_token)


@pytest.fixture(scope="session")
def provider_host_factory() -> Iterator[ProviderHostFactory]:
    hosts: dict[str, ProviderHost] = {}
    fresh_hosts: list[ProviderHost] = []

    def factory(
        config: Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        fresh: bool = False,
    ) -> ProviderHost:
        key = json.dumps([dict(config or {}), dict(env or {})], sort_keys=True, default=str)
        cached = hosts.get(key)
        if cached is not None and cached.running and not fresh:
            return cached
        if cached is not None and not fresh:
            cached.close()  # it died; replace it
        host = ProviderHost(env=env).start()
        try:
            host.configure(config or {})
        except BaseException:
            host.close()
            raise
        if fresh:
            fresh_hosts.append(host)
        else:
            hosts[key] = host
        return host

    try:
        yield factory
    finally:
        for host in [*hosts.values(), *fresh_hosts]:
            host.close()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Say how many Vault tests ran against which server (the throwaway OpenBao, or VAULT_ADDR)."""
    outcomes: dict[str, dict[str, str]] = {"OpenBao (bao server -dev)": {}, "VAULT_ADDR (-m live_vault)": {}}
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = str(getattr(report, "nodeid", ""))
            if not nodeid.startswith("tests/vault/"):
                continue
            target = "VAULT_ADDR (-m live_vault)" if "[live" in nodeid else "OpenBao (bao server -dev)"
            seen = outcomes[target]
            if seen.get(nodeid) != "failed":
                seen[nodeid] = "failed" if outcome != "passed" else "passed"
    for target, seen in outcomes.items():
        if seen:
            passed = sum(1 for v in seen.values() if v == "passed")
            terminalreporter.write_line(
                f"Vault tests against {target}: {passed} passed, {len(seen) - passed} failed"
            )
