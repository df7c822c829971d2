"""``pulumi preview`` with identities that cannot write, the way the workflows' ``preview`` environment runs it.

The fleet is first converged with the writing identities (as the ``production`` environment would). The
read-only identities are then made by README's "Once per preview environment" commands, and the same
program is previewed (:meth:`Converger.preview`) through a provider host whose environment holds only
those identities and ``SMARTEROS_READ_ONLY=true``, with a stack config that holds no credential. Every
request is counted on the servers themselves: PostgreSQL's statement log (every statement of the preview
role, the provisioner's writes), OpenBao's audit log (every request, whoever sent it) and the Metabase
double's request log.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from components import naming
from components.access import PREVIEW_ROLE, READ_ONLY_ENV
from components.local.bootstrap import bootstrap_postgres, bootstrap_vault
from components.local.steps import readme_steps
from components.spec import TenantSpec, load_tenants
from tests.harness.converge import (
    CREDENTIAL_KEYS,
    DBNAME,
    PG_READS,
    Converger,
    EngineHost,
    Pass,
    Servers,
    make_rut,
    servers_for_converge,
    set_log_statement,
    statement_kind,
    token_policies,
    write_tenants,
)
from tests.harness.openbao import run_readme_vault_commands
from tests.harness.provider_host import ProviderHost
from tests.postgres.test_readme_setup import run_readme_psql
from tests.program.converged import MOUNT, secret_values, vault

pytestmark = pytest.mark.xdist_group("converge")

GENERATED = range(71_500_000, 71_500_003)
LOG_LINE_PREFIX = "%m [%p] user=%u "
# One logged statement, with the role that sent it (LOG_LINE_PREFIX), running on until the next log line.
PG_STATEMENT = re.compile(
    r"^\d{4}-\S+ \S+ \S+ \[\d+\] user=(\S*) LOG:\s+(?:statement|execute [^:\n]*|smarteros_admin):\s*(.*?)"
    r"(?=\n\d{4}-\d\d-\d\d |\Z)",
    re.DOTALL | re.MULTILINE,
)


@dataclass
class Sent:
    """Every request the servers received in a window, whoever sent it (the test sends none meanwhile)."""

    postgres: list[tuple[str, str]] = field(default_factory=list)  # (role, statement)
    vault: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)  # (operation, path, policies)
    metabase: list[tuple[str, str]] = field(default_factory=list)  # (method, path)

    def writes(self) -> dict[str, list[Any]]:
        return {
            "postgres": [s for s in self.postgres if statement_kind(s[1]) not in PG_READS],
            "vault": [r for r in self.vault if r[0] not in ("read", "list")],
            "metabase": [r for r in self.metabase if r[0] != "GET"],
        }


@dataclass
class World:
    servers: Servers
    folder: Path
    patterns: list[str]
    writer: Converger
    preview_env: dict[str, str]
    preview_host: ProviderHost
    preview_policies: tuple[str, ...]

    def specs(self) -> list[TenantSpec]:
        files = [*sorted(Path("tenants").resolve().glob("*.yaml")), *sorted(self.folder.glob("*.yaml"))]
        return load_tenants(files)

    def config_without_credentials(self) -> dict[str, Any]:
        return {k: v for k, v in self.servers.config(self.patterns).items() if k not in CREDENTIAL_KEYS}

    def reader(self) -> Converger:
        """A converger for the preview environment, starting from the writer's state."""
        reader = Converger(self.preview_host, self.config_without_credentials(), secret_keys=[])
        reader.state = copy.deepcopy(self.writer.state)
        return reader

    def mark(self) -> tuple[int, int, int]:
        time.sleep(0.2)
        servers = self.servers
        return (
            servers.postgres.log_file.stat().st_size,
            servers.audit_log.stat().st_size,
            len(servers.metabase.requests),
        )

    def sent_since(self, mark: tuple[int, int, int]) -> Sent:
        time.sleep(0.3)  # let the servers flush their logs
        sent = Sent()
        with self.servers.postgres.log_file.open("rb") as log:
            log.seek(mark[0])
            text = log.read().decode(errors="replace")
        for match in PG_STATEMENT.finditer(text):
            sent.postgres.append((match.group(1), " ".join(match.group(2).split())))
        with self.servers.audit_log.open("rb") as audit:
            audit.seek(mark[1])
            for line in audit.read().decode(errors="replace").splitlines():
                entry = json.loads(line)
                if entry.get("type") != "request":
                    continue
                request = entry.get("request") or {}
                policies = tuple(sorted((entry.get("auth") or {}).get("policies") or []))
                sent.vault.append((request.get("operation", "?"), request.get("path", "?"), policies))
        sent.metabase = list(self.servers.metabase.requests)[mark[2] :]
        return sent


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("tenants")
    write_tenants(folder, GENERATED)
    patterns = ["tenants/*.yaml", f"{folder}/*.yaml"]
    with servers_for_converge() as servers, EngineHost() as writer_host:
        writer_host.configure(servers.config(patterns))
        writer = Converger(writer_host, servers.config(patterns))
        done = writer.up()
        assert done.failure is None and not done.errors, done

        # README's "Once per preview environment", as the administrators would run it.
        passwords = bootstrap_postgres(servers.postgres.admin(), DBNAME, preview=True)
        (token,) = bootstrap_vault(servers.openbao.address, servers.openbao.root_token, MOUNT, preview=True)
        with servers.postgres.connect(dbname=DBNAME) as conn:
            conn.execute(
                psycopg.sql.SQL("ALTER ROLE {} SET log_statement = 'all'").format(psycopg.sql.Identifier(PREVIEW_ROLE))
            )
            set_log_statement(conn, "all")
            conn.execute(
                psycopg.sql.SQL("ALTER SYSTEM SET log_line_prefix = {}").format(psycopg.sql.Literal(LOG_LINE_PREFIX))
            )
            conn.execute("SELECT pg_reload_conf()")
        env = {
            READ_ONLY_ENV: "true",
            "PGPASSWORD": passwords[PREVIEW_ROLE],
            "VAULT_TOKEN": token,
            "METABASE_API_KEY": servers.metabase.api_key,
        }
        with EngineHost(env=env) as preview_host:
            preview_host.configure({k: v for k, v in servers.config(patterns).items() if k not in CREDENTIAL_KEYS})
            yield World(servers, folder, patterns, writer, env, preview_host, token_policies(servers.openbao, token))


@pytest.fixture
def read_only_program(monkeypatch: pytest.MonkeyPatch) -> None:
    """The program itself runs in the preview environment too."""
    monkeypatch.setenv(READ_ONLY_ENV, "true")


def changed(done: Pass) -> list[tuple[str, str]]:
    return sorted((s.name, s.op) for s in done.changed())


def test_the_preview_identities_are_the_ones_readme_makes(world: World) -> None:
    assert world.preview_policies == ("smarteros-preview",)
    with world.servers.postgres.connect(dbname=DBNAME) as admin:
        flags = admin.execute(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = %s",
            (PREVIEW_ROLE,),
        ).fetchone()
    assert flags == (True, False, False, False)


def test_an_unchanged_fleet_previews_as_no_change_and_nothing_is_written(world: World, read_only_program: None) -> None:
    reader = world.reader()
    before = copy.deepcopy(reader.state)
    mark = world.mark()
    done = reader.preview()
    sent = world.sent_since(mark)
    assert done.failure is None and not done.errors, done
    assert changed(done) == []
    assert done.ops["same"] == len(world.writer.state)
    assert sent.writes() == {"postgres": [], "vault": [], "metabase": []}
    # Whatever was read was read by the preview identities.
    assert {policies for _, _, policies in sent.vault} <= {world.preview_policies}
    assert {role for role, _ in sent.postgres} <= {PREVIEW_ROLE}
    assert reader.state.keys() == before.keys()


def test_a_preview_shows_what_a_changed_tenant_file_will_do_and_up_then_does_exactly_that(
    world: World, read_only_program: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    suspended, extended = (f"cliente-{body}.yaml" for body in list(GENERATED)[:2])
    path = world.folder / suspended
    path.write_text(path.read_text(encoding="utf-8").replace("status: active", "status: suspended"), "utf-8")
    path = world.folder / extended
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "    generate: [admin_password]\n",
            "    generate: [admin_password]\n  botpress:\n    generate: [encryption_key]\n",
        ),
        encoding="utf-8",
    )
    reader = world.reader()
    mark = world.mark()
    preview = reader.preview()
    sent = world.sent_since(mark)
    assert preview.failure is None and not preview.errors, preview
    shown = changed(preview)
    suspended_rut = naming_rut(world, suspended)
    extended_rut = naming_rut(world, extended)
    assert {name.split("-")[0] + "-" + name.split("-")[1] for name, _ in shown} == {suspended_rut, extended_rut}
    assert (f"{extended_rut}-botpress", "create") in shown
    assert (f"{suspended_rut}-role", "update") in shown
    assert not [step for step in shown if step[1] == "replace"]
    assert sent.writes() == {"postgres": [], "vault": [], "metabase": []}
    # Nothing happened: the suspended tenant still logs in, and the new secret does not exist.
    with world.servers.postgres.connect(dbname=DBNAME) as admin:
        role = world.writer.entries("TenantRole")
        [entry] = [e for e in role if e.name == f"{suspended_rut}-role"]
        can_login = admin.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (entry.id,)).fetchone()
    assert can_login == (True,)
    path_botpress = f"{MOUNT}/data/{naming.vault_secret_path(extended_rut, 'botpress')}"
    assert vault(world.servers, "GET", path_botpress).status_code == 404

    # `pulumi up` in the production environment then does exactly what the preview showed.
    monkeypatch.delenv(READ_ONLY_ENV)
    done = world.writer.up()
    assert done.failure is None and not done.errors, done
    assert changed(done) == shown
    assert vault(world.servers, "GET", path_botpress).status_code == 200


def naming_rut(world: World, file_name: str) -> str:
    return next(s.rut for s in world.specs() if s.slug == file_name.removesuffix(".yaml"))


def test_a_refresh_preview_finds_drift_with_the_read_only_identities_and_repairs_nothing(
    world: World, read_only_program: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = next(s for s in world.specs() if s.status == "active" and s.secrets)
    service = sorted(victim.secrets)[0]
    before = secret_values(world.servers, [victim])[f"{victim.rut}/{service}"]
    key = sorted(victim.secrets[service].generate)[0]
    remaining = {k: v for k, v in before.items() if k != key}
    where = f"{MOUNT}/data/{naming.vault_secret_path(victim.rut, service)}"
    assert vault(world.servers, "POST", where, json={"data": remaining}).status_code == 200

    reader = world.reader()
    mark = world.mark()
    done = reader.preview(refresh=True)
    sent = world.sent_since(mark)
    assert done.failure is None and not done.errors, done
    assert done.ops["read"] == len(world.writer.state)
    assert changed(done) == [(f"{victim.rut}-{service}", "update")]
    assert sent.writes() == {"postgres": [], "vault": [], "metabase": []}
    assert {policies for _, _, policies in sent.vault} == {world.preview_policies}
    assert {role for role, _ in sent.postgres} == {PREVIEW_ROLE}
    assert any(method == "GET" for method, _ in sent.metabase)
    # Still drifted: the preview repaired nothing. The next `pulumi up --refresh` does.
    assert secret_values(world.servers, [victim])[f"{victim.rut}/{service}"] == remaining
    monkeypatch.delenv(READ_ONLY_ENV)
    repaired = world.writer.up(refresh=True)
    assert changed(repaired) == [(f"{victim.rut}-{service}", "update")]
    assert secret_values(world.servers, [victim])[f"{victim.rut}/{service}"] == before


def test_up_in_the_preview_environment_fails_at_its_first_write_and_writes_nothing(
    world: World, read_only_program: None
) -> None:
    path = world.folder / f"cliente-{list(GENERATED)[2]}.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("connection_limit: 5", "connection_limit: 7"), "utf-8")
    rut = naming_rut(world, path.name)
    reader = world.reader()
    mark = world.mark()
    done = reader.up(refresh=True)
    sent = world.sent_since(mark)
    assert done.failure is not None
    messages = [s.error.message for s in done.errors if s.error]
    assert messages, done
    assert messages == [
        f"components.providers.postgres.PostgresError: tenant {rut}: PostgreSQL: change of the tenant's role not "
        "sent: this run is read-only (SMARTEROS_READ_ONLY=true); changes are applied by `pulumi up` with the "
        "writing credentials"
    ]
    assert sent.writes() == {"postgres": [], "vault": [], "metabase": []}


def test_a_read_only_run_refuses_a_stack_config_that_holds_credentials(world: World, read_only_program: None) -> None:
    reader = Converger(world.preview_host, world.servers.config(world.patterns))
    reader.state = copy.deepcopy(world.writer.state)
    mark = world.mark()
    done = reader.preview()
    sent = world.sent_since(mark)
    assert done.steps == []
    message = str(done.failure)
    assert (
        "smarteros:postgresPassword, smarteros:vaultToken, smarteros:metabaseApiKey: a credential in the "
        "stack config, and this run is read-only (SMARTEROS_READ_ONLY=true)" in message
    )
    for credential in world.servers.credentials():
        assert credential not in message
    assert sent.postgres == sent.vault == sent.metabase == []


def test_a_preview_without_refresh_needs_no_metabase_key(world: World, read_only_program: None) -> None:
    """The preview job runs a branch's code: it must not be handed the Metabase administrator key, which
    can write (README's table); a preview without ``--refresh`` does without it."""
    env = {k: v for k, v in world.preview_env.items() if k != "METABASE_API_KEY"}
    write_tenants(world.folder, [71_500_009])  # a new tenant: new Metabase objects to preview
    try:
        with EngineHost(env=env) as host:
            host.configure(world.config_without_credentials())
            reader = Converger(host, world.config_without_credentials(), secret_keys=[])
            reader.state = copy.deepcopy(world.writer.state)
            mark = world.mark()
            done = reader.preview()
            sent = world.sent_since(mark)
    finally:
        (world.folder / "cliente-71500009.yaml").unlink()
    assert done.failure is None and not done.errors, done
    new = make_rut(71_500_009)
    assert {(f"{new}-owners", "create"), (f"{new}-viewers", "create"), (f"{new}-database", "create")} <= set(
        changed(done)
    )
    # Existing edges naming the built-in All Users group were compared too, without a call.
    assert done.ops["same"] >= len(world.writer.state) - 1
    assert sent.metabase == []
    assert sent.writes() == {"postgres": [], "vault": [], "metabase": []}


def test_readmes_own_preview_commands_make_identities_a_refresh_preview_runs_with(
    world: World, read_only_program: None
) -> None:
    """README's "Once per preview environment" commands, run literally with the real psql and bao (run last:
    ``\\password`` gives the preview role a new password)."""
    steps = readme_steps()
    password = secrets.token_urlsafe(24)
    run_readme_psql(world.servers.postgres, DBNAME, password, steps.preview_for("psql"))
    token = run_readme_vault_commands(
        world.servers.openbao.address,
        world.servers.openbao.root_token,
        [list(step.argv) for step in steps.preview_for("vault")],
    )
    assert token_policies(world.servers.openbao, token) == ("smarteros-preview",)
    env = {**world.preview_env, "PGPASSWORD": password, "VAULT_TOKEN": token}
    with EngineHost(env=env) as host:
        host.configure(world.config_without_credentials())
        reader = Converger(host, world.config_without_credentials(), secret_keys=[])
        reader.state = copy.deepcopy(world.writer.state)
        mark = world.mark()
        done = reader.preview(refresh=True)
        sent = world.sent_since(mark)
    assert done.failure is None and not done.errors, done
    assert done.ops["read"] == len(world.writer.state)
    assert sent.writes() == {"postgres": [], "vault": [], "metabase": []}
    assert {role for role, _ in sent.postgres} == {PREVIEW_ROLE}
