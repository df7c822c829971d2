"""Command line: ``python -m components validate [PATH ...]`` and ``python -m components graph ...``.

``validate`` checks tenant files without credentials and without importing Pulumi, so it is fast
enough for editors, pre-commit hooks and CI on forks. It prints one line on success, e.g.
``3 tenant files valid (tenants/)``, and exits 0. Otherwise it prints every problem in every file on
standard error, one ``path:line:col: field: message`` line each, then a summary line, and exits 1.

``graph`` prints what the Pulumi program would register (see :mod:`components.graph`) and ``plan``
what a change does to each tenant (see :mod:`components.plan`); they are imported only when asked for,
because Pulumi's modules take seconds to import.

``validate`` also warns, on standard error, about trials that end within 14 days or have ended.

``local up|status|down|tenant SLUG [--dir DIR]`` runs the platform as local processes (see
:mod:`components.local.cli`).
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.spec import TenantSpec

DEFAULT_TENANTS = "tenants/"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components",
        description="Tenant provisioning as code: check tenant files, show the resource graph.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{validate,graph,plan,drift,local}")
    validate = commands.add_parser(
        "validate",
        help="check tenant files (no credentials needed)",
        description=(
            "Check tenant files: YAML, fields, RUT check digits, duplicates across files, and values "
            "that look like credentials. Prints every problem as path:line:col: field: message on "
            "standard error and exits 1; prints one summary line and exits 0 when all files are valid."
        ),
    )
    validate.add_argument(
        "--project",
        metavar="DIR",
        help="folder whose Pulumi.<stack>.yaml files give the stacks' policy (default: this project)",
    )
    validate.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help=f"tenant files, folders of *.yaml files, or glob patterns (default: {DEFAULT_TENANTS})",
    )
    graph = commands.add_parser("graph", help="print the resources the program would register", add_help=False)
    graph.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    plan = commands.add_parser(
        "plan", help="print, as Markdown, what a change does to each tenant (no credentials)", add_help=False
    )
    plan.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    drift = commands.add_parser(
        "drift", help="name the tenants that drifted, from `pulumi preview --refresh --json`", add_help=False
    )
    drift.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    local = commands.add_parser(
        "local", help="PostgreSQL and OpenBao as local processes: up, status, down", add_help=False
    )
    local.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def validate(paths: Sequence[str], project: str | None = None) -> int:
    """Validate tenant files and report the outcome; returns the process exit code.

    Whatever the input, this prints messages, never a traceback, and never the content of a file.
    """
    try:
        return _validate(paths, project)
    except Exception as error:
        print(
            f"validate stopped on an internal error ({type(error).__name__}); no file content is shown. "
            "Please report it with the file that caused it.",
            file=sys.stderr,
        )
        return 2


def _validate(paths: Sequence[str], project: str | None) -> int:
    from pathlib import Path

    from components.spec import check_selected
    from components.stackfiles import check_project

    root = Path(project) if project else Path(__file__).resolve().parent.parent
    policy, stack_problems = check_project(root)
    targets = list(paths) or [DEFAULT_TENANTS]
    checked = check_selected(targets, policy)
    specs, problems, count = checked.specs, stack_problems + checked.problems, len(checked.files)
    shown = ", ".join(targets)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        tenant_files = set(checked.files)
        in_tenant_files = len({p.path for p in problems if p.path in tenant_files})
        others = len({p.path for p in problems if p.path not in tenant_files})
        noun = "problem" if len(problems) == 1 else "problems"
        where = f"in {in_tenant_files} of {count} tenant files" if count else "and no tenant file read"
        if others and count:
            where += f" and {others} other {'file' if others == 1 else 'files'}"
        print(f"{len(problems)} {noun} {where} ({shown})", file=sys.stderr)
        return 1
    noun = "file" if count == 1 else "files"
    print(f"{count} tenant {noun} valid ({shown})")
    for notice in trial_notices(specs, targets):
        print(notice, file=sys.stderr)
    return 0


def _file_of(slug: str, targets: Sequence[str]) -> Path | None:
    """The tenant file of ``slug`` among the validated targets (a valid file is named after its slug)."""
    for target in targets:
        path = Path(target)
        candidates = [path / f"{slug}.yaml", path / f"{slug}.yml"] if path.is_dir() else [
            Path(p) for p in glob.glob(target)
        ]
        for candidate in candidates:
            if candidate.stem == slug and candidate.is_file():
                return candidate
    return None


def _line_col(path: Path, key: str) -> tuple[int, int]:
    """Line and column of a top-level key's value in a file that passed validation."""
    import yaml

    root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    for node_key, value in root.value if isinstance(root, yaml.MappingNode) else []:
        if node_key.value == key:
            return value.start_mark.line + 1, value.start_mark.column + 1
    return 1, 1


def trial_notices(specs: Sequence[TenantSpec], targets: Sequence[str], today: date | None = None) -> list[str]:
    """Warnings for trials that end within the warning window or have ended, as ``path:line:col:`` lines."""
    from components.config import DEFAULT_TIME_ZONE
    from components.lifecycle import today_in, trial_notice

    day = today or today_in(DEFAULT_TIME_ZONE)
    notices = []
    for spec in specs:
        notice = trial_notice(spec, day)
        if notice is None:
            continue
        path = _file_of(spec.slug, targets)
        where = f"{path}:{':'.join(map(str, _line_col(path, 'trial_expires_at')))}" if path else spec.slug
        notices.append(f"{where}: trial_expires_at: warning: {notice}")
    return notices


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m components``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["graph"]:
        from components.graph import main as graph_main

        return graph_main(args_list[1:])
    if args_list[:1] == ["plan"]:
        from components.plan import main as plan_main

        return plan_main(args_list[1:])
    if args_list[:1] == ["drift"]:
        from components.drift import main as drift_main

        return drift_main(args_list[1:])
    if args_list[:1] == ["local"]:
        from components.local.cli import main as local_main

        return local_main(args_list[1:])
    args = _parser().parse_args(args_list)
    if args.command == "validate":
        return validate(args.paths, args.project)
    return 2  # pragma: no cover - argparse rejects unknown commands first


if __name__ == "__main__":
    sys.exit(main())
