"""Print how long ``python -m components validate`` takes on tenant files of 10 kB, 100 kB and 1 MB.

Each size is tried with several shapes of content that stress the loader and the credential scan: one
long text value, one long value of repeated token prefixes, a long comment and a long run of spaces.
The largest time per size is what counts; validation must grow linearly with the file's size.

    python scripts/bench_validate.py            # seconds per size and shape
    python scripts/bench_validate.py --timeout 30
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAD = "rut: 76.953.480-6\nslug: acme\nstatus: active\nplan: Pro\n"


def _fill(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


SHAPES: dict[str, Callable[[int], str]] = {
    "long name": lambda n: HEAD + "name: " + _fill("a", n - len(HEAD) - 7) + "\n",
    "token prefixes": lambda n: HEAD + "name: " + _fill("eyJ-SG.-", n - len(HEAD) - 7) + "\n",
    "url pieces": lambda n: HEAD + "name: " + _fill("a://b:c", n - len(HEAD) - 7) + "\n",
    "long comment": lambda n: HEAD + "name: Acme\n# " + _fill("ab1Z", n - len(HEAD) - 13) + "\n",
    "spaces": lambda n: HEAD + "name: 'pwd" + " " * (n - len(HEAD) - 13) + "x'\n",
}
SIZES = {"10 kB": 10_000, "100 kB": 100_000, "1 MB": 999_000}


def _time(path: Path, timeout: float) -> float | None:
    start = time.perf_counter()
    try:
        subprocess.run(
            [sys.executable, "-m", "components", "validate", str(path)],
            cwd=ROOT,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a run is abandoned")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "acme.yaml"
        for label, size in SIZES.items():
            worst = 0.0
            parts = []
            for shape, make in SHAPES.items():
                path.write_text(make(size), encoding="utf-8")
                seconds = _time(path, args.timeout)
                if seconds is None:
                    parts.append(f"{shape} >{args.timeout:.0f}")
                    worst = float("inf")
                else:
                    parts.append(f"{shape} {seconds:.2f}")
                    worst = max(worst, seconds)
            shown = f">{args.timeout:.0f}" if worst == float("inf") else f"{worst:.2f}"
            print(f"{label:>6}: {shown} s (worst of: {', '.join(parts)})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
