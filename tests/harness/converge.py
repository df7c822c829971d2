"""Converge the real program against real servers, the way ``pulumi up`` does, without a Pulumi engine.

The project's ``__main__.py`` runs under Pulumi mocks (as :mod:`components.graph` runs it), with the config
of ``Pulumi.dev.yaml`` whose addresses point at the servers of this machine. The mocks' ``new_resource``
plays the engine for every dynamic resource: it sends the resource through the real ``python -m
pulumi.dynamic`` host (:class:`EngineHost`) with the provider exactly as the SDK serialised it (the
``__provider`` input the program registered), and hands the real outputs back to the program, so a
tenant's Vault secret really receives the password its PostgreSQL role was created with. Any other resource
(pulumi-cloudflare) stays a plain mock that echoes its inputs.

What :class:`Converger` does per dynamic resource, as the engine does on ``pulumi up``:

* no state: Check (``olds`` empty), then Create with the checked inputs;
* state: Check (``olds`` = the inputs in state), Diff against the outputs in state, then Update when it
  reports a change, a replacement (Create, then Delete the old one; Delete first when it says so) when it
  names replaced fields, and nothing when it reports none;
* ``refresh=True`` first Reads every resource in state (in parallel, as ``pulumi up --refresh`` does) and
  keeps what the servers answer; a resource Read reports gone leaves the state and is created again.

The state (:attr:`Converger.state`) holds, per URN, the id, checked inputs, outputs and serialised provider,
and survives between passes; :meth:`Converger.forget` loses it. After the first failing step no new step
starts (the engine's default); steps already running finish.

:meth:`Converger.preview` plays ``pulumi preview`` (``--refresh``): the same program and calls up to Diff,
never Create, Update or Delete, and the state is left as it was (a refresh's answers serve only that
preview's diffs). A resource to be created or changed hands the program its planned inputs as outputs,
where the engine would hand it unknowns.

What it leaves out: ``protect``, and deleting resources the program no longer registers (they stay
in state); steps run as the SDK registers them, in its executor threads, rather than under the engine's
``--parallel`` limit.

The servers are set up the way README says (:func:`setup_postgres`, :func:`setup_vault`), plus what the tests
need to count requests: ``log_statement`` on the provisioning role, and a file audit device on OpenBao
(declared in server config: OpenBao refuses to enable audit devices through its API).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
from psycopg import sql
from pulumi.runtime import rpc
from stdnum.cl import rut as cl_rut

from components.config import PROJECT
from components.graph import ROOT, ProgramRun, _mock_classes, _working_directory, load_stack_file
from components.local.bootstrap import bootstrap_postgres
from tests.harness.lifeline import FILES, claim
from tests.harness.openbao import OpenBaoServer, provision
from tests.harness.postgres import PostgresServer
from tests.harness.provider_host import PROVIDER_KEY, ProviderCallError, ProviderHost

STACK = "dev"
DBNAME = "smarteros"
PROVISIONER = "smarteros_provisioner"
DYNAMIC_PREFIX = "pulumi-python:dynamic/"
CREDENTIAL_KEYS = (f"{PROJECT}:postgresPassword", f"{PROJECT}:vaultToken", f"{PROJECT}:metabaseApiKey")


# --------------------------------------------------------------------------------------------------
# The provider host, fed the provider the program serialised
# --------------------------------------------------------------------------------------------------


class EngineHost(ProviderHost):
    """A provider host that also accepts a provider already serialised (the ``__provider`` string the
    program registered, or the one kept in state), as the engine passes it on."""

    @staticmethod
    def serialized(provider: Any) -> str:
        return provider if isinstance(provider, str) else ProviderHost.serialized(provider)


# --------------------------------------------------------------------------------------------------
# Servers, set up the way README says
# --------------------------------------------------------------------------------------------------


def setup_postgres(server: PostgresServer, *, log_statement: str = "mod") -> str:
    """README's "Once per database" as the administrator (the superuser), through the product's own
    bootstrap (:func:`components.local.bootstrap.bootstrap_postgres`): the database, ``sql/provisioner.sql``,
    the provisioner's password. Returns the password.

    Then, for the tests only: ``log_statement`` on the provisioning role, how tests count what ``pulumi up``
    sends.
    """
    import secrets

    password = secrets.token_urlsafe(24)
    bootstrap_postgres(server.admin(), DBNAME, known_passwords={PROVISIONER: password})
    with server.connect(dbname=DBNAME) as admin:
        set_log_statement(admin, log_statement)
    return password


def set_log_statement(admin: psycopg.Connection[Any], level: str) -> None:
    """Log the provisioning role's statements (``mod``: writes only; ``all``: every statement)."""
    admin.execute(
        sql.SQL("ALTER ROLE {} SET log_statement = {}").format(sql.Identifier(PROVISIONER), sql.Literal(level))
    )


def setup_vault(server: OpenBaoServer) -> str:
    """README's "Once per Vault" through the product's bootstrap (:func:`tests.harness.openbao.provision`):
    returns the token."""
    return provision(server.address, server.root_token)


def issue_vault_token(server: OpenBaoServer) -> str:
    """Another provisioning token, made the same way (the policy is installed again, unchanged)."""
    return provision(server.address, server.root_token)


def token_policies(server: OpenBaoServer, token: str) -> tuple[str, ...]:
    """The policies a token carries, as the operator looks them up (``auth/token/lookup``: a token without
    the ``default`` policy cannot look itself up)."""
    answer = server.request("POST", "auth/token/lookup", json={"token": token})
    return tuple(sorted(answer.json()["data"]["policies"]))


def audit_config(folder: Path) -> tuple[Path, Path]:
    """A server config file declaring a file audit device; returns ``(config, audit log)``."""
    log = folder / "audit.log"
    config = folder / "audit.hcl"
    config.write_text(f'audit "file" "converge" {{\n  options {{\n    file_path = {json.dumps(str(log))}\n  }}\n}}\n')
    return config, log


# --------------------------------------------------------------------------------------------------
# Tenant files
# --------------------------------------------------------------------------------------------------


def make_rut(body: int) -> str:
    """The normal form of the RUT with this body: ``70000000-K``."""
    return f"{body}-{cl_rut.calc_check_digit(str(body))}"


def tenant_yaml(body: int) -> str:
    """A tenant file like the shipped ones, for a generated customer."""
    slug = f"cliente-{body}"
    return f"""rut: {cl_rut.format(str(body) + cl_rut.calc_check_digit(str(body)))}
slug: {slug}
name: Cliente {body}
type: customer
status: active
plan: pro
products: [chat]
access:
  emails: [admin@{slug}.example.cl]
  email_domains: []
database:
  tables: [contacts, events]
  privileges: [select, insert, update, delete]
  connection_limit: 5
  statement_timeout: 30s
secrets:
  chatwoot:
    generate: [secret_key_base]
    external: [api_access_token]
  odoo:
    generate: [admin_password]
analytics:
  owners: [admin@{slug}.example.cl]
  viewers: []
  queries: query-builder
"""


def write_tenants(folder: Path, bodies: Sequence[int]) -> list[str]:
    """Write one generated tenant file per RUT body into ``folder``; returns their RUTs."""
    folder.mkdir(parents=True, exist_ok=True)
    for body in bodies:
        (folder / f"cliente-{body}.yaml").write_text(tenant_yaml(body), encoding="utf-8")
    return [make_rut(body) for body in bodies]


# --------------------------------------------------------------------------------------------------
# Requests the servers received
# --------------------------------------------------------------------------------------------------

# One logged statement: "LOG:  statement: ..." (simple protocol), "LOG:  execute <name>: ..." (extended), or
# "LOG:  smarteros_admin: ..." (a role change made inside the SECURITY DEFINER functions of
# sql/provisioner.sql, which the provisioner calls with a SELECT), running on until the next line that
# starts with a timestamp.
_PG_STATEMENT = re.compile(
    r"LOG:\s+(?:statement|execute [^:\n]*|smarteros_admin):\s*(.*?)(?=\n\d{4}-\d\d-\d\d |\Z)", re.DOTALL
)
_SQL_COMMENT = re.compile(r"--[^\n]*")
PG_READS = frozenset({"SELECT", "SHOW", "SET", "RESET", "BEGIN", "COMMIT", "ROLLBACK", "START", "DISCARD"})
_VAULT_WRITES = frozenset({"create", "update", "delete"})


def statement_kind(statement: str) -> str:
    """The first keyword of a statement, upper-case (``SELECT``, ``GRANT``…)."""
    words = statement.split(maxsplit=1)
    return words[0].upper() if words else "?"


@dataclass(frozen=True)
class Mark:
    """Where each server's request log stood."""

    postgres: int
    vault: int
    metabase: int


@dataclass
class Requests:
    """Requests sent to each system between two marks, by method (PostgreSQL: by statement)."""

    postgres: Counter[str] = field(default_factory=Counter)
    vault: Counter[str] = field(default_factory=Counter)
    metabase: Counter[str] = field(default_factory=Counter)
    vault_paths: list[tuple[str, str]] = field(default_factory=list)
    postgres_statements: list[str] = field(default_factory=list)
    metabase_paths: list[tuple[str, str]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"Requests({ {k: dict(v) for k, v in self.by_system().items()} })"

    def writes(self) -> dict[str, list[Any]]:
        """Every request that could change something, per system (empty lists when there is none)."""
        return {
            "postgres": [s for s in self.postgres_statements if statement_kind(s) not in PG_READS],
            "vault": [(op, path) for op, path in self.vault_paths if op in _VAULT_WRITES],
            "metabase": [(m, p) for m, p in self.metabase_paths if m != "GET"],
        }

    def by_system(self) -> dict[str, Counter[str]]:
        return {"postgres": self.postgres, "vault": self.vault, "metabase": self.metabase}


@dataclass
class Servers:
    """The servers one converge talks to, with the credentials README's set-up produced."""

    postgres: PostgresServer
    openbao: OpenBaoServer
    metabase: Any  # tests.metabase.double.MetabaseDouble
    postgres_password: str
    vault_token: str
    audit_log: Path
    vault_policies: tuple[str, ...] = ()
    """The provisioning token's policies: requests carrying exactly these are the provisioner's."""

    def __repr__(self) -> str:  # no credential in assertion output
        return f"Servers(postgres={self.postgres!r}, openbao={self.openbao!r}, metabase={self.metabase.url!r})"

    def config(self, tenant_files: Sequence[str]) -> dict[str, Any]:
        """``Pulumi.dev.yaml``'s config with these servers' addresses and the credentials as secrets."""
        values, _ = load_stack_file(STACK)
        config: dict[str, Any] = {k: v for k, v in values.items() if k not in CREDENTIAL_KEYS}
        postgres = dict(config[f"{PROJECT}:postgres"])
        postgres.update(host=self.postgres.host, port=self.postgres.port)
        vault = dict(config[f"{PROJECT}:vault"])
        vault.update(address=self.openbao.address)
        metabase = dict(config[f"{PROJECT}:metabase"])
        metabase.update(url=self.metabase.url)
        metabase["database"] = {**metabase["database"], "host": self.postgres.host, "port": self.postgres.port}
        config.update(
            {
                f"{PROJECT}:tenantFiles": list(tenant_files),
                f"{PROJECT}:postgres": postgres,
                f"{PROJECT}:vault": vault,
                f"{PROJECT}:metabase": metabase,
                f"{PROJECT}:postgresPassword": self.postgres_password,
                f"{PROJECT}:vaultToken": self.vault_token,
                f"{PROJECT}:metabaseApiKey": self.metabase.api_key,
            }
        )
        return config

    def credentials(self) -> list[str]:
        return [
            self.postgres_password,
            self.vault_token,
            self.postgres.superuser_password,
            self.openbao.root_token,
            self.metabase.api_key,
        ]

    # -- counting -----------------------------------------------------------------------------------

    def mark(self) -> Mark:
        time.sleep(0.2)  # let the servers flush their logs
        return Mark(
            postgres=self.postgres.log_file.stat().st_size,
            vault=self.audit_log.stat().st_size if self.audit_log.exists() else 0,
            metabase=len(self.metabase.requests),
        )

    def requests_since(self, mark: Mark) -> Requests:
        """What the provisioning identities sent since ``mark`` (the tests' own requests are left out)."""
        time.sleep(0.2)
        found = Requests()
        with self.postgres.log_file.open("rb") as log:
            log.seek(mark.postgres)
            text = log.read().decode(errors="replace")
        for match in _PG_STATEMENT.finditer(text):
            statement = " ".join(_SQL_COMMENT.sub(" ", match.group(1)).split())
            found.postgres_statements.append(statement)
            found.postgres[statement_kind(statement)] += 1
        if self.audit_log.exists():
            with self.audit_log.open("rb") as audit:
                audit.seek(mark.vault)
                wanted = set(self.vault_policies)
                for line in audit.read().decode(errors="replace").splitlines():
                    entry = json.loads(line)
                    policies = set((entry.get("auth") or {}).get("policies") or [])
                    if entry.get("type") != "request" or policies != wanted:
                        continue
                    request = entry.get("request") or {}
                    found.vault[request.get("operation", "?")] += 1
                    found.vault_paths.append((request.get("operation", "?"), request.get("path", "?")))
        for method, path in list(self.metabase.requests)[mark.metabase :]:
            found.metabase[method] += 1
            found.metabase_paths.append((method, path))
        return found


@contextlib.contextmanager
def servers_for_converge(*, log_statement: str = "mod") -> Iterator[Servers]:
    """A throwaway PostgreSQL, an OpenBao dev server with a file audit device, and the Metabase double,
    set up as README says; all stopped on exit."""
    from tests.metabase.double import MetabaseDouble

    files = claim(FILES, "smarteros-converge-")
    config, audit_log = audit_config(files.base_dir)
    with contextlib.ExitStack() as stack:
        stack.callback(files.close)  # last: after OpenBao, which writes the audit log, has stopped
        postgres = PostgresServer.start()
        stack.callback(postgres.stop)
        openbao = OpenBaoServer.start(config_files=(str(config),))
        stack.callback(openbao.stop)
        metabase = MetabaseDouble().start()
        stack.callback(metabase.stop)
        servers = Servers(
            postgres=postgres,
            openbao=openbao,
            metabase=metabase,
            postgres_password=setup_postgres(postgres, log_statement=log_statement),
            vault_token=setup_vault(openbao),
            audit_log=audit_log,
        )
        servers.vault_policies = token_policies(openbao, servers.vault_token)
        yield servers


# --------------------------------------------------------------------------------------------------
# The engine's part
# --------------------------------------------------------------------------------------------------


@dataclass
class StateEntry:
    """What the engine keeps for one resource between deployments."""

    urn: str
    type: str
    name: str
    id: str
    provider: str = field(repr=False)
    inputs: dict[str, Any] = field(repr=False)  # outputs and inputs hold secrets: never in assertion output
    outputs: dict[str, Any] = field(repr=False)
    retain_on_delete: bool = False


@dataclass
class Step:
    """One thing done to one resource: ``create``, ``update``, ``replace``, ``same``, ``read``, ``gone``,
    ``failed`` (the provider raised; ``error`` is its message) or ``skipped`` (after an earlier failure)."""

    urn: str
    type: str
    name: str
    op: str
    seconds: float = 0.0
    error: ProviderCallError | None = None
    changes: list[str] = field(default_factory=list)

    @property
    def tenant(self) -> str:
        """The resource's tenant, from its logical name (``<rut>-…``); empty for the platform's."""
        match = re.match(r"^((?:0|[1-9][0-9]*)-[0-9K])-", self.name)
        return match.group(1) if match else ""


@dataclass
class Pass:
    """One converge: its steps (in completion order), what the program registered, how it ended."""

    steps: list[Step]
    run: ProgramRun | None
    failure: BaseException | None
    refreshed: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    seconds: float = 0.0
    refresh_seconds: float = 0.0

    def __repr__(self) -> str:  # short, and free of outputs (they hold secrets)
        failed = [f"{s.name}: {s.error.message}" for s in self.errors if s.error]
        return f"Pass(ops={dict(self.ops)}, failure={self.failure!r}, errors={failed[:5]})"

    @property
    def errors(self) -> list[Step]:
        return [s for s in self.steps if s.op == "failed"]

    @property
    def ops(self) -> Counter[str]:
        return Counter(s.op for s in self.steps)

    def changed(self) -> list[Step]:
        """Steps that changed something (or tried to)."""
        return [s for s in self.steps if s.op not in ("same", "read")]

    @property
    def stack_outputs(self) -> dict[str, Any]:
        return self.run.stack_outputs if self.run is not None else {}


class StepFailed(Exception):
    """A provider step failed; the program's registration of that resource fails with it."""


def _plain(value: Any) -> Any:
    """The value with secret wrappers removed (the engine strips them for a host that accepts none)."""
    if rpc.is_rpc_secret(value):
        return _plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class _UnretrievedStepFailures(logging.Filter):
    """A failed step fails every registration waiting on it, and asyncio reports each such future as "Future
    exception was never retrieved" when it is collected; the failures are in the Pass's steps instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, StepFailed)


logging.getLogger("asyncio").addFilter(_UnretrievedStepFailures())


class Converger:
    """Plays the engine for the real program: state, refresh, and Check/Diff/Create/Update through ``host``."""

    def __init__(
        self,
        host: ProviderHost,
        config: Mapping[str, Any],
        *,
        secret_keys: Sequence[str] = CREDENTIAL_KEYS,
        stack: str = STACK,
        root: Path = ROOT,
    ) -> None:
        self.host = host
        self.config = dict(config)
        self.secret_keys = list(secret_keys)
        self.stack = stack
        self.root = root
        self.state: dict[str, StateEntry] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """State lost: the next converge starts from nothing."""
        with self._lock:
            self.state.clear()

    def entries(self, type_suffix: str = "") -> list[StateEntry]:
        with self._lock:
            return [e for e in self.state.values() if e.type.endswith(type_suffix)]

    # -- refresh ------------------------------------------------------------------------------------

    def refresh(self, *, workers: int = 4) -> tuple[list[Step], dict[str, tuple[dict[str, Any], dict[str, Any]]]]:
        """Read every resource in state and keep the live answer (``pulumi refresh``)."""
        steps: list[Step] = []
        seen: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

        def read(entry: StateEntry) -> None:
            began = time.perf_counter()
            try:
                found, outputs, inputs = self.host.read(
                    entry.provider, entry.id, entry.urn, entry.outputs, entry.inputs
                )
            except ProviderCallError as error:
                step = Step(entry.urn, entry.type, entry.name, "failed", time.perf_counter() - began, error)
            else:
                with self._lock:
                    seen[entry.urn] = (entry.outputs, outputs)
                    if not found:
                        self.state.pop(entry.urn, None)
                    else:
                        entry.id, entry.outputs = found, outputs
                        if inputs:
                            entry.inputs = inputs
                step = Step(entry.urn, entry.type, entry.name, "read" if found else "gone", time.perf_counter() - began)
            with self._lock:
                steps.append(step)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(read, self.entries()))
        return steps, seen

    # -- up -----------------------------------------------------------------------------------------

    def preview(self, *, refresh: bool = False) -> Pass:
        """One ``pulumi preview`` (``--refresh`` when ``refresh``): what ``up`` would do, without doing it.

        Each step's ``op`` is what the engine would show (``create``, ``update``, ``replace``, ``same``)
        and ``changes`` the fields a replacement names; the state is unchanged afterwards.
        """
        with self._lock:
            saved = copy.deepcopy(self.state)
        try:
            return self.up(refresh=refresh, apply=False)
        finally:
            with self._lock:
                self.state = saved

    def up(
        self,
        *,
        refresh: bool = False,
        before_step: Callable[[Step], None] | None = None,
        apply: bool = True,
    ) -> Pass:
        """One ``pulumi up`` (``--refresh`` when ``refresh``): returns every step and how the program ended.

        ``before_step`` is called before each dynamic resource's first call to the host (tests use it to
        break a server in the middle of a converge). ``apply=False`` stops each step at Diff (a preview).
        """
        began = time.perf_counter()
        steps: list[Step] = []
        refreshed: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        if refresh:
            read_steps, refreshed = self.refresh()
            steps.extend(read_steps)
            failed = [s for s in read_steps if s.op == "failed"]
            if failed:
                took = time.perf_counter() - began
                return Pass(steps, None, StepFailed(failed[0].error), refreshed, took, took)
        refresh_seconds = time.perf_counter() - began
        aborted = threading.Event()
        current = threading.local()
        converger = self

        program_mocks, recording_monitor = _mock_classes()

        class EngineMocks(program_mocks):  # type: ignore[misc,valid-type]
            def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
                request = current.request
                if not args.typ.startswith(DYNAMIC_PREFIX) or PROVIDER_KEY not in args.inputs:
                    return super().new_resource(args)
                urn = current.urn
                step = Step(urn, args.typ, args.name, "skipped")
                try:
                    if aborted.is_set():
                        raise StepFailed(f"{args.name}: not started, an earlier step failed")
                    if before_step is not None:
                        before_step(step)
                    started = time.perf_counter()
                    try:
                        id_, outputs = converger._step(step, request, args.inputs, apply=apply)
                    except ProviderCallError as error:
                        step.op, step.error = "failed", error
                        aborted.set()
                        raise StepFailed(error.message) from None
                    finally:
                        step.seconds = time.perf_counter() - started
                finally:
                    with converger._lock:
                        steps.append(step)
                secret = set(request.additionalSecretOutputs) | {
                    k for k, v in args.inputs.items() if rpc.is_rpc_secret(v)
                }
                return id_, {k: rpc.wrap_rpc_secret(v) if k in secret else v for k, v in outputs.items()}

        class EngineMonitor(recording_monitor):  # type: ignore[misc,valid-type]
            def RegisterResource(self, request: Any) -> Any:
                current.request = request
                current.urn = self.make_urn(request.parent, request.type, request.name)
                return super().RegisterResource(request)

        failure: BaseException | None = None
        mocks = EngineMocks()
        monitor = EngineMonitor(mocks)
        try:
            self._run(mocks, monitor, preview=not apply)
        except Exception as error:
            failure = error
        run = ProgramRun(list(monitor.registered), dict(monitor.outputs), monitor.stack_urn)
        if failure is None and aborted.is_set():
            failure = StepFailed("a step failed")
        return Pass(steps, run, failure, refreshed, time.perf_counter() - began, refresh_seconds)

    def _run(self, mocks: Any, monitor: Any, *, preview: bool = False) -> None:
        import runpy

        import pulumi
        from pulumi.runtime import settings
        from pulumi.runtime.stack import run_in_stack
        from pulumi.runtime.sync_await import _sync_await

        raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in self.config.items()}
        pulumi.runtime.set_all_config(raw, self.secret_keys)
        settings.ROOT.set(None)
        settings.SETTINGS.rpc_manager.clear()
        settings.SETTINGS.outputs.clear()
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=self.stack, preview=preview, monitor=monitor)
        settings.ROOT.set(None)

        def main() -> None:
            runpy.run_path(str(self.root / "__main__.py"), run_name="__main__")

        with _working_directory(self.root):
            _sync_await(run_in_stack(main))

    def _step(
        self, step: Step, request: Any, registered: Mapping[str, Any], *, apply: bool = True
    ) -> tuple[str, dict[str, Any]]:
        """Check, then Create, or Diff and Update/replace, as the engine does; records the state. With
        ``apply=False``, only Check and Diff: the step says what would happen and nothing is recorded."""
        provider = str(_plain(registered[PROVIDER_KEY]))
        news = {k: _plain(v) for k, v in registered.items() if k != PROVIDER_KEY}
        with self._lock:
            old = self.state.get(step.urn)
        check = self.host.check(provider, step.urn, old.inputs if old else {}, news)
        if check.failures:
            reasons = "; ".join(f"{p}: {r}" for p, r in check.failures)
            raise ProviderCallError("Check", grpc.StatusCode.INVALID_ARGUMENT, reasons)
        inputs = check.inputs
        if not apply:
            return self._planned(step, provider, old, inputs)
        if old is None:
            id_, outputs = self.host.create(provider, step.urn, inputs)
            step.op = "create"
        else:
            diff = self.host.diff(provider, old.id, step.urn, old.outputs, inputs)
            changes = diff.changes if diff.changes is not None else old.inputs != inputs
            if diff.replaces:
                step.op, step.changes = "replace", list(diff.replaces)
                if diff.delete_before_replace:
                    self.host.delete(old.provider, old.id, step.urn, old.outputs)
                id_, outputs = self.host.create(provider, step.urn, inputs)
                if not diff.delete_before_replace:
                    self.host.delete(old.provider, old.id, step.urn, old.outputs)
            elif changes:
                step.op = "update"
                id_, outputs = old.id, self.host.update(provider, old.id, step.urn, old.outputs, inputs)
            else:
                step.op = "same"
                id_, outputs = old.id, old.outputs
        with self._lock:
            self.state[step.urn] = StateEntry(
                urn=step.urn,
                type=step.type,
                name=step.name,
                id=id_,
                provider=provider,
                inputs=inputs,
                outputs=outputs,
                retain_on_delete=bool(request.retainOnDelete),
            )
        return id_, outputs

    def _planned(
        self, step: Step, provider: str, old: StateEntry | None, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """What a preview shows for one resource: its op, and the outputs the program sees meanwhile."""
        if old is None:
            step.op = "create"
            return f"(would create {step.name})", dict(inputs)
        diff = self.host.diff(provider, old.id, step.urn, old.outputs, inputs)
        changes = diff.changes if diff.changes is not None else old.inputs != inputs
        if diff.replaces:
            step.op, step.changes = "replace", list(diff.replaces)
        elif changes:
            step.op = "update"
        else:
            step.op = "same"
            return old.id, old.outputs
        return old.id, {**old.outputs, **inputs}
