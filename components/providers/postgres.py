"""PostgreSQL: tenant roles, their table grants, their row-level-security bindings and registry rows.

Five dynamic resources (type tokens ``pulumi-python:dynamic/postgres:<Kind>``):

==============  ==========================================================================================
SharedSchema    applies the ordered files of ``sql/schema/`` (idempotent) as ``smarteros_owner``; never
                drops anything, so deleting it leaves every table in place
TenantRecord    the tenant's rows in the registry (``tenants``, ``tenant_products``, ``tenant_domains``)
TenantRole      ``tenant_<24 hex digits>`` (a keyed hash of the RUT, computed by the database): LOGIN,
                member of ``tenant_members``, NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS, a
                connection limit, a ``statement_timeout``, a generated password (a secret output) and a
                ``COMMENT ON ROLE`` naming only the stack that manages it
TableGrants     exactly the privileges of the tenant file on exactly its tables, granted to the role
TenantBinding   the role's row in ``tenant_roles``; every policy keys through it
==============  ==========================================================================================

The provisioner holds no CREATEROLE: tenant roles are created, altered and dropped only through the
SECURITY DEFINER functions of ``smarteros_admin`` (``sql/provisioner.sql``), which take a RUT, compute the
role's name and give it fixed attributes. Role names and comments carry no customer identity, because every
role can read them; ``role_name`` is an output the grants, the binding and Metabase read.

Onboarding a tenant runs no DDL on the shared tables (``CREATE ROLE``, ``GRANT`` and row writes take no lock
that waits for the applications' queries). Writes that touch shared catalog rows (grants, role changes,
the schema) take one transaction-scoped advisory lock, so parallel updates never collide.

The decisions are plain functions over plain data (``validate_*``, ``diff_*``, ``plan_grants``); the
provider classes do the I/O. Connection settings come from stack config in ``configure`` (``smarteros:
postgres`` and the secret ``smarteros:postgresPassword``), falling back to ``DATABASE_URL`` or the libpq
variables ``PGHOST``, ``PGPORT``, ``PGDATABASE``, ``PGUSER``, ``PGPASSWORD``, ``PGSSLMODE``; they live on
the configured copy inside the provider host and are never serialised.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, ClassVar, Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from pulumi import Output, ResourceOptions
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from stdnum.cl import rut as cl_rut

from components import limits
from components.access import PREVIEW_ROLE, ReadOnlyRefusal, read_only
from components.config import PostgresConfig, secret_from_raw, section_from_raw

from .base import DynamicResource

SCHEMA = "public"
GROUP = "tenant_members"
OWNER = "smarteros_owner"
PRIVILEGES: tuple[str, ...] = ("select", "insert", "update", "delete")
MARKER_PREFIX = limits.POSTGRES_MARKER_PREFIX
CONNECT_TIMEOUT_SECONDS = 10
# pg_advisory_xact_lock key serialising catalog writes of every provisioner ("smarteros" in ASCII).
ADVISORY_LOCK_KEY = 0x736D617274657273
APPLICATION_NAME = "smarteros-provisioner"

# The role attributes a tenant role must have; anything else is drift that update corrects.
ROLE_ATTRIBUTES: dict[str, bool] = {
    "login": True,
    "inherit": True,
    "superuser": False,
    "createdb": False,
    "createrole": False,
    "replication": False,
    "bypassrls": False,
}



def role_attributes(login: bool) -> dict[str, bool]:
    """The attributes a tenant role must have: :data:`ROLE_ATTRIBUTES`, NOLOGIN while suspended or cancelled."""
    return {**ROLE_ATTRIBUTES, "login": login}


_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
_ROLE_NAME = r"^tenant_[0-9a-f]{24}$"
# Names of earlier versions (``tenant_<rut>``): still read, replaced and dropped, never created.
_LEGACY_ROLE_NAME = r"^tenant_[0-9]{1,9}_[0-9k]$"
_NORMAL_RUT = r"^(0|[1-9][0-9]{0,8})-[0-9K]$"
ADMIN_SCHEMA = "smarteros_admin"
_STACK = r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,199}$"


class PostgresError(Exception):
    """A PostgreSQL operation failed; the message names the tenant, what was sent and the server's answer."""


# -- values ---------------------------------------------------------------------------------------------


def timeout_ms(value: str) -> int:
    """``statement_timeout`` in milliseconds, as PostgreSQL reads it (a bare number means milliseconds)."""
    try:
        return limits.statement_timeout_ms(value)
    except ValueError as error:
        raise ValueError(f"{value!r} is {error}") from None


def normal_rut(value: str) -> str:
    """The RUT's normal form (``76953480-6``); raises ValueError naming the expected check digit."""
    compact = cl_rut.compact(value)
    if not re.fullmatch(r"[0-9]{1,9}[0-9K]", compact):
        raise ValueError(f"{value!r} is not a RUT (body digits, '-', check digit 0-9 or K)")
    body, digit = compact[:-1], compact[-1]
    expected = cl_rut.calc_check_digit(body)
    if digit != expected:
        raise ValueError(f"RUT {value!r} has check digit {digit}, expected {expected}")
    return f"{int(body)}-{digit}"


def is_legacy_role_name(role_name: Any) -> bool:
    """Whether a role name is the ``tenant_<rut>`` form of earlier versions (it names the customer)."""
    return isinstance(role_name, str) and re.fullmatch(_LEGACY_ROLE_NAME, role_name) is not None


def rut_of_role(role_name: str) -> str:
    """The RUT an earlier version's tenant role name encodes: ``tenant_10000013_k`` -> ``10000013-K``.

    Current role names are opaque; an import id may be the tenant's RUT or its role name.
    """
    if re.fullmatch(_NORMAL_RUT, role_name):
        return role_name
    if not is_legacy_role_name(role_name):
        raise PostgresError(
            f"{role_name!r} is not a tenant role id; import a tenant role by its tenant's RUT (76953480-6) or "
            "by its role name together with the program's inputs"
        )
    body, digit = role_name.removeprefix("tenant_").split("_")
    return f"{body}-{digit.upper()}"


def _role_and_rut(id_: str, props: Mapping[str, Any]) -> tuple[str, str]:
    """The role a resource is about and its tenant's RUT: from its properties, or (on import) its id."""
    role = props.get("role_name") or id_
    return role, props.get("tenant_rut") or rut_of_role(role)


def ownership_marker(stack: str, rut: str) -> str:
    """The ``tenants.managed_by`` text that marks a registry row as this stack's."""
    return f"{MARKER_PREFIX}{stack}; tenant {rut}"


def role_marker(stack: str) -> str:
    """The ``COMMENT ON ROLE`` of a tenant role: the stack only, since every role can read it."""
    return f"{MARKER_PREFIX}{stack}"


def _is_unknown(value: Any) -> bool:
    """A value a preview does not know yet (the host hands providers ``Unknown`` instances)."""
    return isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN)


# -- inputs ---------------------------------------------------------------------------------------------


class _Inputs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _TenantScoped(_Inputs):
    tenant_rut: str

    @field_validator("tenant_rut")
    @classmethod
    def _rut(cls, value: str) -> str:
        normal = normal_rut(value)
        if normal != value:
            raise ValueError(f"RUT must be in normal form {normal!r}, got {value!r}")
        return value


class RoleInputs(_TenantScoped):
    """Inputs of :class:`TenantRole` (its name is an output: the database computes it from the RUT)."""

    connection_limit: int = Field(ge=limits.CONNECTION_LIMIT_MIN, le=limits.CONNECTION_LIMIT_MAX)
    statement_timeout: str
    stack: str = Field(pattern=_STACK)
    login: bool = True
    """False for a suspended or cancelled tenant: the role is NOLOGIN and its open sessions are ended."""

    @field_validator("statement_timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        timeout_ms(value)
        return value


class GrantInputs(_TenantScoped):
    """Inputs of :class:`TableGrants`."""

    role_name: str = Field(pattern=_ROLE_NAME)
    tables: list[str]
    privileges: list[Literal["select", "insert", "update", "delete"]]

    @field_validator("tables")
    @classmethod
    def _tables(cls, value: list[str]) -> list[str]:
        for table in value:
            if not re.fullmatch(_IDENTIFIER, table):
                raise ValueError(f"{table!r} is not a table name (lower-case letters, digits, _)")
        if len(set(value)) != len(value):
            raise ValueError("tables are listed twice")
        return value

    @field_validator("privileges")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("privileges are listed twice")
        return value


class BindingInputs(_TenantScoped):
    """Inputs of :class:`TenantBinding`."""

    role_name: str = Field(pattern=_ROLE_NAME)


class RecordInputs(_Inputs):
    """Inputs of :class:`TenantRecord`: what the registry says about one tenant."""

    rut: str
    slug: str = Field(pattern=limits.SLUG_PATTERN)
    name: str = Field(min_length=1, max_length=limits.NAME_MAX_LENGTH)
    type: Literal["customer", "infrastructure"]
    status: Literal["trial", "active", "suspended", "cancelled"]
    plan: str = Field(max_length=limits.PLAN_MAX_LENGTH)
    trial_expires_at: date | None = None
    products: list[Literal["chat", "erp", "automation", "store"]]
    hostnames: list[str]
    stack: str = Field(pattern=_STACK)

    @field_validator("rut")
    @classmethod
    def _rut(cls, value: str) -> str:
        normal = normal_rut(value)
        if normal != value:
            raise ValueError(f"RUT must be in normal form {normal!r}, got {value!r}")
        return value

    @field_validator("hostnames")
    @classmethod
    def _hostnames(cls, value: list[str]) -> list[str]:
        for hostname in value:
            if not re.fullmatch(
                r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", hostname
            ):
                raise ValueError(f"{hostname!r} is not a lower-case DNS name")
        return value


class SchemaInputs(_Inputs):
    """Inputs of :class:`SharedSchema`: the SQL files in the order they run, and the tables RLS guards."""

    files: dict[str, str]
    tenant_tables: list[str]
    stack: str = Field(pattern=_STACK)

    @field_validator("files")
    @classmethod
    def _files(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("no SQL files")
        for name in value:
            if not re.fullmatch(r"^[0-9]{3}_[a-z0-9_]+\.sql$", name):
                raise ValueError(f"{name!r} is not named like 010_tables.sql")
        return value

    @field_validator("tenant_tables")
    @classmethod
    def _tables(cls, value: list[str]) -> list[str]:
        for table in value:
            if not re.fullmatch(_IDENTIFIER, table):
                raise ValueError(f"{table!r} is not a table name")
        return value


OUTPUT_ONLY: dict[str, tuple[str, ...]] = {
    "role": ("role_name", "password", "member_of", "attributes", "comment"),
    "grants": ("granted",),
    "binding": (),
    "record": (),
    "schema": ("rls_tables",),
}


def user_inputs(props: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The user's inputs among a property map: no ``__provider``, no output-only fields."""
    skip = {"__provider", *OUTPUT_ONLY[kind]}
    return {k: v for k, v in props.items() if k not in skip}


def validate(model: type[_Inputs], props: Mapping[str, Any], kind: str) -> list[tuple[str, str]]:
    """Field-level problems of a property map (values not known yet, during a preview, pass)."""
    inputs = user_inputs(props, kind)
    unknown = {k for k, v in inputs.items() if _is_unknown(v)}
    try:
        model.model_validate(inputs)
    except ValidationError as exc:
        failures = []
        for error in exc.errors():
            location = [str(part) for part in error["loc"]]
            if location and location[0] in unknown:
                continue
            message = error["msg"].removeprefix("Value error, ")
            failures.append((".".join(location) or model.__name__, message))
        return failures
    return []


def parse(model: type[_Inputs], props: Mapping[str, Any], kind: str) -> Any:
    """Validated inputs, or a PostgresError naming every bad field (create and update run unchecked too)."""
    failures = validate(model, props, kind)
    if failures:
        subject = props.get("tenant_rut") or props.get("rut") or "platform"
        detail = "; ".join(f"{name}: {reason}" for name, reason in failures)
        raise PostgresError(f"tenant {subject}: PostgreSQL inputs rejected before sending anything: {detail}")
    return model.model_validate(user_inputs(props, kind))


# -- diffs ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """What a diff found: changed fields, the ones forcing replacement, and the replacement order."""

    fields: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    delete_before_replace: bool = False

    @property
    def changes(self) -> bool:
        return bool(self.fields)

    def result(self) -> DiffResult:
        return DiffResult(
            changes=self.changes,
            replaces=list(self.replaces),
            stables=[],
            delete_before_replace=self.delete_before_replace,
        )


def _differs(old: Any, new: Any) -> bool:
    return _is_unknown(new) or old != new


def diff_role(olds: Mapping[str, Any], news: Mapping[str, Any]) -> Change:
    """Old outputs (live state after the last create/read/update) against new inputs of a TenantRole.

    A new RUT is a new identity: replaced, the old role dropped first, because a tenant has exactly one login
    role. So is a role still named ``tenant_<rut>`` by an earlier version: its name tells every other role
    who the customer is. Rows are keyed by RUT, not by role, so a replacement loses none. Limit, timeout and
    the stack marker change in place; so does live drift of membership or attributes, and a role without a
    known password (imported) gets one.
    """
    fields: list[str] = []
    replaces = [k for k in ("tenant_rut",) if _differs(olds.get(k), news.get(k))]
    if is_legacy_role_name(olds.get("role_name")):
        replaces.insert(0, "role_name")
    fields += replaces
    if _differs(olds.get("connection_limit"), news.get("connection_limit")):
        fields.append("connection_limit")
    new_timeout = news.get("statement_timeout")
    if _is_unknown(new_timeout) or not _same_timeout(olds.get("statement_timeout"), new_timeout):
        fields.append("statement_timeout")
    if _differs(olds.get("stack"), news.get("stack")):
        fields.append("stack")
    if not replaces:
        marker = role_marker(str(news.get("stack")))
        if "comment" in olds and olds.get("comment") != marker and "stack" not in fields:
            fields.append("comment")
        if "member_of" in olds and sorted(olds.get("member_of") or []) != [GROUP]:
            fields.append("member_of")
        if _differs(olds.get("login", True), news.get("login", True)):
            fields.append("login")
        wanted = role_attributes(bool(news.get("login", True))) if not _is_unknown(news.get("login")) else None
        if "attributes" in olds and olds.get("attributes") != wanted and "login" not in fields:
            fields.append("attributes")
        if not olds.get("password"):
            fields.append("password")
    return Change(tuple(fields), tuple(replaces), delete_before_replace=bool(replaces))


def _same_timeout(old: Any, new: Any) -> bool:
    if old == new:
        return True
    try:
        return timeout_ms(str(old)) == timeout_ms(str(new))
    except ValueError:
        return False


def desired_grants(tables: Sequence[str], privileges: Sequence[str]) -> dict[str, list[str]]:
    """The privilege matrix a tenant file asks for: every listed privilege on every listed table."""
    if not privileges:
        return {}
    return {table: sorted(set(privileges)) for table in sorted(set(tables))}


def diff_grants(olds: Mapping[str, Any], news: Mapping[str, Any]) -> Change:
    """Old outputs against new inputs of TableGrants; tables and privileges compare as sets.

    A different role is a different set of grants (replaced; the old role keeps nothing once its own
    grants are deleted). A table or privilege change, or live grants that differ from the file (a grant
    made or revoked by hand), is an in-place update.
    """
    replaces = [k for k in ("role_name",) if _differs(olds.get(k), news.get(k))]
    fields = list(replaces)
    if _differs(olds.get("tenant_rut"), news.get("tenant_rut")):
        fields.append("tenant_rut")
    for key in ("tables", "privileges"):
        new = news.get(key)
        if _is_unknown(new) or sorted(olds.get(key) or []) != sorted(new or []):
            fields.append(key)
    if not replaces and "granted" in olds and "tables" not in fields and "privileges" not in fields:
        wanted = desired_grants(news.get("tables") or [], news.get("privileges") or [])
        if _normal_matrix(olds.get("granted") or {}) != wanted:
            fields.append("granted")
    return Change(tuple(fields), tuple(replaces), delete_before_replace=False)


def _normal_matrix(matrix: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    return {table: sorted(set(privs)) for table, privs in sorted(matrix.items()) if privs}


def diff_binding(olds: Mapping[str, Any], news: Mapping[str, Any]) -> Change:
    """Old outputs against new inputs of a TenantBinding: another role is another row; the RUT updates."""
    replaces = [k for k in ("role_name",) if _differs(olds.get(k), news.get(k))]
    fields = list(replaces)
    if _differs(olds.get("tenant_rut"), news.get("tenant_rut")):
        fields.append("tenant_rut")
    return Change(tuple(fields), tuple(replaces), delete_before_replace=False)


_RECORD_SCALARS = ("slug", "name", "type", "status", "plan", "trial_expires_at", "stack")


def diff_record(olds: Mapping[str, Any], news: Mapping[str, Any]) -> Change:
    """Old outputs against new inputs of a TenantRecord; the RUT is the row's identity."""
    replaces = [k for k in ("rut",) if _differs(olds.get(k), news.get(k))]
    fields = list(replaces)
    fields += [k for k in _RECORD_SCALARS if _differs(olds.get(k), news.get(k))]
    for key in ("products", "hostnames"):
        new = news.get(key)
        if _is_unknown(new) or sorted(olds.get(key) or []) != sorted(new or []):
            fields.append(key)
    return Change(tuple(fields), tuple(replaces), delete_before_replace=False)


def diff_schema(olds: Mapping[str, Any], news: Mapping[str, Any]) -> Change:
    """The schema changes in place when a file changes or a guarded table lost its RLS or policy."""
    fields = [k for k in ("files", "stack") if _differs(olds.get(k), news.get(k))]
    if sorted(olds.get("tenant_tables") or []) != sorted(news.get("tenant_tables") or []):
        fields.append("tenant_tables")
    if "rls_tables" in olds and sorted(olds.get("rls_tables") or []) != sorted(
        news.get("tenant_tables") or []
    ):
        fields.append("rls_tables")
    return Change(tuple(fields))


# -- grant planning ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantPlan:
    """Privileges to grant and to revoke, per table, to move live grants to the desired ones."""

    grant: dict[str, list[str]] = field(default_factory=dict)
    revoke: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.grant and not self.revoke


def plan_grants(live: Mapping[str, Sequence[str]], desired: Mapping[str, Sequence[str]]) -> GrantPlan:
    """Exactly the difference: nothing is granted that is there, nothing revoked that the file keeps."""
    grant: dict[str, list[str]] = {}
    revoke: dict[str, list[str]] = {}
    for table in sorted(set(live) | set(desired)):
        have = {p.lower() for p in live.get(table, ())}
        want = {p.lower() for p in desired.get(table, ())}
        if want - have:
            grant[table] = sorted(want - have)
        if have - want:
            revoke[table] = sorted(have - want)
    return GrantPlan(grant, revoke)


def grant_statements(role: str, plan: GrantPlan) -> list[sql.Composed]:
    """GRANT/REVOKE statements of a plan, identifiers quoted by psycopg."""
    statements: list[sql.Composed] = []
    for table, privileges in plan.revoke.items():
        statements.append(
            sql.SQL("REVOKE {} ON TABLE {} FROM {}").format(
                sql.SQL(", ").join(sql.SQL(p.upper()) for p in privileges if p in _ALL_TABLE_PRIVILEGES),
                sql.Identifier(SCHEMA, table),
                sql.Identifier(role),
            )
        )
    for table, privileges in plan.grant.items():
        statements.append(
            sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                sql.SQL(", ").join(sql.SQL(p.upper()) for p in privileges if p in PRIVILEGES),
                sql.Identifier(SCHEMA, table),
                sql.Identifier(role),
            )
        )
    return statements


_ALL_TABLE_PRIVILEGES = frozenset(
    {"select", "insert", "update", "delete", "truncate", "references", "trigger", "maintain"}
)


# -- connection settings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and as whom the provider connects. The password never appears in its repr."""

    host: str
    port: int
    dbname: str
    user: str
    sslmode: str
    password: str | None = field(default=None, repr=False)
    read_only: bool = False
    """Every transaction read-only, and no writing transaction opened (:mod:`components.access`)."""

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"


def settings_from_config(raw: Any, environ: Mapping[str, str]) -> ConnectionSettings:
    """Connection settings from provider config (``smarteros:postgres``), else the environment.

    A read-only run connects as ``PGUSER`` (default ``smarteros_preview``, the role of ``sql/preview.sql``)
    whatever the config's ``user`` says: that one is the provisioner.
    """
    password = secret_from_raw(raw, "postgresPassword", environ)
    settings = _from_config_or_environment(raw, environ, password)
    if read_only(environ):
        user = environ.get("PGUSER") or PREVIEW_ROLE
        return replace(settings, user=user, read_only=True)
    return settings


def _from_config_or_environment(raw: Any, environ: Mapping[str, str], password: str | None) -> ConnectionSettings:
    if raw is not None and raw.get("smarteros:postgres") is not None:
        section = section_from_raw(raw, "postgres", PostgresConfig)
        return ConnectionSettings(
            section.host, section.port, section.database, section.user, section.sslmode, password
        )
    defaults = PostgresConfig()
    url = environ.get("DATABASE_URL")
    if url:
        parts = conninfo_to_dict(url)
        return ConnectionSettings(
            host=str(parts.get("host") or defaults.host),
            port=int(parts.get("port") or defaults.port),
            dbname=str(parts.get("dbname") or defaults.database),
            user=str(parts.get("user") or defaults.user),
            sslmode=str(parts.get("sslmode") or defaults.sslmode),
            password=password or (str(parts["password"]) if parts.get("password") else None),
        )
    return ConnectionSettings(
        host=environ.get("PGHOST", defaults.host),
        port=int(environ.get("PGPORT", defaults.port)),
        dbname=environ.get("PGDATABASE", defaults.database),
        user=environ.get("PGUSER", defaults.user),
        sslmode=environ.get("PGSSLMODE", defaults.sslmode),
        password=password,
    )


def _answer(exc: psycopg.Error) -> str:
    """The server's answer on one line: SQLSTATE and primary message (never the statement sent)."""
    diag = exc.diag
    primary = diag.message_primary if diag is not None else None
    text = primary or str(exc) or type(exc).__name__
    state = exc.sqlstate or "no SQLSTATE"
    detail = diag.message_detail if diag is not None and diag.message_detail else ""
    answer = f"{state} {text}" + (f" ({detail})" if detail else "")
    return " ".join(answer.split())


class _Session:
    """One provider operation: a connection, the tenant it is for, and error reporting."""

    def __init__(self, settings: ConnectionSettings, subject: str) -> None:
        self.settings = settings
        self.subject = subject
        self.conn: psycopg.Connection[Any] | None = None

    def open(self) -> psycopg.Connection[Any]:
        try:
            self.conn = psycopg.connect(
                host=self.settings.host,
                port=self.settings.port,
                dbname=self.settings.dbname,
                user=self.settings.user,
                password=self.settings.password,
                sslmode=self.settings.sslmode,
                options="-c default_transaction_read_only=on" if self.settings.read_only else None,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name=APPLICATION_NAME,
                autocommit=True,
            )
        except psycopg.Error as exc:
            raise PostgresError(
                f"{self.subject}: cannot connect to PostgreSQL as {self.settings.describe()}: {_answer(exc)}"
            ) from None
        return self.conn

    @contextmanager
    def step(self, sent: str) -> Iterator[psycopg.Connection[Any]]:
        """Run one step; a server error becomes a PostgresError naming ``sent`` and the answer."""
        assert self.conn is not None
        try:
            yield self.conn
        except psycopg.Error as exc:
            raise PostgresError(f"{self.subject}: PostgreSQL refused {sent}: {_answer(exc)}") from None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


# -- live state -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveRole:
    """A role as ``pg_roles`` and friends show it."""

    name: str
    attributes: dict[str, bool]
    connection_limit: int
    statement_timeout: str
    member_of: list[str]
    comment: str


def read_role(conn: psycopg.Connection[Any], role: str) -> LiveRole | None:
    row = conn.execute(
        """
        SELECT r.rolcanlogin, r.rolinherit, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolreplication,
               r.rolbypassrls, r.rolconnlimit,
               COALESCE((SELECT substr(s, length('statement_timeout=') + 1) FROM unnest(r.rolconfig) AS s
                          WHERE starts_with(s, 'statement_timeout=') LIMIT 1), ''),
               ARRAY(SELECT g.rolname::text FROM pg_catalog.pg_auth_members m
                       JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
                      WHERE m.member = r.oid ORDER BY 1),
               COALESCE(pg_catalog.shobj_description(r.oid, 'pg_authid'), '')
          FROM pg_catalog.pg_roles r
         WHERE r.rolname = %s
        """,
        (role,),
    ).fetchone()
    if row is None:
        return None
    flags = dict(
        zip(
            ("login", "inherit", "superuser", "createdb", "createrole", "replication", "bypassrls"),
            (bool(v) for v in row[:7]),
            strict=True,
        )
    )
    return LiveRole(role, flags, int(row[7]), str(row[8]), list(row[9]), str(row[10]))


def read_grants(conn: psycopg.Connection[Any], role: str) -> dict[str, list[str]]:
    """Privileges granted directly to ``role`` on relations of the shared schema (any grantor)."""
    rows = conn.execute(
        """
        SELECT c.relname::text, array_agg(DISTINCT lower(a.privilege_type) ORDER BY lower(a.privilege_type))
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          CROSS JOIN LATERAL aclexplode(c.relacl) AS a
          JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
         WHERE n.nspname = %s AND r.rolname = %s
         GROUP BY c.relname
        """,
        (SCHEMA, role),
    ).fetchall()
    return {str(table): list(privs) for table, privs in rows}


def guarded_tables(conn: psycopg.Connection[Any], tables: Sequence[str]) -> list[str]:
    """Which of ``tables`` exist in the shared schema with RLS enabled and a policy for tenant_members."""
    rows = conn.execute(
        """
        SELECT c.relname::text
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s) AND c.relrowsecurity
           AND EXISTS (SELECT FROM pg_catalog.pg_attribute a
                        WHERE a.attrelid = c.oid AND a.attname = 'tenant_rut' AND NOT a.attisdropped)
           AND EXISTS (SELECT FROM pg_catalog.pg_policy p
                        WHERE p.polrelid = c.oid
                          AND (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s) = ANY(p.polroles))
         ORDER BY 1
        """,
        (SCHEMA, list(tables), GROUP),
    ).fetchall()
    return [str(r[0]) for r in rows]


def _lock(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))


# -- providers --------------------------------------------------------------------------------------------


class _PostgresProvider(ResourceProvider):
    """Shared plumbing: settings from configure, kept off the serialised object, and the check and diff
    every resource runs: ``inputs_model`` validates the user inputs (``kind`` names the output-only fields
    left out of them) and ``differ`` compares old outputs with new inputs."""

    kind = ""
    inputs_model: ClassVar[type[_Inputs]]
    _settings: ConnectionSettings | None = None

    @staticmethod
    def differ(olds: Mapping[str, Any], news: Mapping[str, Any]) -> Change:
        """Old outputs against new inputs; each resource names its ``diff_*`` function here."""
        raise NotImplementedError

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [CheckFailure(f, r) for f, r in validate(self.inputs_model, news, self.kind)]
        return CheckResult(user_inputs(news, self.kind), failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return self.differ(olds, news).result()

    def _parse(self, props: Mapping[str, Any]) -> Any:
        """The validated inputs of ``props`` (see :func:`parse`)."""
        return parse(self.inputs_model, props, self.kind)

    def __getstate__(self) -> dict[str, Any]:
        # The engine pickles providers into the state; connection settings never travel with them.
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({k: v for k, v in state.items() if k != "_settings"})

    def configure(self, req: ConfigureRequest) -> None:
        self._settings = settings_from_config(req.config, os.environ)

    def _session(self, subject: str) -> _Session:
        settings = self._settings or settings_from_config(None, os.environ)
        return _Session(settings, subject)

    def _may_write(self, subject: str, sent: str) -> None:
        """Refuse, before connecting, a write in a read-only run (:mod:`components.access`)."""
        settings = self._settings or settings_from_config(None, os.environ)
        if settings.read_only:
            raise PostgresError(f"{subject}: {ReadOnlyRefusal('PostgreSQL', sent)}")

    @contextmanager
    def _connected(self, subject: str) -> Iterator[_Session]:
        session = self._session(subject)
        session.open()
        try:
            yield session
        finally:
            session.close()

    @contextmanager
    def _reading(self, subject: str, sent: str) -> Iterator[psycopg.Connection[Any]]:
        """A connection for reads; errors name ``subject`` and ``sent``."""
        with self._connected(subject) as session, session.step(sent) as conn:
            yield conn

    @contextmanager
    def _writing(self, subject: str, sent: str) -> Iterator[psycopg.Connection[Any]]:
        """One transaction: everything in it commits together or not at all (never in a read-only run)."""
        self._may_write(subject, sent)
        with self._connected(subject) as session, session.step(sent) as conn, conn.transaction():
            yield conn


class TenantRoleProvider(_PostgresProvider):
    """CRUD for a tenant's login role, through the functions of ``smarteros_admin``."""

    kind = "role"
    inputs_model = RoleInputs
    differ = staticmethod(diff_role)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs: RoleInputs = self._parse(props)
        password = secrets.token_urlsafe(32)
        marker = role_marker(inputs.stack)
        with self._writing(f"tenant {inputs.tenant_rut}", "creation of the tenant's role") as conn:
            _lock(conn)
            role = tenant_role_name(conn, inputs.tenant_rut)
            existing = read_role(conn, role)
            if existing is not None and existing.comment != marker:
                raise PostgresError(
                    f"tenant {inputs.tenant_rut}: PostgreSQL role {role} already exists and is not "
                    f"managed by stack {inputs.stack} (its comment: {existing.comment or 'none'!r}); "
                    f"adopt it with the import_ resource option (import_={inputs.tenant_rut!r}) or drop it"
                )
            # A role this stack made before (a lost state, a failed run) is adopted: it gets a new password.
            function = "alter_tenant_role" if existing is not None else "create_tenant_role"
            _call_role_function(conn, function, inputs, _verifier(conn, password, role))
            live = read_role(conn, role)
        return CreateResult(role, _role_outputs(inputs, role, live, password))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        role, rut = _role_and_rut(id_, props)
        with self._reading(f"tenant {rut}", f"read of role {role}") as conn:
            if role == rut:  # imported by RUT
                role = tenant_role_name(conn, rut)
            live = read_role(conn, role)
        if live is None:
            return ReadResult("", {})
        imported = "statement_timeout" not in props
        stack = props.get("stack") or _stack_of(live.comment)
        inputs = {
            "tenant_rut": rut,
            "connection_limit": live.connection_limit,
            "statement_timeout": live.statement_timeout,
            "stack": stack,
        }
        base = {**user_inputs(props, self.kind)} if not imported else inputs
        outs = {
            **base,
            "role_name": role,
            "connection_limit": live.connection_limit,
            "statement_timeout": live.statement_timeout,
            "member_of": live.member_of,
            "attributes": live.attributes,
            "comment": live.comment,
            "password": props.get("password") or "",
        }
        return ReadResult(role, outs, inputs if imported else None)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs: RoleInputs = self._parse(news)
        password = olds.get("password") or secrets.token_urlsafe(32)
        with self._writing(f"tenant {inputs.tenant_rut}", "change of the tenant's role") as conn:
            _lock(conn)
            role = tenant_role_name(conn, inputs.tenant_rut)
            if read_role(conn, role) is None:
                raise PostgresError(
                    f"tenant {inputs.tenant_rut}: PostgreSQL role {role} no longer exists; "
                    "run pulumi refresh so it is created again"
                )
            verifier = None if olds.get("password") else _verifier(conn, password, role)
            _call_role_function(conn, "alter_tenant_role", inputs, verifier)
            live = read_role(conn, role)
        return UpdateResult(_role_outputs(inputs, role, live, password))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        role, rut = _role_and_rut(id_, props)
        with self._writing(f"tenant {rut}", f"DROP ROLE {role}") as conn:
            _lock(conn)
            if role == rut:
                role = tenant_role_name(conn, rut)
            if read_role(conn, role) is None:
                return
            plan = plan_grants(read_grants(conn, role), {})
            for statement in grant_statements(role, plan):
                conn.execute(statement)
            conn.execute(
                sql.SQL("SELECT {}.drop_tenant_role(%s)").format(sql.Identifier(ADMIN_SCHEMA)), (role,)
            )


def tenant_role_name(conn: psycopg.Connection[Any], rut: str) -> str:
    """The tenant's role name in this database: ``tenant_`` and a keyed hash of the RUT (see provisioner.sql)."""
    row = conn.execute(
        sql.SQL("SELECT {}.tenant_role_name(%s)").format(sql.Identifier(ADMIN_SCHEMA)), (rut,)
    ).fetchone()
    assert row is not None
    name = str(row[0])
    if re.fullmatch(_ROLE_NAME, name) is None:
        raise PostgresError(f"tenant {rut}: PostgreSQL answered {name!r} for the tenant's role name")
    return name


def _call_role_function(
    conn: psycopg.Connection[Any], function: str, inputs: RoleInputs, verifier: str | None
) -> None:
    conn.execute(
        sql.SQL("SELECT {}(%s, %s, %s, %s, %s, %s)").format(sql.Identifier(ADMIN_SCHEMA, function)),
        (
            inputs.tenant_rut,
            verifier,
            inputs.connection_limit,
            inputs.statement_timeout.strip(),
            inputs.stack,
            inputs.login,
        ),
    )


def _verifier(conn: psycopg.Connection[Any], password: str, role: str) -> str:
    """The SCRAM-SHA-256 verifier of a password, computed client-side so no log ever holds the password."""
    return conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()


def _stack_of(comment: str) -> str:
    if comment.startswith(MARKER_PREFIX):
        return comment.removeprefix(MARKER_PREFIX).split(";", 1)[0]
    return ""


def _role_outputs(inputs: RoleInputs, role: str, live: LiveRole | None, password: str) -> dict[str, Any]:
    assert live is not None
    return {
        **inputs.model_dump(),
        "role_name": role,
        "member_of": live.member_of,
        "attributes": live.attributes,
        "comment": live.comment,
        "password": password,
    }


class TableGrantsProvider(_PostgresProvider):
    """CRUD for the privileges one tenant role holds on the shared tables."""

    kind = "grants"
    inputs_model = GrantInputs
    differ = staticmethod(diff_grants)

    def _apply(self, inputs: GrantInputs) -> dict[str, list[str]]:
        role = inputs.role_name
        desired = desired_grants(inputs.tables, inputs.privileges)
        sent = f"grants to {role} on {', '.join(sorted(desired)) or 'no tables'}"
        with self._writing(f"tenant {inputs.tenant_rut}", sent) as conn:
            if read_role(conn, role) is None:
                raise PostgresError(
                    f"tenant {inputs.tenant_rut}: PostgreSQL role {role} does not exist; "
                    "its TenantRole must be created first"
                )
            live = read_grants(conn, role)
            plan = plan_grants(live, desired)
            if plan.empty:
                return live
            unguarded = sorted(set(plan.grant) - set(guarded_tables(conn, list(plan.grant))))
            if unguarded:
                raise PostgresError(
                    f"tenant {inputs.tenant_rut}: PostgreSQL grants to {role} refused before "
                    f"sending: {', '.join(repr(t) for t in unguarded)} is not a table of schema "
                    f"{SCHEMA} with tenant_rut and row-level security for {GROUP}"
                )
            _lock(conn)
            for statement in grant_statements(role, plan):
                conn.execute(statement)
            after = read_grants(conn, role)
            if _normal_matrix(after) != desired:
                raise PostgresError(
                    f"tenant {inputs.tenant_rut}: PostgreSQL kept grants to {role} the provisioner "
                    f"cannot change: live {_normal_matrix(after)}, wanted {desired}; a role other "
                    f"than {OWNER} granted them, so revoke them as that role"
                )
            return after

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs: GrantInputs = self._parse(props)
        granted = self._apply(inputs)
        return CreateResult(inputs.role_name, {**inputs.model_dump(), "granted": granted})

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs: GrantInputs = self._parse(news)
        granted = self._apply(inputs)
        return UpdateResult({**inputs.model_dump(), "granted": granted})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        role, rut = _role_and_rut(id_, props)
        with self._reading(f"tenant {rut}", f"read of grants to {role}") as conn:
            if read_role(conn, role) is None:
                return ReadResult("", {})
            live = read_grants(conn, role)
        if "tables" in props:
            return ReadResult(id_, {**user_inputs(props, self.kind), "granted": live})
        tables = sorted(live)
        privileges = sorted({p for privs in live.values() for p in privs if p in PRIVILEGES})
        inputs = {"role_name": role, "tenant_rut": rut, "tables": tables, "privileges": privileges}
        return ReadResult(id_, {**inputs, "granted": live}, inputs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        role, rut = _role_and_rut(id_, props)
        with self._writing(f"tenant {rut}", f"REVOKE of every grant to {role}") as conn:
            if read_role(conn, role) is None:
                return
            plan = plan_grants(read_grants(conn, role), {})
            if plan.empty:
                return
            _lock(conn)
            for statement in grant_statements(role, plan):
                conn.execute(statement)


class TenantBindingProvider(_PostgresProvider):
    """CRUD for a role's row in ``tenant_roles``."""

    kind = "binding"
    inputs_model = BindingInputs
    differ = staticmethod(diff_binding)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs: BindingInputs = self._parse(props)
        sent = f"binding of {inputs.role_name} to {inputs.tenant_rut} in tenant_roles"
        with self._writing(f"tenant {inputs.tenant_rut}", sent) as conn:
            row = conn.execute(
                "INSERT INTO public.tenant_roles (role_name, tenant_rut) VALUES (%s, %s) "
                "ON CONFLICT (role_name) DO NOTHING RETURNING tenant_rut",
                (inputs.role_name, inputs.tenant_rut),
            ).fetchone()
            if row is None:
                existing = _binding(conn, inputs.role_name)
                if existing != inputs.tenant_rut:
                    raise PostgresError(
                        f"tenant {inputs.tenant_rut}: PostgreSQL already binds {inputs.role_name} to "
                        f"tenant {existing} in tenant_roles; adopt the row with the import_ resource "
                        f"option (import_={inputs.role_name!r}) or delete it"
                    )
        return CreateResult(inputs.role_name, inputs.model_dump())

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        role, rut = _role_and_rut(id_, props)
        with self._reading(f"tenant {rut}", f"read of tenant_roles row {role}") as conn:
            live = _binding(conn, role)
        if live is None:
            return ReadResult("", {})
        outs = {"role_name": role, "tenant_rut": live}
        return ReadResult(id_, outs, None if "tenant_rut" in props else outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs: BindingInputs = self._parse(news)
        sent = f"binding of {inputs.role_name} to {inputs.tenant_rut} in tenant_roles"
        with self._writing(f"tenant {inputs.tenant_rut}", sent) as conn:
            conn.execute(
                "INSERT INTO public.tenant_roles (role_name, tenant_rut) VALUES (%s, %s) "
                "ON CONFLICT (role_name) DO UPDATE SET tenant_rut = EXCLUDED.tenant_rut "
                "WHERE tenant_roles.tenant_rut IS DISTINCT FROM EXCLUDED.tenant_rut",
                (inputs.role_name, inputs.tenant_rut),
            )
        return UpdateResult(inputs.model_dump())

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        role, rut = _role_and_rut(id_, props)
        with self._writing(f"tenant {rut}", f"removal of the tenant_roles row of {role}") as conn:
            conn.execute("DELETE FROM public.tenant_roles WHERE role_name = %s", (role,))


def _binding(conn: psycopg.Connection[Any], role: str) -> str | None:
    row = conn.execute("SELECT tenant_rut FROM public.tenant_roles WHERE role_name = %s", (role,)).fetchone()
    return None if row is None else str(row[0])


class TenantRecordProvider(_PostgresProvider):
    """CRUD for a tenant's registry rows, upserted by RUT."""

    kind = "record"
    inputs_model = RecordInputs
    differ = staticmethod(diff_record)

    def _write(self, inputs: RecordInputs, creating: bool) -> dict[str, Any]:
        marker = ownership_marker(inputs.stack, inputs.rut)
        values = (
            inputs.rut,
            inputs.slug,
            inputs.name,
            inputs.type,
            inputs.status,
            inputs.plan,
            inputs.trial_expires_at,
            marker,
        )
        with self._writing(
            f"tenant {inputs.rut}", f"upsert of registry rows for {inputs.rut} ({inputs.slug})"
        ) as conn:
            if creating:
                existing = _record(conn, inputs.rut)
                if (
                    existing is not None
                    and existing["managed_by"] != marker
                    and not _same_record(existing, inputs)
                ):
                    raise PostgresError(
                        f"tenant {inputs.rut}: PostgreSQL registry row tenants({inputs.rut}) already exists "
                        f"and is not managed by stack {inputs.stack} (managed_by: "
                        f"{existing['managed_by'] or 'none'!r}); adopt it with the import_ resource "
                        f"option (import_={inputs.rut!r}) or delete it"
                    )
            conn.execute(
                """
                    INSERT INTO public.tenants AS t
                           (rut, slug, name, type, status, plan, trial_expires_at, managed_by)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                    ON CONFLICT (rut) DO UPDATE
                       SET slug = EXCLUDED.slug, name = EXCLUDED.name, type = EXCLUDED.type,
                           status = EXCLUDED.status, plan = EXCLUDED.plan,
                           trial_expires_at = EXCLUDED.trial_expires_at, managed_by = EXCLUDED.managed_by,
                           updated_at = now()
                     WHERE (t.slug, t.name, t.type, t.status, t.plan, t.trial_expires_at, t.managed_by)
                           IS DISTINCT FROM
                           (EXCLUDED.slug, EXCLUDED.name, EXCLUDED.type, EXCLUDED.status, EXCLUDED.plan,
                            EXCLUDED.trial_expires_at, EXCLUDED.managed_by)
                    """,
                values,
            )
            conn.execute(
                "DELETE FROM public.tenant_products WHERE tenant_rut = %s AND NOT product = ANY(%s)",
                (inputs.rut, list(inputs.products)),
            )
            conn.execute(
                "INSERT INTO public.tenant_products (tenant_rut, product) SELECT %s, unnest(%s::text[]) "
                "ON CONFLICT (tenant_rut, product) DO NOTHING",
                (inputs.rut, list(inputs.products)),
            )
            conn.execute(
                "DELETE FROM public.tenant_domains WHERE tenant_rut = %s AND NOT hostname = ANY(%s)",
                (inputs.rut, list(inputs.hostnames)),
            )
            conn.execute(
                "INSERT INTO public.tenant_domains (tenant_rut, hostname) SELECT %s, unnest(%s::text[]) "
                "ON CONFLICT (hostname) DO NOTHING",
                (inputs.rut, list(inputs.hostnames)),
            )
            live = _record(conn, inputs.rut)
            assert live is not None
            taken = sorted(set(inputs.hostnames) - set(live["hostnames"]))
            if taken:
                raise PostgresError(
                    f"tenant {inputs.rut}: PostgreSQL registry refused hostnames {', '.join(taken)}: "
                    "another tenant's tenant_domains row holds them"
                )
        return _record_outputs(inputs)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs: RecordInputs = self._parse(props)
        return CreateResult(inputs.rut, self._write(inputs, creating=True))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs: RecordInputs = self._parse(news)
        return UpdateResult(self._write(inputs, creating=False))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        rut = props.get("rut") or id_
        with self._reading(f"tenant {rut}", f"read of registry rows for {rut}") as conn:
            live = _record(conn, rut)
        if live is None:
            return ReadResult("", {})
        stack = props.get("stack") or _stack_of(str(live["managed_by"] or ""))
        outs = {k: v for k, v in live.items() if k != "managed_by"}
        outs["stack"] = stack
        return ReadResult(id_, outs, None if "slug" in props else outs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        rut = props.get("rut") or id_
        with self._writing(f"tenant {rut}", f"removal of the registry rows of {rut}") as conn:
            conn.execute("DELETE FROM public.tenants WHERE rut = %s", (rut,))


def _record(conn: psycopg.Connection[Any], rut: str) -> dict[str, Any] | None:
    row = conn.execute(
        """
        SELECT t.rut, t.slug, t.name, t.type, t.status, t.plan, t.trial_expires_at, t.managed_by,
               ARRAY(SELECT p.product FROM public.tenant_products p WHERE p.tenant_rut = t.rut ORDER BY 1),
               ARRAY(SELECT d.hostname FROM public.tenant_domains d WHERE d.tenant_rut = t.rut ORDER BY 1)
          FROM public.tenants t WHERE t.rut = %s
        """,
        (rut,),
    ).fetchone()
    if row is None:
        return None
    keys = (
        "rut",
        "slug",
        "name",
        "type",
        "status",
        "plan",
        "trial_expires_at",
        "managed_by",
        "products",
        "hostnames",
    )
    record = dict(zip(keys, row, strict=True))
    expires = record["trial_expires_at"]
    record["trial_expires_at"] = expires.isoformat() if expires is not None else None
    return record


def _same_record(live: Mapping[str, Any], inputs: RecordInputs) -> bool:
    """Whether registry rows already say exactly what the inputs say (ownership aside)."""
    wanted = _record_outputs(inputs)
    return all(live.get(k) == wanted[k] for k in wanted if k != "stack")


def _record_outputs(inputs: RecordInputs) -> dict[str, Any]:
    out = inputs.model_dump()
    out["trial_expires_at"] = inputs.trial_expires_at.isoformat() if inputs.trial_expires_at else None
    out["products"] = sorted(inputs.products)
    out["hostnames"] = sorted(inputs.hostnames)
    return out


class SharedSchemaProvider(_PostgresProvider):
    """Applies the shared schema; deleting it leaves every table, row and policy in place."""

    kind = "schema"
    inputs_model = SchemaInputs
    differ = staticmethod(diff_schema)

    def _apply(self, inputs: SchemaInputs) -> dict[str, Any]:
        self._may_write("platform", "the shared schema (sql/schema)")
        with self._connected("platform") as s:
            for name in sorted(inputs.files):
                with s.step(f"sql/schema/{name}") as conn, conn.transaction():
                    _lock(conn)
                    conn.execute(inputs.files[name].encode())
                    conn.execute("RESET ROLE")
            with s.step("read of row-level security") as conn:
                guarded = guarded_tables(conn, inputs.tenant_tables)
        missing = sorted(set(inputs.tenant_tables) - set(guarded))
        if missing:
            raise PostgresError(
                f"platform: PostgreSQL schema applied but {', '.join(missing)} lack row-level security or "
                f"a policy for {GROUP}; the files of sql/schema must guard every tenant table"
            )
        return {**inputs.model_dump(), "rls_tables": guarded}

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs: SchemaInputs = self._parse(props)
        return CreateResult(f"{inputs.stack}/{SCHEMA}", self._apply(inputs))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs: SchemaInputs = self._parse(news)
        return UpdateResult(self._apply(inputs))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        tables = list(props.get("tenant_tables") or [])
        with self._reading("platform", "read of row-level security") as conn:
            guarded = guarded_tables(conn, tables)
        return ReadResult(id_, {**user_inputs(props, self.kind), "rls_tables": guarded})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """The platform never drops a shared table: forgetting the schema leaves it in the database."""


# -- resources --------------------------------------------------------------------------------------------


class SharedSchema(DynamicResource, module="postgres", name="SharedSchema"):
    """The shared schema of ``sql/schema`` applied to the platform database."""

    rls_tables: Output[list[str]]

    def __init__(self, name: str, props: Mapping[str, Any], opts: ResourceOptions | None = None) -> None:
        super().__init__(SharedSchemaProvider(), name, {**props, "rls_tables": None}, opts)


class TenantRecord(DynamicResource, module="postgres", name="TenantRecord"):
    """A tenant's rows in the registry tables."""

    rut: Output[str]

    def __init__(self, name: str, props: Mapping[str, Any], opts: ResourceOptions | None = None) -> None:
        super().__init__(TenantRecordProvider(), name, dict(props), opts)


class TenantRole(DynamicResource, module="postgres", name="TenantRole"):
    """A tenant's login role; declare ``password`` in ``additional_secret_outputs``."""

    role_name: Output[str]
    password: Output[str]

    def __init__(self, name: str, props: Mapping[str, Any], opts: ResourceOptions | None = None) -> None:
        outputs = dict.fromkeys(OUTPUT_ONLY["role"])
        super().__init__(TenantRoleProvider(), name, {**props, **outputs}, opts)


class TableGrants(DynamicResource, module="postgres", name="TableGrants"):
    """The privileges of a tenant role on the shared tables."""

    granted: Output[dict[str, list[str]]]

    def __init__(self, name: str, props: Mapping[str, Any], opts: ResourceOptions | None = None) -> None:
        super().__init__(TableGrantsProvider(), name, {**props, "granted": None}, opts)


class TenantBinding(DynamicResource, module="postgres", name="TenantBinding"):
    """The row of ``tenant_roles`` binding a role to its tenant's RUT."""

    def __init__(self, name: str, props: Mapping[str, Any], opts: ResourceOptions | None = None) -> None:
        super().__init__(TenantBindingProvider(), name, dict(props), opts)
