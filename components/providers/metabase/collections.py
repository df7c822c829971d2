"""Collections: one resource per collection (the platform's "Tenants" parent, each tenant's workspace).

Owns the collection's name, parent and description (which carries the ownership tag), and closes a collection
it creates or adopts to every group but the allowed ones and Administrators before the create call returns.
Leaves the collection's contents and the allowed groups' edges alone; deleting archives it (nothing is lost).
Metabase (``src/metabase/collections_rest/api.clj``, ``src/metabase/collections/models/collection.clj``,
v50 to v0.6x): ``POST /api/collection {name, description, parent_id}``; a new collection copies its parent's
permissions; ``PUT {archived: true}`` moves it to the Trash and keeps ``location``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi import Input, ResourceOptions
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, ReadResult, UpdateResult

from ..base import DynamicResource
from .client import ApiFailure, MetabaseError
from .decisions import TAG_PREFIX, parent_from_location, split_description, tag_owner, tagged_description
from .edges import close_collection, post_without_resend
from .plumbing import (
    _absent_is_done,
    _check_known,
    _fail,
    _group_ids,
    _inputs,
    _is_unknown,
    _MetabaseProvider,
    _norm,
    _plain,
    _reporting,
    _unless_absent,
    owner_label,
)


class CollectionProvider(_MetabaseProvider):
    """Owns one collection's name, place and description; leaves its contents alone. Delete archives."""

    fields = ("name", "parent_id", "description", "archived", "stack")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        if _check_known(news, "name") and not str(_plain(news["name"])).strip():
            _fail(failures, "name", "a collection needs a name")
        if _check_known(news, "description") and TAG_PREFIX in str(_plain(news["description"]) or ""):
            _fail(failures, "description", "the ownership tag is added by the provider; leave it out")
        parent = _norm(news.get("parent_id"))
        if parent is not None and not _is_unknown(parent) and (not isinstance(parent, int) or parent < 1):
            _fail(failures, "parent_id", f"{parent!r} is not a collection id")
        news = {**news, "archived": False}
        return CheckResult(news, failures)

    def _body(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "name": inputs["name"],
            "description": tagged_description(inputs.get("description") or "", tag_owner(inputs)),
            "parent_id": inputs.get("parent_id"),
        }

    def _outs(self, inputs: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
        text, owner = split_description(live.get("description"))
        return {
            **inputs,
            "name": live.get("name"),
            "description": text or None,
            "parent_id": parent_from_location(live.get("location")),
            "archived": bool(live.get("archived")),
            "owner": owner,
            "collection_id": int(live["id"]),
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = {**_inputs(props), "archived": False}
        tenant = inputs.get("tenant")
        client = self._client()
        body = self._body(inputs)
        owner = tag_owner(inputs)

        def ours_under_parent() -> list[dict[str, Any]]:
            siblings = client.child_collections(inputs.get("parent_id"))
            return [
                c
                for c in siblings
                if c.get("name") == body["name"] and split_description(c.get("description"))[1] == owner
            ]

        with _reporting(tenant):
            siblings = client.child_collections(inputs.get("parent_id"))
            same_name = [c for c in siblings if c.get("name") == body["name"]]
            ours = [c for c in same_name if split_description(c.get("description"))[1] == owner]
            if len(ours) > 1:
                extra = [int(c["id"]) for c in ours[1:]]
                close_collection(client, int(ours[0]["id"]), _group_ids(inputs.get("allowed_group_ids")))
                for duplicate in extra:
                    close_collection(client, duplicate, set())
                raise MetabaseError(
                    f"{owner_label(tenant)}: Metabase has {len(ours)} collections named {body['name']!r} managed "
                    f"by this stack (ids {', '.join(str(int(c['id'])) for c in ours)}); the duplicates (ids "
                    f"{', '.join(map(str, extra))}) were closed to every group but Administrators: move what they "
                    "hold into the first one, archive them and run again"
                )
            if ours:
                live = client.update_collection(int(ours[0]["id"]), {**body, "archived": False})
            elif same_name:
                cid = same_name[0]["id"]
                raise MetabaseError(
                    f"{owner_label(tenant)}: Metabase collection {body['name']!r} already exists (id {cid}) "
                    f"without this stack's ownership tag; adopt it with the import_ resource option (id {cid})"
                )
            else:
                live = post_without_resend(
                    lambda: client.create_collection(body["name"], body["description"], body["parent_id"]),
                    lambda: next(iter(ours_under_parent()), None),
                )
        cid = int(live["id"])
        try:
            close_collection(client, cid, _group_ids(inputs.get("allowed_group_ids")))
        except ApiFailure as exc:
            raise MetabaseError(
                f"{owner_label(tenant)}: Metabase collection {body['name']!r} (id {cid}) was created but could "
                f"not be closed to other groups; it keeps its parent's permissions until the next run closes "
                f"it: {exc}"
            ) from None
        return CreateResult(str(cid), self._outs(inputs, live))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = _inputs(props)
        with _reporting(inputs.get("tenant")):
            live = _unless_absent(lambda: self._client().get_collection(int(id_)))
        if live is None:
            return ReadResult("", {})
        return ReadResult(id_, self._outs(inputs, live))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = {**_inputs(news), "archived": False}
        with _reporting(inputs.get("tenant")):
            live = self._client().update_collection(int(id_), {**self._body(inputs), "archived": False})
        return UpdateResult(self._outs(inputs, live))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        inputs = _inputs(props)
        client = self._client()
        with _reporting(inputs.get("tenant")), _absent_is_done():
            if not client.get_collection(int(id_)).get("archived"):
                client.update_collection(int(id_), {"archived": True})


class Collection(DynamicResource, module="metabase", name="Collection"):
    """A Metabase collection tagged as managed by this stack. Owns its name, parent and description, not its
    contents; deleting it archives it, so no question or dashboard is lost. Creating it closes it to every
    group but ``allowed_group_ids`` and Administrators before the call returns."""

    collection_id: Any

    def __init__(
        self,
        name: str,
        *,
        collection_name: Input[str],
        parent_id: Input[int] | None,
        tenant: str | None,
        description: Input[str] | None = None,
        stack: str | None = None,
        allowed_group_ids: list[Input[int]] | None = None,
        opts: ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "name": collection_name,
            "parent_id": parent_id,
            "tenant": tenant,
            "stack": stack,
            "description": description,
            "archived": False,
            "collection_id": None,
            "owner": None,
        }
        if allowed_group_ids is not None:
            props["allowed_group_ids"] = allowed_group_ids
        super().__init__(CollectionProvider(), name, props, opts)
