"""scripts/lint-workflows, which `.ci/run` runs: any actionlint or zizmor finding fails the checks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RISKY = """\
name: risky
on: pull_request
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
"""


def lint(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "scripts/lint-workflows", str(folder)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )


def test_the_shipped_workflows_are_clean(tmp_path: Path) -> None:
    shutil.copytree(ROOT / ".github" / "workflows", tmp_path / "workflows")
    result = lint(tmp_path / "workflows")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "actionlint: 3 workflow file(s) clean" in result.stdout
    assert "No findings to report" in result.stdout


def test_a_risky_workflow_fails_with_each_tools_findings(tmp_path: Path) -> None:
    (tmp_path / "risky.yml").write_text(RISKY, encoding="utf-8")
    result = lint(tmp_path)
    assert result.returncode == 1
    out = result.stdout + result.stderr
    # actionlint: the pull request's title reaches a shell unquoted
    assert f'{tmp_path}/risky.yml:8:24: "github.event.pull_request.title" is potentially untrusted' in out
    # zizmor: the action is not pinned by commit, and the same injection
    assert "unpinned-uses" in out
    assert "template-injection" in out


def test_an_empty_folder_is_an_error_not_a_pass(tmp_path: Path) -> None:
    result = lint(tmp_path)
    assert result.returncode == 1
    assert result.stderr == f"no workflow files in {tmp_path}\n"
