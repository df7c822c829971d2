"""The thin Metabase REST client: one method per endpoint, errors that quote Metabase, no blind resends.

Facts it is built on (Metabase's source, v50 to the v0.6x line; DESIGN.md section 6):

* errors come back as plain text when only a status is known ("Not found.", the 409 stale-revision
  message, "A group with that name already exists."), as ``{"message", "errors"}`` when a connection test
  fails (the message is humanised: "Looks like your password is incorrect."), and as
  ``{"errors", "specific-errors"}`` when a body fails validation (``src/metabase/server/middleware/
  exceptions.clj``, ``src/metabase/api/macros.clj``);
* a 500 is not a rollback: create endpoints insert the row, then publish events outside the transaction
  (``src/metabase/events/impl.clj``), so a POST is never sent again by the transport; the resources look
  the object up first (:func:`components.providers.metabase.edges.post_without_resend`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from components.access import READ_METHODS, ReadOnlyRefusal

TIMEOUT = (5.0, 60.0)  # (connect, read) seconds for every call
GRAPH_CACHE_SECONDS = 20.0
"""How long an answer read for a refresh serves other refreshes in the same process (writes read afresh)."""

REVISION_PROBE_GROUP = 2_147_483_647
"""A group id no Metabase hands out (the largest positive 32-bit id), read to learn the data-graph revision."""

ALL_USERS_MAGIC = "all-internal-users"
ADMIN_MAGIC = "admin"


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

    @property
    def may_have_written(self) -> bool:
        """True when the request may have taken effect: no answer, or a 5xx (the row may exist)."""
        return self.status is None or self.status >= 500

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


_TAGS = re.compile(r"<[^>]+>")


def _flatten(value: Any) -> str:
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_flatten(v) for v in value)
    return str(value)


def error_text(body: str) -> str:
    """Metabase's own words from an error body, on one line of at most 300 characters.

    ``{"message": ...}`` (connection tests, most 4xx with data) gives the message; ``{"errors": ...,
    "specific-errors": ...}`` (validation) gives ``field: reason`` pairs from ``errors``; a JSON string or plain
    text (status-only errors) is taken as it is; an HTML page from a proxy is reduced to its text.
    """
    text = body or ""
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        if data.get("message"):
            text = str(data["message"])
        elif data.get("errors"):
            errors = data["errors"]
            text = _flatten(errors) if isinstance(errors, Mapping | list) else str(errors)
        else:
            text = _flatten(data)
    elif isinstance(data, str):
        text = data
    elif "<" in text and ">" in text:
        text = _TAGS.sub(" ", text)
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def server_message(response: requests.Response) -> str:
    """Metabase's words from an error answer (see :func:`error_text`), or the HTTP reason when it said none."""
    return error_text(response.text or "") or response.reason or "no message"


class _Retry(Retry):
    """Backoff retries that never send a create twice.

    Connection errors (nothing reached Metabase) are retried for every method. GET, PUT and DELETE are
    also retried after a lost answer and on 500, 502, 503 and 504. A POST is never retried once it may have
    reached Metabase: a 500 comes after the row was inserted, so the resources look the object up before
    posting again.
    """

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method.upper() == "POST":
            return False
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

    def __init__(
        self, url: str, api_key: str, *, retries: int = 4, backoff: float = 0.2, read_only: bool = False
    ) -> None:
        self.read_only = read_only
        """Send reads only; anything else raises :class:`~components.access.ReadOnlyRefusal` unsent."""
        self._base = url.rstrip("/")
        self._http = _session(api_key, retries, backoff)
        self._lock = threading.Lock()
        self._builtins: dict[str, int] | None = None
        self._recent: dict[str, tuple[float, Any, set[str]]] = {}
        self.bytes_received = 0

    def _read(self, path: str, reader: str | None) -> Any:
        """``GET path``. With ``reader`` (the resource refreshing), an answer this process got in the last
        :data:`GRAPH_CACHE_SECONDS` for *other* resources serves it too: a no-change pass fetches each shared
        document (the collection graph, one database's slice) once, not once per resource that looks at it. A
        resource reading again gets a fresh answer, and any write through this client forgets them all."""
        now = time.monotonic()
        if reader is not None:
            with self._lock:
                seen = self._recent.get(path)
                if seen is not None and now - seen[0] <= GRAPH_CACHE_SECONDS and reader not in seen[2]:
                    seen[2].add(reader)
                    return seen[1]
        try:
            answer = self._call("GET", path)
        except ApiFailure:
            with self._lock:
                self._recent.pop(path, None)
            raise
        with self._lock:
            self._recent[path] = (now, answer, {reader} if reader is not None else set())
        return answer

    def _call(self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None) -> Any:
        if self.read_only and method.upper() not in READ_METHODS:
            raise ReadOnlyRefusal("Metabase", f"{method.upper()} {path}")
        if method != "GET":
            with self._lock:
                self._recent.clear()
        try:
            response = self._http.request(
                method, self._base + path, json=body, params=params, timeout=TIMEOUT
            )
        except requests.RequestException as exc:
            raise ApiFailure(
                method, path, describe_body(body), None, f"{type(exc).__name__} after retries"
            ) from None
        self.bytes_received += len(response.content or b"")
        if response.status_code >= 400:
            sent = describe_body(body)
            raise ApiFailure(method, path, sent, response.status_code, server_message(response))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    # Permissions groups (src/metabase/permissions/api.clj)
    def list_groups(self) -> list[dict[str, Any]]:
        """``GET /api/permissions/group``: every group with ``member_count`` and ``magic_group_type``."""
        return list(self._call("GET", "/api/permissions/group") or [])

    def builtin_group_ids(self) -> dict[str, int]:
        """``{magic_group_type: id}`` of the built-in groups (``all-internal-users``, ``admin``, ...), read once.

        Releases before ``magic_group_type`` was exposed used ids 1 and 2 for All Users and Administrators.
        """
        with self._lock:
            if self._builtins is None:
                found = {
                    str(g["magic_group_type"]): int(g["id"])
                    for g in self.list_groups()
                    if g.get("magic_group_type")
                }
                found.setdefault(ALL_USERS_MAGIC, 1)
                found.setdefault(ADMIN_MAGIC, 2)
                self._builtins = found
            return dict(self._builtins)

    def admin_group_id(self) -> int:
        return self.builtin_group_ids()[ADMIN_MAGIC]

    def get_group(self, group_id: int, *, reader: str | None = None) -> dict[str, Any]:
        """``GET /api/permissions/group/:id`` (404 when it does not exist)."""
        return dict(self._read(f"/api/permissions/group/{_seg(group_id)}", reader))

    def create_group(self, name: str) -> dict[str, Any]:
        """``POST /api/permissions/group``; a new group copies All Users' level on every database."""
        return dict(self._call("POST", "/api/permissions/group", {"name": name}))

    def update_group(self, group_id: int, name: str) -> dict[str, Any]:
        """``PUT /api/permissions/group/:id`` (rename)."""
        return dict(self._call("PUT", f"/api/permissions/group/{_seg(group_id)}", {"name": name}))

    def delete_group(self, group_id: int) -> None:
        """``DELETE /api/permissions/group/:id`` (204 even when it does not exist)."""
        self._call("DELETE", f"/api/permissions/group/{_seg(group_id)}")

    # Collections (src/metabase/collections_rest/api.clj)
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

    def get_collection_graph(self, *, reader: str | None = None) -> dict[str, Any]:
        """``GET /api/collection/graph``: ``{revision, groups: {gid: {cid|"root": level}}}``.

        One document for the whole instance: refreshes pass ``reader`` so a pass fetches it once (see
        :meth:`_read`); writes read it afresh.
        """
        return dict(self._read("/api/collection/graph", reader))

    def put_collection_graph(self, revision: int, groups: Mapping[str, Any]) -> None:
        """``PUT /api/collection/graph`` with only the edges being changed; 409 on a stale revision."""
        self._call("PUT", "/api/collection/graph", {"revision": revision, "groups": dict(groups)})

    # Data permissions, v50+ (src/metabase/permissions/api.clj)
    def get_data_graph_for_database(self, database_id: int, *, reader: str | None = None) -> dict[str, Any]:
        """``GET /api/permissions/graph/db/:id``: every group's permissions on one database (200 even when the
        database does not exist: check existence with :meth:`get_database`)."""
        return dict(self._read(f"/api/permissions/graph/db/{_seg(database_id)}", reader))

    def get_data_graph_for_group(self, group_id: int) -> dict[str, Any]:
        """``GET /api/permissions/graph/group/:id``: one group's permissions on every database (200 even when
        the group does not exist)."""
        return dict(self._call("GET", f"/api/permissions/graph/group/{_seg(group_id)}"))

    def data_graph_revision(self, *, reader: str | None = None) -> int:
        """The data graph's current revision, for a few bytes: the slice of a group id no group has (slices
        answer 200 with the revision and nothing else for ids that do not exist). Only graph PUTs save a new
        revision (``src/metabase/permissions/util.clj``), so an unchanged revision means no edge changed."""
        answer = self._read(f"/api/permissions/graph/group/{REVISION_PROBE_GROUP}", reader)
        return int(answer.get("revision", 0)) if isinstance(answer, Mapping) else 0

    def put_data_graph(self, revision: int, groups: Mapping[str, Any]) -> None:
        """``PUT /api/permissions/graph`` with only the edges being changed; 409 on a stale revision."""
        body = {"revision": revision, "groups": dict(groups)}
        self._call("PUT", "/api/permissions/graph", body, params={"skip-graph": "true"})

    # Databases (src/metabase/warehouses_rest/api.clj)
    def list_databases(self) -> list[dict[str, Any]]:
        """``GET /api/database``."""
        answer = self._call("GET", "/api/database")
        items = answer.get("data", []) if isinstance(answer, Mapping) else answer
        return [dict(item) for item in items or []]

    def get_database(self, database_id: int, *, reader: str | None = None) -> dict[str, Any]:
        """``GET /api/database/:id``; the password comes back masked."""
        return dict(self._read(f"/api/database/{_seg(database_id)}", reader))

    def create_database(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/database {engine, name, details}``; Metabase tests the connection first (400 if it fails).
        The body has no ``description``: set it with :meth:`update_database`."""
        return dict(self._call("POST", "/api/database", dict(body)))

    def update_database(self, database_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /api/database/:id``: merges ``details`` into the stored ones; retests only when they changed."""
        return dict(self._call("PUT", f"/api/database/{_seg(database_id)}", dict(body)))

    def delete_database(self, database_id: int) -> None:
        """``DELETE /api/database/:id``; this also deletes every question built on it."""
        self._call("DELETE", f"/api/database/{_seg(database_id)}")
