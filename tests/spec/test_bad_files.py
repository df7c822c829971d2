"""Every rule of the tenant file, one bad file (or set of files) per case, checked through the CLI.

Each folder under ``bad/`` is a case: the tenant files, an ``expected.txt`` holding the exact standard
error of ``python -m components validate``, and optionally an ``args.txt`` listing the paths to pass
(relative to the case folder) when the case needs more than the folder itself. A case holding a
``Pulumi.yaml`` is validated as a project of its own (``--project``): its ``Pulumi.<stack>.yaml`` files
give the policy and are checked too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BAD = Path(__file__).resolve().parent / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())


def _arguments(case: Path) -> list[str]:
    relative = os.path.relpath(case, ROOT)
    # A case with its own Pulumi.yaml is a project: its stack files give the policy and are checked too.
    project = ["--project", relative] if (case / "Pulumi.yaml").exists() else []
    args_file = case / "args.txt"
    if not args_file.exists():
        return [*project, relative]
    names = [line.strip() for line in args_file.read_text().splitlines() if line.strip()]
    return [*project, *(os.path.normpath(os.path.join(relative, name)) for name in names)]


def test_the_corpus_covers_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
    for name in CASES:
        assert (BAD / name / "expected.txt").read_text().strip(), name


@pytest.mark.parametrize("name", CASES)
def test_bad_case_is_rejected_with_exact_messages(name: str) -> None:
    case = BAD / name
    result = subprocess.run(
        [sys.executable, "-m", "components", "validate", *_arguments(case)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr == (case / "expected.txt").read_text()
