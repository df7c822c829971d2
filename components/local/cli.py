"""``python -m components local up|status|down|tenant [SLUG] [--dir DIR]``: the local platform as processes.

``up`` starts (or reuses) PostgreSQL and OpenBao in DIR, bootstraps them as README.md says, and prints their
addresses, where the dev stack's ``PG*``/``VAULT_*`` environment was written (a file only its owner can read;
no credential is ever printed), and the start and bootstrap times. ``status`` prints what runs. ``down``
stops both and waits until they are gone; the data stays in DIR for the next ``up``. ``tenant SLUG`` shows
what that tenant's own credentials reach (see :mod:`components.local.tenant_view`).
Exit status: 0 on success, 1 with a one-line reason on standard error otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from components import local
from components.local import tenant_view
from components.local.processes import LocalPlatformError
from components.local.steps import SetupError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components local",
        description="PostgreSQL and OpenBao as local processes, set up as README.md says (no Docker needed).",
    )
    parser.add_argument("action", choices=["up", "status", "down", "tenant"])
    parser.add_argument("slug", nargs="?", help="tenant: the tenant whose view to show (tenants/<slug>.yaml)")
    parser.add_argument("--tenants", type=Path, default=Path("tenants"), help="tenant: folder of tenant files")
    parser.add_argument(
        "--dir", type=Path, default=local.DEFAULT_DIR, help=f"where data and state live (default: {local.DEFAULT_DIR})"
    )
    parser.add_argument("--postgres-port", type=int, default=None, help="default 5432; 0 picks a free port")
    parser.add_argument("--vault-port", type=int, default=None, help="default 8200; 0 picks a free port")
    return parser


def _target(directory: Path) -> tenant_view.Target:
    """The platform of ``directory`` (platform.json), or of the environment: ``VAULT_ADDR``,
    ``VAULT_ADMIN_TOKEN`` (a token that may issue AppRole secret-ids), ``PGHOST``, ``PGPORT``, ``PGDATABASE``."""
    state = local.read_state(directory)
    environ = os.environ
    if "VAULT_ADMIN_TOKEN" not in environ and not state:
        raise LookupError(f"no local platform in {directory} and no VAULT_ADMIN_TOKEN in the environment")
    return tenant_view.Target(
        vault_address=environ.get("VAULT_ADDR") or f"http://127.0.0.1:{state['vault_port']}",
        admin_token=environ.get("VAULT_ADMIN_TOKEN") or state["admin"]["vault_root_token"],
        postgres_host=environ.get("PGHOST", "127.0.0.1"),
        postgres_port=int(environ.get("PGPORT") or state.get("postgres_port") or 5432),
        database=environ.get("PGDATABASE", local.DATABASE),
    )


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
        elif args.action == "tenant":
            if not args.slug:
                print("local tenant: name the tenant, e.g. `local tenant demo`", file=sys.stderr)
                return 2
            for line in tenant_view.view(tenant_view.find_tenant(args.slug, args.tenants), _target(args.dir)):
                print(line)
        else:
            stopped = local.stop(args.dir)
            print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running", f"(data kept in {args.dir})")
    except (LocalPlatformError, SetupError, LookupError) as exc:
        print(f"local {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0
