"""Vault for one tenant: KV v2 secrets, a least-privilege ACL policy and an AppRole.

Three dynamic resources, each a thin layer over :class:`VaultApi` (``hvac``'s HTTP adapter, one method
per documented endpoint) and pure functions that decide what to write:

``pulumi-python:dynamic/vault:Secret``
    ``<mount>/tenants/<rut>/<service>``. It owns the keys named in ``generate`` (random values made with
    :mod:`secrets`) and the values the platform passes in ``provided`` (such as the database login). Keys
    named in ``external`` belong to operators, who fill them in by hand: they are never written, removed or
    compared. Every write starts from the live keys and is sent with check-and-set against the version it
    read, so an edit made meanwhile is reported, not overwritten. Raising ``rotate`` regenerates the
    generated keys; adding a key generates only that key; removing one deletes it. The secret's custom
    metadata carries the ownership marker (``managed-by``, ``pulumi-stack``).
``pulumi-python:dynamic/vault:AclPolicy``
    ``tenant-<rut>`` (Vault stores policy names lower-case), granting ``read`` and ``list`` on exactly
    ``<mount>/data/tenants/<rut>/*`` and ``<mount>/metadata/tenants/<rut>/*``; paths keep the RUT's case.
    The first line of the policy text is the ownership marker.
``pulumi-python:dynamic/vault:AppRole``
    ``tenant-<rut>``, whose tokens carry that policy and nothing else (no ``default`` policy). AppRole
    roles have no field for a marker, so an existing role is adopted only when it is exactly the desired
    one.

Which outputs are secret: ``values`` (every managed key and its value) and ``provided`` (the platform's
values) are declared with ``additional_secret_outputs`` by the resource classes below. Every other output
carries key names and versions, never a value.

Connection settings come from stack config in :meth:`configure` (``smarteros:vault`` for the address and
mount, the secret ``smarteros:vaultToken`` for the token), falling back to ``VAULT_ADDR``/``VAULT_TOKEN``.
The provider object a program builds carries none of them, and neither do outputs nor error messages.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn
from urllib.parse import quote

import hvac.adapters
import pulumi
import requests
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
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from components.config import VaultConfig, secret_from_raw, section_from_raw
from components.limits import ROTATE_MAX
from components.naming import vault_policy_name, vault_secret_path, vault_tenant_prefix

from .base import DynamicResource

MANAGED_BY = "smarteros"
"""Value of the ``managed-by`` ownership marker."""

MARKER_KEY = "managed-by"
STACK_KEY = "pulumi-stack"
REQUEST_TIMEOUT = 10.0
"""Seconds before any single request to Vault is abandoned."""

SECRET_OUTPUTS: tuple[str, ...] = ("values", "provided")
"""Outputs of :class:`VaultSecret` that hold secret values."""

_RUT = re.compile(r"^(0|[1-9][0-9]*)-[0-9K]$")
_SEGMENT = r"[A-Za-z0-9_.-]+"
_MOUNT = re.compile(rf"^{_SEGMENT}(/{_SEGMENT})*$")
_SERVICE = re.compile(r"^[a-z][a-z0-9_-]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_STACK = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_POLICY_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_GENERATED_BYTES = 32


class VaultProviderError(Exception):
    """A Vault operation for a tenant failed; the message says which, what was sent and what came back."""


# --------------------------------------------------------------------------------------------------
# Rendering and validation (pure)
# --------------------------------------------------------------------------------------------------


def hcl_string(value: str) -> str:
    """A quoted HCL string literal for ``value``.

    JSON string escaping is valid HCL string escaping. HCL would expand ``${`` and ``%{`` sequences and
    has no escape for control characters in policy paths, so those are refused rather than escaped.
    """
    if "${" in value or "%{" in value:
        raise ValueError(f"{value!r} contains an HCL template sequence")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"{value!r} contains a control character")
    return json.dumps(value, ensure_ascii=True)


def policy_marker(stack: str) -> str:
    """First line of every policy this provider writes: the ownership marker."""
    return f"# {MARKER_KEY}: {MANAGED_BY} {STACK_KEY}: {stack}"


def render_policy(rut: str, mount: str, stack: str) -> str:
    """HCL of a tenant's policy: read and list on its own KV v2 subtree, nothing else.

    ``rut``, ``mount`` and ``stack`` must have passed :func:`check_policy_inputs`; they are rendered through
    :func:`hcl_string` anyway, and the comment lines hold only validated characters.
    """
    prefix = vault_tenant_prefix(rut)
    lines = [policy_marker(stack), f"# Tenant {rut}: its own secrets, read-only."]
    for kind in ("data", "metadata"):
        lines += [
            f"path {hcl_string(f'{mount}/{kind}/{prefix}/*')} {{",
            '  capabilities = ["read", "list"]',
            "}",
        ]
    return "\n".join(lines) + "\n"


def policy_is_ours(text: str, stack: str) -> bool:
    """Whether a live policy carries this stack's marker on its first line."""
    first = text.splitlines()[0].strip() if text.strip() else ""
    return first == policy_marker(stack)


def secret_marker(stack: str) -> dict[str, str]:
    """Custom metadata that marks a KV secret as managed by this stack."""
    return {MARKER_KEY: MANAGED_BY, STACK_KEY: stack}


def secret_owner(custom_metadata: Mapping[str, Any] | None) -> str | None:
    """The stack named by a secret's marker, or None when the secret carries no marker."""
    meta = custom_metadata or {}
    if meta.get(MARKER_KEY) != MANAGED_BY:
        return None
    return str(meta.get(STACK_KEY) or "")


def _known(value: Any) -> bool:
    """False for a value the engine will only know at apply time (previews)."""
    # The provider host hands Check an ``Unknown`` instance; the sentinel string arrives elsewhere.
    return not (isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN))


def _check_rut(rut: Any) -> list[tuple[str, str]]:
    if not isinstance(rut, str) or not _RUT.match(rut):
        return [("rut", f"{rut!r} is not a normalised RUT such as '76953480-6' or '10000013-K'")]
    return []


def _check_mount(mount: Any) -> list[tuple[str, str]]:
    if not isinstance(mount, str) or not _MOUNT.match(mount):
        return [("mount", f"{mount!r} is not a KV v2 mount path (letters, digits, '_', '.', '-', '/')")]
    return []


def _check_stack(stack: Any) -> list[tuple[str, str]]:
    if not isinstance(stack, str) or not _STACK.match(stack):
        return [("stack", f"{stack!r} is not a stack name such as 'smarteros/prod'")]
    return []


def _check_keys(name: str, keys: Any) -> list[tuple[str, str]]:
    if not isinstance(keys, list):
        return [(name, "must be a list of key names")]
    failures = []
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if not isinstance(key, str) or not _KEY.match(key):
            failures.append((f"{name}[{i}]", f"{key!r} is not a key name (letters, digits, '_', '.', '-')"))
        elif key in seen:
            failures.append((f"{name}[{i}]", f"{key!r} is listed twice"))
        seen.add(str(key))
    return failures


def check_secret_inputs(news: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Field-level problems with a secret's inputs (empty when they are fine)."""
    failures = _check_rut(news.get("rut")) + _check_mount(news.get("mount")) + _check_stack(news.get("stack"))
    service = news.get("service")
    if not isinstance(service, str) or not _SERVICE.match(service):
        failures.append(("service", f"{service!r} is not a service name such as 'chatwoot'"))
    failures += _check_keys("generate", news.get("generate"))
    failures += _check_keys("external", news.get("external"))
    provided = news.get("provided")
    if not isinstance(provided, dict):
        failures.append(("provided", "must be a map of key name to value"))
        provided = {}
    for key, value in provided.items():
        if not _KEY.match(key):
            failures.append((f"provided.{key}", f"{key!r} is not a key name (letters, digits, '_', '.', '-')"))
        elif _known(value) and not isinstance(value, str):
            failures.append((f"provided.{key}", "must be a string"))
    rotate = news.get("rotate")
    if isinstance(rotate, int | float) and not isinstance(rotate, bool) and not rotate <= ROTATE_MAX:
        failures.append(("rotate", f"must be at most {ROTATE_MAX} (numbers beyond it lose precision)"))
    elif isinstance(rotate, bool) or not isinstance(rotate, int | float) or int(rotate) != rotate or rotate < 0:
        failures.append(("rotate", f"{rotate!r} is not a whole number >= 0"))
    generate = set(news.get("generate") or []) if isinstance(news.get("generate"), list) else set()
    external = set(news.get("external") or []) if isinstance(news.get("external"), list) else set()
    for key in sorted(generate & external):
        failures.append(("external", f"{key!r} cannot be both generated and filled in by hand"))
    for key in sorted(set(provided) & (generate | external)):
        failures.append((f"provided.{key}", f"{key!r} is also listed in generate or external"))
    return failures


def check_policy_inputs(news: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Field-level problems with a policy's inputs. Globs and quotes never reach the HCL."""
    return _check_rut(news.get("rut")) + _check_mount(news.get("mount")) + _check_stack(news.get("stack"))


def check_approle_inputs(news: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Field-level problems with an AppRole's inputs."""
    failures = _check_rut(news.get("rut"))
    policy = news.get("policy")
    if _known(policy) and (not isinstance(policy, str) or not _POLICY_NAME.match(policy)):
        failures.append(("policy", f"{policy!r} is not a policy name such as 'tenant-76953480-6'"))
    return failures


# --------------------------------------------------------------------------------------------------
# Planning (pure): desired vs live
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretInputs:
    """The user inputs of a KV v2 secret."""

    rut: str
    service: str
    mount: str
    stack: str
    generate: tuple[str, ...] = ()
    external: tuple[str, ...] = ()
    rotate: int = 0
    provided: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> SecretInputs:
        return cls(
            rut=str(props["rut"]),
            service=str(props["service"]),
            mount=str(props["mount"]),
            stack=str(props.get("stack") or ""),
            generate=tuple(props.get("generate") or ()),
            external=tuple(props.get("external") or ()),
            rotate=int(props.get("rotate") or 0),
            provided=dict(props.get("provided") or {}),
        )

    @property
    def path(self) -> str:
        """Path inside the mount: ``tenants/<rut>/<service>``."""
        return vault_secret_path(self.rut, self.service)

    @property
    def full_path(self) -> str:
        """``<mount>/tenants/<rut>/<service>``: the resource id."""
        return f"{self.mount}/{self.path}"

    @property
    def managed(self) -> frozenset[str]:
        """Keys this resource owns: the generated ones and the provided ones."""
        return frozenset(self.generate) | frozenset(self.provided)

    def as_props(self) -> dict[str, Any]:
        return {
            "rut": self.rut,
            "service": self.service,
            "mount": self.mount,
            "stack": self.stack,
            "generate": list(self.generate),
            "external": list(self.external),
            "rotate": self.rotate,
            "provided": dict(self.provided),
        }


def new_secret_value() -> str:
    """A fresh random value for a generated key (256 bits, URL-safe)."""
    return secrets.token_urlsafe(_GENERATED_BYTES)


def plan_secret_data(
    live: Mapping[str, str],
    desired: SecretInputs,
    *,
    recorded: Mapping[str, str] | None = None,
    previously_managed: Iterable[str] = (),
    rotate: bool = False,
    new_value: Callable[[], str] = new_secret_value,
) -> dict[str, str]:
    """The data to write: the live keys with the managed ones brought to the desired state.

    - keys this resource managed before and no longer does are removed, unless they are now external;
    - a generated key keeps its live value; when it is missing it gets back the value last recorded, or a
      new one; ``rotate`` gives every generated key a new value;
    - provided keys take the provided value;
    - every other key (external ones, anything an operator added) is kept as it is.
    """
    recorded = recorded or {}
    data = dict(live)
    for key in previously_managed:
        if key not in desired.managed and key not in desired.external:
            data.pop(key, None)
    for key in desired.generate:
        if rotate:
            data[key] = new_value()
        elif key not in data:
            data[key] = recorded[key] if key in recorded else new_value()
    for key, value in desired.provided.items():
        data[key] = value
    return data


@dataclass(frozen=True)
class SecretDrift:
    """Managed keys whose live value differs from the one last recorded, or that are gone."""

    changed: tuple[str, ...]
    removed: tuple[str, ...]


def secret_drift(managed: Iterable[str], recorded: Mapping[str, str], live: Mapping[str, str]) -> SecretDrift:
    """Compare the managed keys' recorded values with the live ones (names only leave this function)."""
    keys = sorted(set(managed))
    changed = tuple(k for k in keys if k in live and k in recorded and live[k] != recorded[k])
    removed = tuple(k for k in keys if k not in live)
    return SecretDrift(changed, removed)


@dataclass(frozen=True)
class Plan:
    """What a diff found: fields that changed and the subset that forces a replacement."""

    changed: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    delete_before_replace: bool = False

    def result(self) -> DiffResult:
        return DiffResult(
            changes=bool(self.changed or self.replaces),
            replaces=list(self.replaces),
            stables=[],
            delete_before_replace=self.delete_before_replace,
        )


def _replacement(
    olds: Mapping[str, Any],
    news: Mapping[str, Any],
    identity: Iterable[str],
    name: Callable[[Mapping[str, Any]], str],
) -> tuple[tuple[str, ...], bool]:
    replaces = tuple(f for f in identity if f in olds and olds.get(f) != news.get(f))
    if not replaces:
        return (), False
    try:
        same_name = name(olds) == name(news)
    except (KeyError, TypeError, ValueError):
        same_name = False
    return replaces, same_name


def diff_secret(olds: Mapping[str, Any], news: Mapping[str, Any]) -> Plan:
    """Diff of a secret: old outputs (which hold the live state after a refresh) against new inputs."""
    replaces, same_name = _replacement(
        olds,
        news,
        ("mount", "rut", "service"),
        lambda p: f"{p['mount']}/{vault_secret_path(p['rut'], p['service'])}",
    )
    changed: list[str] = []
    generate = list(news.get("generate") or [])
    provided = dict(news.get("provided") or {})
    desired_keys = sorted(set(generate) | set(provided))
    if desired_keys != sorted(olds.get("keys") or []):
        changed.append("keys")
    live_values = dict(olds.get("values") or {})
    if any(live_values.get(k) != v for k, v in provided.items()):
        changed.append("provided")
    if int(news.get("rotate") or 0) != int(olds.get("rotate") or 0):
        changed.append("rotate")
    if sorted(news.get("external") or []) != sorted(olds.get("external") or []):
        changed.append("external")
    if news.get("stack") != olds.get("stack") or olds.get("managed") is False:
        changed.append("stack")
    return Plan(tuple(changed), replaces, same_name)


def diff_policy(olds: Mapping[str, Any], news: Mapping[str, Any]) -> Plan:
    """Diff of a policy: replaced when its name changes, updated when its text would differ."""
    replaces, same_name = _replacement(olds, news, ("rut",), lambda p: vault_policy_name(p["rut"]))
    if replaces and same_name:
        replaces, same_name = (), False  # same policy name: rewriting the text is enough
    changed: list[str] = []
    if not replaces:
        try:
            desired = render_policy(news["rut"], news["mount"], news["stack"])
        except (KeyError, ValueError):
            desired = None
        if desired is None or desired != olds.get("policy"):
            changed.append("policy")
        for name in ("rut", "mount", "stack"):
            if olds.get(name) != news.get(name) and name not in changed:
                changed.append(name)
    return Plan(tuple(changed), replaces, False)


def desired_approle(policy: str) -> dict[str, Any]:
    """Parameters of a tenant's AppRole: tokens carry exactly ``policy``."""
    return {"token_policies": [policy], "token_no_default_policy": True}


def approle_matches(live: Mapping[str, Any], policy: str) -> bool:
    """Whether a live AppRole grants exactly ``policy`` and not the default policy."""
    return sorted(live.get("token_policies") or []) == [policy] and bool(live.get("token_no_default_policy"))


def diff_approle(olds: Mapping[str, Any], news: Mapping[str, Any]) -> Plan:
    """Diff of an AppRole: replaced when its name changes, updated when its policies would differ."""
    replaces, same_name = _replacement(olds, news, ("rut",), lambda p: vault_policy_name(p["rut"]))
    if replaces and same_name:
        replaces, same_name = (), False
    changed: list[str] = []
    if not replaces:
        policy = news.get("policy")
        if not _known(policy) or not approle_matches(olds, str(policy)):
            changed.append("token_policies")
        if olds.get("policy") != policy and "token_policies" not in changed:
            changed.append("policy")
    return Plan(tuple(changed), replaces, False)


# --------------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------------


class VaultRequestError(Exception):
    """Vault answered with an error status, or could not be reached."""

    def __init__(self, method: str, path: str, status: int | None, answer: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.answer = answer
        super().__init__(f"{method} {path}: {status or 'no answer'} {answer}")

    @property
    def cas_mismatch(self) -> bool:
        return self.status == 400 and "check-and-set" in self.answer


def _segments(*parts: str) -> str:
    """URL path from segments, each quoted on its own (``/`` inside a part separates segments)."""
    out: list[str] = []
    for part in parts:
        out.extend(quote(seg, safe="") for seg in part.split("/") if seg)
    return "/".join(out)


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class KvVersion:
    """The latest version of a KV v2 secret."""

    data: dict[str, str]
    version: int
    custom_metadata: dict[str, str]


class VaultApi:
    """The Vault endpoints this project calls, one method each, over ``hvac``'s HTTP adapter.

    Requests time out after :data:`REQUEST_TIMEOUT` seconds. Connection failures are retried with backoff;
    5xx answers (a sealed Vault answers 503) are retried twice, quickly, for idempotent methods only, then
    reported. A 404 on a read means "absent" and returns None.
    """

    def __init__(self, address: str, token: str, *, timeout: float = REQUEST_TIMEOUT) -> None:
        retry = Retry(
            total=4,
            connect=3,
            read=0,
            status=2,
            other=0,
            backoff_factor=0.1,
            status_forcelist=(500, 502, 503, 504),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._adapter = hvac.adapters.RawAdapter(base_uri=address, token=token, timeout=timeout, session=session)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request; the decoded JSON body (None when empty), or :class:`VaultRequestError`."""
        try:
            response = self._adapter.request(method, f"/v1/{path}", raise_exception=False, **kwargs)
        except requests.Timeout:
            raise VaultRequestError(method, path, None, f"(timed out after {REQUEST_TIMEOUT:.0f}s)") from None
        except requests.RequestException as error:
            raise VaultRequestError(method, path, None, f"(could not connect: {type(error).__name__})") from None
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
        if response.ok:
            return body
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list):
            answer = "; ".join(str(e) for e in errors) or "(no message)"
        else:
            answer = response.reason or "(no message)"
        raise VaultRequestError(method, path, response.status_code, _one_line(answer))

    def _read(self, path: str) -> Any:
        try:
            return self._request("GET", path)
        except VaultRequestError as error:
            if error.status == 404:
                return None
            raise

    # KV v2 — https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2

    def kv_read(self, mount: str, path: str) -> KvVersion | None:
        """``GET /v1/:mount/data/:path``: the latest version, or None when absent or deleted."""
        body = self._read(_segments(mount, "data", path))
        if body is None:
            return None
        data = body.get("data") or {}
        meta = data.get("metadata") or {}
        return KvVersion(
            data=dict(data.get("data") or {}),
            version=int(meta.get("version") or 0),
            custom_metadata=dict(meta.get("custom_metadata") or {}),
        )

    def kv_write(self, mount: str, path: str, data: Mapping[str, str], cas: int) -> int:
        """``POST /v1/:mount/data/:path`` with ``options.cas``; returns the new version."""
        body = self._request("POST", _segments(mount, "data", path), json={"data": dict(data), "options": {"cas": cas}})
        return int(((body or {}).get("data") or {}).get("version") or 0)

    def kv_read_metadata(self, mount: str, path: str) -> dict[str, Any] | None:
        """``GET /v1/:mount/metadata/:path``: versions and custom metadata, or None when absent."""
        body = self._read(_segments(mount, "metadata", path))
        return None if body is None else dict(body.get("data") or {})

    def kv_write_metadata(self, mount: str, path: str, custom_metadata: Mapping[str, str]) -> None:
        """``POST /v1/:mount/metadata/:path`` setting only ``custom_metadata`` (other settings untouched)."""
        self._request("POST", _segments(mount, "metadata", path), json={"custom_metadata": dict(custom_metadata)})

    def kv_delete_all(self, mount: str, path: str) -> None:
        """``DELETE /v1/:mount/metadata/:path``: the secret, every version and its metadata."""
        self._request("DELETE", _segments(mount, "metadata", path))

    # ACL policies — https://developer.hashicorp.com/vault/api-docs/system/policies

    def policy_read(self, name: str) -> str | None:
        """``GET /v1/sys/policies/acl/:name``: the policy text, or None when absent."""
        body = self._read(_segments("sys/policies/acl", name))
        return None if body is None else str((body.get("data") or {}).get("policy") or "")

    def policy_write(self, name: str, text: str) -> None:
        """``PUT /v1/sys/policies/acl/:name``."""
        self._request("PUT", _segments("sys/policies/acl", name), json={"policy": text})

    def policy_delete(self, name: str) -> None:
        """``DELETE /v1/sys/policies/acl/:name``."""
        self._request("DELETE", _segments("sys/policies/acl", name))

    # AppRole — https://developer.hashicorp.com/vault/api-docs/auth/approle

    def approle_read(self, name: str) -> dict[str, Any] | None:
        """``GET /v1/auth/approle/role/:name``: the role's settings, or None when absent."""
        body = self._read(_segments("auth/approle/role", name))
        return None if body is None else dict(body.get("data") or {})

    def approle_write(self, name: str, params: Mapping[str, Any]) -> None:
        """``POST /v1/auth/approle/role/:name``."""
        self._request("POST", _segments("auth/approle/role", name), json=dict(params))

    def approle_delete(self, name: str) -> None:
        """``DELETE /v1/auth/approle/role/:name``."""
        self._request("DELETE", _segments("auth/approle/role", name))


# --------------------------------------------------------------------------------------------------
# Connection settings (never serialised)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Connection:
    address: str
    token: str | None = field(repr=False)
    mount: str = "secret"


# Per configured provider object, in the process that runs it; never part of the object's pickled state.
_CONNECTIONS: weakref.WeakKeyDictionary[ResourceProvider, _Connection] = weakref.WeakKeyDictionary()
_CLIENTS: weakref.WeakKeyDictionary[ResourceProvider, VaultApi] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def connection_from_config(raw: Any, environ: Mapping[str, str]) -> _Connection:
    """Address, token and mount from a ConfigureRequest's config, with ``VAULT_ADDR``/``VAULT_TOKEN``."""
    section = section_from_raw(raw, "vault", VaultConfig)
    address = section.address if "address" in section.model_fields_set else environ.get("VAULT_ADDR") or section.address
    token = secret_from_raw(raw, "vaultToken", environ)
    return _Connection(address=address, token=token, mount=section.mount)


@contextmanager
def _vault_errors(rut: str, doing: str) -> Iterator[None]:
    """Turn a failed request into one line naming the tenant, the request and Vault's answer."""
    try:
        yield
    except VaultRequestError as error:
        status = str(error.status) if error.status else "no answer"
        hint = ""
        if error.status == 403:
            hint = " (check the provisioning token and its policy, vault/provisioner.hcl)"
        elif error.status == 503:
            hint = " (is Vault sealed or in standby?)"
        raise VaultProviderError(
            f"tenant {rut}: Vault could not {doing}: sent {error.method} /v1/{error.path}, "
            f"got {status} {error.answer}{hint}"
        ) from None


class _VaultProvider(ResourceProvider):
    """Shared plumbing: settings from :meth:`configure`, a client per configured provider."""

    serialize_as_secret_always = False

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        return None

    def configure(self, req: ConfigureRequest) -> None:
        with _LOCK:
            _CONNECTIONS[self] = connection_from_config(req.config, os.environ)
            _CLIENTS.pop(self, None)

    def _connection(self) -> _Connection:
        return _CONNECTIONS.get(self) or connection_from_config(None, os.environ)

    def _api(self, rut: str) -> VaultApi:
        with _LOCK:
            client = _CLIENTS.get(self)
            if client is None:
                connection = self._connection()
                if not connection.token:
                    raise VaultProviderError(
                        f"tenant {rut}: no Vault token: set it with `pulumi config set --secret "
                        "smarteros:vaultToken` or the VAULT_TOKEN environment variable"
                    )
                client = VaultApi(connection.address, connection.token)
                _CLIENTS[self] = client
            return client

    def _default_mount(self) -> str:
        return self._connection().mount

    @staticmethod
    def _check_result(news: dict[str, Any], failures: list[tuple[str, str]]) -> CheckResult:
        return CheckResult(news, [CheckFailure(f, r) for f, r in failures])


def _refuse(rut: str, what: str, why: str) -> NoReturn:
    raise VaultProviderError(
        f"tenant {rut}: Vault {what} already exists and {why}; to manage it from this stack, adopt it "
        "with the `import_` resource option, or remove it"
    )


# --------------------------------------------------------------------------------------------------
# KV v2 secret
# --------------------------------------------------------------------------------------------------


class SecretProvider(_VaultProvider):
    """CRUD for one tenant service's KV v2 secret."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = dict(news)
        inputs.setdefault("mount", self._default_mount())
        inputs.setdefault("generate", [])
        inputs.setdefault("external", [])
        inputs.setdefault("rotate", 0)
        inputs.setdefault("provided", {})
        return self._check_result(inputs, check_secret_inputs(inputs))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_secret(olds, news).result()

    def _outputs(
        self,
        desired: SecretInputs,
        data: Mapping[str, str],
        version: int,
        managed: bool,
        drift: SecretDrift | None = None,
        recorded: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Outputs for live ``data``. ``keys`` lists the managed keys present in Vault; ``values`` also keeps
        the ``recorded`` value of a managed key that is missing live, so the next update puts it back as it
        was instead of generating a new one."""
        keys = sorted(k for k in desired.managed if k in data)
        kept = {k: v for k, v in (recorded or {}).items() if k in desired.managed and k not in data}
        return {
            **desired.as_props(),
            "path": desired.full_path,
            "version": version,
            "keys": keys,
            "values": {**kept, **{k: data[k] for k in keys}},
            "managed": managed,
            "changed_keys": list(drift.changed) if drift else [],
            "removed_keys": list(drift.removed) if drift else [],
        }

    def _converge(
        self,
        desired: SecretInputs,
        *,
        recorded: Mapping[str, str],
        previously_managed: Iterable[str],
        rotate: bool,
        creating: bool,
    ) -> dict[str, Any]:
        api = self._api(desired.rut)
        where = desired.full_path
        with _vault_errors(desired.rut, f"read secret {where}"):
            live = api.kv_read(desired.mount, desired.path)
            metadata = None if live is not None else api.kv_read_metadata(desired.mount, desired.path)
        exists = live is not None or metadata is not None
        custom = live.custom_metadata if live is not None else dict((metadata or {}).get("custom_metadata") or {})
        owner = secret_owner(custom) if exists else desired.stack
        if creating and exists and owner != desired.stack:
            why = "is not marked as managed by this stack" if owner is None else f"is managed by stack {owner!r}"
            _refuse(desired.rut, f"secret {where}", why)
        live_data = live.data if live is not None else {}
        version = live.version if live is not None else int((metadata or {}).get("current_version") or 0)
        marker = secret_marker(desired.stack)
        if not exists or any(custom.get(k) != v for k, v in marker.items()):
            with _vault_errors(desired.rut, f"mark secret {where} as managed"):
                api.kv_write_metadata(desired.mount, desired.path, {**custom, **marker})
        data = plan_secret_data(
            live_data, desired, recorded=recorded, previously_managed=previously_managed, rotate=rotate
        )
        if data != live_data or live is None:
            try:
                with _vault_errors(desired.rut, f"write secret {where}"):
                    version = api.kv_write(desired.mount, desired.path, data, cas=version)
            except VaultProviderError as error:
                if "check-and-set" in str(error):
                    raise VaultProviderError(
                        f"{error} — the secret changed while this update ran (check-and-set against version "
                        f"{version}); nothing was overwritten: run `pulumi refresh` and try again"
                    ) from None
                raise
        return self._outputs(desired, data, version, managed=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        desired = SecretInputs.from_props(props)
        outs = self._converge(desired, recorded={}, previously_managed=(), rotate=False, creating=True)
        return CreateResult(desired.full_path, outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        desired = SecretInputs.from_props(news)
        rotate = desired.rotate > int(olds.get("rotate") or 0)
        outs = self._converge(
            desired,
            recorded=dict(olds.get("values") or {}),
            previously_managed=list(olds.get("keys") or []) + list(olds.get("generate") or []),
            rotate=rotate,
            creating=False,
        )
        return UpdateResult(outs)

    @staticmethod
    def _identity(id_: str, props: Mapping[str, Any]) -> tuple[str, str, str]:
        if props.get("mount") and props.get("rut") and props.get("service"):
            return str(props["mount"]), str(props["rut"]), str(props["service"])
        mount, sep, rest = id_.rpartition("/tenants/")
        rut, _, service = rest.partition("/")
        if not sep or not mount or not rut or not service:
            raise VaultProviderError(f"{id_!r} is not a secret id of the form <mount>/tenants/<rut>/<service>")
        return mount, rut, service

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        mount, rut, service = self._identity(id_, props)
        desired = SecretInputs.from_props({**props, "mount": mount, "rut": rut, "service": service})
        api = self._api(rut)
        with _vault_errors(rut, f"read secret {desired.full_path}"):
            live = api.kv_read(mount, desired.path)
            metadata = None if live is not None else api.kv_read_metadata(mount, desired.path)
        if live is None and metadata is None:
            return ReadResult("", {})
        # A secret whose latest version was deleted still exists (its metadata and older versions do):
        # it is reported with every managed key removed, and the next update writes them back.
        data = live.data if live is not None else {}
        version = live.version if live is not None else int((metadata or {}).get("current_version") or 0)
        custom = live.custom_metadata if live is not None else dict((metadata or {}).get("custom_metadata") or {})
        recorded = dict(props.get("values") or {})
        drift = secret_drift(desired.managed, recorded, data)
        managed = secret_owner(custom) == desired.stack
        outputs = self._outputs(desired, data, version, managed, drift, recorded=recorded)
        return ReadResult(desired.full_path, outputs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        mount, rut, service = self._identity(id_, props)
        with _vault_errors(rut, f"delete secret {mount}/{vault_secret_path(rut, service)}"):
            try:
                self._api(rut).kv_delete_all(mount, vault_secret_path(rut, service))
            except VaultRequestError as error:
                if error.status != 404:
                    raise


# --------------------------------------------------------------------------------------------------
# Objects named tenant-<rut>: ACL policy and AppRole
# --------------------------------------------------------------------------------------------------


class _TenantObjectProvider(_VaultProvider):
    """CRUD for a Vault object named ``tenant-<rut>`` that is written whole: read what is live, refuse to
    take over a foreign one on create, write the desired value, and report live state on read.

    ``noun`` names the object in messages; the hooks do the per-kind work.
    """

    noun: ClassVar[str] = ""

    def _desired(self, props: Mapping[str, Any]) -> Any:
        """What to write for these inputs."""
        raise NotImplementedError

    def _refusal(self, live: Any, desired: Any, props: Mapping[str, Any]) -> str | None:
        """Why an existing object must not be taken over on create, or None when it may."""
        raise NotImplementedError

    def _outputs(self, props: Mapping[str, Any], live: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _live_read(self, api: VaultApi, name: str) -> Any | None:
        raise NotImplementedError

    def _live_write(self, api: VaultApi, name: str, desired: Any) -> None:
        raise NotImplementedError

    def _live_delete(self, api: VaultApi, name: str) -> None:
        raise NotImplementedError

    def _write(self, props: Mapping[str, Any], creating: bool) -> dict[str, Any]:
        rut = str(props["rut"])
        name = vault_policy_name(rut)
        desired = self._desired(props)
        api = self._api(rut)
        if creating:
            with _vault_errors(rut, f"read {self.noun} {name}"):
                live = self._live_read(api, name)
            why = None if live is None else self._refusal(live, desired, props)
            if why is not None:
                _refuse(rut, f"{self.noun} {name}", why)
        with _vault_errors(rut, f"write {self.noun} {name}"):
            self._live_write(api, name, desired)
        return self._outputs(props, desired)

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._write(props, creating=True)
        return CreateResult(outs["name"], outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._write(news, creating=False))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        rut = str(props.get("rut") or "")
        name = vault_policy_name(rut) if rut else id_
        with _vault_errors(rut or name, f"read {self.noun} {name}"):
            live = self._live_read(self._api(rut or name), name)
        if live is None:
            return ReadResult("", {})
        return ReadResult(name, self._outputs({**props, "name": name}, live))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        rut = str(props.get("rut") or id_)
        name = vault_policy_name(str(props["rut"])) if props.get("rut") else id_
        with _vault_errors(rut, f"delete {self.noun} {name}"):
            self._live_delete(self._api(rut), name)


class PolicyProvider(_TenantObjectProvider):
    """CRUD for a tenant's ACL policy."""

    noun = "policy"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = dict(news)
        inputs.setdefault("mount", self._default_mount())
        return self._check_result(inputs, check_policy_inputs(inputs))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_policy(olds, news).result()

    def _desired(self, props: Mapping[str, Any]) -> str:
        rut, stack = str(props["rut"]), str(props["stack"])
        return render_policy(rut, str(props["mount"]), stack)

    def _refusal(self, live: str, desired: str, props: Mapping[str, Any]) -> str | None:
        if live != desired and not policy_is_ours(live, str(props["stack"])):
            return "does not carry this stack's marker"
        return None

    def _outputs(self, props: Mapping[str, Any], live: str) -> dict[str, Any]:
        return {
            "rut": props.get("rut"),
            "mount": props.get("mount"),
            "stack": props.get("stack"),
            "name": vault_policy_name(str(props["rut"])) if props.get("rut") else props.get("name"),
            "policy": live,
            "managed": policy_is_ours(live, str(props.get("stack") or "")),
        }

    def _live_read(self, api: VaultApi, name: str) -> str | None:
        return api.policy_read(name)

    def _live_write(self, api: VaultApi, name: str, desired: str) -> None:
        api.policy_write(name, desired)

    def _live_delete(self, api: VaultApi, name: str) -> None:
        api.policy_delete(name)


class AppRoleProvider(_TenantObjectProvider):
    """CRUD for a tenant's AppRole."""

    noun = "AppRole"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return self._check_result(dict(news), check_approle_inputs(news))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_approle(olds, news).result()

    def _desired(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return desired_approle(str(props["policy"]))

    def _refusal(self, live: Mapping[str, Any], desired: Mapping[str, Any], props: Mapping[str, Any]) -> str | None:
        policy = str(props["policy"])
        if approle_matches(live, policy):
            return None
        return f"grants {sorted(live.get('token_policies') or [])} rather than only [{policy!r}]"

    def _outputs(self, props: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "rut": props.get("rut"),
            "policy": props.get("policy"),
            "name": vault_policy_name(str(props["rut"])) if props.get("rut") else props.get("name"),
            "token_policies": sorted(live.get("token_policies") or []),
            "token_no_default_policy": bool(live.get("token_no_default_policy")),
        }

    def _live_read(self, api: VaultApi, name: str) -> dict[str, Any] | None:
        return api.approle_read(name)

    def _live_write(self, api: VaultApi, name: str, desired: Mapping[str, Any]) -> None:
        api.approle_write(name, desired)

    def _live_delete(self, api: VaultApi, name: str) -> None:
        api.approle_delete(name)


# --------------------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------------------


class VaultSecret(DynamicResource, module="vault", name="Secret"):
    """A tenant service's KV v2 secret at ``<mount>/tenants/<rut>/<service>``."""

    path: pulumi.Output[str]
    version: pulumi.Output[int]
    keys: pulumi.Output[list[str]]
    values: pulumi.Output[dict[str, str]]

    def __init__(
        self,
        name: str,
        *,
        rut: pulumi.Input[str],
        service: str,
        mount: str,
        stack: str,
        generate: list[str] | None = None,
        external: list[str] | None = None,
        rotate: int = 0,
        provided: Mapping[str, pulumi.Input[str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "rut": rut,
            "service": service,
            "mount": mount,
            "stack": stack,
            "generate": list(generate or []),
            "external": list(external or []),
            "rotate": rotate,
            "provided": dict(provided or {}),
            "path": None,
            "version": None,
            "keys": None,
            "values": None,
            "managed": None,
            "changed_keys": None,
            "removed_keys": None,
        }
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_OUTPUTS))
        super().__init__(SecretProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_opts))


class VaultPolicy(DynamicResource, module="vault", name="AclPolicy"):
    """A tenant's ACL policy ``tenant-<rut>``: read and list on its own subtree only."""

    name: pulumi.Output[str]
    policy: pulumi.Output[str]

    def __init__(
        self, name: str, *, rut: str, mount: str, stack: str, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {"rut": rut, "mount": mount, "stack": stack, "name": None, "policy": None, "managed": None}
        super().__init__(PolicyProvider(), name, props, opts)


class VaultAppRole(DynamicResource, module="vault", name="AppRole"):
    """A tenant's AppRole ``tenant-<rut>``, whose tokens carry only the tenant's policy."""

    name: pulumi.Output[str]
    token_policies: pulumi.Output[list[str]]

    def __init__(
        self, name: str, *, rut: str, policy: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "rut": rut,
            "policy": policy,
            "name": None,
            "token_policies": None,
            "token_no_default_policy": None,
        }
        super().__init__(AppRoleProvider(), name, props, opts)
