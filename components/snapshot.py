"""Record what the program of one or more checkouts registers, as JSON on stdout (``plan`` runs this).

``python components/snapshot.py --stack prod ROOT [ROOT ...]`` runs each checkout's own ``__main__.py``
and ``components`` package under Pulumi mocks, one after the other in this process (Pulumi and the
Cloudflare SDK are imported once), with the recorder of :mod:`components.graph` loaded from beside this
file. It prints ``[{"root", "error", "resources"}, ...]``: every registered resource with its type, name,
parent, inputs (secrets as ``[secret]``, the serialised dynamic provider left out) and the options that
decide what a deletion does (``protect``, ``retain_on_delete``). A program that refuses to run (invalid
tenant files, bad stack config) gives its message in ``error``.

It is a script, not a module of the package, because each checkout must import its own ``components``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
PROVIDER_INPUT = "__provider"


def _load_recorder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_snapshot_graph", HERE / "graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _use_checkout(root: Path, previous: Path | None) -> None:
    """Make ``import components`` load ``root``'s package, forgetting the previous checkout's."""
    for name in list(sys.modules):
        if name == "components" or name.startswith("components."):
            del sys.modules[name]
    if previous is not None and str(previous) in sys.path:
        sys.path.remove(str(previous))
    sys.path.insert(0, str(root))


def snapshot(recorder: ModuleType, root: Path, stack: str) -> dict[str, Any]:
    """What ``root``'s program registers for ``stack``, or the error it stops with."""
    import pulumi

    values, secret_keys = recorder.load_stack_file(stack, root=root)
    try:
        run = recorder.execute(config=values, secret_keys=secret_keys, stack=stack, root=root)
    except pulumi.RunError as error:
        return {"root": str(root), "error": str(error), "resources": []}
    resources = []
    for registered, shown in zip(run.resources, recorder.redacted(run.resources), strict=True):
        inputs = {k: v for k, v in shown["inputs"].items() if k != PROVIDER_INPUT}
        resources.append(
            {
                **shown,
                "inputs": inputs,
                "custom": registered.custom,
                "protect": registered.options.protect,
                "retain_on_delete": registered.options.retain_on_delete,
            }
        )
    return {"root": str(root), "error": None, "resources": resources}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Record the resources each checkout's program registers.")
    parser.add_argument("--stack", required=True)
    parser.add_argument("roots", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if sys.path and Path(sys.path[0]).resolve() == HERE:
        sys.path.pop(0)  # this folder is a package, not a place to import top-level modules from
    recorder = _load_recorder()
    results = []
    previous: Path | None = None
    for root in args.roots:
        root = root.resolve()
        _use_checkout(root, previous)
        results.append(snapshot(recorder, root, args.stack))
        previous = root
    json.dump(results, sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
