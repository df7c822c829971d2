"""Tenant files: the model, and the loader that validates every file before anything is deployed.

One YAML file per tenant (``tenants/<slug>.yaml``) describes everything the tenant gets. This module
turns those files into frozen :class:`TenantSpec` objects, or reports every problem in every file at
once, each as ``path:line:col: field: message`` so an editor or a CI log points straight at it::

    tenants/acme.yaml:12:5: access.emails[1]: 'bob@' is not an e-mail address

What the loader rejects, beyond what the model itself checks:

- YAML syntax errors, several documents in one file, a document that is not a mapping;
- duplicate keys in a mapping, keys that are not text, merge keys (``<<``);
- tags other than the plain YAML ones (``!!python/object`` and friends never reach a constructor);
- anchors and aliases that would expand beyond :data:`MAX_EXPANDED_NODES` nodes, or that refer to
  themselves. A plain alias (``viewers: *team``) is fine; an alias bomb is refused before it expands;
- any value, key or comment that looks like a credential (PEM blocks, URLs or connection strings carrying
  a password, well-known token prefixes, long random-looking strings); no message repeats it;
- control, invisible or bidirectional characters in any text, ownership markers of the platform, and
  anything longer or larger than a provider or server accepts (:mod:`components.limits`);
- a slug that differs from the file name, and RUTs, slugs, hostnames or collection names that two files
  share; slugs the stack reserves and public mail domains (:mod:`components.policy`).

Scalars follow YAML 1.2 rather than PyYAML's YAML 1.1 defaults: only ``true``/``false`` are booleans
(so ``queries: no`` means the text ``no``) and integers are plain decimals, which is also what editors
using ``tenant.schema.json`` assume.

The YAML side lives in :mod:`components.tenant_yaml`, the credential scan in :mod:`components.credentials`,
the limits shared with the providers in :mod:`components.limits`, the stack's refusals in
:mod:`components.policy` and the choice of files in :mod:`components.selection`; their public names stay
importable from here. This module imports nothing from Pulumi, so validating files stays fast and needs no
credentials.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from stdnum.cl import rut as cl_rut
from stdnum.exceptions import ValidationError as StdnumValidationError

from components import limits, naming
from components.catalog import PRODUCTS, SERVICES, TENANT_TABLES
from components.credentials import credential_kind
from components.limits import SLUG_PATTERN
from components.policy import Policy
from components.problems import Loc, Problem, SpecError, field_path, show
from components.selection import select_tenant_files
from components.tenant_yaml import (
    MAX_DEPTH,
    MAX_EXPANDED_NODES,
    MAX_FILE_BYTES,
    _Document,
    _FileChecker,
    _Redacted,
    comment_problems,
)

__all__ = [  # the names other modules import from here, wherever they are defined
    "MAX_DEPTH",
    "MAX_EXPANDED_NODES",
    "MAX_FILE_BYTES",
    "SLUG_PATTERN",
    "AccessSpec",
    "AnalyticsSpec",
    "Checked",
    "DatabaseSpec",
    "FieldProblem",
    "Loc",
    "Problem",
    "ServiceSecretsSpec",
    "SpecError",
    "TenantSpec",
    "check_files",
    "check_selected",
    "comment_problems",
    "credential_kind",
    "field_path",
    "load_tenants",
    "normalise_rut",
    "show",
    "slug_error",
    "tenant_json_schema",
]

# --------------------------------------------------------------------------------------------------
# Field rules shared by the model and the loader
# --------------------------------------------------------------------------------------------------

SECRET_KEY_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"  # noqa: S105 - a key-name pattern, not a secret
_SLUG_RE = re.compile(SLUG_PATTERN)
_SECRET_KEY_RE = re.compile(SECRET_KEY_PATTERN)

# A pragmatic address check: what Cloudflare Access and Metabase accept in practice, without the cost
# of a full RFC 5322 parser. Local part: dot-atom; domain: at least two DNS labels, alphabetic TLD.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN_RE = re.compile(rf"^(?:{_LABEL}\.)+[A-Za-z]{{2,63}}$")
_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")

# Go's time.ParseDuration syntax, which Cloudflare Access uses for session durations.
_GO_DURATION_RE = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))+$")
_GO_DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}



class FieldProblem(ValueError):
    """A rule broken by one value; ``at`` is the location of that value relative to the field checked.

    Validators raise it so that the loader can point at the exact list item, or at a sibling field
    when the value is missing.
    """

    def __init__(self, message: str, at: tuple[str | int, ...] = (), near: str | None = None) -> None:
        super().__init__(message)
        self.at = at
        self.near = near  # a sibling field to point at when the value itself is absent


def _closest(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` when a choice is close enough, else an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def normalise_rut(value: str | int) -> str:
    """The normal form of a Chilean RUT: body without leading zeros, ``-``, upper-case check digit.

    Accepts dots, leading zeros, a missing hyphen and a lower-case ``k``; the check digit is computed
    with ``stdnum.cl.rut``. ``'76.953.480-6'`` → ``'76953480-6'``, ``'10000013k'`` → ``'10000013-K'``,
    ``'00.000.000-0'`` → ``'0-0'``. Raises :class:`ValueError` with a message naming the expected digit.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected a RUT such as '76.953.480-6', got {show(value)}")
    text = str(value)
    compact = cl_rut.compact(text)
    body, digit = compact[:-1], compact[-1:]
    if not body or not (body.isascii() and body.isdigit()) or len(digit) != 1 or digit not in "0123456789K":
        raise ValueError(
            f"{show(text)} is not a RUT: expected digits (dots allowed), a hyphen and a check digit 0-9 or K"
        )
    number = int(body)
    if number > 99_999_999:
        raise ValueError(f"{show(text)} is not a RUT: the body has more than 8 digits")
    padded = f"{number:08d}{digit}"
    try:
        cl_rut.validate(padded)
    except StdnumValidationError:
        expected = cl_rut.calc_check_digit(padded[:-1])
        raise ValueError(f"{show(text)} has check digit {digit}, expected {expected}") from None
    return f"{number}-{digit}"


def slug_error(value: str) -> str | None:
    """Why a slug is not acceptable, or ``None``."""
    if _SLUG_RE.fullmatch(value):
        return None
    return (
        f"{show(value)} is not a valid slug: 3 to 32 characters, lower-case letters, digits and '-', "
        "starting with a letter and not ending with '-'"
    )


def _check_slug(value: str) -> str:
    problem = slug_error(value)
    if problem:
        raise ValueError(problem)
    return value


def _check_email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or len(value) > 254 or len(local) > 64 or not _LOCAL_RE.fullmatch(local):
        raise ValueError(f"{show(value)} is not an e-mail address")
    if not _DOMAIN_RE.fullmatch(domain):
        raise ValueError(f"{show(value)} is not an e-mail address")
    return value


def _check_domain(value: str) -> str:
    if value.startswith("@") and _DOMAIN_RE.fullmatch(value[1:]):
        raise ValueError(f"{show(value)} is not a domain name; write it without '@'")
    if len(value) > 253 or not _DOMAIN_RE.fullmatch(value):
        raise ValueError(f"{show(value)} is not a domain name")
    return value


def _check_session_duration(value: str) -> str:
    if not _GO_DURATION_RE.fullmatch(value):
        raise ValueError(f"{show(value)} is not a duration; write it like 30m, 24h or 720h")
    seconds = sum(float(n) * _GO_UNIT_SECONDS[u] for n, u in _GO_DURATION_PART_RE.findall(value))
    if seconds <= 0:
        raise ValueError(f"{show(value)} must be longer than zero")
    return value


def _check_statement_timeout(value: str) -> str:
    try:
        milliseconds = limits.statement_timeout_ms(value, unit_required=True)
    except ValueError as error:
        if "longer" in str(error):
            raise ValueError(f"{show(value)} is longer than PostgreSQL allows (about 24 days)") from None
        raise ValueError(f"{show(value)} is not a PostgreSQL duration; write it like 500ms, 30s, 5min or 1h") from None
    if milliseconds <= 0:
        raise ValueError(f"{show(value)} must be longer than zero (0 would disable the timeout)")
    return value


def _check_table(value: str) -> str:
    if value not in TENANT_TABLES:
        raise ValueError(
            f"{show(value)} is not a shared table{_closest(value, TENANT_TABLES)} (tables: {', '.join(TENANT_TABLES)})"
        )
    return value


def _check_secret_key(value: str) -> str:
    if not _SECRET_KEY_RE.fullmatch(value):
        raise ValueError(
            f"{show(value)} is not a valid key name: lower-case letters, digits and '_', "
            "starting with a letter, at most 63 characters"
        )
    return value


def _text_rule(max_length: int) -> Any:
    """A validator for free text: not blank, at most ``max_length`` characters, no control, invisible or
    bidirectional characters, and no ownership marker of a system the text reaches."""

    def check(value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if len(value) > max_length:
            raise ValueError(f"is {len(value)} characters long; at most {max_length} are allowed")
        found = limits.forbidden_character(value)
        if found:
            index, code, what = found
            raise ValueError(f"holds {code}, {what}, at character {index + 1}; retype the text without it")
        marker = limits.ownership_marker_in(value)
        if marker:
            raise ValueError(f"holds '{marker}', which marks objects the platform owns; reword it")
        return value

    return AfterValidator(check)


def _unique(values: Sequence[Any], *, fold_case: bool = False) -> None:
    """Raise a :class:`FieldProblem` pointing at the second occurrence of a repeated item."""
    seen: dict[Any, int] = {}
    for index, item in enumerate(values):
        key = item.lower() if fold_case and isinstance(item, str) else item
        if key in seen:
            raise FieldProblem(f"{show(item)} is listed twice (also item {seen[key]})", (index,))
        seen[key] = index


Email = Annotated[str, AfterValidator(_check_email)]
_VISIBLE_TEXT = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff]*$"
"""For editors: text without control, zero-width or bidirectional characters (validate checks more)."""
Name = Annotated[str, _text_rule(limits.NAME_MAX_LENGTH)]
Plan = Annotated[str, _text_rule(limits.PLAN_MAX_LENGTH)]
CollectionName = Annotated[str, _text_rule(limits.METABASE_NAME_MAX_LENGTH)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------


class AccessSpec(_Model):
    """Who gets through Cloudflare Access to the tenant's protected hostnames."""

    emails: list[Email] = Field(
        default_factory=list,
        description="E-mail addresses allowed through Cloudflare Access.",
        json_schema_extra={"items": {"type": "string", "format": "email"}},
    )
    email_domains: list[Annotated[str, AfterValidator(_check_domain)]] = Field(
        default_factory=list,
        description="E-mail domains allowed through Cloudflare Access, without '@' (e.g. smarterbot.cl).",
    )
    session_duration: Annotated[str, AfterValidator(_check_session_duration)] = Field(
        default="24h",
        description="How long an Access session lasts, as a Go duration (30m, 24h, 720h).",
        json_schema_extra={"pattern": _GO_DURATION_RE.pattern},
    )

    @field_validator("emails", "email_domains")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        _unique(value, fold_case=True)
        return value


Privilege = Literal["select", "insert", "update", "delete"]


def _read_only() -> list[Privilege]:
    return ["select"]


class DatabaseSpec(_Model):
    """The tenant's PostgreSQL role: which shared tables it may touch and how."""

    tables: list[Annotated[str, AfterValidator(_check_table)]] = Field(
        default_factory=list,
        description="Shared tables the tenant role is granted on; row-level security limits it to its rows.",
        json_schema_extra={"items": {"type": "string", "enum": list(TENANT_TABLES)}},
    )
    privileges: list[Privilege] = Field(
        default_factory=_read_only,
        description="Privileges granted on every listed table.",
    )
    connection_limit: int = Field(
        default=5,
        ge=limits.CONNECTION_LIMIT_MIN,
        le=limits.CONNECTION_LIMIT_MAX,
        description="Maximum concurrent connections of the role.",
    )
    statement_timeout: Annotated[str, AfterValidator(_check_statement_timeout)] = Field(
        default="30s",
        description="statement_timeout of the role, with a PostgreSQL unit (500ms, 30s, 5min, 1h).",
        json_schema_extra={"pattern": r"^[0-9]{1,12}[ \t]*(ms|s|min|h|d)$"},
    )

    @field_validator("tables", "privileges")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        _unique(value)
        return value


class ServiceSecretsSpec(_Model):
    """The keys of one service's Vault secret. Values never appear in the tenant file."""

    generate: list[Annotated[str, AfterValidator(_check_secret_key)]] = Field(
        default_factory=list,
        description="Keys whose values the provider generates and stores in Vault.",
        json_schema_extra={"items": {"type": "string", "pattern": SECRET_KEY_PATTERN}},
    )
    external: list[Annotated[str, AfterValidator(_check_secret_key)]] = Field(
        default_factory=list,
        description="Keys operators fill in by hand in Vault (e.g. tokens a vendor issues); never written.",
        json_schema_extra={"items": {"type": "string", "pattern": SECRET_KEY_PATTERN}},
    )
    rotate: int = Field(
        default=0, ge=0, le=limits.ROTATE_MAX, description="Raise this number to regenerate the generated keys."
    )

    @field_validator("generate")
    @classmethod
    def _generate_unique(cls, value: list[str]) -> list[str]:
        _unique(value)
        return value

    @field_validator("external")
    @classmethod
    def _external_unique_and_disjoint(cls, value: list[str], info: ValidationInfo) -> list[str]:
        _unique(value)
        generated = set(info.data.get("generate", ()))
        for index, key in enumerate(value):
            if key in generated:
                raise FieldProblem(
                    f"{show(key)} is also listed under generate; a key is either generated or external",
                    (index,),
                )
        return value


class AnalyticsSpec(_Model):
    """The tenant's Metabase groups, collection and query permissions."""

    enabled: bool = Field(default=True, description="Whether the tenant gets Metabase groups, a collection and data.")
    collection: CollectionName | None = Field(
        default=None,
        description="Name of the tenant's collection, unique across tenants ignoring case; default '<rut> (<name>)'.",
        json_schema_extra={"maxLength": limits.METABASE_NAME_MAX_LENGTH, "pattern": _VISIBLE_TEXT},
    )
    owners: list[Email] = Field(
        default_factory=list,
        description="E-mails of the people who curate the tenant's collection.",
        json_schema_extra={"items": {"type": "string", "format": "email"}},
    )
    viewers: list[Email] = Field(
        default_factory=list,
        description="E-mails of the people who may only view the tenant's collection.",
        json_schema_extra={"items": {"type": "string", "format": "email"}},
    )
    queries: Literal["query-builder", "query-builder-and-native", "no"] = Field(
        default="query-builder", description="What the tenant's groups may query on their database connection."
    )

    @field_validator("owners", "viewers")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        _unique(value, fold_case=True)
        return value


Service = Literal["chatwoot", "botpress", "odoo", "supabase"]
Product = Literal["chat", "erp", "automation", "store"]


class TenantSpec(_Model):
    """One tenant, as declared in ``tenants/<slug>.yaml``.

    The RUT (normal form) is the tenant's identity: it names the Vault path, the database role, the
    Metabase groups and the Pulumi logical names, so renaming the slug never recreates data.
    """

    model_config = ConfigDict(
        title="Tenant file",
        json_schema_extra={
            "description": "One customer of the platform, provisioned from tenants/<slug>.yaml.",
            "if": {"properties": {"status": {"const": "trial"}}, "required": ["status"]},
            "then": {"required": ["trial_expires_at"]},
            "else": {"not": {"required": ["trial_expires_at"]}},
        },
    )

    rut: str = Field(
        description="Chilean RUT with check digit, dots optional (76.953.480-6, 10000013-K, 0-0).",
        json_schema_extra={"pattern": r"^[0-9.]+-?[0-9kK]$"},
    )
    slug: Annotated[str, AfterValidator(_check_slug)] = Field(
        description="Short name used in hostnames; must equal the file name without .yaml.",
        json_schema_extra={"pattern": SLUG_PATTERN},
    )
    name: Name = Field(
        description="Display name, any Unicode (Ferretería Juanito) but no invisible or control characters.",
        json_schema_extra={"maxLength": limits.NAME_MAX_LENGTH, "pattern": _VISIBLE_TEXT},
    )
    type: Literal["customer", "infrastructure"] = Field(
        default="customer", description="customer, or infrastructure for the platform's own tenants."
    )
    status: Literal["trial", "active", "suspended", "cancelled"] = Field(
        description="Lifecycle state; offboarding changes it, it never deletes data."
    )
    plan: Plan = Field(
        description="Commercial plan, free text.",
        json_schema_extra={"maxLength": limits.PLAN_MAX_LENGTH, "pattern": _VISIBLE_TEXT},
    )
    trial_expires_at: date | None = Field(
        default=None,
        strict=False,
        validate_default=True,
        description="Last day of the trial (YYYY-MM-DD); required when and only when status is trial.",
    )
    products: list[Product] = Field(
        default_factory=list,
        description="Products the tenant uses; each gets the hostname <slug>-<product>.<zone>.",
    )
    access: AccessSpec = Field(default_factory=AccessSpec, description="Cloudflare Access allow list.")
    database: DatabaseSpec = Field(default_factory=DatabaseSpec, description="PostgreSQL role settings.")
    secrets: dict[Service, ServiceSecretsSpec] = Field(
        default_factory=dict,
        description="Per service, the keys of the tenant's Vault secret (names only, never values).",
    )
    analytics: AnalyticsSpec = Field(default_factory=AnalyticsSpec, description="Metabase settings.")

    @field_validator("rut", mode="before")
    @classmethod
    def _normalise_rut(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int):
            return value  # the type check reports it
        return normalise_rut(value)

    @field_validator("trial_expires_at", mode="before")
    @classmethod
    def _date_only(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            raise ValueError(f"expected a date such as 2027-03-31, got a date and time ({value.isoformat()})")
        if value is not None and not isinstance(value, date | str):
            raise ValueError(f"expected a date such as 2027-03-31, got {_describe(value)}")
        return value

    @field_validator("trial_expires_at")
    @classmethod
    def _trial_date(cls, value: date | None, info: ValidationInfo) -> date | None:
        status = info.data.get("status")
        if status == "trial" and value is None:
            raise FieldProblem("required when status is 'trial'", near="status")
        if status is not None and status != "trial" and value is not None:
            raise FieldProblem(f"only allowed when status is 'trial' (status is '{status}')")
        return value

    @field_validator("products")
    @classmethod
    def _products_unique(cls, value: list[str]) -> list[str]:
        _unique(value)
        return value

    @property
    def collection_name(self) -> str:
        """The Metabase collection's name: the one given, or ``"<rut> (<name>)"``."""
        return self.analytics.collection or naming.default_collection_name(self.rut, self.name)


def tenant_json_schema() -> dict[str, Any]:
    """The JSON Schema editors use to check tenant files (written to ``tenants/tenant.schema.json``)."""
    schema = TenantSpec.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


# --------------------------------------------------------------------------------------------------
# Pydantic errors → file positions and plain messages
# --------------------------------------------------------------------------------------------------

_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _describe(value: Any) -> str:
    if isinstance(value, _Redacted):
        return "a value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {show(value)}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, int) and abs(value) >= 10**15:
        return show(value)
    return f"the number {value}"


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class that owns the mapping at ``loc`` (for suggesting keys)."""
    model: type[BaseModel] = TenantSpec
    rest = list(loc)
    while rest:
        part = rest.pop(0)
        if not isinstance(part, str) or part not in model.model_fields:
            return None
        if model is TenantSpec and part == "secrets":
            if not rest:
                return None
            rest.pop(0)
            model = ServiceSecretsSpec
            continue
        annotation = model.model_fields[part].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return None
    return model


def _message(error: Any, loc: Loc) -> tuple[Loc, str]:
    """The location (possibly refined) and a plain message for one pydantic error."""
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return loc, "required field is missing"
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = _allowed_keys(model) if model else []
        hint = _closest(str(loc[-1]), allowed)
        return loc, (f"unknown key{hint}" if hint else f"unknown key; allowed: {', '.join(allowed)}")
    if kind == "value_error":
        exc = ctx.get("error")
        if isinstance(exc, FieldProblem):
            return (*loc, *exc.at), str(exc)
        return loc, str(exc) if exc is not None else error["msg"]
    if kind in _TYPE_WORDS:
        return loc, f"expected {_TYPE_WORDS[kind]}, got {_describe(value)}"
    if kind == "literal_error":
        return loc, f"{show(value)} is not one of {ctx.get('expected', '')}"
    if kind.startswith("date") or kind.startswith("datetime"):
        return loc, f"expected a date such as 2027-03-31, got {_describe(value)}"
    if kind in ("greater_than_equal", "greater_than"):
        return loc, f"must be at least {ctx.get('ge', ctx.get('gt'))}, got {_describe(value)}"
    if kind in ("less_than_equal", "less_than"):
        return loc, f"must be at most {ctx.get('le', ctx.get('lt'))}, got {_describe(value)}"
    return loc, error["msg"]


def _position(doc: _Document, loc: Loc, kind: str) -> yaml.Node | None:
    """The node to point at: the key for unknown keys, the value otherwise, the parent when missing."""
    if kind == "extra_forbidden" and loc in doc.keys:
        return doc.keys[loc]
    probe = loc
    while probe not in doc.values and probe:
        probe = probe[:-1]
    return doc.values.get(probe)


def _validate(checker: _FileChecker, doc: _Document) -> TenantSpec | None:
    try:
        return TenantSpec.model_validate(doc.data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc: Loc = tuple(error["loc"])
            if error["type"] == "literal_error" and loc and loc[-1] == "[key]":
                loc = loc[:-1]
                error = {**error, "type": "key_literal"}
            if error["type"] != "extra_forbidden" and any(loc[: len(r)] == r for r in doc.reported):
                continue  # already reported (and never echoed when it looks like a credential)
            if error["type"] == "key_literal":
                node = doc.keys.get(loc) or _position(doc, loc, "")
                checker.add(
                    node,
                    loc,
                    f"{show(loc[-1])} is not a service{_closest(str(loc[-1]), SERVICES)} "
                    f"(services: {', '.join(SERVICES)})",
                )
                continue
            loc, message = _message(error, loc)
            node = _position(doc, loc, error["type"])
            near = _near(error, loc)
            if loc not in doc.values and near in doc.values:
                node = doc.values[near]
            checker.add(node, loc, message)
        return None


def _near(error: Any, loc: Loc) -> Loc:
    exc = (error.get("ctx") or {}).get("error")
    if isinstance(exc, FieldProblem) and exc.near and loc:
        return (*loc[:-1], exc.near)
    return loc


# --------------------------------------------------------------------------------------------------
# Files, folders and rules across files
# --------------------------------------------------------------------------------------------------


def read_text_file(path: str, problems: list[Problem]) -> str | None:
    """The UTF-8 text of a regular file of at most :data:`MAX_FILE_BYTES`, or ``None`` with a problem added."""
    try:
        # Never through a link, never blocking on a pipe: selection checked the kind, this closes the race.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                problems.append(Problem(path, 0, 0, "", "is not a regular file"))
                return None
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        problems.append(Problem(path, 0, 0, "", f"cannot read: {(exc.strerror or 'unreadable').lower()}"))
        return None
    if len(raw) > MAX_FILE_BYTES:
        problems.append(Problem(path, 0, 0, "", f"file is larger than {MAX_FILE_BYTES} bytes"))
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        problems.append(Problem(path, line, col, "", "the file is not UTF-8 text"))
        return None


@dataclass
class _Claim:
    path: str
    where: str


def _node_where(path: str, node: yaml.Node | None) -> str:
    if node is None:
        return path
    return f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


@dataclass
class _Claims:
    """What the files read so far claim: RUTs, slugs, hostnames and collection names (folded)."""

    ruts: dict[str, _Claim] = field(default_factory=dict)
    slugs: dict[str, _Claim] = field(default_factory=dict)
    hosts: dict[str, _Claim] = field(default_factory=dict)
    collections: dict[str, _Claim] = field(default_factory=dict)


def _text_at(data: Any, *keys: str) -> str | None:
    """The text at ``keys`` in plain data, or ``None`` when absent, not text or already reported."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data if isinstance(data, str) and not isinstance(data, _Redacted) else None


def _collection_check(checker: _FileChecker, doc: _Document, normal_rut: str | None, claims: _Claims) -> None:
    """Collection names are unique across tenants, compared case-insensitively."""
    analytics = doc.data.get("analytics")
    if isinstance(analytics, dict) and analytics.get("enabled") is False:
        return
    given = _text_at(doc.data, "analytics", "collection")
    loc: Loc
    if given is not None:
        name, loc = given, ("analytics", "collection")
    else:
        tenant_name = _text_at(doc.data, "name")
        if tenant_name is None or normal_rut is None:
            return
        name, loc = naming.default_collection_name(normal_rut, tenant_name), ("name",)
    folded = " ".join(name.split()).casefold()
    node = doc.values.get(loc)
    if folded in claims.collections:
        other = claims.collections[folded]
        what = "collection name" if given is not None else "default collection name"
        message = f"the {what} {show(name)} is also used by {other.where} (names are compared ignoring case)"
        checker.add(node, loc, message)
    else:
        claims.collections[folded] = _Claim(checker.path, _node_where(checker.path, node))


def _policy_checks(checker: _FileChecker, doc: _Document, policy: Policy) -> None:
    """The stack's refusals: slugs naming platform hosts, public mail domains in access.email_domains."""
    slug = _text_at(doc.data, "slug")
    if slug is not None and not slug_error(slug):
        products = doc.data.get("products")
        labels: list[tuple[str, Loc]] = [(slug, ("slug",))]
        if isinstance(products, list):
            labels += [
                (f"{slug}-{p}", ("products", i)) for i, p in enumerate(products) if isinstance(p, str) and p in PRODUCTS
            ]
        for label, loc in labels:
            if label in policy.reserved_labels:
                checker.add(
                    doc.values.get(loc),
                    loc,
                    f"'{label}' is a hostname the platform keeps for itself (reserved: stack config "
                    "smarteros:reservedSlugs and the platform's own hosts); choose another slug",
                )
    access = doc.data.get("access")
    domains = access.get("email_domains") if isinstance(access, dict) else None
    if isinstance(domains, list):
        for index, domain in enumerate(domains):
            if isinstance(domain, str) and domain.lower().rstrip(".") in policy.public_mail_domains:
                loc = ("access", "email_domains", index)
                checker.add(
                    doc.values.get(loc),
                    loc,
                    f"{show(domain)} is a public mail provider: anyone can get an address there; "
                    "list the people under access.emails instead",
                )


def _cross_checks(checker: _FileChecker, doc: _Document, claims: _Claims) -> None:
    """Rules that need the file name or the other files: slug = file stem, unique RUT/slug/hostnames and
    collection names."""
    ruts, slugs, hosts = claims.ruts, claims.slugs, claims.hosts
    data = doc.data
    path = checker.path
    stem = Path(path).stem if Path(path).suffix in (".yaml", ".yml") else Path(path).name

    rut_value = data.get("rut")
    normal: str | None = None
    if isinstance(rut_value, str | int) and not isinstance(rut_value, bool | _Redacted):
        try:
            normal = normalise_rut(rut_value)
        except ValueError:
            normal = None
        if normal is not None:
            node = doc.values.get(("rut",))
            if normal in ruts:
                other = ruts[normal]
                checker.add(node, ("rut",), f"{show(rut_value)} is RUT {normal}, already used by {other.where}")
                normal = None  # reported once; the default collection name would only repeat it
            else:
                ruts[normal] = _Claim(path, _node_where(path, node))
    _collection_check(checker, doc, normal, claims)

    slug = data.get("slug")
    if not isinstance(slug, str) or isinstance(slug, _Redacted) or slug_error(slug):
        return
    slug_node = doc.values.get(("slug",))
    if slug != stem:
        checker.add(slug_node, ("slug",), f"{show(slug)} differs from the file name; rename the file to {slug}.yaml")
    if slug in slugs:
        checker.add(slug_node, ("slug",), f"{show(slug)} is already used by {slugs[slug].where}")
        return
    slugs[slug] = _Claim(path, _node_where(path, slug_node))

    labels: list[tuple[str, Loc]] = [(naming.app_hostname(slug, "<zone>"), ("slug",))]
    products = data.get("products")
    if isinstance(products, list):
        for index, product in enumerate(products):
            if isinstance(product, str) and product in PRODUCTS:
                labels.append((naming.product_hostname(slug, product, "<zone>"), ("products", index)))
    mine: set[str] = set()
    for host, loc in labels:
        if host in mine:
            continue
        mine.add(host)
        node = doc.values.get(loc)
        if host in hosts:
            other = hosts[host]
            checker.add(node, loc, f"hostname {host} is also claimed by {other.where}")
        else:
            hosts[host] = _Claim(path, _node_where(path, node))


@dataclass
class Checked:
    """What :func:`check_selected` found: the valid specs, every problem, and the tenant files selected."""

    specs: list[TenantSpec]
    problems: list[Problem]
    files: list[str]


def check_files(
    paths: Sequence[str | os.PathLike[str]], policy: Policy | None = None, *, allow_empty: bool = False
) -> tuple[list[TenantSpec], list[Problem], int]:
    """Validate tenant files; returns the valid specs, every problem found, and how many files were read."""
    checked = check_selected(paths, policy, allow_empty=allow_empty)
    return checked.specs, checked.problems, len(checked.files)


def check_selected(
    paths: Sequence[str | os.PathLike[str]], policy: Policy | None = None, *, allow_empty: bool = False
) -> Checked:
    """Select tenant files and validate them.

    ``paths`` are files, folders or glob patterns, selected by :func:`components.selection.select_tenant_files`
    (the program selects the same way); ``policy`` adds the stack's refusals (reserved slugs, public mail
    domains), the built-in ones when not given.
    """
    selection = select_tenant_files(paths, allow_empty=allow_empty)
    problems: list[Problem] = list(selection.problems)
    rules = policy or Policy()
    specs: list[TenantSpec] = []
    claims = _Claims()
    for path in selection.files:
        text = read_text_file(path, problems)
        if text is None:
            continue
        checker = _FileChecker(path)
        for line, col, message in comment_problems(text):
            checker.problems.append(Problem(path, line, col, "", message))
        doc = checker.parse(text)
        if doc is not None:
            spec = _validate(checker, doc)
            _cross_checks(checker, doc, claims)
            _policy_checks(checker, doc, rules)
            if spec is not None and not checker.problems:
                specs.append(spec)
        problems.extend(sorted(checker.problems, key=lambda p: (p.line, p.col)))
    return Checked(specs, problems, selection.files)


def load_tenants(
    paths: Sequence[str | os.PathLike[str]], policy: Policy | None = None, *, allow_empty: bool = False
) -> list[TenantSpec]:
    """Every tenant in ``paths`` (files, folders of ``*.yaml``, or glob patterns), in file order.

    Raises :class:`SpecError` listing every problem in every file when any file is not valid, so a bad
    file never yields a partial deployment.
    """
    specs, problems, _ = check_files(paths, policy, allow_empty=allow_empty)
    if problems:
        raise SpecError(problems)
    return specs
