#!/usr/bin/env python3
"""Start and set-up times of the local platform as processes (``python -m components local up``).

In a fresh directory on free ports, ``--runs`` times: a first start (initdb, OpenBao init and unseal, then
README's set-up in a new database), a stop, and a second start on the same data (PostgreSQL restart,
OpenBao unseal, the set-up again, which changes nothing). Prints the median of each phase; everything is
stopped and removed at the end.

    .venv/bin/python scripts/bench_local.py [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components import local  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    names = ("first start", "first set-up", "stop", "restart", "re-set-up")
    phases: dict[str, list[float]] = {key: [] for key in names}
    for _ in range(args.runs):
        directory = Path(tempfile.mkdtemp(prefix="smarteros-bench-local-"))
        directory.chmod(0o755)
        try:
            first = local.start(directory, postgres_port=0, vault_port=0)
            phases["first start"].append(first.start_seconds)
            phases["first set-up"].append(first.bootstrap_seconds)
            began = time.perf_counter()
            local.stop(directory)
            phases["stop"].append(time.perf_counter() - began)
            again = local.start(directory)
            phases["restart"].append(again.start_seconds)
            phases["re-set-up"].append(again.bootstrap_seconds)
        finally:
            local.stop(directory)
            shutil.rmtree(directory, ignore_errors=True)
    for phase, values in phases.items():
        runs = ", ".join(f"{value:.2f}" for value in values)
        print(f"{phase:>13}: median {statistics.median(values):5.2f} s  (runs: {runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
