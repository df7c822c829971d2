"""``python -m components drift PREVIEW.json``: name the tenants whose live objects drifted from the program.

The scheduled drift check runs ``pulumi preview --refresh --expect-no-changes --json`` and hands its
output here. Every step that would change something after the refresh (create, update, replace, delete…)
is drift: something in Cloudflare, Vault, PostgreSQL or Metabase no longer matches what the tenant files
say. Steps are grouped by the tenant that owns the resource (the ``smarteros:tenant:Tenant`` in its URN,
whose logical name is the RUT) or by the platform. The command prints one GitHub error annotation per
tenant plus a plain summary, and exits 1 when anything drifted, 0 when nothing did, and 2 when the
preview itself failed (its error diagnostics are printed: a failed preview never passes as "no drift").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TENANT_TYPE = "smarteros:tenant:Tenant"
QUIET_OPS = frozenset({"same", "read", "refresh", "discard"})
"""Steps that change nothing live."""
PLATFORM = "platform"


def owner(urn: str) -> str:
    """The RUT of the tenant a URN belongs to, or ``platform``.

    ``urn:pulumi:prod::smarteros::smarteros:tenant:Tenant$smarteros:tenant:Database$…::11111111-1-role``
    belongs to ``11111111-1``: children of a tenant are named ``<rut>-<part>``.
    """
    parts = urn.split("::")
    if len(parts) < 4:
        return PLATFORM
    types, name = parts[2].split("$"), "::".join(parts[3:])
    if types[-1] == TENANT_TYPE:
        return name
    if TENANT_TYPE not in types:
        return PLATFORM
    body, _, rest = name.partition("-")
    digit = rest[:1]
    if body.isdigit() and digit and (digit.isdigit() or digit == "K") and rest[1:2] in ("", "-"):
        return f"{body}-{digit}"
    return PLATFORM


def drifted(preview: Mapping[str, Any]) -> dict[str, list[str]]:
    """``{tenant: ["<op> <logical name>", …]}`` for every step of the preview that changes something."""
    found: dict[str, list[str]] = {}
    for step in preview.get("steps") or []:
        op = str(step.get("op") or "")
        urn = str(step.get("urn") or "")
        if op in QUIET_OPS or not urn:
            continue
        name = urn.rsplit("::", 1)[-1]
        found.setdefault(owner(urn), []).append(f"{op} {name}")
    return {tenant: sorted(set(steps)) for tenant, steps in sorted(found.items())}


def report(found: Mapping[str, Sequence[str]]) -> list[str]:
    lines = []
    for tenant, steps in found.items():
        who = "the platform's shared resources" if tenant == PLATFORM else f"tenant {tenant}"
        lines.append(f"::error title=Drift in {who}::{len(steps)} to converge: {', '.join(steps)}")
    if found:
        tenants = [t for t in found if t != PLATFORM]
        lines.append(
            f"Drift: {len(tenants)} tenant(s) {', '.join(tenants) or '-'}"
            + ("; platform resources too" if PLATFORM in found else "")
            + ". Run `pulumi up` to converge, or change the tenant files to match."
        )
    else:
        lines.append("No drift: every live object matches the tenant files.")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components drift",
        description="Name the tenants with drift, from `pulumi preview --refresh --json` output.",
    )
    parser.add_argument("preview", type=Path, help="the JSON that `pulumi preview --json` printed")
    args = parser.parse_args(argv)
    try:
        preview = json.loads(args.preview.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"{args.preview}: not the JSON output of `pulumi preview --json`: {error}", file=sys.stderr)
        return 2
    if not isinstance(preview, dict):
        print(f"{args.preview}: not the JSON output of `pulumi preview --json`", file=sys.stderr)
        return 2
    errors = [d for d in preview.get("diagnostics") or [] if d.get("severity") == "error"]
    for diagnostic in errors:
        message = " ".join(str(diagnostic.get("message") or "").split())
        print(f"::error title=Preview failed::{diagnostic.get('urn') or 'stack'}: {message}")
    found = drifted(preview)
    for line in report(found):
        print(line)
    if errors:
        return 2
    return 1 if found else 0
