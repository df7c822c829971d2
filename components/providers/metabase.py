"""Metabase objects of the tenant platform, managed as Pulumi dynamic resources over the REST API.

Each tenant gets a BI workspace on Metabase OSS that only its people can see and that can only ever query its
own rows: the database connection logs in as the tenant's PostgreSQL role (row-level security does the
isolation) and permission edges keep every other group out. The platform side closes the doors first: the
"Tenants" parent collection and the root collection are closed to All Users, and All Users may not query any
database, so new databases and new groups inherit "no".

Resources (type tokens ``pulumi-python:dynamic/metabase:<Kind>``):

* :class:`PermissionsGroup` -- one permissions group (``tenant <rut> owners`` / ``... viewers``);
* :class:`Collection` -- one collection, tagged as managed in its description; deleting archives it;
* :class:`CollectionPermission` -- one edge of the collection graph (group -> collection: read/write/none);
* :class:`DatabaseConnection` -- one PostgreSQL connection that logs in as a tenant role;
* :class:`DataPermission` -- one edge of the data graph (group -> database: create-queries level);
* :class:`DatabaseAccessLockdown` -- one group's query access set to a level on every database.

The Metabase URL and API key come from stack config (``smarteros:metabase``, secret
``smarteros:metabaseApiKey``) in ``configure``, with ``METABASE_URL`` / ``METABASE_API_KEY`` as fallback;
they are never stored on the provider objects that Pulumi serialises into the state. Graph edits read the
current revision, send only the edge being changed, and retry on a 409 with a fresh revision, one writer at
a time per process.

API reference: https://www.metabase.com/docs/latest/api (groups, collections, permissions, databases).
"""

from __future__ import annotations

import json
import os
import re
import string
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import requests
from pulumi import Input, ResourceOptions
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from components.catalog import QUERY_LEVELS
from components.config import MetabaseConfig, secret_from_raw, section_from_raw

from .base import DynamicResource

ALL_USERS_GROUP_ID = 1
"""Metabase's built-in "All Users" group: every account is a member."""
ADMINISTRATORS_GROUP_ID = 2
"""Metabase's built-in "Administrators" group: full access everywhere, cannot be changed."""

COLLECTION_LEVELS: tuple[str, ...] = ("read", "write", "none")
MASKED_PASSWORD = "**MetabasePass**"  # noqa: S105 - the mask, not a password
"""What Metabase returns instead of a stored connection password."""

GRAPH_LOCK = threading.Lock()
"""Serialises permission-graph writes inside one provider process (the host runs four worker threads)."""

GRAPH_WRITE_ATTEMPTS = 6
TIMEOUT = (5.0, 60.0)  # (connect, read) seconds for every call
_TAG_PREFIX = "[managed by smarteros: "
_TAG_RE = re.compile(r"\n*\[managed by smarteros: ([^\]\n]+)\]\s*$")


# ----------------------------------------------------------------------------------------------------
# Errors


class MetabaseError(Exception):
    """A Metabase call failed; the message names the tenant, the call and Metabase's answer."""


class ApiFailure(Exception):
    """A non-2xx answer (or no answer) from Metabase, before the tenant is attached to the message."""

    def __init__(self, method: str, path: str, sent: str, status: int | None, message: str) -> None:
        super().__init__(method, path, status)
        self.method = method
        self.path = path
        self.sent = sent
        self.status = status
        self.message = message

    def __str__(self) -> str:
        call = f"{self.method} {self.path}" + (f" {self.sent}" if self.sent else "")
        if self.status is None:
            return f"Metabase did not answer {call}: {self.message}"
        if self.status == 401:
            return (
                f"Metabase answered 401 to {call}: {self.message} (the API key was rejected; "
                "check smarteros:metabaseApiKey or METABASE_API_KEY)"
            )
        return f"Metabase answered {self.status} to {call}: {self.message}"


_SECRET_FIELDS = frozenset({"password", "api_key", "x-api-key", "token"})


def describe_body(body: Any, limit: int = 300) -> str:
    """A short rendering of a request body for error messages, with every secret field redacted."""

    def redact(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {
                k: ("[secret]" if str(k).lower() in _SECRET_FIELDS else redact(v)) for k, v in value.items()
            }
        if isinstance(value, list):
            return [redact(v) for v in value]
        return value

    if body is None:
        return ""
    text = json.dumps(redact(body), sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def server_message(response: requests.Response) -> str:
    """Metabase's own words from an error answer (JSON ``message``/``errors`` or plain text), on one line."""
    text = response.text or ""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        if data.get("message"):
            text = str(data["message"])
        elif data.get("errors"):
            errors = data["errors"]
            pairs = errors.items() if isinstance(errors, Mapping) else [("error", errors)]
            text = "; ".join(f"{k}: {v}" for k, v in pairs)
    elif isinstance(data, str):
        text = data
    text = " ".join(text.split())
    if not text:
        text = response.reason or "no message"
    return text if len(text) <= 300 else text[:297] + "..."


# ----------------------------------------------------------------------------------------------------
# Client: thin methods mirroring the REST endpoints


class _Retry(Retry):
    """Backoff retries that never send a create twice.

    Connection errors are retried for every method: nothing reached Metabase. GET, PUT and DELETE are
    also retried after a lost answer and on 500, 502, 503 and 504. A POST is retried only when Metabase
    itself answered 500 or 503 (it rolled the request back); a lost answer or a gateway's 502 or 504
    may hide a create that went through, and sending it again would make a second object.
    """

    POST_RETRY_STATUSES = frozenset({500, 503})

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method.upper() == "POST":
            return status_code in self.POST_RETRY_STATUSES and bool(self.total)
        return super().is_retry(method, status_code, has_retry_after)


def _session(api_key: str, retries: int, backoff: float) -> requests.Session:
    session = requests.Session()
    retry = _Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "PUT", "DELETE"}),
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=8)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"x-api-key": api_key, "Accept": "application/json"})
    return session


def _seg(value: Any) -> str:
    """One URL path segment, quoted."""
    return quote(str(value), safe="")


class MetabaseClient:
    """The Metabase REST endpoints this project uses. See https://www.metabase.com/docs/latest/api."""

    def __init__(self, url: str, api_key: str, *, retries: int = 4, backoff: float = 0.2) -> None:
        self._base = url.rstrip("/")
        self._http = _session(api_key, retries, backoff)

    def _call(self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None) -> Any:
        try:
            response = self._http.request(
                method, self._base + path, json=body, params=params, timeout=TIMEOUT
            )
        except requests.RequestException as exc:
            raise ApiFailure(
                method, path, describe_body(body), None, f"{type(exc).__name__} after retries"
            ) from None
        if response.status_code >= 400:
            sent = describe_body(body)
            raise ApiFailure(method, path, sent, response.status_code, server_message(response))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    # Permissions groups: https://www.metabase.com/docs/latest/api/permissions
    def list_groups(self) -> list[dict[str, Any]]:
        """``GET /api/permissions/group``: every group with its member count."""
        return list(self._call("GET", "/api/permissions/group") or [])

    def get_group(self, group_id: int) -> dict[str, Any]:
        """``GET /api/permissions/group/:id``."""
        return dict(self._call("GET", f"/api/permissions/group/{_seg(group_id)}"))

    def create_group(self, name: str) -> dict[str, Any]:
        """``POST /api/permissions/group``; a new group copies All Users' level on every database."""
        return dict(self._call("POST", "/api/permissions/group", {"name": name}))

    def update_group(self, group_id: int, name: str) -> dict[str, Any]:
        """``PUT /api/permissions/group/:id`` (rename)."""
        return dict(self._call("PUT", f"/api/permissions/group/{_seg(group_id)}", {"name": name}))

    def delete_group(self, group_id: int) -> None:
        """``DELETE /api/permissions/group/:id``."""
        self._call("DELETE", f"/api/permissions/group/{_seg(group_id)}")

    # Collections: https://www.metabase.com/docs/latest/api/collection
    def get_collection(self, collection_id: int) -> dict[str, Any]:
        """``GET /api/collection/:id``."""
        return dict(self._call("GET", f"/api/collection/{_seg(collection_id)}"))

    def child_collections(self, parent_id: int | None) -> list[dict[str, Any]]:
        """``GET /api/collection/:id/items?models=collection`` (``root`` for top-level collections)."""
        parent = "root" if parent_id is None else _seg(parent_id)
        answer = self._call("GET", f"/api/collection/{parent}/items", params={"models": "collection"})
        items = answer.get("data", []) if isinstance(answer, Mapping) else answer
        return [dict(item) for item in items or []]

    def create_collection(self, name: str, description: str, parent_id: int | None) -> dict[str, Any]:
        """``POST /api/collection``; the new collection copies its parent's permissions."""
        body = {"name": name, "description": description, "parent_id": parent_id}
        return dict(self._call("POST", "/api/collection", body))

    def update_collection(self, collection_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /api/collection/:id``: rename, describe, move (``parent_id``) or (un)archive."""
        return dict(self._call("PUT", f"/api/collection/{_seg(collection_id)}", dict(changes)))

    def get_collection_graph(self) -> dict[str, Any]:
        """``GET /api/collection/graph``: ``{revision, groups: {gid: {cid|"root": level}}}``."""
        return dict(self._call("GET", "/api/collection/graph"))

    def put_collection_graph(self, revision: int, groups: Mapping[str, Any]) -> None:
        """``PUT /api/collection/graph`` with only the edges being changed; 409 on a stale revision."""
        self._call("PUT", "/api/collection/graph", {"revision": revision, "groups": dict(groups)})

    # Data permissions (v50+): https://www.metabase.com/docs/latest/api/permissions
    def get_data_graph_for_database(self, database_id: int) -> dict[str, Any]:
        """``GET /api/permissions/graph/db/:id``: every group's permissions on one database."""
        return dict(self._call("GET", f"/api/permissions/graph/db/{_seg(database_id)}"))

    def get_data_graph_for_group(self, group_id: int) -> dict[str, Any]:
        """``GET /api/permissions/graph/group/:id``: one group's permissions on every database."""
        return dict(self._call("GET", f"/api/permissions/graph/group/{_seg(group_id)}"))

    def put_data_graph(self, revision: int, groups: Mapping[str, Any]) -> None:
        """``PUT /api/permissions/graph`` with only the edges being changed; 409 on a stale revision."""
        body = {"revision": revision, "groups": dict(groups)}
        self._call("PUT", "/api/permissions/graph", body, params={"skip-graph": "true"})

    # Databases: https://www.metabase.com/docs/latest/api/database
    def list_databases(self) -> list[dict[str, Any]]:
        """``GET /api/database``."""
        answer = self._call("GET", "/api/database")
        items = answer.get("data", []) if isinstance(answer, Mapping) else answer
        return [dict(item) for item in items or []]

    def get_database(self, database_id: int) -> dict[str, Any]:
        """``GET /api/database/:id``; the password comes back masked."""
        return dict(self._call("GET", f"/api/database/{_seg(database_id)}"))

    def create_database(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/database``; Metabase tests the connection first and answers 400 if it fails."""
        return dict(self._call("POST", "/api/database", dict(body)))

    def update_database(self, database_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /api/database/:id``."""
        return dict(self._call("PUT", f"/api/database/{_seg(database_id)}", dict(body)))

    def delete_database(self, database_id: int) -> None:
        """``DELETE /api/database/:id``; this also deletes every question built on it."""
        self._call("DELETE", f"/api/database/{_seg(database_id)}")


# ----------------------------------------------------------------------------------------------------
# Pure decisions: plain data in, plain data out


def ownership_tag(owner: str) -> str:
    """The marker written into descriptions of objects this stack manages (``owner``: ``tenant <rut>``)."""
    return f"{_TAG_PREFIX}{owner}]"


def owner_label(tenant: str | None) -> str:
    """Who an object belongs to, for tags and messages: ``tenant 76953480-6`` or ``platform``."""
    return f"tenant {tenant}" if tenant else "platform"


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
) -> DiffResult:
    """A diff over user inputs: which fields changed, which force a replacement, and the replace order.

    A replacement deletes first when the replacement keeps the same name (two objects cannot share it).
    """
    changed = changed_fields(olds, news, fields)
    replaces = [f for f in changed if f in replace_fields]
    same_name = name_field is not None and name_field not in changed
    return DiffResult(
        changes=bool(changed),
        replaces=replaces,
        stables=[],
        delete_before_replace=bool(replaces) and same_name,
    )


def collection_edge_patch(group_id: int, collection_id: int | str, level: str) -> dict[str, Any]:
    """The ``groups`` part of a collection-graph PUT that changes exactly one edge."""
    return {str(group_id): {str(collection_id): level}}


def data_edge_patch(group_id: int, database_id: int, level: str) -> dict[str, Any]:
    """The ``groups`` part of a data-graph PUT that changes exactly one create-queries edge."""
    return {str(group_id): {str(database_id): {"create-queries": level}}}


def collection_level(graph: Mapping[str, Any], group_id: int, collection_id: int | str) -> str:
    """One edge of a collection graph (absent means ``none``)."""
    return str((graph.get("groups") or {}).get(str(group_id), {}).get(str(collection_id), "none"))


def query_level(graph: Mapping[str, Any], group_id: int, database_id: int) -> str:
    """One create-queries edge of a data graph (or slice); absent means ``no``."""
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
) -> list[str]:
    """Every edge that lets a group reach a tenant's collection or database without belonging to the tenant.

    The property: on each tenant database every group other than that tenant's groups and Administrators has
    create-queries ``no``; on each tenant collection every other group has ``none``.
    """
    problems: list[str] = []
    for ws in workspaces:
        allowed = {str(g) for g in ws.group_ids} | {str(ADMINISTRATORS_GROUP_ID)}
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


# ----------------------------------------------------------------------------------------------------
# Provider plumbing

_CLIENTS: weakref.WeakKeyDictionary[ResourceProvider, MetabaseClient] = weakref.WeakKeyDictionary()
_CLIENTS_LOCK = threading.Lock()


def _is_unknown(value: Any) -> bool:
    from pulumi.output import Unknown
    from pulumi.runtime.rpc import UNKNOWN

    return isinstance(value, Unknown) or (isinstance(value, str) and value == UNKNOWN)


def _plain(value: Any) -> Any:
    """A property value with Pulumi's secret wrapper removed (values may arrive wrapped over gRPC)."""
    from pulumi.runtime.rpc import unwrap_rpc_secret

    value = unwrap_rpc_secret(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _norm(value: Any) -> Any:
    """Numbers arrive as floats over gRPC: compare 5.0 and 5 as equal, and None/'' as equal."""
    value = _plain(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == "":
        return None
    return value


def _inputs(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _norm(v) for k, v in props.items() if k != "__provider"}


def _int(value: Any) -> int:
    return int(_norm(value))


def _collection_ref(value: Any) -> int | str:
    value = _norm(value)
    return "root" if value in (None, "root") else int(value)


def _is_not_found(exc: ApiFailure) -> bool:
    return exc.status == 404


_T = TypeVar("_T")


def _unless_absent(call: Callable[[], _T]) -> _T | None:
    """The answer of ``call``, or None when Metabase answers 404 (the object is gone)."""
    try:
        return call()
    except ApiFailure as exc:
        if _is_not_found(exc):
            return None
        raise


@contextmanager
def _absent_is_done() -> Iterator[None]:
    """Treat a 404 inside the block as success: removing what is already gone changes nothing."""
    try:
        yield
    except ApiFailure as exc:
        if not _is_not_found(exc):
            raise


@contextmanager
def _reporting(tenant: str | None) -> Iterator[None]:
    """Turn an API failure into a one-line error naming the tenant (the host prints the last line)."""
    try:
        yield
    except ApiFailure as exc:
        raise MetabaseError(f"{owner_label(tenant)}: {exc}") from None


class _MetabaseProvider(ResourceProvider):
    """Shared plumbing: credentials from ``configure``, kept off the serialised object."""

    serialize_as_secret_always = False
    fields: ClassVar[tuple[str, ...]] = ()
    replace_fields: ClassVar[tuple[str, ...]] = ()
    name_field: ClassVar[str | None] = None

    def configure(self, req: ConfigureRequest) -> None:
        """Read the Metabase URL and API key from stack config (env fallback), per process."""
        settings = section_from_raw(req.config, "metabase", MetabaseConfig)
        url = settings.url
        if "url" not in settings.model_fields_set:
            url = os.environ.get("METABASE_URL", settings.url)
        api_key = secret_from_raw(req.config, "metabaseApiKey", os.environ) or ""
        with _CLIENTS_LOCK:
            _CLIENTS[self] = MetabaseClient(url, api_key)

    def _client(self) -> MetabaseClient:
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(self)
            if client is None:
                default_url = MetabaseConfig.model_validate({}).url
                client = MetabaseClient(
                    os.environ.get("METABASE_URL", default_url), os.environ.get("METABASE_API_KEY", "")
                )
                _CLIENTS[self] = client
            return client

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return plan_diff(_inputs(olds), _inputs(news), self.fields, self.replace_fields, self.name_field)


_ADMINS_REFUSED = "the Administrators group (id 2) always has full access; Metabase does not let it change"


def _fail(failures: list[CheckFailure], field: str, reason: str) -> None:
    failures.append(CheckFailure(field, reason))


def _check_known(news: Mapping[str, Any], field: str) -> bool:
    return field in news and not _is_unknown(news[field])


def _edge_failures(news: Mapping[str, Any], levels: tuple[str, ...]) -> list[CheckFailure]:
    """Problems with a permission edge's inputs: the Administrators group, or a level not in ``levels``."""
    failures: list[CheckFailure] = []
    if _check_known(news, "group_id") and _norm(news["group_id"]) == ADMINISTRATORS_GROUP_ID:
        _fail(failures, "group_id", _ADMINS_REFUSED)
    if _check_known(news, "level") and _plain(news["level"]) not in levels:
        _fail(failures, "level", f"{_plain(news['level'])!r} is not one of: {', '.join(levels)}")
    return failures


# ----------------------------------------------------------------------------------------------------
# Permissions group


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
        client = self._client()
        with _reporting(inputs.get("tenant")):
            existing = [g for g in client.list_groups() if g.get("name") == inputs["name"]]
            if existing:
                group = existing[0]
                if int(group.get("member_count") or 0) > 0:
                    gid = group["id"]
                    raise MetabaseError(
                        f"{owner_label(inputs.get('tenant'))}: Metabase group {inputs['name']!r} already "
                        f"exists (id {gid}) with members and is not managed by this stack; adopt it with "
                        f"the import_ resource option (id {gid}) after checking its members"
                    )
            else:
                group = client.create_group(inputs["name"])
        return CreateResult(str(group["id"]), {**inputs, "group_id": int(group["id"])})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = _inputs(props)
        with _reporting(inputs.get("tenant")):
            group = _unless_absent(lambda: self._client().get_group(int(id_)))
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
        if int(id_) in (ALL_USERS_GROUP_ID, ADMINISTRATORS_GROUP_ID):
            return
        with _reporting(inputs.get("tenant")), _absent_is_done():
            self._client().delete_group(int(id_))


class PermissionsGroup(DynamicResource, module="metabase", name="PermissionsGroup"):
    """A Metabase permissions group (``tenant <rut> owners``). Owns the group; leaves its members alone."""

    group_id: Any

    def __init__(
        self, name: str, *, group_name: Input[str], tenant: str | None, opts: ResourceOptions | None = None
    ) -> None:
        props = {"name": group_name, "tenant": tenant, "group_id": None}
        super().__init__(PermissionsGroupProvider(), name, props, opts)


# ----------------------------------------------------------------------------------------------------
# Collection


class CollectionProvider(_MetabaseProvider):
    """Owns one collection's name, place and description; leaves its contents alone. Delete archives."""

    fields = ("name", "parent_id", "description", "archived", "stack")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        if _check_known(news, "name") and not str(_plain(news["name"])).strip():
            _fail(failures, "name", "a collection needs a name")
        if _check_known(news, "description") and _TAG_PREFIX in str(_plain(news["description"]) or ""):
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
        with _reporting(tenant):
            siblings = client.child_collections(inputs.get("parent_id"))
            same_name = [c for c in siblings if c.get("name") == body["name"]]
            ours = [c for c in same_name if split_description(c.get("description"))[1] == tag_owner(inputs)]
            if ours:
                live = client.update_collection(int(ours[0]["id"]), {**body, "archived": False})
            elif same_name:
                cid = same_name[0]["id"]
                raise MetabaseError(
                    f"{owner_label(tenant)}: Metabase collection {body['name']!r} already exists (id {cid}) "
                    f"without this stack's ownership tag; adopt it with the import_ resource option (id {cid})"
                )
            else:
                live = client.create_collection(body["name"], body["description"], body["parent_id"])
        return CreateResult(str(live["id"]), self._outs(inputs, live))

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
    contents; deleting it archives it, so no question or dashboard is lost."""

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
        opts: ResourceOptions | None = None,
    ) -> None:
        props = {
            "name": collection_name,
            "parent_id": parent_id,
            "tenant": tenant,
            "stack": stack,
            "description": description,
            "archived": False,
            "collection_id": None,
            "owner": None,
        }
        super().__init__(CollectionProvider(), name, props, opts)


# ----------------------------------------------------------------------------------------------------
# Graph edges


def _patch_graph(
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
                if exc.status != 409 or attempt == GRAPH_WRITE_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))


class CollectionPermissionProvider(_MetabaseProvider):
    """Owns one edge of the collection graph (group -> collection); leaves every other edge alone.

    Deleting sets the edge to ``none``. The Administrators group cannot be managed.
    """

    fields = ("group_id", "collection_id", "level")
    replace_fields = ("group_id", "collection_id")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, _edge_failures(news, COLLECTION_LEVELS))

    def _set(self, tenant: str | None, gid: int, cid: int | str, level: str) -> str:
        client = self._client()

        def patch_for(graph: Mapping[str, Any]) -> dict[str, Any]:
            return {} if collection_level(graph, gid, cid) == level else collection_edge_patch(gid, cid, level)

        with _reporting(tenant):
            _patch_graph(client.get_collection_graph, patch_for, client.put_collection_graph)
        return level

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = _inputs(props)
        gid, cid = _int(inputs["group_id"]), _collection_ref(inputs["collection_id"])
        self._set(inputs.get("tenant"), gid, cid, inputs["level"])
        return CreateResult(f"{gid}:{cid}", {**inputs, "group_id": gid, "collection_id": cid})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = _inputs(props)
        gid_text, _, cid_text = id_.partition(":")
        gid, cid = int(gid_text), _collection_ref(cid_text)
        with _reporting(inputs.get("tenant")):
            level = collection_level(self._client().get_collection_graph(), gid, cid)
        return ReadResult(id_, {**inputs, "group_id": gid, "collection_id": cid, "level": level})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = _inputs(news)
        gid, cid = _int(inputs["group_id"]), _collection_ref(inputs["collection_id"])
        self._set(inputs.get("tenant"), gid, cid, inputs["level"])
        return UpdateResult({**inputs, "group_id": gid, "collection_id": cid})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        inputs = _inputs(props)
        gid_text, _, cid_text = id_.partition(":")
        try:
            self._set(inputs.get("tenant"), int(gid_text), _collection_ref(cid_text), "none")
        except MetabaseError:
            # A group or collection that no longer exists has no edge left to close.
            if self._edge_target_gone(int(gid_text), _collection_ref(cid_text)):
                return
            raise

    def _edge_target_gone(self, gid: int, cid: int | str) -> bool:
        client = self._client()
        try:
            client.get_group(gid)
            if cid != "root":
                client.get_collection(int(cid))
        except ApiFailure as exc:
            return _is_not_found(exc)
        return False


class CollectionPermission(DynamicResource, module="metabase", name="CollectionPermission"):
    """One collection-permission edge (group -> collection: read, write or none). Owns that edge only;
    deleting it sets the edge to none. Refuses the Administrators group."""

    def __init__(
        self,
        name: str,
        *,
        group_id: Input[int],
        collection_id: Input[int] | str,
        level: str,
        tenant: str | None,
        opts: ResourceOptions | None = None,
    ) -> None:
        props = {"group_id": group_id, "collection_id": collection_id, "level": level, "tenant": tenant}
        super().__init__(CollectionPermissionProvider(), name, props, opts)


class DataPermissionProvider(_MetabaseProvider):
    """Owns one group's create-queries level on one database; leaves view-data, downloads and every other
    edge alone. Deleting sets the level to ``no``. The Administrators group cannot be managed."""

    fields = ("group_id", "database_id", "level")
    replace_fields = ("group_id", "database_id")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, _edge_failures(news, QUERY_LEVELS))

    def _set(self, tenant: str | None, gid: int, dbid: int, level: str) -> None:
        client = self._client()

        def patch_for(graph: Mapping[str, Any]) -> dict[str, Any]:
            return {} if query_level(graph, gid, dbid) == level else data_edge_patch(gid, dbid, level)

        with _reporting(tenant):
            _patch_graph(lambda: client.get_data_graph_for_database(dbid), patch_for, client.put_data_graph)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = _inputs(props)
        gid, dbid = _int(inputs["group_id"]), _int(inputs["database_id"])
        self._set(inputs.get("tenant"), gid, dbid, inputs["level"])
        return CreateResult(f"{gid}:{dbid}", {**inputs, "group_id": gid, "database_id": dbid})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = _inputs(props)
        gid_text, _, db_text = id_.partition(":")
        gid, dbid = int(gid_text), int(db_text)
        with _reporting(inputs.get("tenant")):
            graph = _unless_absent(lambda: self._client().get_data_graph_for_database(dbid))
        if graph is None:
            return ReadResult("", {})
        level = query_level(graph, gid, dbid)
        return ReadResult(id_, {**inputs, "group_id": gid, "database_id": dbid, "level": level})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = _inputs(news)
        gid, dbid = _int(inputs["group_id"]), _int(inputs["database_id"])
        self._set(inputs.get("tenant"), gid, dbid, inputs["level"])
        return UpdateResult({**inputs, "group_id": gid, "database_id": dbid})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        inputs = _inputs(props)
        gid_text, _, db_text = id_.partition(":")
        gid, dbid = int(gid_text), int(db_text)
        client = self._client()
        with _reporting(inputs.get("tenant")):
            graph = _unless_absent(lambda: client.get_data_graph_for_database(dbid))
        if graph is None or str(gid) not in (graph.get("groups") or {}):
            return  # the database or the group is gone: no edge left to close
        self._set(inputs.get("tenant"), gid, dbid, "no")


class DataPermission(DynamicResource, module="metabase", name="DataPermission"):
    """One data-permission edge: a group's create-queries level on one database (query-builder,
    query-builder-and-native or no). Owns that level only; deleting it sets no. Refuses Administrators."""

    def __init__(
        self,
        name: str,
        *,
        group_id: Input[int],
        database_id: Input[int],
        level: str,
        tenant: str | None,
        opts: ResourceOptions | None = None,
    ) -> None:
        props = {"group_id": group_id, "database_id": database_id, "level": level, "tenant": tenant}
        super().__init__(DataPermissionProvider(), name, props, opts)


class DatabaseAccessLockdownProvider(_MetabaseProvider):
    """Owns one group's create-queries level on every database (the platform sets All Users to ``no``).

    Read reports the databases where the level differs, so a door opened by hand shows up as drift.
    Deleting leaves the levels as they are (closing access is never undone by removing the lock).
    """

    fields = ("group_id", "level", "open_databases")
    replace_fields = ("group_id",)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult({**news, "open_databases": []}, _edge_failures(news, QUERY_LEVELS))

    def _apply(self, inputs: Mapping[str, Any]) -> None:
        gid, level = _int(inputs["group_id"]), str(inputs["level"])
        client = self._client()

        def patch_for(graph: Mapping[str, Any]) -> dict[str, Any]:
            targets = open_databases(graph, gid, level)
            return {str(gid): {str(db): {"create-queries": level} for db in targets}} if targets else {}

        with _reporting(inputs.get("tenant")):
            _patch_graph(lambda: client.get_data_graph_for_group(gid), patch_for, client.put_data_graph)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = _inputs(props)
        self._apply(inputs)
        gid = _int(inputs["group_id"])
        return CreateResult(f"{gid}:{inputs['level']}", {**inputs, "group_id": gid, "open_databases": []})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = _inputs(props)
        gid_text, _, level = id_.partition(":")
        gid = int(gid_text)
        with _reporting(inputs.get("tenant")):
            graph = self._client().get_data_graph_for_group(gid)
        still_open = open_databases(graph, gid, level)
        outs = {**inputs, "group_id": gid, "level": level, "open_databases": still_open}
        return ReadResult(id_, outs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = _inputs(news)
        self._apply(inputs)
        return UpdateResult({**inputs, "group_id": _int(inputs["group_id"]), "open_databases": []})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        return None


class DatabaseAccessLockdown(DynamicResource, module="metabase", name="DatabaseAccessLockdown"):
    """One group's create-queries level on every database Metabase knows (All Users -> no). Owns those
    levels; leaves view-data and downloads alone; removing it changes nothing in Metabase."""

    def __init__(
        self, name: str, *, group_id: int, level: str, opts: ResourceOptions | None = None
    ) -> None:
        props = {"group_id": group_id, "level": level, "tenant": None, "open_databases": []}
        super().__init__(DatabaseAccessLockdownProvider(), name, props, opts)


def others_with_access(
    graph: Mapping[str, Any], allowed: set[int], key: int | str, closed: str, *, data: bool
) -> list[int]:
    """Groups other than ``allowed`` and Administrators whose edge on ``key`` is not ``closed``."""
    found = []
    for gid_text in (graph.get("groups") or {}):
        gid = int(gid_text)
        if gid in allowed or gid == ADMINISTRATORS_GROUP_ID:
            continue
        level = query_level(graph, gid, int(key)) if data else collection_level(graph, gid, key)
        if level != closed:
            found.append(gid)
    return sorted(found)


class _IsolationProvider(_MetabaseProvider):
    """Closes one object (a collection or a database) to every group but the allowed ones and Administrators.

    Read reports the groups that can still reach it (``open_groups``), so access granted by hand, or a group
    that inherited access from Metabase's defaults, shows up as drift. Deleting changes nothing.
    """

    key_field: ClassVar[str] = ""
    closed: ClassVar[str] = ""
    data: ClassVar[bool] = False
    fields: ClassVar[tuple[str, ...]] = ("allowed_group_ids", "open_groups")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult({**news, "open_groups": []}, [])

    def _graph(self, client: MetabaseClient, key: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _put(self, client: MetabaseClient, revision: int, patch: dict[str, Any]) -> None:
        raise NotImplementedError

    def _edge(self, key: Any) -> Any:
        return {"create-queries": self.closed} if self.data else self.closed

    def _open(self, graph: Mapping[str, Any], inputs: Mapping[str, Any]) -> list[int]:
        allowed = {_int(g) for g in inputs.get("allowed_group_ids") or []}
        return others_with_access(graph, allowed, inputs[self.key_field], self.closed, data=self.data)

    def _key(self, inputs: Mapping[str, Any]) -> Any:
        return _int(inputs[self.key_field]) if self.data else _collection_ref(inputs[self.key_field])

    def _apply(self, inputs: dict[str, Any]) -> dict[str, Any]:
        key = self._key(inputs)
        inputs = {**inputs, self.key_field: key}
        client = self._client()

        def patch_for(graph: Mapping[str, Any]) -> dict[str, Any]:
            return {str(gid): {str(key): self._edge(key)} for gid in self._open(graph, inputs)}

        with _reporting(inputs.get("tenant")):
            _patch_graph(
                lambda: self._graph(client, key), patch_for, lambda rev, patch: self._put(client, rev, patch)
            )
        return {**inputs, "open_groups": []}

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._apply(_inputs(props))
        return CreateResult(str(outs[self.key_field]), outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = _inputs(props)
        key = int(id_) if self.data else _collection_ref(id_)
        inputs[self.key_field] = key
        with _reporting(inputs.get("tenant")):
            graph = _unless_absent(lambda: self._graph(self._client(), key))
        if graph is None:
            return ReadResult("", {})
        return ReadResult(id_, {**inputs, "open_groups": self._open(graph, inputs)})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._apply(_inputs(news)))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        return None


class CollectionIsolationProvider(_IsolationProvider):
    """Sets ``none`` on one collection for every group but the allowed ones and Administrators."""

    key_field = "collection_id"
    closed = "none"
    data = False
    fields = ("collection_id", "allowed_group_ids", "open_groups")
    replace_fields = ("collection_id",)

    def _graph(self, client: MetabaseClient, key: Any) -> dict[str, Any]:
        return client.get_collection_graph()

    def _put(self, client: MetabaseClient, revision: int, patch: dict[str, Any]) -> None:
        client.put_collection_graph(revision, patch)


class DatabaseIsolationProvider(_IsolationProvider):
    """Sets create-queries ``no`` on one database for every group but the allowed ones and Administrators."""

    key_field = "database_id"
    closed = "no"
    data = True
    fields = ("database_id", "allowed_group_ids", "open_groups")
    replace_fields = ("database_id",)

    def _graph(self, client: MetabaseClient, key: Any) -> dict[str, Any]:
        return client.get_data_graph_for_database(int(key))

    def _put(self, client: MetabaseClient, revision: int, patch: dict[str, Any]) -> None:
        client.put_data_graph(revision, patch)


class _Isolation(DynamicResource):
    """One object kept closed by an :class:`_IsolationProvider`, keyed by the provider's ``key_field``."""

    def __init__(
        self,
        provider: _IsolationProvider,
        name: str,
        key: Input[int],
        allowed_group_ids: list[Input[int]],
        tenant: str | None,
        opts: ResourceOptions | None,
    ) -> None:
        props = {
            provider.key_field: key,
            "allowed_group_ids": allowed_group_ids,
            "tenant": tenant,
            "open_groups": [],
        }
        super().__init__(provider, name, props, opts)


class CollectionIsolation(_Isolation, module="metabase", name="CollectionIsolation"):
    """Keeps one collection closed (``none``) to every group except the allowed ones and Administrators.
    Owns those other groups' edges on this collection; leaves the allowed groups' edges alone."""

    def __init__(
        self,
        name: str,
        *,
        collection_id: Input[int],
        allowed_group_ids: list[Input[int]],
        tenant: str | None,
        opts: ResourceOptions | None = None,
    ) -> None:
        super().__init__(CollectionIsolationProvider(), name, collection_id, allowed_group_ids, tenant, opts)


class DatabaseIsolation(_Isolation, module="metabase", name="DatabaseIsolation"):
    """Keeps one database closed (create-queries ``no``) to every group except the allowed ones and
    Administrators. Owns those other groups' query levels on it; leaves view-data and the allowed groups alone."""

    def __init__(
        self,
        name: str,
        *,
        database_id: Input[int],
        allowed_group_ids: list[Input[int]],
        tenant: str | None,
        opts: ResourceOptions | None = None,
    ) -> None:
        super().__init__(DatabaseIsolationProvider(), name, database_id, allowed_group_ids, tenant, opts)


# ----------------------------------------------------------------------------------------------------
# Database connection


class DatabaseConnectionProvider(_MetabaseProvider):
    """Owns one PostgreSQL connection (name and connection details) logging in as a tenant role; leaves
    its tables, questions and sync settings alone.

    Metabase returns the password masked, so the password is compared through the input only: a new input
    value is a change, the mask is never one. Deleting the connection deletes every question built on it, so
    components register it with ``retain_on_delete``.
    """

    fields = (
        "name", "host", "port", "dbname", "role", "user_template", "password", "ssl", "additional_options", "stack",
    )

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        for field in ("name", "host", "dbname", "role"):
            if _check_known(news, field) and not str(_plain(news[field]) or "").strip():
                _fail(failures, field, f"{field} must not be empty")
        if _check_known(news, "user_template"):
            problem = template_problem(str(_plain(news["user_template"])))
            if problem:
                _fail(failures, "user_template", problem)
        if _check_known(news, "port"):
            port = _norm(news["port"])
            if not isinstance(port, int) or not 0 < port < 65536:
                _fail(failures, "port", f"{port!r} is not a TCP port")
        if _check_known(news, "password") and not _plain(news["password"]):
            _fail(failures, "password", "the tenant role's password is required")
        return CheckResult(news, failures)

    def _body(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "engine": "postgres",
            "name": inputs["name"],
            "description": tagged_description("", tag_owner(inputs)),
            "details": connection_details(inputs),
        }

    def _outs(self, inputs: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
        details = live.get("details") or {}
        user = details.get("user")
        role = inputs.get("role")
        # The role is what the template produced the user from; a user changed by hand shows as a role change.
        if user != render_user(str(inputs.get("user_template") or "{role}"), str(role)):
            role = user
        return {
            **inputs,
            "name": live.get("name"),
            "host": details.get("host"),
            "port": _norm(details.get("port")),
            "dbname": details.get("dbname") or details.get("db"),
            "role": role,
            "ssl": bool(details.get("ssl")),
            "additional_options": details.get("additional-options") or None,
            "user": user,
            "engine": live.get("engine"),
            "owner": split_description(live.get("description"))[1],
            "database_id": int(live["id"]),
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = _inputs(props)
        tenant = inputs.get("tenant")
        client = self._client()
        body = self._body(inputs)
        with _reporting(tenant):
            same_name = [d for d in client.list_databases() if d.get("name") == inputs["name"]]
            if same_name and split_description(same_name[0].get("description"))[1] == tag_owner(inputs):
                live = client.update_database(int(same_name[0]["id"]), body)
            elif same_name:
                dbid = same_name[0]["id"]
                raise MetabaseError(
                    f"{owner_label(tenant)}: Metabase database {inputs['name']!r} already exists (id {dbid}) "
                    f"without this stack's ownership tag; adopt it with the import_ resource option (id {dbid})"
                )
            else:
                live = client.create_database(body)
        return CreateResult(str(live["id"]), self._outs(inputs, live))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = _inputs(props)
        with _reporting(inputs.get("tenant")):
            live = _unless_absent(lambda: self._client().get_database(int(id_)))
        if live is None:
            return ReadResult("", {})
        return ReadResult(id_, self._outs(inputs, live))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = _inputs(news)
        with _reporting(inputs.get("tenant")):
            live = self._client().update_database(int(id_), self._body(inputs))
        return UpdateResult(self._outs(inputs, live))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        inputs = _inputs(props)
        with _reporting(inputs.get("tenant")), _absent_is_done():
            self._client().delete_database(int(id_))


class DatabaseConnection(DynamicResource, module="metabase", name="DatabaseConnection"):
    """A Metabase PostgreSQL connection that logs in as a tenant's role, so row-level security limits every
    query to the tenant's rows. Owns the connection details; leaves synced tables and questions alone.
    Register it with ``retain_on_delete``: deleting a Metabase database deletes its questions."""

    database_id: Any

    def __init__(
        self,
        name: str,
        *,
        connection_name: Input[str],
        host: str,
        port: int,
        dbname: str,
        role: Input[str],
        user_template: str,
        password: Input[str],
        ssl: bool,
        additional_options: str,
        tenant: str | None,
        stack: str | None = None,
        opts: ResourceOptions | None = None,
    ) -> None:
        props = {
            "name": connection_name,
            "stack": stack,
            "host": host,
            "port": port,
            "dbname": dbname,
            "role": role,
            "user_template": user_template,
            "password": password,
            "ssl": ssl,
            "additional_options": additional_options,
            "tenant": tenant,
            "user": None,
            "engine": None,
            "owner": None,
            "database_id": None,
        }
        super().__init__(DatabaseConnectionProvider(), name, props, opts)
