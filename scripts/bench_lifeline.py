#!/usr/bin/env python3
"""What a provider host's lifeline costs: its directory and watchdog, next to the host itself.

``--runs`` times each: a provider host started and closed (``ProviderHost.start``/``close``, lifeline
included), and the lifeline alone (``claim`` of a process directory, ``record_process``, ``close``: what
``ProviderHost`` adds to a host), and a watchdog's whole run on a directory without a record (its interpreter
start and imports: what a watchdog costs the machine; closed at once, the lifeline alone may stop its watchdog
before that is done). Prints the median wall time of each in this process, and the CPU time child processes
used per run, which the machine's other work pays for.

    .venv/bin/python scripts/bench_lifeline.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

from tests.harness.lifeline import PROCESS, claim, reap_orphans  # noqa: E402
from tests.harness.provider_host import ProviderHost  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(runs: int, once: Callable[[], None]) -> tuple[float, float]:
    """Median wall seconds of ``once`` and the children's CPU seconds per run."""
    walls = []
    cpu_before = children_cpu()
    for _ in range(runs):
        began = time.perf_counter()
        once()
        walls.append(time.perf_counter() - began)
    return statistics.median(walls), (children_cpu() - cpu_before) / runs


def host_once() -> None:
    ProviderHost().start().close()


def lifeline_once() -> None:
    lifeline = claim(PROCESS, "smarteros-bench-lifeline-")
    lifeline.record_process(os.getpid())  # a live process to name; closing never signals it
    lifeline.close()


def watchdog_once() -> None:
    with tempfile.TemporaryDirectory(prefix="smarteros-bench-lifeline-") as folder:
        subprocess.run([sys.executable, "-m", "tests.harness.lifeline", folder], cwd=ROOT, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    reap_orphans()  # done once per process anyway; kept out of the figures
    for name, once in (
        ("provider host, lifeline included", host_once),
        ("lifeline alone", lifeline_once),
        ("a watchdog's whole run", watchdog_once),
    ):
        wall, cpu = measure(args.runs, once)
        print(f"{name:34} {wall * 1000:7.1f} ms wall (median)  {cpu * 1000:7.1f} ms CPU in child processes per run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
