"""The whole program converged the way ``pulumi up`` does, against a real PostgreSQL and a real OpenBao.

The real ``__main__.py`` runs with ``Pulumi.dev.yaml``'s config (addresses of this machine's throwaway
servers) over the shipped tenants plus generated ones; every dynamic resource goes through the real provider
host (:mod:`tests.harness.converge`). The servers are set up as README says: ``sql/provisioner.sql`` and the
provisioner's password, a Vault token made by the "Once per Vault" commands, the Metabase double (no Metabase
runs here). One converge is shared by the module; the tests after it (second pass, drift, state lost) run on
the same servers and state, in file order, so a failure in one can show again in those after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors

from components import naming
from components.providers.vault import render_policy
from components.spec import TenantSpec, load_tenants
from tests.harness.converge import (
    Converger,
    EngineHost,
    Pass,
    Requests,
    Servers,
    servers_for_converge,
    write_tenants,
)
from tests.harness.provider_host import ProviderHost
from tests.program.converged import (
    MOUNT,
    approle_token,
    connect_as,
    database_login,
    inventory,
    secret_values,
    vault,
)

pytestmark = pytest.mark.xdist_group("converge")

GENERATED = range(70_000_000, 70_000_007)
SEEDED_TABLES = ("contacts", "events")


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with servers_for_converge() as found:
        yield found


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[TenantSpec]]:
    """Tenant file patterns (shipped + generated) and the tenants they declare."""
    folder = tmp_path_factory.mktemp("tenants")
    write_tenants(folder, GENERATED)
    patterns = ["tenants/*.yaml", f"{folder}/*.yaml"]
    specs = load_tenants([*sorted(Path("tenants").resolve().glob("*.yaml")), *sorted(folder.glob("*.yaml"))])
    return patterns, specs


@pytest.fixture(scope="module")
def host(servers: Servers, fleet: tuple[list[str], list[TenantSpec]]) -> Iterator[ProviderHost]:
    with EngineHost() as started:
        started.configure(servers.config(fleet[0]))
        yield started


@pytest.fixture(scope="module")
def converger(host: ProviderHost, servers: Servers, fleet: tuple[list[str], list[TenantSpec]]) -> Converger:
    return Converger(host, servers.config(fleet[0]))


@pytest.fixture(scope="module")
def first(converger: Converger, servers: Servers) -> tuple[Pass, Requests]:
    """The first converge, from empty state, and the requests it sent."""
    mark = servers.mark()
    done = converger.up()
    sent = servers.requests_since(mark)
    assert not done.errors, [s.error.message for s in done.errors if s.error]
    assert done.failure is None, done.failure
    return done, sent


@pytest.fixture(scope="module")
def roles(first: tuple[Pass, Requests]) -> dict[str, str]:
    """Each tenant's database role, as the stack exports it."""
    return {rut: str(summary["role_name"]) for rut, summary in first[0].stack_outputs["tenants"].items()}


@pytest.fixture(scope="module")
def tenants(fleet: tuple[list[str], list[TenantSpec]], first: tuple[Pass, Requests]) -> list[TenantSpec]:
    return fleet[1]


def by_name(converger: Converger, name: str) -> Any:
    [entry] = [e for e in converger.entries() if e.name == name]
    return entry


# -- the first converge ----------------------------------------------------------------------------------


def test_the_program_converges_every_shipped_and_generated_tenant(
    first: tuple[Pass, Requests], tenants: list[TenantSpec], servers: Servers
) -> None:
    done, sent = first
    assert len(tenants) >= 10
    assert set(done.stack_outputs["tenants"]) == {t.rut for t in tenants}
    assert done.ops["create"] == len(done.steps) > 10 * len(tenants)
    assert {s.tenant for s in done.steps} == {t.rut for t in tenants} | {""}
    # Every system really received the work (the counters below see what they must see).
    writes = sent.writes()
    assert len([s for s in writes["postgres"] if s.startswith("CREATE ROLE")]) == len(tenants)
    assert len([p for op, p in writes["vault"] if p.startswith("auth/approle/role/")]) == len(tenants)
    assert writes["metabase"]
    found = inventory(servers)
    roles = {rut: summary["role_name"] for rut, summary in done.stack_outputs["tenants"].items()}
    assert found["roles"] == sorted(roles.values())
    assert found["bindings"] == sorted((role, rut) for rut, role in roles.items())


def test_each_tenant_approle_reads_its_own_secrets_and_is_refused_every_other_tenants(
    servers: Servers, tenants: list[TenantSpec], roles: dict[str, str]
) -> None:
    for spec in tenants:
        token = approle_token(servers, spec.rut)
        own = vault(servers, "GET", f"{MOUNT}/data/{naming.vault_secret_path(spec.rut, 'postgres')}", token=token)
        assert own.status_code == 200
        assert own.json()["data"]["data"]["username"] == roles[spec.rut]
        listed = vault(servers, "LIST", f"{MOUNT}/metadata/{naming.vault_tenant_prefix(spec.rut)}", token=token)
        assert sorted(listed.json()["data"]["keys"]) == sorted([*spec.secrets, "postgres"])
        for other in tenants:
            if other.rut == spec.rut:
                continue
            for path in (
                f"{MOUNT}/data/{naming.vault_secret_path(other.rut, 'postgres')}",
                f"{MOUNT}/metadata/{naming.vault_tenant_prefix(other.rut)}",
            ):
                method = "LIST" if "/metadata/" in path else "GET"
                answer = vault(servers, method, path, token=token)
                assert answer.status_code == 403, f"tenant {spec.rut} reached {path}: {answer.status_code}"
        subtree = vault(servers, "LIST", f"{MOUNT}/metadata/tenants", token=token)
        assert subtree.status_code == 403, f"tenant {spec.rut} listed every tenant"


def test_each_tenant_role_sees_only_its_own_rows_and_cannot_write_another_tenants(
    servers: Servers, tenants: list[TenantSpec]
) -> None:
    with servers.postgres.connect(dbname="smarteros") as admin:
        for spec in tenants:
            admin.execute("INSERT INTO contacts (tenant_rut, name) VALUES (%s, 'seeded')", (spec.rut,))
            admin.execute("INSERT INTO events (tenant_rut, kind) VALUES (%s, 'seeded')", (spec.rut,))
    for spec in tenants:
        other = next(t.rut for t in tenants if t.rut != spec.rut)
        with connect_as(servers, database_login(servers, spec.rut)) as conn:
            assert [r[0] for r in conn.execute("SELECT rut FROM tenant_overview")] == [spec.rut]
            tables = [t for t in SEEDED_TABLES if t in spec.database.tables]
            assert tables, f"tenant {spec.rut} has none of {SEEDED_TABLES}"
            for table in tables:
                query = psycopg.sql.SQL("SELECT tenant_rut FROM {}").format(psycopg.sql.Identifier(table))
                assert [r[0] for r in conn.execute(query)] == [spec.rut], f"{spec.rut} on {table}"
                if "insert" in spec.database.privileges:
                    column = "name" if table == "contacts" else "kind"
                    insert = psycopg.sql.SQL("INSERT INTO {} (tenant_rut, {}) VALUES (%s, 'forged')").format(
                        psycopg.sql.Identifier(table), psycopg.sql.Identifier(column)
                    )
                    with (
                        pytest.raises(errors.InsufficientPrivilege, match="row-level security"),
                        conn.transaction(),
                    ):
                        conn.execute(insert, (other,))
                if "update" in spec.database.privileges:
                    update = psycopg.sql.SQL("UPDATE {} SET tenant_rut = tenant_rut WHERE tenant_rut = %s").format(
                        psycopg.sql.Identifier(table)
                    )
                    assert conn.execute(update, (other,)).rowcount == 0
                if "delete" in spec.database.privileges:
                    delete = psycopg.sql.SQL("DELETE FROM {} WHERE tenant_rut = %s").format(
                        psycopg.sql.Identifier(table)
                    )
                    assert conn.execute(delete, (other,)).rowcount == 0
    with servers.postgres.connect(dbname="smarteros") as admin:
        for table in SEEDED_TABLES:
            query = psycopg.sql.SQL("SELECT tenant_rut, count(*) FROM {} GROUP BY 1").format(
                psycopg.sql.Identifier(table)
            )
            assert dict(admin.execute(query).fetchall()) == {t.rut: 1 for t in tenants}


# -- the passes after it -----------------------------------------------------------------------------------


def test_a_second_pass_reports_no_change_and_writes_nothing(
    converger: Converger, servers: Servers, tenants: list[TenantSpec]
) -> None:
    mark = servers.mark()
    done = converger.up(refresh=True)
    sent = servers.requests_since(mark)
    assert done.failure is None and not done.errors
    assert [(s.name, s.op) for s in done.changed()] == []
    assert done.ops["read"] == done.ops["same"] == len(converger.state)
    assert sent.writes() == {"postgres": [], "vault": [], "metabase": []}
    # The pass did talk to every server (so "no write" is not "no request").
    assert sent.vault["read"] >= len(tenants) * 3
    assert sent.metabase["GET"] > 0


def test_drift_made_by_hand_shows_in_read_and_the_next_converge_repairs_it(
    converger: Converger, servers: Servers, tenants: list[TenantSpec], roles: dict[str, str]
) -> None:
    victim = next(t for t in tenants if t.analytics.enabled and "insert" in t.database.privileges)
    rut, role = victim.rut, roles[victim.rut]
    table = sorted(victim.database.tables)[0]
    service = sorted(victim.secrets)[0]
    key = sorted(victim.secrets[service].generate)[0]
    before = secret_values(servers, [victim])[f"{rut}/{service}"]
    policy = naming.vault_policy_name(rut)
    viewers = int(by_name(converger, f"{rut}-viewers").outputs["group_id"])
    collection = int(by_name(converger, f"{rut}-collection").outputs["collection_id"])

    # By hand, in each system.
    with servers.postgres.connect(dbname="smarteros") as admin:
        admin.execute(
            psycopg.sql.SQL("REVOKE INSERT ON {} FROM {}").format(
                psycopg.sql.Identifier(table), psycopg.sql.Identifier(role)
            )
        )
    remaining = {k: v for k, v in before.items() if k != key}
    assert (
        vault(
            servers, "POST", f"{MOUNT}/data/{naming.vault_secret_path(rut, service)}", json={"data": remaining}
        ).status_code
        == 200
    )
    widened = f'path "{MOUNT}/data/tenants/*" {{\n  capabilities = ["read", "list"]\n}}\n'
    assert vault(servers, "PUT", f"sys/policies/acl/{policy}", json={"policy": widened}).status_code == 204
    servers.metabase.hand_set_collection_edge(viewers, collection, "write")

    # Read shows each change.
    steps, seen = converger.refresh()
    assert all(s.op == "read" for s in steps)

    def live(name: str) -> dict[str, Any]:
        return seen[by_name(converger, name).urn][1]

    assert "insert" not in live(f"{rut}-grants")["granted"][table]
    assert live(f"{rut}-{service}")["removed_keys"] == [key]
    assert live(f"{rut}-policy")["policy"] == widened
    assert live(f"{rut}-viewers-collection")["level"] == "write"
    # (Other outputs may move too, such as the graph revision a Metabase edge last saw; what counts is that
    # the next converge changes exactly the four drifted resources.)
    drifted = {f"{rut}-grants", f"{rut}-{service}", f"{rut}-policy", f"{rut}-viewers-collection"}

    # The next converge repairs exactly those, and puts the deleted key back with its value.
    done = converger.up()
    assert done.failure is None
    assert sorted((s.name, s.op) for s in done.changed()) == sorted((name, "update") for name in drifted)
    with servers.postgres.connect(dbname="smarteros") as admin:
        granted = admin.execute("SELECT has_table_privilege(%s, %s, 'INSERT')", (role, f"public.{table}")).fetchone()
        assert granted == (True,)
    assert secret_values(servers, [victim])[f"{rut}/{service}"] == before
    text = vault(servers, "GET", f"sys/policies/acl/{policy}").json()["data"]["policy"]
    assert text == render_policy(rut, MOUNT, "smarteros/dev")
    assert servers.metabase.collection_graph()["groups"][str(viewers)][str(collection)] == "read"
    again = converger.up(refresh=True)
    assert again.changed() == []


def test_with_state_lost_a_converge_adopts_everything_without_error_or_duplicate(
    converger: Converger, servers: Servers, tenants: list[TenantSpec], roles: dict[str, str]
) -> None:
    owned_before = inventory(servers)
    secrets_before = secret_values(servers, tenants)
    resources = len(converger.state)
    converger.forget()

    done = converger.up()
    assert done.failure is None, [s.error.message for s in done.errors if s.error]
    assert done.ops == {"create": resources}
    assert inventory(servers) == owned_before
    after = secret_values(servers, tenants)
    # Generated values are adopted as they are; the database login is the role's (whose password the
    # adopted role was given again), and it works.
    for path, values in secrets_before.items():
        if path.endswith("/postgres"):
            assert after[path]["username"] == values["username"]
        else:
            assert after[path] == values, path
    for spec in tenants:
        with connect_as(servers, database_login(servers, spec.rut)) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (roles[spec.rut],)
    assert converger.up(refresh=True).changed() == []


def test_no_credential_reaches_state_outputs_or_the_host_log(
    converger: Converger, servers: Servers, host: ProviderHost, first: tuple[Pass, Requests]
) -> None:
    outputs = repr(first[0].stack_outputs)
    logs = host.logs()
    state = repr([(entry.inputs, entry.outputs) for entry in converger.entries()])
    # Counted, so a failure prints no credential.
    assert sum(credential in outputs for credential in servers.credentials()) == 0
    assert sum(credential in logs for credential in servers.credentials()) == 0
    assert sum(credential in state for credential in servers.credentials()) == 0
