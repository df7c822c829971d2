"""Pure decisions of the Metabase provider: plain data in, plain data out, no I/O.

Ownership tags in descriptions, connection details from inputs, diffs over user inputs, and how to read the
permission graphs as Metabase writes them: the collection graph omits ``none`` entries (0.56.13+) and never
lists archived collections; the data graph omits least-permissive values (``create-queries: no``) and empty
entries (``src/metabase/permissions/models/collection/graph.clj``,
``src/metabase/permissions/models/data_permissions/graph.clj``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pulumi.dynamic import DiffResult

from .plumbing import _is_unknown, _norm, owner_label

ALL_USERS = "all-internal-users"
"""The built-in "All Users" group as the providers take it (its ``magic_group_type``; resolved per Metabase)."""
ALL_USERS_GROUP_ID = 1
"""Metabase's built-in "All Users" group as every release so far numbers it (providers find it by
``magic_group_type``)."""
ADMINISTRATORS_GROUP_ID = 2
"""Metabase's built-in "Administrators" group as every release so far numbers it (providers find it by
``magic_group_type``)."""

COLLECTION_LEVELS: tuple[str, ...] = ("read", "write", "none")
MASKED_PASSWORD = "**MetabasePass**"  # noqa: S105 - the mask, not a password
"""What Metabase returns instead of a stored connection password."""

TAG_PREFIX = "[managed by smarteros: "
"""How an ownership tag starts; a description written by a user must not contain it."""
_TAG_PREFIX = TAG_PREFIX
_TAG_RE = re.compile(r"\n*\[managed by smarteros: ([^\]\n]+)\]\s*$")


def ownership_tag(owner: str) -> str:
    """The marker written into descriptions of objects this stack manages (``owner``: ``tenant <rut>``)."""
    return f"{_TAG_PREFIX}{owner}]"


def tag_owner(inputs: Mapping[str, Any]) -> str:
    """Who an ownership tag names: the tenant (or ``platform``) and the stack that manages it, so two stacks
    sharing one Metabase (staging and production, or a split fleet) never adopt each other's objects."""
    owner = owner_label(inputs.get("tenant"))
    stack = inputs.get("stack")
    return f"{owner} of {stack}" if stack else owner


def tagged_description(text: str, owner: str) -> str:
    """A description carrying the ownership tag on its last line."""
    tag = ownership_tag(owner)
    return f"{text.strip()}\n\n{tag}" if text.strip() else tag


def split_description(description: str | None) -> tuple[str, str | None]:
    """``(text, owner)`` of a live description; owner is None when no ownership tag is present."""
    description = description or ""
    match = _TAG_RE.search(description)
    if not match:
        return description.strip(), None
    return description[: match.start()].strip(), match.group(1)


def parent_from_location(location: str | None) -> int | None:
    """Parent collection id from a Metabase location path (``/`` -> None, ``/4/17/`` -> 17)."""
    parts = [p for p in (location or "/").split("/") if p]
    return int(parts[-1]) if parts else None


def template_problem(template: str) -> str | None:
    """Why a connection user template is unusable, or None. Only ``{role}`` may appear, and it must."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"{template!r} is not a valid template: {exc}"
    names = set()
    for _literal, field, spec, conversion in fields:
        if field is None:
            continue
        if field != "role" or spec or conversion:
            extra = (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            shown = "{" + field + extra + "}"
            return f"{template!r} may only use the field {{role}}, not {shown}"
        names.add(field)
    if "role" not in names:
        return f"{template!r} must contain {{role}} so each tenant logs in as its own PostgreSQL role"
    return None


def render_user(template: str, role: str) -> str:
    """The login user for a tenant role (``{role}.abcdefghij`` for Supabase's pooler)."""
    return template.format(role=role)


def connection_details(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``details`` Metabase stores for a PostgreSQL connection, from a connection's inputs."""
    return {
        "host": inputs["host"],
        "port": int(inputs["port"]),
        "dbname": inputs["dbname"],
        "user": render_user(inputs["user_template"], inputs["role"]),
        "password": inputs["password"],
        "ssl": bool(inputs.get("ssl", False)),
        "additional-options": inputs.get("additional_options") or None,
    }


def changed_fields(olds: Mapping[str, Any], news: Mapping[str, Any], fields: tuple[str, ...]) -> list[str]:
    """The user-input fields whose value differs (an unknown new value counts as a change)."""
    changed = []
    for field in fields:
        new = news.get(field)
        if _is_unknown(new) or _norm(olds.get(field)) != _norm(new):
            changed.append(field)
    return changed


def plan_diff(
    olds: Mapping[str, Any],
    news: Mapping[str, Any],
    fields: tuple[str, ...],
    replace_fields: tuple[str, ...] = (),
    name_field: str | None = None,
    filled_later: tuple[str, ...] = (),
) -> DiffResult:
    """A diff over user inputs: which fields changed, which force a replacement, and the replace order.

    A replacement deletes first when the replacement keeps the same name (two objects cannot share it). A field
    of ``filled_later`` that had no value yet (the object it names did not exist: a deferred connection) and now
    gets one is an update, not a replacement: there was nothing to replace.
    """
    changed = changed_fields(olds, news, fields)
    replaces = [
        f for f in changed if f in replace_fields and not (f in filled_later and _norm(olds.get(f)) is None)
    ]
    same_name = name_field is not None and name_field not in changed
    return DiffResult(
        changes=bool(changed),
        replaces=replaces,
        stables=[],
        delete_before_replace=bool(replaces) and same_name,
    )


DEFERRED = "deferred"
"""What stands for the Metabase id, in a resource id, while the tenant's connection does not exist yet."""


def connection_step(login: bool, found: bool) -> Literal["adopt", "create", "defer"]:
    """What creating a tenant's connection does now: ``adopt`` the one this stack already owns (``found``),
    ``create`` it when the tenant's role may log in, or ``defer`` it until a converge sees the tenant open.

    Metabase tests the login before it stores a connection, and there is no way to skip the test
    (``src/metabase/warehouses_rest/api.clj``, ``POST /``: ``test-connection-details`` always runs, the body
    schema is closed and ``is_stub`` is refused; ``src/metabase/api/database.clj`` on v50 likewise): a
    ``NOLOGIN`` role cannot get a connection, so a tenant that starts closed gets it when it opens.
    """
    if found:
        return "adopt"
    return "create" if login else "defer"


def metabase_id(id_part: str, recorded: Any) -> int | None:
    """The Metabase id a resource id refers to: the id itself when it is a number (created at once, or
    imported), else the ``recorded`` output (None while the connection is deferred). Pulumi never changes a
    resource's id on update, so one first converged deferred keeps its id and records the Metabase id."""
    if id_part.isdigit():
        return int(id_part)
    value = _norm(recorded)
    return None if value is None or _is_unknown(value) else int(value)


def opens_deferred(olds: Mapping[str, Any], news: Mapping[str, Any], id_: str) -> bool:
    """Whether a deferred connection (no Metabase id yet) is to be created now: its tenant may log in."""
    return metabase_id(id_, olds.get("database_id")) is None and bool(_norm(news.get("login", True)))


def collection_edge_patch(group_id: int, collection_id: int | str, level: str) -> dict[str, Any]:
    """The ``groups`` part of a collection-graph PUT that changes exactly one edge."""
    return {str(group_id): {str(collection_id): level}}


def data_edge_patch(group_id: int, database_id: int, level: str) -> dict[str, Any]:
    """The ``groups`` part of a data-graph PUT that changes exactly one create-queries edge.

    A level other than ``no`` carries ``view-data: unrestricted``, which Metabase requires alongside it.
    """
    edge: dict[str, Any] = {"create-queries": level}
    if level != "no":
        edge = {"view-data": "unrestricted", **edge}
    return {str(group_id): {str(database_id): edge}}


def collection_level(graph: Mapping[str, Any], group_id: int, collection_id: int | str) -> str:
    """One edge of a collection graph (absent means ``none``: the graph omits ``none`` since 0.56.13)."""
    return str((graph.get("groups") or {}).get(str(group_id), {}).get(str(collection_id), "none"))


def query_level(graph: Mapping[str, Any], group_id: int, database_id: int) -> str:
    """One create-queries edge of a data graph (or slice); absent means ``no`` (the least-permissive value,
    which Metabase omits, as it drops empty entries)."""
    edge = (graph.get("groups") or {}).get(str(group_id), {}).get(str(database_id))
    if isinstance(edge, Mapping):
        return str(edge.get("create-queries", "no"))
    return "no"


def open_databases(graph: Mapping[str, Any], group_id: int, level: str) -> list[int]:
    """Databases on which a group's create-queries level differs from ``level`` (from a group slice)."""
    edges = (graph.get("groups") or {}).get(str(group_id), {})
    found = []
    for db_id, edge in edges.items():
        current = edge.get("create-queries", "no") if isinstance(edge, Mapping) else "no"
        if current != level:
            found.append(int(db_id))
    return sorted(found)


@dataclass(frozen=True)
class TenantWorkspace:
    """What isolation is checked against: a tenant's groups, collection and database in Metabase."""

    rut: str
    group_ids: tuple[int, ...]
    collection_id: int
    database_id: int


def isolation_violations(
    collection_graph: Mapping[str, Any],
    data_graph: Mapping[str, Any],
    workspaces: list[TenantWorkspace],
    admin_group_id: int = ADMINISTRATORS_GROUP_ID,
) -> list[str]:
    """Every edge that lets a group reach a tenant's collection or database without belonging to the tenant.

    The property: on each tenant database every group other than that tenant's groups and Administrators has
    create-queries ``no``; on each tenant collection every other group has ``none``.
    """
    problems: list[str] = []
    for ws in workspaces:
        allowed = {str(g) for g in ws.group_ids} | {str(admin_group_id)}
        for gid, edges in sorted((collection_graph.get("groups") or {}).items()):
            level = edges.get(str(ws.collection_id), "none")
            if gid not in allowed and level != "none":
                problems.append(
                    f"group {gid} has {level} on collection {ws.collection_id} of tenant {ws.rut}"
                )
        for gid in sorted(data_graph.get("groups") or {}):
            level = query_level(data_graph, int(gid), ws.database_id)
            if gid not in allowed and level != "no":
                problems.append(f"group {gid} has {level} on database {ws.database_id} of tenant {ws.rut}")
    return problems




def others_with_access(
    graph: Mapping[str, Any],
    allowed: set[int],
    key: int | str,
    closed: str,
    *,
    data: bool,
    admin_group_id: int = ADMINISTRATORS_GROUP_ID,
) -> list[int]:
    """Groups other than ``allowed`` and Administrators whose edge on ``key`` is not ``closed``."""
    found = []
    for gid_text in graph.get("groups") or {}:
        gid = int(gid_text)
        if gid in allowed or gid == admin_group_id:
            continue
        level = query_level(graph, gid, int(key)) if data else collection_level(graph, gid, key)
        if level != closed:
            found.append(gid)
    return sorted(found)


def closing_patch(
    graph: Mapping[str, Any], allowed: set[int], key: int | str, *, data: bool, admin_group_id: int
) -> dict[str, Any]:
    """The ``groups`` part of a PUT that closes ``key`` (a collection or a database) to every group but
    ``allowed`` and Administrators; empty when it is already closed."""
    closed = "no" if data else "none"
    edge: Any = {"create-queries": "no"} if data else "none"
    return {
        str(gid): {str(key): edge}
        for gid in others_with_access(graph, allowed, key, closed, data=data, admin_group_id=admin_group_id)
    }


def collection_listed(graph: Mapping[str, Any], collection_id: int | str, admin_group_id: int) -> bool:
    """Whether the collection graph lists a collection at all. Administrators have ``write`` on every
    collection the graph knows, so a collection missing there is archived (in the Trash), personal or gone:
    the graph never lists those, and edges written to them are dropped."""
    if collection_id == "root":
        return True
    return str(collection_id) in ((graph.get("groups") or {}).get(str(admin_group_id)) or {})
