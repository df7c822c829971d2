"""Permission edges record how they named their group (``group_ref``), so a preview's diff of an edge on a
built-in group needs no Metabase call, and so no Metabase key; an edge written before recorded it gets it
at its next refresh (README, "Previews with credentials that cannot write")."""

from __future__ import annotations

from typing import Any

import pytest

from components.providers.metabase import CollectionPermission, CollectionPermissionProvider
from tests.harness.provider_host import ProviderCallError
from tests.metabase.conftest import Driven, MetabaseTarget
from tests.metabase.double import MetabaseDouble


def test_an_edge_on_a_built_in_group_diffs_without_metabase_once_it_recorded_the_name(
    metabase_double: MetabaseDouble, double_host: Any, provider_host_factory: Any
) -> None:
    target = MetabaseTarget(metabase_double.url, metabase_double.api_key, metabase_double)
    collection = target.client().create_collection("group-ref probe", "", None)
    edge = Driven(double_host, CollectionPermissionProvider(), CollectionPermission, "group-ref-probe")
    news = {"group_id": "all-internal-users", "collection_id": int(collection["id"]), "level": "none", "tenant": None}
    outputs = edge.create(news)
    assert (outputs["group_ref"], outputs["group_id"]) == ("all-internal-users", 1)

    keyless = provider_host_factory({"smarteros:metabase": {"url": metabase_double.url}})
    sent = len(metabase_double.requests)
    diff = keyless.diff(CollectionPermissionProvider(), edge.id, edge.urn, edge.outputs, edge.check(news))
    assert diff.changes is False and not diff.replaces
    assert metabase_double.requests[sent:] == []

    # An edge written before `group_ref` existed: its diff needs the lookup, which a keyless run cannot make...
    older = {k: v for k, v in edge.outputs.items() if k != "group_ref"}
    with pytest.raises(ProviderCallError, match="401"):
        keyless.diff(CollectionPermissionProvider(), edge.id, edge.urn, older, edge.check(news))
    # ...until a refresh with the key records the name.
    _, refreshed, _ = double_host.read(CollectionPermissionProvider(), edge.id, edge.urn, older)
    assert refreshed["group_ref"] == "all-internal-users"
    diff = keyless.diff(CollectionPermissionProvider(), edge.id, edge.urn, refreshed, edge.check(news))
    assert diff.changes is False
