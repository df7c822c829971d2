"""The one way this package writes Metabase's permission graphs, and the one way it creates objects.

Graph writes follow terraform-provider-metabase's practice and Metabase's revision check
(``src/metabase/permissions/util.clj`` ``check-revision-numbers``): read the current revision, send only the
edges that still need changing, retry a 409 with a fresh revision, one writer per process (the provider host
runs four worker threads). Creates never resend blindly: a 500 or a lost answer may come after the row was
inserted (``src/metabase/events/impl.clj`` publishes outside the transaction), so the object is looked up
before anything is posted again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .client import ApiFailure, MetabaseClient
from .decisions import closing_patch

GRAPH_LOCK = threading.Lock()
"""Serialises permission-graph writes inside one provider process (the host runs four worker threads)."""

GRAPH_WRITE_ATTEMPTS = 6
CREATE_ATTEMPTS = 3


def patch_graph(
    read: Callable[[], Mapping[str, Any]],
    patch_for: Callable[[Mapping[str, Any]], dict[str, Any]],
    put: Callable[[int, dict[str, Any]], None],
) -> None:
    """Read the graph, send the edges it still needs (nothing when the patch is empty) with its revision, and
    retry on a 409 with a fresh revision; one writer per process."""
    with GRAPH_LOCK:
        for attempt in range(GRAPH_WRITE_ATTEMPTS):
            graph = read()
            patch = patch_for(graph)
            if not patch:
                return
            try:
                put(int(graph.get("revision", 0)), patch)
                return
            except ApiFailure as exc:
                # A 409 (someone else wrote) or a write whose answer was lost: read again, send what is left.
                retry = exc.status in (409, None)
                if not retry or attempt == GRAPH_WRITE_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))


def close_database(client: MetabaseClient, database_id: int, allowed: set[int]) -> None:
    """Set create-queries ``no`` on one database for every group but ``allowed`` and Administrators."""
    admin = client.admin_group_id()
    patch_graph(
        lambda: client.get_data_graph_for_database(database_id),
        lambda graph: closing_patch(graph, allowed, database_id, data=True, admin_group_id=admin),
        client.put_data_graph,
    )


def close_collection(client: MetabaseClient, collection_id: int, allowed: set[int]) -> None:
    """Set ``none`` on one collection for every group but ``allowed`` and Administrators."""
    admin = client.admin_group_id()
    patch_graph(
        client.get_collection_graph,
        lambda graph: closing_patch(graph, allowed, collection_id, data=False, admin_group_id=admin),
        client.put_collection_graph,
    )


_T = TypeVar("_T")


def post_without_resend(post: Callable[[], _T], find_new: Callable[[], _T | None]) -> _T:
    """``post()``, and when it fails in a way that may have created the object (a 5xx, no answer), the object
    ``find_new()`` finds instead; ``post()`` is sent again only when the lookup finds nothing."""
    last: ApiFailure | None = None
    for attempt in range(CREATE_ATTEMPTS):
        if last is not None:
            found = find_new()
            if found is not None:
                return found
            time.sleep(0.1 * attempt)
        try:
            return post()
        except ApiFailure as exc:
            if not exc.may_have_written:
                raise
            last = exc
    assert last is not None
    found = find_new()
    if found is not None:
        return found
    raise last
