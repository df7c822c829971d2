"""Command line: ``python -m components validate [PATH ...]`` and ``python -m components graph ...``.

``validate`` checks tenant files without credentials and without importing Pulumi, so it is fast
enough for editors, pre-commit hooks and CI on forks. It prints one line on success, e.g.
``3 tenant files valid (tenants/)``, and exits 0. Otherwise it prints every problem in every file on
standard error, one ``path:line:col: field: message`` line each, then a summary line, and exits 1.

``graph`` prints what the Pulumi program would register (see :mod:`components.graph`); it is imported
only when asked for, because Pulumi's modules take seconds to import.

``local up|status|down [--dir DIR]`` runs the platform as local processes (see :mod:`components.local.cli`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

DEFAULT_TENANTS = "tenants/"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components",
        description="Tenant provisioning as code: check tenant files, show the resource graph.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{validate,graph,local}")
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
        "paths",
        nargs="*",
        metavar="PATH",
        help=f"tenant files, folders of *.yaml files, or glob patterns (default: {DEFAULT_TENANTS})",
    )
    graph = commands.add_parser("graph", help="print the resources the program would register", add_help=False)
    graph.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    local = commands.add_parser(
        "local", help="PostgreSQL and OpenBao as local processes: up, status, down", add_help=False
    )
    local.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def validate(paths: Sequence[str]) -> int:
    """Validate tenant files and report the outcome; returns the process exit code."""
    from components.spec import check_files

    targets = list(paths) or [DEFAULT_TENANTS]
    _, problems, count = check_files(targets)
    shown = ", ".join(targets)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        files_with_problems = len({p.path for p in problems})
        noun = "problem" if len(problems) == 1 else "problems"
        where = f"in {files_with_problems} of {count} tenant files" if count else "and no tenant file read"
        print(f"{len(problems)} {noun} {where} ({shown})", file=sys.stderr)
        return 1
    noun = "file" if count == 1 else "files"
    print(f"{count} tenant {noun} valid ({shown})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m components``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["graph"]:
        from components.graph import main as graph_main

        return graph_main(args_list[1:])
    if args_list[:1] == ["local"]:
        from components.local.cli import main as local_main

        return local_main(args_list[1:])
    args = _parser().parse_args(args_list)
    if args.command == "validate":
        return validate(args.paths)
    return 2  # pragma: no cover - argparse rejects unknown commands first


if __name__ == "__main__":
    sys.exit(main())
