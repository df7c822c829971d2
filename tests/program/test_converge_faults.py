"""Faults on the real servers in the middle of a converge, and the rerun that converges with nothing lost.

Each scenario adds two tenant files, starts a converge (``pulumi up --refresh``), breaks a server as soon as
the first step of a new tenant in that system begins, and checks what the failing steps say: the tenant, the
system, the server's answer, never a credential or a secret value. Then it mends the server and runs again:
everything converges, no secret or password of a resource already created is regenerated, no role, registry
row or data row is dropped, nothing is duplicated, and a further pass changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from components.spec import TenantSpec, load_tenants
from tests.harness.converge import (
    Converger,
    EngineHost,
    Pass,
    Servers,
    Step,
    issue_vault_token,
    servers_for_converge,
    write_tenants,
)
from tests.program.converged import connect_as, database_login, inventory, secret_values, vault

pytestmark = pytest.mark.xdist_group("converge-faults")

SYSTEM_BY_MODULE = {"vault": "Vault", "postgres": "PostgreSQL", "metabase": "Metabase"}


class Fleet:
    """Generated tenant files in one folder, grown by each scenario, and a converger over them."""

    def __init__(self, servers: Servers, folder: Path) -> None:
        self.servers = servers
        self.folder = folder
        self.next_body = 71_000_000
        self.hosts: list[EngineHost] = []
        self.converger = Converger(self._host(), self.config)

    @property
    def config(self) -> dict[str, Any]:
        return self.servers.config([f"{self.folder}/*.yaml"])

    def _host(self) -> EngineHost:
        host = EngineHost()
        host.start()
        self.hosts.append(host)
        host.configure(self.config)
        return host

    def reconfigure(self) -> None:
        """A new ``pulumi up`` after the stack's config changed: a new provider host with the new config."""
        self.converger.host = self._host()
        self.converger.config = self.config

    def add(self, count: int) -> list[str]:
        bodies = range(self.next_body, self.next_body + count)
        self.next_body += count
        return write_tenants(self.folder, bodies)

    def tenants(self) -> list[TenantSpec]:
        return load_tenants(sorted(self.folder.glob("*.yaml")))

    def close(self) -> None:
        for host in self.hosts:
            host.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with servers_for_converge() as servers:
        found = Fleet(servers, tmp_path_factory.mktemp("tenants"))
        try:
            found.add(2)
            done = found.converger.up()
            assert done.failure is None, [s.error.message for s in done.errors if s.error]
            yield found
        finally:
            found.close()


def by_name(fleet: Fleet, name: str) -> Any:
    [entry] = [e for e in fleet.converger.entries() if e.name == name]
    return entry


def snapshot(fleet: Fleet) -> dict[str, Any]:
    """Everything that must survive a fault: secret values, what exists, the data rows."""
    servers, tenants = fleet.servers, fleet.tenants()
    with servers.postgres.connect(dbname="smarteros") as admin:
        rows = sorted(tuple(r) for r in admin.execute("SELECT tenant_rut, name FROM contacts"))
    passwords = {e.name: e.outputs.get("password") for e in fleet.converger.entries("postgres:TenantRole")}
    return {
        "secrets": secret_values(servers, tenants),
        "inventory": inventory(servers),
        "rows": rows,
        "passwords": passwords,
    }


def seed_rows(fleet: Fleet) -> None:
    with fleet.servers.postgres.connect(dbname="smarteros") as admin:
        for spec in fleet.tenants():
            admin.execute("INSERT INTO contacts (tenant_rut, name) VALUES (%s, %s)", (spec.rut, f"row of {spec.rut}"))


def converge_breaking(fleet: Fleet, new: list[str], suffix: str, action: Callable[[], None]) -> Pass:
    """A converge that runs ``action`` as the first step of a new tenant's resource named ``<rut>-<suffix>``
    begins (a resource that waits for others of the tenant, so the converge is well under way)."""
    lock = threading.Lock()
    fired: list[Step] = []

    def before(step: Step) -> None:
        with lock:
            if not fired and step.tenant in new and step.name == f"{step.tenant}-{suffix}":
                fired.append(step)
                action()

    done = fleet.converger.up(refresh=True, before_step=before)
    assert fired, f"no step {suffix} started for {new}"
    assert done.failure is not None and done.errors, "the fault did not fail the converge"
    assert done.ops["create"] > 0, "the fault came before anything was done"
    return done


def assert_clear_failures(fleet: Fleet, done: Pass, *answers: str) -> None:
    """Each failed step names its tenant, its system and the server's answer (one of ``answers``); nothing
    secret travels, not even in the whole report the host sends back (the traceback)."""
    secret_texts = [*fleet.servers.credentials()]
    for entry in fleet.converger.entries():
        for key in ("password", "values"):
            value = entry.outputs.get(key)
            if isinstance(value, str):
                secret_texts.append(value)
            elif isinstance(value, dict):
                secret_texts.extend(str(v) for v in value.values())
    for step in done.errors:
        assert step.error is not None
        message = step.error.message
        system = SYSTEM_BY_MODULE[step.type.split("/")[1].split(":")[0]]
        assert f"tenant {step.tenant}" in message, message
        assert system in message, message
        assert any(answer in message for answer in answers), message
        leaked = sum(text in step.error.details for text in secret_texts)  # counted, so no value is printed
        assert leaked == 0, f"{leaked} credentials or secret values travel in the report of {step.name}"


def assert_nothing_lost(fleet: Fleet, before: dict[str, Any], created_before_fault: dict[str, Any]) -> None:
    after = snapshot(fleet)
    for path, values in before["secrets"].items():
        assert after["secrets"][path] == values, f"{path} changed"
    for name, password in before["passwords"].items():
        assert after["passwords"][name] == password, f"{name}: password regenerated"
    for name, password in created_before_fault.items():
        assert after["passwords"].get(name) == password, f"{name}: created before the fault, regenerated after it"
    for key, names in before["inventory"].items():
        assert set(names) <= set(after["inventory"][key]), f"{key} lost {set(names) - set(after['inventory'][key])}"
        assert len(after["inventory"][key]) == len(set(after["inventory"][key])), f"{key} has a duplicate"
    assert set(before["rows"]) <= set(after["rows"])
    tenants = fleet.tenants()
    assert after["inventory"]["registry"] == sorted(t.rut for t in tenants)
    for spec in tenants:
        with connect_as(fleet.servers, database_login(fleet.servers, spec.rut)) as conn:
            assert conn.execute("SELECT rut FROM tenant_overview").fetchall() == [(spec.rut,)]
    assert fleet.converger.up(refresh=True).changed() == []


def passwords_created(done: Pass, fleet: Fleet) -> dict[str, Any]:
    created = {s.name for s in done.steps if s.op == "create" and s.type.endswith("postgres:TenantRole")}
    return {e.name: e.outputs["password"] for e in fleet.converger.entries("postgres:TenantRole") if e.name in created}


def rerun(fleet: Fleet) -> Pass:
    done = fleet.converger.up(refresh=True)
    assert done.failure is None, [s.error.message for s in done.errors if s.error]
    return done


def test_openbao_sealed_in_the_middle_of_a_converge(fleet: Fleet) -> None:
    seed_rows(fleet)
    before = snapshot(fleet)
    new = fleet.add(2)
    openbao = fleet.servers.openbao
    try:
        done = converge_breaking(fleet, new, "postgres", openbao.seal)
    finally:
        openbao.unseal()
    assert_clear_failures(fleet, done, "503 Vault is sealed")
    created = passwords_created(done, fleet)
    rerun(fleet)
    assert_nothing_lost(fleet, before, created)


def test_postgresql_stopped_in_the_middle_of_a_converge(fleet: Fleet) -> None:
    seed_rows(fleet)
    before = snapshot(fleet)
    new = fleet.add(2)
    postgres = fleet.servers.postgres
    try:
        done = converge_breaking(fleet, new, "grants", postgres.halt)
    finally:
        postgres.resume()
    # libpq's answer: refused for a new connection, or the server ending one that was open.
    assert_clear_failures(fleet, done, "Connection refused", "terminating connection", "server closed the connection")
    created = passwords_created(done, fleet)
    assert created, "no role was created before PostgreSQL stopped"
    rerun(fleet)
    assert_nothing_lost(fleet, before, created)


def test_provisioning_token_revoked_in_the_middle_of_a_converge(fleet: Fleet) -> None:
    seed_rows(fleet)
    before = snapshot(fleet)
    new = fleet.add(2)
    servers = fleet.servers
    revoked = servers.vault_token

    def revoke() -> None:
        assert vault(servers, "POST", "auth/token/revoke", json={"token": revoked}).status_code == 204

    done = converge_breaking(fleet, new, "postgres", revoke)
    assert_clear_failures(fleet, done, "403 permission denied")
    created = passwords_created(done, fleet)
    servers.vault_token = issue_vault_token(servers.openbao)
    fleet.reconfigure()
    rerun(fleet)
    assert_nothing_lost(fleet, before, created)
    # The revoked token stays revoked: the stack runs on the new one only.
    assert vault(servers, "GET", "auth/token/lookup-self", token=revoked).status_code == 403
    assert by_name(fleet, f"{new[0]}-role").outputs["role_name"] in inventory(servers)["roles"]
