"""The pure decisions of the Metabase provider: descriptions, templates, diffs, graph edges, isolation."""

from __future__ import annotations

import pytest

from components.analytics import query_levels
from components.providers.metabase import (
    TenantWorkspace,
    changed_fields,
    closing_patch,
    collection_edge_patch,
    collection_listed,
    connection_details,
    data_edge_patch,
    describe_body,
    error_text,
    isolation_violations,
    others_with_access,
    parent_from_location,
    plan_diff,
    split_description,
    tagged_description,
)


def test_ownership_tag_round_trips_and_is_told_apart_from_text() -> None:
    text = tagged_description("BI workspace of Ferretería Juanito", "tenant 76953480-6")
    assert text.endswith("[managed by smarteros: tenant 76953480-6]")
    assert split_description(text) == ("BI workspace of Ferretería Juanito", "tenant 76953480-6")
    assert split_description("made by hand") == ("made by hand", None)
    assert split_description(None) == ("", None)
    assert split_description(tagged_description("", "platform")) == ("", "platform")


@pytest.mark.parametrize(("location", "parent"), [("/", None), (None, None), ("/4/", 4), ("/4/17/", 17)])
def test_parent_comes_from_the_location_path(location: str | None, parent: int | None) -> None:
    assert parent_from_location(location) == parent


def test_connection_details_render_the_pooler_user() -> None:
    details = connection_details(
        {
            "host": "aws-0-sa-east-1.pooler.supabase.com",
            "port": 6543.0,
            "dbname": "postgres",
            "role": "tenant_76953480_6",
            "user_template": "{role}.abcdefghij",
            "password": "pw",
            "ssl": True,
            "additional_options": "prepareThreshold=0",
        }
    )
    assert details == {
        "host": "aws-0-sa-east-1.pooler.supabase.com",
        "port": 6543,
        "dbname": "postgres",
        "user": "tenant_76953480_6.abcdefghij",
        "password": "pw",
        "ssl": True,
        "additional-options": "prepareThreshold=0",
    }


def test_error_bodies_never_show_a_password() -> None:
    body = {"name": "x", "details": {"user": "tenant_1_9", "password": "hunter2-very-secret"}}
    shown = describe_body(body)
    assert "hunter2" not in shown and '"password": "[secret]"' in shown and "tenant_1_9" in shown
    assert describe_body({"name": "n" * 500}).endswith("...")
    assert len(describe_body({"name": "n" * 500})) == 300


def test_diff_treats_grpc_floats_and_empty_strings_as_equal() -> None:
    olds = {"port": 5432, "additional_options": None, "name": "a"}
    news = {"port": 5432.0, "additional_options": "", "name": "a"}
    assert changed_fields(olds, news, ("port", "additional_options", "name")) == []


def test_diff_names_replacements_and_orders_same_name_replacements() -> None:
    edge = plan_diff(
        {"group_id": 5, "collection_id": 7, "level": "read"},
        {"group_id": 6, "collection_id": 7, "level": "read"},
        ("group_id", "collection_id", "level"),
        ("group_id", "collection_id"),
    )
    assert (edge.changes, edge.replaces, edge.delete_before_replace) == (True, ["group_id"], False)
    same_name = plan_diff({"name": "a", "kind": 1}, {"name": "a", "kind": 2}, ("name", "kind"), ("kind",), "name")
    assert same_name.delete_before_replace is True
    update = plan_diff({"level": "read"}, {"level": "write"}, ("level",))
    assert (update.changes, update.replaces) == (True, [])


def test_graph_patches_touch_exactly_one_edge() -> None:
    assert collection_edge_patch(12, "root", "none") == {"12": {"root": "none"}}
    assert data_edge_patch(12, 40, "no") == {"12": {"40": {"create-queries": "no"}}}


def test_query_levels_follow_the_tenant_file() -> None:
    assert query_levels("query-builder-and-native") == {
        "owners": "query-builder-and-native",
        "viewers": "query-builder-and-native",
    }


def _graphs() -> tuple[dict, dict]:
    collections = {
        "revision": 3,
        "groups": {
            "1": {"root": "none", "10": "none", "20": "none"},
            "2": {"root": "write", "10": "write", "20": "write"},
            "11": {"root": "none", "10": "write", "20": "none"},
            "21": {"root": "none", "10": "none", "20": "read"},
        },
    }
    data = {
        "revision": 9,
        "groups": {
            "1": {"100": {"create-queries": "no"}, "200": {"create-queries": "no"}},
            "2": {"100": {"create-queries": "query-builder-and-native"}},
            "11": {"100": {"create-queries": "query-builder"}, "200": {"create-queries": "no"}},
            "21": {"100": {"create-queries": "no"}, "200": {"create-queries": "query-builder"}},
        },
    }
    return collections, data


WORKSPACES = [TenantWorkspace("1-9", (11,), 10, 100), TenantWorkspace("2-7", (21,), 20, 200)]


def test_isolation_holds_when_only_own_groups_and_administrators_reach_a_tenant() -> None:
    collections, data = _graphs()
    assert isolation_violations(collections, data, WORKSPACES) == []


def test_isolation_names_every_door_left_open() -> None:
    collections, data = _graphs()
    collections["groups"]["21"]["10"] = "read"
    data["groups"]["1"]["200"] = {"create-queries": "query-builder"}
    assert isolation_violations(collections, data, WORKSPACES) == [
        "group 21 has read on collection 10 of tenant 1-9",
        "group 1 has query-builder on database 200 of tenant 2-7",
    ]
    assert others_with_access(data, {21}, 200, "no", data=True) == [1]
    assert others_with_access(collections, {11}, 10, "none", data=False) == [21]


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ("Not found.", "Not found."),  # status-only errors are plain text
        ('"A group with that name already exists."', "A group with that name already exists."),
        (
            '{"message": "Looks like your password is incorrect.", "errors": {"password": "Looks like ..."}}',
            "Looks like your password is incorrect.",
        ),
        (
            '{"errors": {"name": "value must be a non-blank string."}, "specific-errors": {"name": ["x"]}}',
            "name: value must be a non-blank string.",
        ),
        ("<html><body><h1>504 Gateway\n Time-out</h1></body></html>", "504 Gateway Time-out"),
        ("x" * 400, "x" * 297 + "..."),
    ],
)
def test_error_bodies_become_one_short_line(body: str, shown: str) -> None:
    assert error_text(body) == shown


def test_closing_patch_leaves_allowed_groups_and_administrators_alone() -> None:
    collections, data = _graphs()
    assert closing_patch(data, {11}, 100, data=True, admin_group_id=2) == {}
    data["groups"]["21"]["100"] = {"view-data": "unrestricted", "create-queries": "query-builder"}
    data["groups"]["1"].pop("100")  # omitted: the least-permissive value
    assert closing_patch(data, {11}, 100, data=True, admin_group_id=2) == {"21": {"100": {"create-queries": "no"}}}
    collections["groups"]["21"]["10"] = "read"
    assert closing_patch(collections, {11}, 10, data=False, admin_group_id=2) == {"21": {"10": "none"}}


def test_an_archived_collection_is_not_listed_in_the_graph() -> None:
    collections, _ = _graphs()
    assert collection_listed(collections, 10, 2) and collection_listed(collections, "root", 2)
    assert not collection_listed(collections, 99, 2)
