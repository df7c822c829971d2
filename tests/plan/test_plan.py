"""``python -m components plan``: the pull-request comment for real changes between two commits.

A throwaway repository holds a copy of the project (DEMO on a trial, SmarterMCP active) and one branch per
kind of change. Every branch's program is recorded once for the module, through the same worktrees and
recorder the command uses; each test compares two recordings and checks the exact Markdown a reviewer
gets. One test runs the command itself on the working tree of that repository.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import pytest

from components import plan
from tests.plan.repo import NEW_TENANT, SCENARIOS, build_scenarios, git, make_repo, rut_changed

EXPECTED = Path(__file__).with_name("expected")
TODAY = date(2026, 6, 1)
REFS = ("main", *SCENARIOS)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_repo(tmp_path_factory.mktemp("plan") / "repo")
    build_scenarios(path)
    return path


@pytest.fixture(scope="module")
def sides(repo: Path) -> Iterator[dict[str, plan.Side]]:
    with ExitStack() as trees:
        roots = {ref: trees.enter_context(plan.worktree(repo, ref)) for ref in REFS}
        recorded = plan.snapshot(list(roots.values()), "prod")
        yield {ref: plan.side(ref, roots[ref], "prod", rec) for ref, rec in zip(REFS, recorded, strict=True)}


def planned(sides: dict[str, plan.Side], base: str, head: str) -> plan.Plan:
    return plan.compare(sides[base], sides[head], stack="prod", today=TODAY)


def expected(name: str) -> str:
    return (EXPECTED / f"{name}.md").read_text(encoding="utf-8")


def test_a_new_tenant_lists_everything_it_gets(sides: dict[str, plan.Side]) -> None:
    result = planned(sides, "main", "new-tenant")
    assert result.refusals == []
    assert plan.render(result) == expected("new-tenant")


def test_a_product_added_adds_its_hostname_and_updates_the_registry(sides: dict[str, plan.Side]) -> None:
    result = planned(sides, "main", "product-added")
    assert result.refusals == []
    assert plan.render(result) == expected("product-added")


def test_a_suspended_tenant_keeps_everything_and_loses_its_people(sides: dict[str, plan.Side]) -> None:
    result = planned(sides, "main", "suspended")
    assert result.refusals == []
    assert plan.render(result) == expected("suspended")


def test_a_reactivated_tenant_gets_its_people_back_without_replacing_anything(
    sides: dict[str, plan.Side],
) -> None:
    result = planned(sides, "suspended", "main")
    assert result.refusals == []
    assert all(r.action == "change" for t in result.tenants for r in t.resources)
    assert plan.render(result) == expected("reactivated")


def test_removing_an_active_tenants_file_is_refused(sides: dict[str, plan.Side]) -> None:
    result = planned(sides, "main", "file-removed")
    assert [str(r) for r in result.refusals] == [
        "tenants/smartermcp.yaml: removed while tenant 0-0 is 'active' on main; set status: cancelled, merge "
        "and converge first, then remove the file",
        "tenants/smartermcp.yaml: deletes resources that hold data: 0-0-binding (PostgreSQL TenantBinding); "
        "0-0-role (PostgreSQL TenantRole)",
    ]
    assert plan.render(result) == expected("file-removed")


def test_a_cancelled_tenant_is_closed_like_a_suspended_one_and_its_collection_archived(
    sides: dict[str, plan.Side],
) -> None:
    result = planned(sides, "main", "cancelled")
    assert result.refusals == []
    assert all(r.action == "change" for t in result.tenants for r in t.resources)
    assert plan.render(result) == expected("cancelled")


def test_removing_a_cancelled_tenants_file_is_accepted_and_lists_what_is_retained(
    sides: dict[str, plan.Side],
) -> None:
    result = planned(sides, "cancelled", "cancelled-file-removed")
    assert result.refusals == []
    assert plan.render(result) == expected("cancelled-removed")


def test_changing_a_rut_is_refused(sides: dict[str, plan.Side]) -> None:
    result = planned(sides, "main", "rut-changed")
    assert str(result.refusals[0]) == (
        "tenants/demo.yaml: rut changed from 11111111-1 to 22222222-2: the RUT is the tenant's identity, so "
        "every resource of the tenant would be replaced; add a new file for the new company instead"
    )
    assert plan.render(result) == expected("rut-changed")


def test_exceeding_the_access_application_quota_is_refused(sides: dict[str, plan.Side]) -> None:
    result = planned(sides, "main", "over-quota")
    assert [str(r) for r in result.refusals] == [
        "Pulumi.prod.yaml: 3 Cloudflare Access applications in account 9a8b7c6d5e4f30211f2e3d4c5b6a7980 exceed "
        "the limit of 2 (smarteros:cloudflare.accessApplicationLimit); added by tenants/acme.yaml"
    ]
    # Without the lowered limit the same tenant is welcome.
    assert planned(sides, "main", "new-tenant").refusals == []


def test_replacing_secrets_is_refused_for_every_tenant_that_would_lose_them(sides: dict[str, plan.Side]) -> None:
    result = planned(sides, "main", "vault-mount-moved")
    assert [str(r) for r in result.refusals] == [
        "tenants/demo.yaml: replaces resources that hold data: 11111111-1-chatwoot (Vault Secret: mount changed); "
        "11111111-1-odoo (Vault Secret: mount changed); 11111111-1-postgres (Vault Secret: mount changed)",
        "tenants/smartermcp.yaml: replaces resources that hold data: 0-0-botpress (Vault Secret: mount changed); "
        "0-0-postgres (Vault Secret: mount changed); 0-0-supabase (Vault Secret: mount changed)",
    ]


def test_the_command_plans_the_working_tree_and_leaves_no_worktree_behind(repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(repo), str(clone))
    rut_changed(clone)  # uncommitted: the working tree is the head
    result = subprocess.run(
        [sys.executable, "-m", "components", "plan", "--base", "origin/main"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == expected("rut-changed").replace("`main` → `rut-changed`", "`origin/main` → `working tree`")
    assert result.stderr.splitlines()[0] == (
        "tenants/demo.yaml: rut changed from 11111111-1 to 22222222-2: the RUT is the tenant's identity, so "
        "every resource of the tenant would be replaced; add a new file for the new company instead"
    )
    assert len(git(clone, "worktree", "list").splitlines()) == 1


def test_an_unknown_base_is_a_one_line_error(repo: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "components", "plan", "--base", "no-such-branch"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"no-such-branch: not a commit of the repository in {repo}\n"


def test_a_head_whose_tenant_files_are_invalid_is_a_clear_error_and_no_comment(repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(repo), str(clone))
    (clone / "tenants" / "acme.yaml").write_text(NEW_TENANT.replace("rut: 76.953.480-6", "rut: 76.953.480-5"))
    result = subprocess.run(
        [sys.executable, "-m", "components", "plan", "--base", "origin/main"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[:3] == [
        "working tree: the program stops before registering anything:",
        "tenant files are not valid:",
        "tenants/acme.yaml:2:6: rut: '76.953.480-5' has check digit 5, expected 6",
    ]


def test_recorded_graphs_hold_no_secret_value_and_no_serialised_provider(sides: dict[str, plan.Side]) -> None:
    resources = sides["main"].resources
    connection = next(r for r in resources if r["type"].endswith("metabase:DatabaseConnection"))
    assert connection["inputs"]["password"] == "[secret]"
    login = next(r for r in resources if r["type"].endswith("vault:Secret") and r["name"].endswith("-postgres"))
    assert login["inputs"]["provided"] == "[secret]"
    assert all("__provider" not in r["inputs"] for r in resources)
