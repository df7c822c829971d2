"""Stack configuration: every key the program and its dynamic providers read.

Keys live in the ``smarteros`` namespace of ``Pulumi.<stack>.yaml``. Structured values are objects;
credentials are separate keys set with ``pulumi config set --secret`` and never appear in a stack file
in clear. The same models parse the program's config (:func:`load_stack_config`) and the raw
``ConfigureRequest`` a dynamic provider receives (:func:`section_from_raw`), so both sides agree.

This module imports nothing from Pulumi at import time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from .access import READ_ONLY_ENV, read_only

PROJECT = "smarteros"
DEFAULT_TIME_ZONE = "America/Santiago"

# Secret keys (set with `pulumi config set --secret <key> ...`) and their environment fallbacks.
SECRET_KEYS: dict[str, str] = {
    "cloudflareApiToken": "CLOUDFLARE_API_TOKEN",
    "postgresPassword": "PGPASSWORD",
    "vaultToken": "VAULT_TOKEN",
    "metabaseApiKey": "METABASE_API_KEY",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ProductEdge(_Section):
    """Where a product's hostnames point and whether Access protects them."""

    target: str
    exposure: Literal["protected", "public"] = "protected"


class CloudflareConfig(_Section):
    """``smarteros:cloudflare``: the zone and account the edge lives in."""

    enabled: bool = True
    zone: str = ""
    zone_id: str = Field("", alias="zoneId")
    account_id: str = Field("", alias="accountId")
    admin_group_id: str = Field("", alias="adminGroupId")
    app_target: str = Field("", alias="appTarget")
    app_exposure: Literal["protected", "public"] = Field("protected", alias="appExposure")
    products: dict[Literal["chat", "erp", "automation", "store"], ProductEdge] = Field(default_factory=dict)
    ttl: int = 1
    # Zero Trust Access applications this stack may hold in the account (Cloudflare's default quota is 500
    # per account; lower it when other stacks or hand-made applications share the account). `plan` refuses
    # a change that would exceed it.
    access_application_limit: int = Field(500, alias="accessApplicationLimit", ge=1)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> CloudflareConfig:
        if self.enabled:
            required = {
                "zone": self.zone,
                "zoneId": self.zone_id,
                "accountId": self.account_id,
                "adminGroupId": self.admin_group_id,
                "appTarget": self.app_target,
            }
            missing = [key for key, value in required.items() if not value]
            if missing:
                raise ValueError(f"required when Cloudflare is enabled: {', '.join(missing)}")
        return self


class PostgresConfig(_Section):
    """``smarteros:postgres``: the provisioning connection (password: ``postgresPassword``)."""

    host: str = "127.0.0.1"
    port: int = 5432
    database: str = "smarteros"
    user: str = "smarteros_provisioner"
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"


class VaultConfig(_Section):
    """``smarteros:vault``: the Vault server and KV v2 mount (token: ``vaultToken``)."""

    address: str = "http://127.0.0.1:8200"
    mount: str = "secret"


class MetabaseDatabaseConfig(_Section):
    """How Metabase reaches the shared database as a tenant role."""

    host: str = "127.0.0.1"
    port: int = 5432
    dbname: str = "smarteros"
    user_template: str = Field("{role}", alias="userTemplate")
    ssl: bool = False
    additional_options: str = Field("", alias="additionalOptions")


class MetabaseConfig(_Section):
    """``smarteros:metabase``: the Metabase server (API key: ``metabaseApiKey``)."""

    enabled: bool = True
    url: str = "http://127.0.0.1:3000"
    tenants_collection: str = Field("Tenants", alias="tenantsCollection")
    database: MetabaseDatabaseConfig = Field(default_factory=lambda: MetabaseDatabaseConfig.model_validate({}))


def _known_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (expected an IANA name such as 'America/Santiago')") from None
    return value


class StackConfig(_Section):
    """The whole stack configuration, as the program sees it."""

    tenant_files: list[str] = Field(default_factory=lambda: ["tenants/*.yaml"], alias="tenantFiles")
    allow_empty: bool = Field(False, alias="allowEmpty")
    reserved_slugs: list[str] = Field(default_factory=list, alias="reservedSlugs")
    public_mail_domains: list[str] = Field(default_factory=list, alias="publicMailDomains")
    protect: bool = False
    # Where the providers take credentials: the stack's encrypted config or the environment, or the
    # environment only (a stack CI converges: whoever runs a preview can decrypt the config).
    credentials: Literal["config-or-environment", "environment"] = "config-or-environment"
    # Trial dates are days in this time zone: a trial whose last day has passed here converges as suspended.
    time_zone: Annotated[str, AfterValidator(_known_time_zone)] = Field(DEFAULT_TIME_ZONE, alias="timeZone")
    cloudflare: CloudflareConfig = Field(default_factory=lambda: CloudflareConfig.model_validate({}))
    postgres: PostgresConfig = Field(default_factory=lambda: PostgresConfig.model_validate({}))
    vault: VaultConfig = Field(default_factory=lambda: VaultConfig.model_validate({}))
    metabase: MetabaseConfig = Field(default_factory=lambda: MetabaseConfig.model_validate({}))


_SECTIONS: dict[str, str] = {
    "tenantFiles": "tenant_files",
    "allowEmpty": "allow_empty",
    "reservedSlugs": "reserved_slugs",
    "publicMailDomains": "public_mail_domains",
    "protect": "protect",
    "credentials": "credentials",
    "timeZone": "time_zone",
    "cloudflare": "cloudflare",
    "postgres": "postgres",
    "vault": "vault",
    "metabase": "metabase",
}


def _decode(value: Any) -> Any:
    """Config values arrive as strings holding JSON for objects, lists and booleans."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class ConfigError(Exception):
    """Stack configuration the program cannot run with; one line per problem, naming the key."""


def stack_config_from_raw(raw: Mapping[str, Any]) -> StackConfig:
    """Build the stack config from ``{"smarteros:<key>": value}`` pairs (values may be JSON strings)."""
    data: dict[str, Any] = {}
    for key in _SECTIONS:
        value = raw.get(f"{PROJECT}:{key}")
        if value is not None:
            data[key] = _decode(value)
    try:
        return StackConfig.model_validate(data)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            lines.append(f"{PROJECT}:{where}: {problem['msg'].removeprefix('Value error, ')}")
        raise ConfigError("\n".join(lines)) from None


def load_stack_config(get: Callable[[str], Any]) -> StackConfig:
    """Build the stack config from a getter such as ``pulumi.Config(PROJECT).get``."""
    return stack_config_from_raw({f"{PROJECT}:{k}": get(k) for k in _SECTIONS})


def plaintext_credentials(get: Callable[[str], Any], is_secret: Callable[[str], bool]) -> list[str]:
    """The credential keys set in clear in the stack's config (each must be set with ``--secret``)."""
    return [
        f"{PROJECT}:{key}"
        for key in SECRET_KEYS
        if not is_secret(f"{PROJECT}:{key}") and get(key) is not None
    ]


S = TypeVar("S", bound=_Section)


def section_from_raw(raw: Any, key: str, model: type[S]) -> S:
    """One section (``postgres``, ``vault``, ``metabase``) from a provider's ConfigureRequest config."""
    value = _decode(raw.get(f"{PROJECT}:{key}")) if raw is not None else None
    try:
        return model.model_validate(value or {})
    except ValidationError as error:
        # Names the key and the problem, never the input: a misplaced credential must not reach a log.
        lines = []
        for problem in error.errors():
            where = ".".join([f"{PROJECT}:{key}", *(str(part) for part in problem["loc"])])
            lines.append(f"{where}: {problem['msg'].removeprefix('Value error, ')}")
        raise ConfigError("\n".join(lines)) from None


def environment_only(declared: Any, environ: Mapping[str, str]) -> str | None:
    """Why credentials must come from the environment only (``None`` when the config may hold them)."""
    if read_only(environ):
        return f"this run is read-only ({READ_ONLY_ENV}=true)"
    if declared == "environment":
        return f"the stack declares `{PROJECT}:credentials: environment`"
    return None


def secret_from_raw(raw: Any, key: str, environ: Mapping[str, str]) -> str | None:
    """A credential from provider config, falling back to its environment variable.

    In a read-only run (:mod:`components.access`), or a stack whose ``smarteros:credentials`` is
    ``environment``, only the environment counts, and a credential in the config is an error naming its
    key (never its value).
    """
    value = raw.get(f"{PROJECT}:{key}") if raw is not None else None
    why = environment_only(_decode(raw.get(f"{PROJECT}:credentials")) if raw is not None else None, environ)
    if why:
        if value:
            raise ConfigError(held_in_config_message([f"{PROJECT}:{key}"], why))
        return environ.get(SECRET_KEYS[key]) or None
    if value:
        return str(value)
    return environ.get(SECRET_KEYS[key]) or None


def held_in_config_message(keys: list[str], why: str) -> str:
    """Why a stack whose config holds credential ``keys`` is refused when ``why`` applies."""
    names = ", ".join(keys)
    known = [SECRET_KEYS[name] for key in keys if (name := key.removeprefix(f"{PROJECT}:")) in SECRET_KEYS]
    variables = ", ".join(known) or "the environment"
    return (
        f"{names}: a credential in the stack config, and {why}: credentials come from the environment "
        f"only, since whoever runs a preview can decrypt the stack config. Remove it (`pulumi config rm`) "
        f"and give `pulumi up` its credentials through {variables} (README, \"Credentials\")"
    )


def credential_problems(
    get: Callable[[str], Any],
    is_secret: Callable[[str], bool],
    environ: Mapping[str, str],
    config_keys: Iterable[str] = (),
) -> list[str]:
    """What is wrong with where the stack's credentials are: one line per problem, naming keys only.

    A credential set in clear is always refused; any credential in the config is, in a read-only run or
    in a stack whose ``smarteros:credentials`` is ``environment``: the four the providers read, and any
    other encrypted value among ``config_keys`` (every key of the stack config, any namespace), which a
    preview decrypts just the same.
    """
    clear = plaintext_credentials(get, is_secret)
    problems = [f"{key}: a credential in clear; store it with `pulumi config set --secret`" for key in clear]
    held = [f"{PROJECT}:{key}" for key in SECRET_KEYS if get(key) is not None]
    held += sorted(key for key in set(config_keys) - set(held) if is_secret(key))
    why = environment_only(_decode(get("credentials")), environ)
    if held and why:
        problems.append(held_in_config_message(held, why))
    return problems
