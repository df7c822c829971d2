"""Pure decisions of the Vault providers: validating inputs, rendering a tenant's policy, and planning what to
write (desired state against live state). No I/O here; :mod:`components.providers.vault` does the calls."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi.dynamic import DiffResult
from pulumi.runtime import rpc

from components.naming import vault_policy_name, vault_secret_path, vault_tenant_prefix

MANAGED_BY = "smarteros"
"""Value of the ``managed-by`` ownership marker."""

MARKER_KEY = "managed-by"
STACK_KEY = "pulumi-stack"

_RUT = re.compile(r"^(0|[1-9][0-9]*)-[0-9K]$")
_SEGMENT = r"[A-Za-z0-9_.-]+"
_MOUNT = re.compile(rf"^{_SEGMENT}(/{_SEGMENT})*$")
_SERVICE = re.compile(r"^[a-z][a-z0-9_-]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_STACK = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_POLICY_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_GENERATED_BYTES = 32


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


def render_policy(rut: str, mount: str, stack: str, *, suspended: bool = False) -> str:
    """HCL of a tenant's policy: read and list on its own KV v2 subtree, nothing else.

    ``suspended`` renders the policy of a suspended tenant: the marker and no rule at all. Vault resolves a
    token's policies by name at every request, so rewriting the policy takes effect at once for tokens already
    issued to the tenant's AppRole as well as for new logins, without revoking anything, and writing the
    active text back restores the same AppRole (same role-id, same secret-ids).

    ``rut``, ``mount`` and ``stack`` must have passed :func:`check_policy_inputs`; they are rendered through
    :func:`hcl_string` anyway, and the comment lines hold only validated characters.
    """
    prefix = vault_tenant_prefix(rut)
    if suspended:
        return f"{policy_marker(stack)}\n# Tenant {rut}: suspended, no access.\n"
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
    return not (isinstance(value, str) and value == rpc.UNKNOWN)


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
    if isinstance(rotate, bool) or not isinstance(rotate, int | float) or int(rotate) != rotate or rotate < 0:
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
    """Parameters of a tenant's AppRole: tokens carry exactly ``policy``.

    ``token_policies`` goes as one string, not a list: the provisioning token's policy may only send a string
    matching ``tenant-*`` without a comma (Vault matches ``allowed_parameters`` globs against strings only; a
    list is compared as a whole and never matches).
    """
    return {"token_policies": policy, "token_no_default_policy": True}


def token_policy_names(value: Any) -> list[str]:
    """Policy names, sorted, from ``token_policies`` as Vault returns it (a list) or as it is sent (a string
    that Vault splits on commas)."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return sorted(str(item).strip() for item in items if str(item).strip())


def approle_matches(live: Mapping[str, Any], policy: str) -> bool:
    """Whether a live AppRole grants exactly ``policy`` and not the default policy."""
    return token_policy_names(live.get("token_policies")) == [policy] and bool(live.get("token_no_default_policy"))


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
