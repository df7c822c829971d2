"""Permissions groups: one resource per group (``tenant <rut> owners`` / ``... viewers``).

Owns the group's name. Leaves its members, every other group and every permission edge alone. An existing
group of the same name is adopted when it has no members, or when it reaches a collection tagged for this
tenant and stack (a converge from empty state); otherwise create refuses it. Metabase
(``src/metabase/permissions/models/permissions_group.clj``, v50 to v0.6x) compares group names
case-insensitively ("A group with that name already exists.", 400), identifies its built-in groups by
``magic_group_type`` (never by id), and answers 204 to a DELETE of a group that does not exist. A new group
copies All Users' create-queries level on every database (``set-default-group-permissions!``), so once All
Users is closed on a database, every group created later is closed there too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi import Input, ResourceOptions
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, ReadResult, UpdateResult

from ..base import DynamicResource
from .client import MetabaseClient, MetabaseError
from .decisions import split_description, tag_owner
from .edges import post_without_resend
from .plumbing import (
    _absent_is_done,
    _check_known,
    _fail,
    _inputs,
    _MetabaseProvider,
    _plain,
    _reporting,
    _unless_absent,
    owner_label,
)


def _same_name(client: MetabaseClient, name: str) -> list[dict[str, Any]]:
    wanted = name.casefold()
    return [g for g in client.list_groups() if str(g.get("name", "")).casefold() == wanted]


def _holds_own_collection(client: MetabaseClient, gid: int, inputs: Mapping[str, Any]) -> bool:
    """Whether the group reaches a collection carrying this tenant's and stack's ownership tag: a group with
    members is adopted only when it is demonstrably the one this stack gave the tenant's collection to (groups
    have no description to carry a tag)."""
    if not inputs.get("stack"):
        return False
    owner = tag_owner(inputs)
    edges = (client.get_collection_graph().get("groups") or {}).get(str(gid)) or {}
    for cid, level in edges.items():
        if cid == "root" or level == "none":
            continue
        collection_id = int(cid)
        live = _unless_absent(lambda: client.get_collection(collection_id))  # noqa: B023 - called at once
        if live is not None and split_description(live.get("description"))[1] == owner:
            return True
    return False


class PermissionsGroupProvider(_MetabaseProvider):
    """Owns one permissions group by name; leaves its members and every other group alone."""

    fields = ("name",)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        if _check_known(news, "name") and not str(_plain(news["name"])).strip():
            _fail(failures, "name", "a group needs a name")
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = _inputs(props)
        tenant = inputs.get("tenant")
        client = self._client()
        name = str(inputs["name"])
        with _reporting(tenant):
            existing = _same_name(client, name)
            if existing:
                group = existing[0]
                gid = group["id"]
                members = int(group.get("member_count") or 0) > 0
                if group.get("magic_group_type") or (members and not _holds_own_collection(client, gid, inputs)):
                    raise MetabaseError(
                        f"{owner_label(tenant)}: Metabase group {group.get('name')!r} already exists (id {gid}) "
                        f"with members and is not managed by this stack; adopt it with the import_ resource "
                        f"option (id {gid}) after checking its members"
                    )
            else:
                before = {int(g["id"]) for g in existing}

                def find_new() -> dict[str, Any] | None:
                    fresh = [g for g in _same_name(client, name) if int(g["id"]) not in before]
                    return fresh[0] if fresh else None

                group = post_without_resend(lambda: client.create_group(name), find_new)
        return CreateResult(str(group["id"]), {**inputs, "group_id": int(group["id"])})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = _inputs(props)
        with _reporting(inputs.get("tenant")):
            group = _unless_absent(lambda: self._client().get_group(int(id_), reader=f"group {id_}"))
        if group is None:
            return ReadResult("", {})
        outs = {**inputs, "name": group.get("name"), "group_id": int(group["id"])}
        return ReadResult(id_, outs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = _inputs(news)
        with _reporting(inputs.get("tenant")):
            self._client().update_group(int(id_), inputs["name"])
        return UpdateResult({**inputs, "group_id": int(id_)})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        inputs = _inputs(props)
        client = self._client()
        with _reporting(inputs.get("tenant")), _absent_is_done():
            if int(id_) in client.builtin_group_ids().values():
                return  # a built-in group is never ours to delete
            client.delete_group(int(id_))


class PermissionsGroup(DynamicResource, module="metabase", name="PermissionsGroup"):
    """A Metabase permissions group (``tenant <rut> owners``). Owns the group; leaves its members alone."""

    group_id: Any

    def __init__(
        self,
        name: str,
        *,
        group_name: Input[str],
        tenant: str | None,
        stack: str | None = None,
        opts: ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {"name": group_name, "tenant": tenant, "group_id": None}
        if stack is not None:
            props["stack"] = stack
        super().__init__(PermissionsGroupProvider(), name, props, opts)
