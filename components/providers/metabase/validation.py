"""Field-level checks shared by the permission-edge resources (``check`` returns failures, never raises)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.dynamic import CheckFailure

from .decisions import ADMINISTRATORS_GROUP_ID
from .plumbing import _check_known, _fail, _norm, _plain

ADMINS_REFUSED = "the Administrators group (id 2) always has full access; Metabase does not let it change"


def edge_failures(news: Mapping[str, Any], levels: tuple[str, ...]) -> list[CheckFailure]:
    """Problems with a permission edge's inputs: the Administrators group, or a level not in ``levels``."""
    failures: list[CheckFailure] = []
    if _check_known(news, "group_id") and _norm(news["group_id"]) == ADMINISTRATORS_GROUP_ID:
        _fail(failures, "group_id", ADMINS_REFUSED)
    if _check_known(news, "level") and _plain(news["level"]) not in levels:
        _fail(failures, "level", f"{_plain(news['level'])!r} is not one of: {', '.join(levels)}")
    return failures
