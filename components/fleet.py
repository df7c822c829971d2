"""The tenants a stack owns: its tenant-file selector, the files' validation, and checks against stack config.

A stack names the tenant files it owns with ``smarteros:tenantFiles`` (glob patterns relative to the
project), so a large fleet can be split across stacks. Nothing here imports Pulumi.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from .config import StackConfig
from .policy import policy_from_config
from .selection import select_tenant_files
from .spec import Problem, SpecError, TenantSpec, load_tenants


def select_files(patterns: Sequence[str], *, allow_empty: bool = False) -> list[Path]:
    """Tenant files matched by the stack's patterns (relative to the project), as ``validate`` selects them.

    Raises :class:`SpecError` naming every selected path that is not a tenant file, and every pattern
    that selects none unless ``allow_empty``.
    """
    selection = select_tenant_files(patterns, allow_empty=allow_empty)
    if selection.problems:
        raise SpecError(selection.problems)
    return [Path(p) for p in selection.files]


def _product_position(path: Path, index: int) -> tuple[int, int]:
    """Line and column of ``products[index]`` in a file that has already passed validation."""
    root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    for key, value in root.value if isinstance(root, yaml.MappingNode) else []:
        if key.value == "products" and isinstance(value, yaml.SequenceNode) and index < len(value.value):
            mark = value.value[index].start_mark
            return mark.line + 1, mark.column + 1
    return 1, 1


def config_problems(
    tenants: Sequence[TenantSpec], files: Sequence[Path], config: StackConfig
) -> list[Problem]:
    """Problems a valid tenant file has only in combination with this stack's config."""
    problems: list[Problem] = []
    if not config.cloudflare.enabled:
        return problems
    by_slug = {path.stem: path for path in files}
    for tenant in tenants:
        for index, product in enumerate(tenant.products):
            if product not in config.cloudflare.products:
                path = by_slug[tenant.slug]
                line, col = _product_position(path, index)
                problems.append(
                    Problem(
                        path=str(path),
                        line=line,
                        col=col,
                        field=f"products[{index}]",
                        message=(
                            f"product '{product}' has no ingress in stack config "
                            f"(set smarteros:cloudflare.products.{product}.target)"
                        ),
                    )
                )
    return problems


def load_fleet(config: StackConfig) -> list[TenantSpec]:
    """Validate every tenant file the stack owns; raise :class:`SpecError` listing every problem.

    A stack whose patterns select no tenant file refuses to run unless ``smarteros:allowEmpty`` is true:
    converging an empty fleet would plan to delete every tenant.
    """
    files = select_files(config.tenant_files, allow_empty=config.allow_empty)
    if not files and not config.allow_empty:  # no pattern at all
        raise SpecError(
            [Problem("smarteros:tenantFiles", 0, 0, "", "selects no tenant file; set smarteros:allowEmpty: true "
                     "to converge a stack without tenants")]
        )
    tenants = load_tenants(files, policy_from_config(config), allow_empty=config.allow_empty)
    problems = config_problems(tenants, files, config)
    if problems:
        raise SpecError(problems)
    return tenants
