"""``python -m components local up|status|down [--dir DIR]``: the local platform as processes.

``up`` starts (or reuses) PostgreSQL and OpenBao in DIR, bootstraps them as README.md says, and prints their
addresses, where the dev stack's ``PG*``/``VAULT_*`` environment was written (a file only its owner can read;
no credential is ever printed), and the start and bootstrap times. ``status`` prints what runs. ``down``
stops both and waits until they are gone; the data stays in DIR for the next ``up``.
Exit status: 0 on success, 1 with a one-line reason on standard error otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from components import local
from components.local.processes import LocalPlatformError
from components.local.steps import SetupError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components local",
        description="PostgreSQL and OpenBao as local processes, set up as README.md says (no Docker needed).",
    )
    parser.add_argument("action", choices=["up", "status", "down"])
    parser.add_argument(
        "--dir", type=Path, default=local.DEFAULT_DIR, help=f"where data and state live (default: {local.DEFAULT_DIR})"
    )
    parser.add_argument("--postgres-port", type=int, default=None, help="default 5432; 0 picks a free port")
    parser.add_argument("--vault-port", type=int, default=None, help="default 8200; 0 picks a free port")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.action == "up":
            platform = local.start(args.dir, postgres_port=args.postgres_port, vault_port=args.vault_port)
            for line in platform.addresses():
                print(line)
            print(local.METABASE_OFF)
            print(f"Credentials: {platform.env_file} (mode 0600): {' '.join(platform.env())}")
            print(f"  load them with: set -a; . {platform.env_file}; set +a")
            print(
                f"Started in {platform.start_seconds:.1f} s, bootstrapped in {platform.bootstrap_seconds:.1f} s"
                f" ({'existing data reused' if platform.reused else 'new data'})"
            )
        elif args.action == "status":
            report = local.status(args.dir)
            for line in report.lines():
                print(line)
            return 0 if report.running else 3
        else:
            stopped = local.stop(args.dir)
            print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running", f"(data kept in {args.dir})")
    except (LocalPlatformError, SetupError) as exc:
        print(f"local {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0
