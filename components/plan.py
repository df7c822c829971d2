"""``python -m components plan --base REF [--head REF]``: what a change does to each tenant, without credentials.

The program of each side runs under Pulumi mocks in its own git worktree (``--head`` defaults to the
working tree, uncommitted changes included); no credential, server or network is involved. The two
resource graphs are compared per tenant (a tenant is its RUT): resources added, changed (which inputs,
old → new, secrets as ``[secret]``), replaced (an identity input changed) and removed. The result is
Markdown for a pull-request comment: a summary table, then one collapsed section per tenant, kept under
GitHub's comment limit by summarising the largest sections.

The command exits 2, naming the file, when the change would:

- remove the file of a tenant that is not ``cancelled`` on the base;
- change a tenant's RUT (its identity: every resource of the tenant would be replaced);
- replace or delete a data-bearing resource (registered with ``retain_on_delete`` or ``protect``, or of
  a type that holds data: Vault secrets, the PostgreSQL role, registry row and binding, the Metabase
  collection and database connection). A resource retained on delete is not deleted: it is listed as
  kept and no longer managed, and a removed tenant's section says what is retained in each system. The
  PostgreSQL role and its binding row of a tenant that is ``cancelled`` on the base may be dropped with its
  file (the role is NOLOGIN since the cancellation, and the tenant's rows are keyed by RUT and kept), and its
  Metabase collection left archived (deleting a collection archives it). Resources registered with
  ``protect`` are listed: ``pulumi up`` stops at them until they are unprotected;
- push the stack past a provider quota (Cloudflare Access applications per account, stack config
  ``smarteros:cloudflare.accessApplicationLimit``, default 500).

The comparison and the rendering are pure functions of two snapshots (:func:`compare`, :func:`render`);
git and the program runs are at the edges (:func:`main`).
"""

from __future__ import annotations

import argparse
import glob
import html
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError, stack_config_from_raw
from .graph import ROOT, load_stack_file
from .lifecycle import today_in

TENANT_TYPE = "smarteros:tenant:Tenant"
COLLECTION_TYPE = "pulumi-python:dynamic/metabase:Collection"
ACCESS_APPLICATION_TYPE = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"
COMMENT_LIMIT = 65_536
"""GitHub refuses a comment longer than this many characters."""
BUDGET = 60_000
"""What the plan may use of a comment; the rest is left for the header the posting workflow adds."""
EXIT_REFUSED = 2

# Inputs whose change makes the provider replace the resource instead of updating it in place.
IDENTITY_INPUTS: dict[str, tuple[str, ...]] = {
    "cloudflare:index/dnsRecord:DnsRecord": ("zoneId",),
    ACCESS_APPLICATION_TYPE: ("accountId", "zoneId"),
    "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy": ("accountId",),
    "pulumi-python:dynamic/vault:Secret": ("mount", "rut", "service"),
    "pulumi-python:dynamic/vault:AclPolicy": ("rut",),
    "pulumi-python:dynamic/vault:AppRole": ("rut",),
    "pulumi-python:dynamic/postgres:TenantRole": ("role_name", "tenant_rut"),
    "pulumi-python:dynamic/postgres:TableGrants": ("role_name",),
    "pulumi-python:dynamic/postgres:TenantBinding": ("role_name",),
    "pulumi-python:dynamic/postgres:TenantRecord": ("rut",),
    "pulumi-python:dynamic/metabase:CollectionPermission": ("group_id", "collection_id"),
    "pulumi-python:dynamic/metabase:DataPermission": ("group_id", "database_id"),
    "pulumi-python:dynamic/metabase:DatabaseAccessLockdown": ("group_id",),
    "pulumi-python:dynamic/metabase:CollectionIsolation": ("collection_id",),
    "pulumi-python:dynamic/metabase:DatabaseIsolation": ("database_id",),
}

# Types that hold a tenant's data whatever their options say.
DATA_TYPES: frozenset[str] = frozenset(
    {
        "pulumi-python:dynamic/vault:Secret",
        "pulumi-python:dynamic/postgres:TenantRole",
        "pulumi-python:dynamic/postgres:TenantRecord",
        "pulumi-python:dynamic/postgres:TenantBinding",
        "pulumi-python:dynamic/metabase:Collection",
        "pulumi-python:dynamic/metabase:DatabaseConnection",
    }
)

# Data-bearing types that may go once the tenant is cancelled and its file removed: the login role (NOLOGIN
# since the cancellation) and its binding row, because the tenant's rows are keyed by tenant_rut, not by role,
# and the registry row that keys them is retained, so dropping the role loses no row and leaves no login
# behind; and the Metabase collection, because deleting one archives it (it already is), questions and all.
DROPPED_WHEN_CANCELLED: frozenset[str] = frozenset(
    {
        "pulumi-python:dynamic/postgres:TenantRole",
        "pulumi-python:dynamic/postgres:TenantBinding",
        "pulumi-python:dynamic/metabase:Collection",
    }
)

SYSTEMS: dict[str, str] = {
    "cloudflare": "Cloudflare",
    "vault": "Vault",
    "postgres": "PostgreSQL",
    "metabase": "Metabase",
}

# Inputs shown beside an added or removed resource, when it has them.
HEADLINE_INPUTS: tuple[str, ...] = ("name", "role_name", "service", "level", "content")


# --------------------------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class TenantFile:
    """What a tenant file says about identity and lifecycle (read leniently: either side may be old)."""

    path: str
    rut: str | None
    name: str
    status: str
    trial_expires_at: str | None


@dataclass(frozen=True)
class Side:
    """One side of the comparison: its label, the resources its program registers and its tenant files."""

    label: str
    resources: Sequence[Mapping[str, Any]]
    files: Sequence[TenantFile]
    access_application_limit: int = 500
    time_zone: str = "America/Santiago"


def _normal_rut(value: Any) -> str | None:
    from .spec import normalise_rut

    if value is None:
        return None
    try:
        return normalise_rut(value)
    except ValueError:
        return str(value)


def read_tenant_files(root: Path, patterns: Sequence[str]) -> list[TenantFile]:
    """The tenant files a stack selects in ``root``; unreadable ones are skipped (the program reports them)."""
    found: set[str] = set()
    for pattern in patterns:
        for match in glob.glob(str(root / pattern)):
            if match.endswith((".yaml", ".yml")):
                found.add(os.path.relpath(match, root))
    files = []
    for relative in sorted(found):
        try:
            data = yaml.safe_load((root / relative).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if not isinstance(data, dict):
            continue
        expires = data.get("trial_expires_at")
        files.append(
            TenantFile(
                path=relative.replace(os.sep, "/"),
                rut=_normal_rut(data.get("rut")),
                name=str(data.get("name") or Path(relative).stem),
                status=str(data.get("status") or ""),
                trial_expires_at=expires.isoformat() if isinstance(expires, date) else expires and str(expires),
            )
        )
    return files


# -------------------------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class InputChange:
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ResourceChange:
    """One resource's fate: ``add``, ``change``, ``replace``, ``remove`` or ``keep`` (retained on delete)."""

    action: str
    name: str
    type: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    changes: tuple[InputChange, ...] = ()
    replaced_by: tuple[str, ...] = ()
    protected: bool = False
    """Registered with ``protect``: ``pulumi up`` stops rather than delete (or forget) it until it is unprotected."""


@dataclass
class TenantPlan:
    rut: str | None
    """``None`` for the platform's shared resources."""
    name: str
    path: str | None
    base_status: str | None
    head_status: str | None
    trial_expires_at: str | None
    resources: list[ResourceChange] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for r in self.resources if r.action == action)

    @property
    def changed(self) -> bool:
        return bool(self.resources) or self.base_status != self.head_status


@dataclass(frozen=True)
class Refusal:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Plan:
    base: str
    head: str
    stack: str
    today: date
    tenants: list[TenantPlan]
    unchanged: int
    refusals: list[Refusal]


def _owner(resource: Mapping[str, Any], by_urn: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The RUT of the tenant a resource belongs to, ``None`` for platform resources."""
    current: Mapping[str, Any] | None = resource
    while current is not None:
        if current["type"] == TENANT_TYPE:
            return str(current["name"])
        parent = current.get("parent")
        current = by_urn.get(parent) if parent else None
    return None


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested inputs as ``{path: leaf}``; a list stays whole, and its diff says which items come and go."""
    if isinstance(value, dict):
        if not value and prefix:
            return {prefix: {}}
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


_MISSING = object()


def diff_inputs(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[InputChange, ...]:
    flat_old, flat_new = _flatten(dict(old)), _flatten(dict(new))
    changes = []
    for path in sorted(set(flat_old) | set(flat_new)):
        before, after = flat_old.get(path, _MISSING), flat_new.get(path, _MISSING)
        if before != after:
            changes.append(
                InputChange(path, None if before is _MISSING else before, None if after is _MISSING else after)
            )
    return tuple(changes)


def _data_bearing(resource: Mapping[str, Any]) -> bool:
    return bool(resource.get("protect") or resource.get("retain_on_delete")) or resource["type"] in DATA_TYPES


def _system(type_: str) -> str:
    package = type_.split(":", 1)[0]
    if package == "pulumi-python":
        package = type_.split("/", 1)[1].split(":", 1)[0]
    return SYSTEMS.get(package, package)


def short_type(type_: str) -> str:
    """``cloudflare:index/dnsRecord:DnsRecord`` → ``Cloudflare DnsRecord``."""
    return f"{_system(type_)} {type_.rsplit(':', 1)[-1]}"


def compare(base: Side, head: Side, *, stack: str, today: date | None = None) -> Plan:
    """Compare two snapshots per tenant and collect what ``plan`` refuses."""
    day = today or today_in(head.time_zone)
    refusals: list[Refusal] = []
    base_by_urn = {r["urn"]: r for r in base.resources}
    head_by_urn = {r["urn"]: r for r in head.resources}
    base_files: dict[str | None, TenantFile] = {f.rut: f for f in base.files if f.rut}
    head_files: dict[str | None, TenantFile] = {f.rut: f for f in head.files if f.rut}
    base_paths = {f.path: f for f in base.files}

    tenants: dict[str | None, TenantPlan] = {}
    data_loss: dict[str | None, dict[str, list[str]]] = {}

    def lose(rut: str | None, how: str, what: str) -> None:
        data_loss.setdefault(rut, {}).setdefault(how, []).append(what)

    base_tenants = {r["name"] for r in base.resources if r["type"] == TENANT_TYPE}
    head_tenants = {r["name"] for r in head.resources if r["type"] == TENANT_TYPE}

    def tenant(rut: str | None) -> TenantPlan:
        if rut not in tenants:
            old, new = base_files.get(rut), head_files.get(rut)
            shown = new or old
            in_base = rut is None or rut in base_tenants
            in_head = rut is None or rut in head_tenants
            tenants[rut] = TenantPlan(
                rut=rut,
                name=shown.name if shown else (rut or "Platform"),
                path=shown.path if shown else None,
                base_status=(old.status if old else "?") if in_base and rut else None,
                head_status=(new.status if new else "?") if in_head and rut else None,
                trial_expires_at=(new.trial_expires_at if new and new.status == "trial" else None),
            )
        return tenants[rut]

    for rut in sorted(base_tenants | head_tenants):
        tenant(rut)

    for urn, new in head_by_urn.items():
        if not new.get("custom"):
            continue
        owner = tenant(_owner(new, head_by_urn))
        old = base_by_urn.get(urn)
        if old is None:
            owner.resources.append(ResourceChange("add", new["name"], new["type"], new["inputs"]))
            continue
        changes = diff_inputs(old["inputs"], new["inputs"])
        if not changes:
            continue
        identity = IDENTITY_INPUTS.get(new["type"], ())
        replaced_by = tuple(c.path for c in changes if c.path.split(".")[0].split("[")[0] in identity)
        action = "replace" if replaced_by else "change"
        owner.resources.append(ResourceChange(action, new["name"], new["type"], new["inputs"], changes, replaced_by))
        if action == "replace" and _data_bearing(old):
            lose(owner.rut, "replace", f"{new['name']} ({short_type(new['type'])}: {', '.join(replaced_by)} changed)")

    for urn, old in base_by_urn.items():
        if not old.get("custom") or urn in head_by_urn:
            continue
        owner = tenant(_owner(old, base_by_urn))
        kept = bool(old.get("retain_on_delete"))
        owner.resources.append(
            ResourceChange(
                "keep" if kept else "remove",
                old["name"],
                old["type"],
                old["inputs"],
                protected=bool(old.get("protect")),
            )
        )
        offboarded = owner.base_status == "cancelled" and owner.head_status is None
        if offboarded and old["type"] in DROPPED_WHEN_CANCELLED:
            continue
        if _data_bearing(old) and not kept:
            lose(owner.rut, "delete", f"{old['name']} ({short_type(old['type'])})")

    # Identity: a file whose RUT changed, and tenants whose file went away while not cancelled.
    renamed: set[str] = set()
    for new_file in head.files:
        old_file = base_paths.get(new_file.path)
        if old_file and old_file.rut and new_file.rut and old_file.rut != new_file.rut:
            renamed.add(old_file.rut)
            refusals.append(
                Refusal(
                    new_file.path,
                    f"rut changed from {old_file.rut} to {new_file.rut}: the RUT is the tenant's identity, so "
                    "every resource of the tenant would be replaced; add a new file for the new company instead",
                )
            )
    for rut, plan in tenants.items():
        if rut is None or plan.head_status is not None or plan.base_status is None or rut in renamed:
            continue
        if plan.base_status != "cancelled":
            refusals.append(
                Refusal(
                    plan.path or rut,
                    f"removed while tenant {rut} is '{plan.base_status}' on {base.label}; set status: cancelled, "
                    "merge and converge first, then remove the file",
                )
            )

    for rut, losses in sorted(data_loss.items(), key=lambda item: (tenants[item[0]].path or "", item[0] or "")):
        where = tenants[rut].path or (f"Pulumi.{stack}.yaml" if rut is None else rut)
        for how, what in sorted(losses.items()):
            verb = "replaces" if how == "replace" else "deletes"
            refusals.append(
                Refusal(where, f"{verb} resources that hold data: {'; '.join(sorted(what))}")
            )

    # Quota: Cloudflare Access applications per account.
    def applications(side: Side) -> Counter[str]:
        return Counter(
            str(r["inputs"].get("accountId")) for r in side.resources if r["type"] == ACCESS_APPLICATION_TYPE
        )

    before, after = applications(base), applications(head)
    for account, count in sorted(after.items()):
        if count > head.access_application_limit and count > before.get(account, 0):
            added = sorted(
                {
                    t.path or str(t.rut)
                    for t in tenants.values()
                    if any(r.action == "add" and r.type == ACCESS_APPLICATION_TYPE for r in t.resources)
                }
            )
            refusals.append(
                Refusal(
                    f"Pulumi.{stack}.yaml",
                    f"{count} Cloudflare Access applications in account {account} exceed the limit of "
                    f"{head.access_application_limit} (smarteros:cloudflare.accessApplicationLimit); "
                    f"added by {', '.join(added) or 'this change'}",
                )
            )

    changed = [t for t in tenants.values() if t.changed]
    unchanged = sum(1 for t in tenants.values() if t.rut is not None and not t.changed)
    changed.sort(key=lambda t: (t.rut is not None, t.path or "", t.rut or ""))  # the platform first
    return Plan(base.label, head.label, stack, day, changed, unchanged, refusals)


# --------------------------------------------------------------------------------------------- rendering


_SAFE = frozenset(" ,.:;()/-'\"+=→…")


def text(value: str) -> str:
    """Untrusted text (tenant names) as inert Markdown: every ASCII punctuation mark is backslash-escaped,
    so no HTML, link, image, emphasis, mention or table cell can come out of it."""
    out = []
    for char in " ".join(value.split()):
        out.append(f"\\{char}" if char.isascii() and not char.isalnum() and char not in _SAFE else char)
    return "".join(out)


def html_text(value: str) -> str:
    """Untrusted text inside an HTML block (the ``<summary>`` line), where Markdown escapes do not apply."""
    return html.escape(" ".join(value.split()), quote=True).replace("@", "&#64;")


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "(none)"
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def code(value: Any, limit: int = 200, *, cell: bool = False) -> str:
    """A value as a Markdown code span (nothing inside is interpreted); long values are shortened."""
    shown = " ".join(_shown(value).split())
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    if cell:
        shown = shown.replace("|", "\\|")
    ticks = "`"
    while ticks in shown:
        ticks += "`"
    pad = " " if shown.startswith("`") or shown.endswith("`") or not shown.strip() else ""
    return f"{ticks}{pad}{shown}{pad}{ticks}"


def tenant_label(t: TenantPlan, *, html_block: bool = False, cell: bool = False) -> str:
    """The tenant's name in code (GitHub turns no ``@name`` in code into a mention) and its RUT."""
    if t.rut is None:
        return "Platform (shared by every tenant)"
    name = f"<code>{html_text(t.name)}</code>" if html_block else code(t.name, cell=cell)
    return f"{name} ({t.rut})"


def _change_line(change: InputChange) -> str:
    old, new = change.old, change.new
    if isinstance(old, list) and isinstance(new, list):
        gone = [item for item in old if item not in new]
        came = [item for item in new if item not in old]
        parts = [f"removed {code(item)}" for item in gone] + [f"added {code(item)}" for item in came]
        return f"  - {code(change.path)}: {', '.join(parts) or 'same items, new order'}"
    return f"  - {code(change.path)}: {code(old)} → {code(new)}"


def _status(t: TenantPlan) -> str:
    if t.rut is None:
        return ""
    if t.base_status is None:
        return f"new → {t.head_status}"
    if t.head_status is None:
        return f"{t.base_status} → file removed"
    if t.base_status != t.head_status:
        return f"{t.base_status} → {t.head_status}"
    return t.base_status


def _trial(t: TenantPlan, today: date) -> str:
    if not t.trial_expires_at:
        return ""
    try:
        ended = date.fromisoformat(t.trial_expires_at) < today
    except ValueError:
        ended = False
    return f"{t.trial_expires_at} (ended: converges as suspended)" if ended else t.trial_expires_at


def _headline(inputs: Mapping[str, Any]) -> str:
    shown = [f"{key} {code(inputs[key])}" for key in HEADLINE_INPUTS if key in inputs]
    return f": {', '.join(shown)}" if shown else ""


_VERBS = {
    "add": "to add",
    "change": "to change",
    "replace": "to replace",
    "remove": "to delete",
    "keep": "kept, no longer managed",
}
_HEADINGS = {
    "add": "Added",
    "change": "Changed",
    "replace": "Replaced",
    "remove": "Deleted",
    "keep": "Kept in place (retained on delete, no longer managed)",
}


def _counts(t: TenantPlan) -> str:
    parts = [f"{t.count(action)} {verb}" for action, verb in _VERBS.items() if t.count(action)]
    return ", ".join(parts) or "no resource changes"


def section(t: TenantPlan, today: date) -> str:
    """The collapsed details of one tenant."""
    lines = [f"<details><summary>{tenant_label(t, html_block=True)}: {_counts(t)}</summary>", ""]
    if t.path:
        lines.append(f"File {code(t.path)}, status {text(_status(t))}.")
        lines.append("")
    if t.trial_expires_at:
        lines.append(f"Trial ends {text(_trial(t, today))}.")
        lines.append("")
    protected = sorted(r.name for r in t.resources if r.protected and r.action in ("remove", "keep"))
    if protected:
        lines.append(
            "Protected in this stack: `pulumi up` stops at these until each is unprotected "
            f"(`pulumi state unprotect`): {', '.join(code(name) for name in protected)}."
        )
        lines.append("")
    for action, heading in _HEADINGS.items():
        group = [r for r in t.resources if r.action == action]
        if not group:
            continue
        lines.append(f"**{heading}**")
        lines.append("")
        if action == "keep" and t.head_status is None:
            lines.append(f"Retained in each system: {text(retained(group))}.")
            lines.append("")
        for r in sorted(group, key=lambda r: (r.type, r.name)):
            if action in ("add", "remove", "keep"):
                archived = action == "remove" and r.type == COLLECTION_TYPE
                note = f" {text('(archived with its questions, not erased)')}" if archived else ""
                lines.append(f"- {code(r.name)} {text(short_type(r.type))}{_headline(r.inputs)}{note}")
                continue
            because = f" (replaced: {', '.join(r.replaced_by)} changed)" if r.replaced_by else ""
            lines.append(f"- {code(r.name)} {text(short_type(r.type))}{text(because)}")
            lines.extend(_change_line(change) for change in r.changes)
        lines.append("")
    lines.append("</details>")
    return "\n".join(lines)


def retained(kept: Sequence[ResourceChange]) -> str:
    """What a removed tenant leaves in each system, e.g. ``PostgreSQL: TenantRecord and the tenant's rows``."""
    by_system: dict[str, Counter[str]] = {}
    for r in kept:
        system, _, kind = short_type(r.type).partition(" ")
        by_system.setdefault(system, Counter())[kind] += 1
    parts = []
    for system, kinds in sorted(by_system.items()):
        listed = ", ".join(f"{n} {kind}s" if n > 1 else kind for kind, n in sorted(kinds.items()))
        if system == SYSTEMS["postgres"]:
            listed += " and every row keyed by the tenant's RUT"
        parts.append(f"{system}: {listed}")
    return "; ".join(parts)


def summary_section(t: TenantPlan) -> str:
    """A shortened section for a tenant whose details do not fit in one comment."""
    kinds = Counter(f"{_HEADINGS[r.action].split(' ')[0].lower()} {short_type(r.type)}" for r in t.resources)
    listed = ", ".join(f"{text(kind)} ({n})" for kind, n in sorted(kinds.items()))
    return (
        f"<details><summary>{tenant_label(t, html_block=True)}: {_counts(t)}</summary>\n\n"
        f"Too large for one comment: {listed}. Every input is in the plan artifact of this run.\n\n</details>"
    )


def _row(t: TenantPlan, today: date) -> str:
    cells = [
        tenant_label(t, cell=True),
        code(t.path, cell=True) if t.path else "",
        text(_status(t)),
        str(t.count("add")),
        str(t.count("change")),
        str(t.count("replace")),
        str(t.count("remove") + t.count("keep")),
        text(_trial(t, today)),
    ]
    return "| " + " | ".join(cells) + " |"


def render(plan: Plan, budget: int = BUDGET) -> str:
    """The pull-request comment: heading, refusals, summary table, then one collapsed section per tenant."""
    head = [f"### Tenant plan: stack {code(plan.stack)}, {code(plan.base)} → {code(plan.head)}", ""]
    if plan.refusals:
        head.append("**Refused.** This change must not be merged as it is:")
        head.append("")
        head.extend(f"- {code(r.path)}: {text(r.message)}" for r in plan.refusals)
        head.append("")
    if not plan.tenants:
        noun = "tenant" if plan.unchanged == 1 else "tenants"
        head.append(f"No changes. {plan.unchanged} {noun} unchanged.")
        return "\n".join(head) + "\n"
    table = [
        "| Tenant | File | Status | Add | Change | Replace | Remove | Trial ends |",
        "|---|---|---|--:|--:|--:|--:|---|",
    ]
    rows = [_row(t, plan.today) for t in plan.tenants]
    noun = "tenant" if plan.unchanged == 1 else "tenants"
    tail = [f"{plan.unchanged} other {noun} unchanged.", ""] if plan.unchanged else []
    sections = [section(t, plan.today) for t in plan.tenants]

    def assemble(rows_shown: list[str], omitted_rows: int, shown: list[str]) -> str:
        more = [f"| … {omitted_rows} more tenants, in the plan artifact | | | | | | | |"] if omitted_rows else []
        body = [*head, *table, *rows_shown, *more, "", *tail]
        return "\n".join(body) + "\n" + "\n\n".join(s for s in shown if s) + "\n"

    out = assemble(rows, 0, sections)
    # Summarise the largest sections first, then drop sections, then shorten the table.
    for index in sorted(range(len(sections)), key=lambda i: -len(sections[i])):
        if len(out) <= budget:
            return out
        sections[index] = summary_section(plan.tenants[index])
        out = assemble(rows, 0, sections)
    for index in sorted(range(len(sections)), key=lambda i: -len(sections[i])):
        if len(out) <= budget:
            return out
        sections[index] = ""
        out = assemble(rows, 0, sections)
    shown_rows = list(rows)
    while len(out) > budget and shown_rows:
        shown_rows.pop()
        out = assemble(shown_rows, len(rows) - len(shown_rows), sections)
    return out


# ------------------------------------------------------------------------------------------- edges (I/O)


class PlanError(Exception):
    """The plan could not be computed (an unknown ref, a program that refuses to run)."""


def _git(*args: str, cwd: Path) -> str:
    # git from PATH with fixed sub-commands; refs are passed as single arguments, never through a shell.
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603,S607
    if result.returncode != 0:
        raise PlanError(f"git {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


@contextmanager
def worktree(repo: Path, ref: str) -> Iterator[Path]:
    """A detached git worktree of ``ref``, removed afterwards."""
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo).strip()
    except PlanError:
        raise PlanError(f"{ref}: not a commit of the repository in {repo}") from None
    with tempfile.TemporaryDirectory(prefix="plan-") as scratch:
        path = Path(scratch) / "tree"
        _git("worktree", "add", "--detach", "--quiet", str(path), commit, cwd=repo)
        try:
            yield path
        finally:
            _git("worktree", "remove", "--force", str(path), cwd=repo)


def snapshot(roots: Sequence[Path], stack: str) -> list[dict[str, Any]]:
    """Run each checkout's program under mocks (one process for all) and return what each registers."""
    script = Path(__file__).resolve().with_name("snapshot.py")
    result = subprocess.run(  # noqa: S603 (this interpreter, a script of this package, no shell)
        [sys.executable, str(script), "--stack", stack, *map(str, roots)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PlanError(f"recording the resource graphs failed:\n{result.stderr.strip()}")
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


def side(label: str, root: Path, stack: str, recorded: Mapping[str, Any]) -> Side:
    """A comparison side from a checkout and its recorded graph."""
    if recorded["error"]:
        raise PlanError(f"{label}: the program stops before registering anything:\n{recorded['error']}")
    values, _ = load_stack_file(stack, root=root)
    try:
        config = stack_config_from_raw(values)
    except ConfigError as error:
        raise PlanError(f"{label}: Pulumi.{stack}.yaml: {error}") from None
    return Side(
        label=label,
        resources=recorded["resources"],
        files=read_tenant_files(root, config.tenant_files),
        access_application_limit=config.cloudflare.access_application_limit,
        time_zone=config.time_zone,
    )


def build(repo: Path, base_ref: str, head_ref: str | None, stack: str, today: date | None = None) -> Plan:
    """Check out both sides, record their graphs and compare them."""
    if not (repo / f"Pulumi.{stack}.yaml").is_file():
        raise PlanError(f"Pulumi.{stack}.yaml: no such stack file")
    with ExitStack() as stack_of_trees:
        base_root = stack_of_trees.enter_context(worktree(repo, base_ref))
        head_root = stack_of_trees.enter_context(worktree(repo, head_ref)) if head_ref else repo
        base_recorded, head_recorded = snapshot([base_root, head_root], stack)
        base = side(base_ref, base_root, stack, base_recorded)
        head = side(head_ref or "working tree", head_root, stack, head_recorded)
    return compare(base, head, stack=stack, today=today)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components plan",
        description=(
            "Print, as Markdown for a pull-request comment, what changing BASE into HEAD does to each tenant. "
            "Needs no credentials. Exits 2 when the change removes an active tenant's file, changes a RUT, "
            "replaces or deletes data, or exceeds a provider quota."
        ),
    )
    parser.add_argument("--base", required=True, metavar="REF", help="git ref the change starts from (e.g. main)")
    parser.add_argument("--head", metavar="REF", help="git ref of the change (default: the working tree)")
    parser.add_argument("--stack", default="prod", help="stack whose Pulumi.<stack>.yaml config is used")
    parser.add_argument("--output", metavar="FILE", help="write the Markdown here instead of standard output")
    args = parser.parse_args(argv)
    try:
        plan = build(ROOT, args.base, args.head, args.stack)
    except PlanError as error:
        print(error, file=sys.stderr)
        return 1
    markdown = render(plan)
    if args.output:
        Path(args.output).write_text(markdown, encoding="utf-8")
    else:
        sys.stdout.write(markdown)
    for refusal in plan.refusals:
        print(refusal, file=sys.stderr)
    return EXIT_REFUSED if plan.refusals else 0
