"""Throwaway git repositories holding a copy of the project, with one commit per scenario of a change."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
COPIED = ("__main__.py", "Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.dev.yaml", "components", "sql")
FLEET = ("demo.yaml", "smartermcp.yaml")

NEW_TENANT = """\
# yaml-language-server: $schema=./tenant.schema.json
rut: 76.953.480-6
slug: acme
name: Ferretería <Acme> | `x`
type: customer
status: trial
plan: trial
trial_expires_at: 2099-12-31
products: [chat]
access:
  emails: [ana@acme.cl]
database:
  tables: [contacts]
  privileges: [select]
secrets:
  chatwoot:
    generate: [secret_key_base]
analytics:
  enabled: false
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def make_repo(path: Path) -> Path:
    """A repository with the project's program and a two-tenant fleet (DEMO on trial, SmarterMCP active)."""
    path.mkdir(parents=True)
    for name in COPIED:
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, path / name)
    (path / "tenants").mkdir()
    for name in (*FLEET, "tenant.schema.json"):
        shutil.copy2(PROJECT / "tenants" / name, path / "tenants" / name)
    # A trial that never ends while these tests exist, so the expected comments do not depend on the day.
    edit(path / "tenants" / "demo.yaml", "trial_expires_at: 2027-03-31", "trial_expires_at: 2099-12-31")
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "config", "user.email", "ci@example.invalid")
    git(path, "config", "user.name", "CI")
    git(path, "add", "-A")
    git(path, "commit", "--quiet", "-m", "fleet")
    return path


def edit(path: Path, old: str, new: str) -> None:
    content = path.read_text(encoding="utf-8")
    assert old in content, f"{old!r} not in {path}"
    path.write_text(content.replace(old, new, 1), encoding="utf-8")


def commit_on(repo: Path, branch: str, start: str, change: Callable[[Path], None]) -> str:
    """Commit ``change`` on a new branch from ``start``; returns the branch name."""
    git(repo, "checkout", "--quiet", "-b", branch, start)
    change(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", branch)
    git(repo, "checkout", "--quiet", "main")
    return branch


def new_tenant(repo: Path) -> None:
    (repo / "tenants" / "acme.yaml").write_text(NEW_TENANT, encoding="utf-8")


def product_added(repo: Path) -> None:
    edit(repo / "tenants" / "demo.yaml", "products: [chat, erp]", "products: [chat, erp, store]")


def suspended(repo: Path) -> None:
    edit(repo / "tenants" / "smartermcp.yaml", "status: active", "status: suspended")


def cancelled(repo: Path) -> None:
    """DEMO's trial lapses: cancelled (it has a Metabase workspace, so its collection is archived)."""
    edit(repo / "tenants" / "demo.yaml", "status: trial\nplan: trial\ntrial_expires_at: 2099-12-31\n",
         "status: cancelled\nplan: trial\n")


def cancelled_file_removed(repo: Path) -> None:
    (repo / "tenants" / "demo.yaml").unlink()


def file_removed(repo: Path) -> None:
    (repo / "tenants" / "smartermcp.yaml").unlink()


def rut_changed(repo: Path) -> None:
    edit(repo / "tenants" / "demo.yaml", "rut: 11.111.111-1", "rut: 22.222.222-2")


def over_quota(repo: Path) -> None:
    """A new tenant while the account has room for only the two applications the fleet already has."""
    new_tenant(repo)
    limit = "    appExposure: protected\n    accessApplicationLimit: 2\n"
    edit(repo / "Pulumi.prod.yaml", "    appExposure: protected\n", limit)


def vault_mount_moved(repo: Path) -> None:
    """Every Vault secret would move to another KV mount: replaced, so their values would be lost."""
    edit(repo / "Pulumi.prod.yaml", "  smarteros:vault:\n    address: https://vault.smarterbot.cl\n    mount: secret",
         "  smarteros:vault:\n    address: https://vault.smarterbot.cl\n    mount: kv")


SCENARIOS: dict[str, Callable[[Path], None]] = {
    "new-tenant": new_tenant,
    "product-added": product_added,
    "suspended": suspended,
    "cancelled": cancelled,
    "cancelled-file-removed": cancelled_file_removed,
    "file-removed": file_removed,
    "rut-changed": rut_changed,
    "over-quota": over_quota,
    "vault-mount-moved": vault_mount_moved,
}


def build_scenarios(repo: Path) -> dict[str, str]:
    """One branch per scenario, each from ``main``."""
    return {name: commit_on(repo, name, "main", change) for name, change in SCENARIOS.items()}
