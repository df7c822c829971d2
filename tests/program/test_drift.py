"""``python -m components drift``: the scheduled drift check names the tenants whose live objects moved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STACK = "urn:pulumi:prod::smarteros::"
TENANT = "smarteros:tenant:Tenant"


def step(op: str, types: str, name: str) -> dict[str, str]:
    return {"op": op, "urn": f"{STACK}{types}::{name}"}


def drift(tmp_path: Path, preview: object) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "preview.json"
    path.write_text(json.dumps(preview), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "components", "drift", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )


def test_drifted_tenants_are_named_and_the_check_fails(tmp_path: Path) -> None:
    preview = {
        "steps": [
            step("same", f"{TENANT}", "99999999-9"),
            step("refresh", f"{TENANT}$smarteros:tenant:Database$pulumi-python:dynamic/postgres:TenantRole",
                 "99999999-9-role"),
            step("update", f"{TENANT}$smarteros:tenant:Database$pulumi-python:dynamic/postgres:TenantRole",
                 "10000013-K-role"),
            step("create", f"{TENANT}$smarteros:tenant:Secrets$pulumi-python:dynamic/vault:Secret",
                 "10000013-K-odoo"),
            step("replace", f"{TENANT}$smarteros:tenant:Edge$cloudflare:index/dnsRecord:DnsRecord", "0-0-app"),
            step("update", "smarteros:platform:Platform$pulumi-python:dynamic/metabase:Collection",
                 "platform-tenants-collection"),
        ]
    }
    result = drift(tmp_path, preview)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "::error title=Drift in tenant 0-0::1 to converge: replace 0-0-app",
        "::error title=Drift in tenant 10000013-K::2 to converge: create 10000013-K-odoo, update 10000013-K-role",
        "::error title=Drift in the platform's shared resources::1 to converge: update platform-tenants-collection",
        "Drift: 2 tenant(s) 0-0, 10000013-K; platform resources too. Run `pulumi up` to converge, or change the "
        "tenant files to match.",
    ]


def test_no_drift_passes(tmp_path: Path) -> None:
    result = drift(tmp_path, {"steps": [step("same", TENANT, "0-0"), step("refresh", TENANT, "0-0")]})
    assert (result.returncode, result.stdout) == (0, "No drift: every live object matches the tenant files.\n")


def test_a_failed_preview_never_passes_as_no_drift(tmp_path: Path) -> None:
    preview = {"steps": [], "diagnostics": [{"severity": "error", "message": "vault: permission denied"}]}
    result = drift(tmp_path, preview)
    assert result.returncode == 2
    assert result.stdout.splitlines()[0] == "::error title=Preview failed::stack: vault: permission denied"
