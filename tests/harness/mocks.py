"""Pulumi-mocks harness: run a program (by default the project's ``__main__.py``) and get its resources.

A thin layer over :mod:`components.graph`, which ``python -m components graph`` uses too, so the tests
see exactly what reviewers see, plus the resource options the engine would receive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from components.graph import ProgramRun, RecordedOptions, Registered, execute, load_stack_file, redacted, run_program

__all__ = [
    "ProgramRun",
    "RecordedOptions",
    "Registered",
    "by_type",
    "children",
    "execute",
    "load_stack_file",
    "redacted",
    "run_program",
    "stack_config",
]


def stack_config(stack: str, **overrides: Any) -> dict[str, Any]:
    """Config of ``Pulumi.<stack>.yaml`` with ``smarteros:<key>`` overrides (``tenantFiles=[...]``)."""
    values, _ = load_stack_file(stack)
    values.update({f"smarteros:{k}": v for k, v in overrides.items()})
    return values


def tenant_files(folder: Path) -> list[str]:
    return [str(folder / "*.yaml")]


def by_type(resources: Iterable[Registered], type_: str) -> list[Registered]:
    return [r for r in resources if r.type == type_]


def children(resources: Iterable[Registered], parent: Registered | str) -> list[Registered]:
    urn = parent if isinstance(parent, str) else parent.urn
    return [r for r in resources if r.parent == urn]


def one(resources: Iterable[Registered], **match: Any) -> Registered:
    found = [r for r in resources if all(getattr(r, k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one resource matching {match}, found {len(found)}"
    return found[0]


def inputs_without_provider(resource: Registered) -> Mapping[str, Any]:
    return {k: v for k, v in resource.inputs.items() if k != "__provider"}
