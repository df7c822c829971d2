"""Field-level checks shared by the permission-edge resources (``check`` returns failures, never raises)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.dynamic import CheckFailure

from .client import ADMIN_MAGIC, ALL_USERS_MAGIC
from .decisions import ADMINISTRATORS_GROUP_ID
from .plumbing import _check_known, _fail, _norm, _plain

BUILTIN_REFS: tuple[str, ...] = (ALL_USERS_MAGIC,)
"""Built-in groups an edge may name by ``magic_group_type`` instead of by id."""

ADMINS_REFUSED = "the Administrators group (id 2) always has full access; Metabase does not let it change"


def edge_failures(news: Mapping[str, Any], levels: tuple[str, ...]) -> list[CheckFailure]:
    """Problems with a permission edge's inputs: the Administrators group, or a level not in ``levels``."""
    failures: list[CheckFailure] = []
    if _check_known(news, "group_id"):
        group = _norm(news["group_id"])
        if group in (ADMINISTRATORS_GROUP_ID, ADMIN_MAGIC):
            _fail(failures, "group_id", ADMINS_REFUSED)
        elif isinstance(group, str) and group not in BUILTIN_REFS and not group.isdigit():
            _fail(failures, "group_id", f"{group!r} is neither a group id nor one of: {', '.join(BUILTIN_REFS)}")
    if _check_known(news, "level") and _plain(news["level"]) not in levels:
        _fail(failures, "level", f"{_plain(news['level'])!r} is not one of: {', '.join(levels)}")
    return failures
