"""An in-process HTTP stand-in for the Metabase endpoints this project calls, on 127.0.0.1.

It follows the documented behaviour the providers depend on (DESIGN.md section 6):

* groups: "All Users" (1) and "Administrators" (2) built in and unchangeable; a new group copies All Users'
  create-queries level on every existing database;
* collections with ``location`` paths and archiving; All Users curates the root collection by default; a new
  collection copies its parent's permissions;
* the collection graph and the data graph, each with its own revision; a PUT with a stale revision answers
  409; a PUT changes only the edges it names; data-graph slices per database and per group;
* databases with masked passwords, default permissions on creation (All Users gets view access and its lowest
  existing query level, every other group its lowest existing level), deletion removing the questions built
  on them, and a connection test that really logs in to PostgreSQL and answers 400 when that fails;
* ``x-api-key`` authentication (401 ``Unauthenticated`` otherwise).

Tests arm faults with :meth:`MetabaseDouble.fail_next`, make changes "by hand" through the ``hand_*`` methods,
and read the request log (:attr:`MetabaseDouble.requests`) to count calls per method and path.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg

from tests.harness.http_double import HttpDouble, JsonHandler

ALL_USERS = 1
ADMINS = 2
MASK = "**MetabasePass**"
LEVEL_ORDER = {"no": 0, "query-builder": 1, "query-builder-and-native": 2}
STALE = (
    "Looks like someone else edited the permissions and your data is out of date. "
    "Please fetch new data and try again."
)


class Reply(Exception):
    def __init__(self, status: int, body: Any = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


@dataclass
class Fault:
    method: str
    path: str
    status: int
    times: int
    message: str


@dataclass
class ReceivedLogin:
    """Credentials the connection test received (what Metabase would store)."""

    database_name: str
    host: str
    port: int
    dbname: str
    user: str
    password: str
    ssl: bool
    additional_options: str | None
    succeeded: bool


@dataclass
class State:
    next_id: int = 3
    groups: dict[int, dict[str, Any]] = field(default_factory=dict)
    members: dict[int, int] = field(default_factory=dict)
    collections: dict[int, dict[str, Any]] = field(default_factory=dict)
    collection_revision: int = 1
    collection_perms: dict[int, dict[str, str]] = field(default_factory=dict)
    data_revision: int = 1
    data_perms: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    databases: dict[int, dict[str, Any]] = field(default_factory=dict)
    questions: dict[int, int] = field(default_factory=dict)  # question id -> database id

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


def _fresh_state() -> State:
    state = State()
    state.groups = {
        ALL_USERS: {"id": ALL_USERS, "name": "All Users"},
        ADMINS: {"id": ADMINS, "name": "Administrators"},
    }
    state.members = {ALL_USERS: 1, ADMINS: 1}
    state.collection_perms = {ALL_USERS: {"root": "write"}, ADMINS: {"root": "write"}}
    state.data_perms = {ALL_USERS: {}, ADMINS: {}}
    return state


class _Handler(JsonHandler):
    double: MetabaseDouble

    def _serve(self) -> None:
        method = self.command
        parts = urlsplit(self.path)
        raw = self.read_body()
        if self.headers.get("x-api-key") != self.double.api_key:
            with self.double.lock:
                self.double.requests.append((method, parts.path))
            self.send_body(401, "Unauthenticated")
            return
        try:
            body = self.parse_json(raw)
        except ValueError:
            self.send_body(400, {"message": "malformed JSON"})
            return
        status, answer = self.double.handle(method, parts.path, parse_qs(parts.query), body)
        self.send_body(status, answer)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class MetabaseDouble(HttpDouble):
    """The test double: start it, point the providers at :attr:`url` with :attr:`api_key`."""

    handler = _Handler

    def __init__(self, *, check_connections: bool = True) -> None:
        super().__init__()
        self.api_key = secrets.token_urlsafe(24)
        self.check_connections = check_connections
        self.lock = threading.RLock()
        self.state = _fresh_state()
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.logins: list[ReceivedLogin] = []

    # -- lifecycle ----------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a fresh Metabase: built-in groups only, no collections, databases, faults or log."""
        with self.lock:
            self.state = _fresh_state()
            self.faults.clear()
            self.requests.clear()
            self.logins.clear()

    # -- test controls ------------------------------------------------------------------------------

    def fail_next(
        self, method: str, path: str, status: int, *, times: int = 1, message: str | None = None
    ) -> None:
        """Answer the next ``times`` calls of ``method path`` (path without query) with ``status``."""
        text = message or (STALE if status == 409 else f"injected failure {status}")
        with self.lock:
            self.faults.append(Fault(method.upper(), path, status, times, text))

    def counts(self) -> Counter[str]:
        """Requests per method."""
        with self.lock:
            return Counter(method for method, _ in self.requests)

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, str]]]:
        """The requests made inside the block."""
        with self.lock:
            start = len(self.requests)
        seen: list[tuple[str, str]] = []
        yield seen
        with self.lock:
            seen.extend(self.requests[start:])

    # "By hand" changes, as an administrator would make them in the Metabase UI.
    def hand_rename_group(self, group_id: int, name: str) -> None:
        with self.lock:
            self.state.groups[group_id]["name"] = name

    def hand_create_group(self, name: str) -> int:
        """A group an administrator created (it copies All Users' levels, as Metabase does)."""
        status, body = self.handle("POST", "/api/permissions/group", {}, {"name": name})
        assert status == 200, body
        return int(body["id"])

    def hand_delete_group(self, group_id: int) -> None:
        with self.lock:
            self._delete_group(group_id)

    def hand_add_member(self, group_id: int) -> None:
        with self.lock:
            self.state.members[group_id] = self.state.members.get(group_id, 0) + 1

    def hand_update_collection(self, collection_id: int, **changes: Any) -> None:
        with self.lock:
            self._update_collection(collection_id, changes)

    def hand_set_collection_edge(self, group_id: int, collection_id: int | str, level: str) -> None:
        with self.lock:
            self.state.collection_perms.setdefault(group_id, {})[str(collection_id)] = level
            self.state.collection_revision += 1

    def hand_set_query_level(self, group_id: int, database_id: int, level: str) -> None:
        with self.lock:
            edge = self.state.data_perms.setdefault(group_id, {}).setdefault(database_id, {})
            edge["create-queries"] = level
            self.state.data_revision += 1

    def hand_update_database(self, database_id: int, **details: Any) -> None:
        with self.lock:
            self.state.databases[database_id]["details"].update(details)

    def seed_database(self, name: str, details: dict[str, Any]) -> int:
        """A connection added outside this stack (the platform's admin connection), default permissions."""
        with self.lock:
            return self._add_database(name, "postgres", "", details)

    def add_question(self, database_id: int) -> int:
        with self.lock:
            qid = self.state.new_id()
            self.state.questions[qid] = database_id
            return qid

    def questions_on(self, database_id: int) -> list[int]:
        with self.lock:
            return [q for q, db in self.state.questions.items() if db == database_id]

    def collection_graph(self) -> dict[str, Any]:
        with self.lock:
            return self._collection_graph()

    def data_graph(self) -> dict[str, Any]:
        with self.lock:
            return self._data_graph(None, None)

    def group_named(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            return next((dict(g) for g in self.state.groups.values() if g["name"] == name), None)

    # -- model ------------------------------------------------------------------------------------

    def _group_out(self, gid: int) -> dict[str, Any]:
        group = self.state.groups[gid]
        return {"id": gid, "name": group["name"], "member_count": self.state.members.get(gid, 0)}

    def _delete_group(self, gid: int) -> None:
        self.state.groups.pop(gid, None)
        self.state.members.pop(gid, None)
        self.state.collection_perms.pop(gid, None)
        self.state.data_perms.pop(gid, None)

    def _collection_out(self, cid: int) -> dict[str, Any]:
        c = self.state.collections[cid]
        parent = [p for p in c["location"].split("/") if p]
        return {
            "id": cid,
            "name": c["name"],
            "description": c["description"],
            "location": c["location"],
            "archived": c["archived"],
            "parent_id": int(parent[-1]) if parent else None,
            "personal_owner_id": None,
            "namespace": None,
        }

    def _update_collection(self, cid: int, changes: dict[str, Any]) -> None:
        c = self.state.collections[cid]
        for key in ("name", "description", "archived"):
            if key in changes and changes[key] is not None:
                c[key] = changes[key]
        if "parent_id" in changes:
            new_location = self._location_under(changes["parent_id"])
            old_prefix = f"{c['location']}{cid}/"
            new_prefix = f"{new_location}{cid}/"
            c["location"] = new_location
            for other in self.state.collections.values():
                if other["location"].startswith(old_prefix):
                    other["location"] = new_prefix + other["location"][len(old_prefix) :]

    def _location_under(self, parent_id: int | None) -> str:
        if parent_id is None:
            return "/"
        if parent_id not in self.state.collections:
            raise Reply(404, "Not found.")
        parent = self.state.collections[parent_id]
        return f"{parent['location']}{parent_id}/"

    def _collection_graph(self) -> dict[str, Any]:
        ids = ["root", *[str(cid) for cid in sorted(self.state.collections)]]
        groups = {
            str(gid): {cid: self.state.collection_perms.get(gid, {}).get(cid, "none") for cid in ids}
            for gid in sorted(self.state.groups)
        }
        return {"revision": self.state.collection_revision, "groups": groups}

    def _edge(self, gid: int, dbid: int) -> dict[str, Any]:
        stored = self.state.data_perms.get(gid, {}).get(dbid, {})
        if gid == ADMINS:
            return {
                "view-data": "unrestricted",
                "create-queries": "query-builder-and-native",
                "download": {"schemas": "full"},
            }
        return {
            "view-data": stored.get("view-data", "unrestricted"),
            "create-queries": stored.get("create-queries", "no"),
            "download": {"schemas": "full" if stored.get("create-queries", "no") != "no" else "none"},
        }

    def _data_graph(self, only_db: int | None, only_group: int | None) -> dict[str, Any]:
        dbs = [only_db] if only_db is not None else sorted(self.state.databases)
        gids = [only_group] if only_group is not None else sorted(self.state.groups)
        groups = {str(g): {str(d): self._edge(g, d) for d in dbs} for g in gids}
        return {"revision": self.state.data_revision, "groups": groups}

    def _lowest_level(self, gid: int) -> str | None:
        levels = [
            edge.get("create-queries", "no")
            for dbid, edge in self.state.data_perms.get(gid, {}).items()
            if dbid in self.state.databases
        ]
        return min(levels, key=LEVEL_ORDER.__getitem__) if levels else None

    def _add_database(self, name: str, engine: str, description: str, details: dict[str, Any]) -> int:
        dbid = self.state.new_id()
        # Default permissions as Metabase grants them: each group keeps its lowest existing level.
        defaults: dict[int, str] = {}
        for gid in self.state.groups:
            if gid == ADMINS:
                continue
            lowest = self._lowest_level(gid)
            if lowest is None:
                lowest = "query-builder-and-native" if gid == ALL_USERS else "no"
            defaults[gid] = lowest
        self.state.databases[dbid] = {
            "id": dbid,
            "name": name,
            "engine": engine,
            "description": description,
            "details": dict(details),
        }
        for gid, level in defaults.items():
            self.state.data_perms.setdefault(gid, {})[dbid] = {
                "view-data": "unrestricted",
                "create-queries": level,
            }
        self.state.data_revision += 1
        return dbid

    def _database_out(self, dbid: int) -> dict[str, Any]:
        db = self.state.databases[dbid]
        details = dict(db["details"])
        if details.get("password"):
            details["password"] = MASK
        return {
            "id": dbid,
            "name": db["name"],
            "engine": db["engine"],
            "description": db["description"],
            "details": details,
        }

    def _test_connection(self, name: str, details: dict[str, Any]) -> None:
        login = ReceivedLogin(
            database_name=name,
            host=str(details.get("host")),
            port=int(details.get("port") or 5432),
            dbname=str(details.get("dbname")),
            user=str(details.get("user")),
            password=str(details.get("password") or ""),
            ssl=bool(details.get("ssl")),
            additional_options=details.get("additional-options"),
            succeeded=False,
        )
        if self.check_connections:
            try:
                with psycopg.connect(
                    host=login.host,
                    port=login.port,
                    dbname=login.dbname,
                    user=login.user,
                    password=login.password,
                    connect_timeout=3,
                    sslmode="require" if login.ssl else "disable",
                ) as conn:
                    conn.execute("SELECT 1")
            except psycopg.Error as exc:
                self.logins.append(login)
                message = " ".join(str(exc).split())
                raise Reply(400, {"message": message, "errors": {"password": message}}) from None
        login.succeeded = True
        self.logins.append(login)

    # -- HTTP -------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path))
            for fault in self.faults:
                if fault.method == method and fault.path == path and fault.times > 0:
                    fault.times -= 1
                    return fault.status, {"message": fault.message}
        try:
            with self.lock:
                return 200, self._route(method, path, query, body)
        except Reply as reply:
            return reply.status, reply.body

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Any:
        s = self.state
        m = re.fullmatch(r"/api/permissions/group(?:/(\d+))?", path)
        if m:
            gid = int(m.group(1)) if m.group(1) else None
            if gid is None and method == "GET":
                return [self._group_out(g) for g in sorted(s.groups)]
            if gid is None and method == "POST":
                name = (body or {}).get("name")
                if not name or not str(name).strip():
                    raise Reply(400, {"errors": {"name": "value must be a non-blank string."}})
                if any(g["name"] == name for g in s.groups.values()):
                    raise Reply(400, {"message": "A group with that name already exists."})
                gid = s.new_id()
                s.groups[gid] = {"id": gid, "name": name}
                s.members[gid] = 0
                # A new group copies All Users' level on every database.
                s.data_perms[gid] = {
                    dbid: {
                        "view-data": "unrestricted",
                        "create-queries": self._edge(ALL_USERS, dbid)["create-queries"],
                    }
                    for dbid in s.databases
                }
                s.data_revision += 1
                return self._group_out(gid)
            if gid is None or gid not in s.groups:
                raise Reply(404, "Not found.")
            if method == "GET":
                return {**self._group_out(gid), "members": []}
            if gid in (ALL_USERS, ADMINS) and method in ("PUT", "DELETE"):
                raise Reply(
                    400, {"message": "You cannot edit or delete the 'All Users' or 'Administrators' group."}
                )
            if method == "PUT":
                s.groups[gid]["name"] = body["name"]
                return self._group_out(gid)
            if method == "DELETE":
                self._delete_group(gid)
                raise Reply(204)

        if path == "/api/collection/graph":
            if method == "GET":
                return self._collection_graph()
            if method == "PUT":
                if body.get("revision") != s.collection_revision:
                    raise Reply(409, STALE)
                changes = body.get("groups") or {}
                for gid_text, edges in changes.items():
                    gid = int(gid_text)
                    if gid == ADMINS:
                        raise Reply(
                            400, {"message": "You cannot edit permissions for the Administrators group."}
                        )
                    if gid not in s.groups:
                        raise Reply(400, {"message": f"Group {gid} does not exist."})
                    for cid, level in edges.items():
                        if level not in ("read", "write", "none"):
                            raise Reply(400, {"errors": {"groups": f"invalid level {level}"}})
                        if cid != "root" and int(cid) not in s.collections:
                            raise Reply(400, {"message": f"Collection {cid} does not exist."})
                        s.collection_perms.setdefault(gid, {})[str(cid)] = level
                s.collection_revision += 1
                return self._collection_graph()

        m = re.fullmatch(r"/api/collection/(root|\d+)/items", path)
        if m and method == "GET":
            parent = None if m.group(1) == "root" else int(m.group(1))
            if parent is not None and parent not in s.collections:
                raise Reply(404, "Not found.")
            location = self._location_under(parent)
            data = [
                {**self._collection_out(cid), "model": "collection"}
                for cid, c in sorted(s.collections.items())
                if c["location"] == location and not c["archived"]
            ]
            return {"data": data, "total": len(data), "models": ["collection"]}

        if path == "/api/collection" and method == "POST":
            name = (body or {}).get("name")
            if not name or not str(name).strip():
                raise Reply(400, {"errors": {"name": "value must be a non-blank string."}})
            parent_id = body.get("parent_id")
            location = self._location_under(parent_id)
            cid = s.new_id()
            s.collections[cid] = {
                "name": name,
                "description": body.get("description"),
                "location": location,
                "archived": False,
            }
            parent_key = "root" if parent_id is None else str(parent_id)
            changed = False
            for gid, edges in s.collection_perms.items():
                if parent_key in edges and gid != ADMINS:
                    edges[str(cid)] = edges[parent_key]
                    changed = True
            s.collection_perms.setdefault(ADMINS, {})[str(cid)] = "write"
            if changed:
                s.collection_revision += 1
            return self._collection_out(cid)

        m = re.fullmatch(r"/api/collection/(\d+)", path)
        if m:
            cid = int(m.group(1))
            if cid not in s.collections:
                raise Reply(404, "Not found.")
            if method == "GET":
                return self._collection_out(cid)
            if method == "PUT":
                if "name" in body and not str(body["name"] or "").strip():
                    raise Reply(400, {"errors": {"name": "value must be a non-blank string."}})
                self._update_collection(cid, body)
                return self._collection_out(cid)

        if path == "/api/permissions/graph":
            if method == "GET":
                return self._data_graph(None, None)
            if method == "PUT":
                if body.get("revision") != s.data_revision:
                    raise Reply(409, STALE)
                for gid_text, dbs in (body.get("groups") or {}).items():
                    gid = int(gid_text)
                    if gid == ADMINS:
                        raise Reply(
                            400, {"message": "You cannot edit permissions for the Administrators group."}
                        )
                    if gid not in s.groups:
                        raise Reply(400, {"message": f"Group {gid} does not exist."})
                    for db_text, edge in dbs.items():
                        dbid = int(db_text)
                        if dbid not in s.databases:
                            raise Reply(400, {"message": f"Database {dbid} does not exist."})
                        level = edge.get("create-queries")
                        if level is not None and level not in LEVEL_ORDER:
                            raise Reply(400, {"errors": {"create-queries": f"invalid level {level}"}})
                        stored = s.data_perms.setdefault(gid, {}).setdefault(dbid, {})
                        stored.update({k: v for k, v in edge.items() if k in ("view-data", "create-queries")})
                s.data_revision += 1
                if query.get("skip-graph") == ["true"]:
                    return {"revision": s.data_revision}
                return self._data_graph(None, None)

        m = re.fullmatch(r"/api/permissions/graph/(db|group)/(\d+)", path)
        if m and method == "GET":
            key = int(m.group(2))
            if m.group(1) == "db":
                if key not in s.databases:
                    raise Reply(404, "Not found.")
                return self._data_graph(key, None)
            if key not in s.groups:
                raise Reply(404, "Not found.")
            return self._data_graph(None, key)

        if path == "/api/database":
            if method == "GET":
                data = [self._database_out(d) for d in sorted(s.databases)]
                return {"data": data, "total": len(data)}
            if method == "POST":
                name = (body or {}).get("name")
                details = dict((body or {}).get("details") or {})
                if not name:
                    raise Reply(400, {"errors": {"name": "value must be a non-blank string."}})
                if body.get("engine") != "postgres":
                    raise Reply(400, {"errors": {"engine": "this Metabase only knows postgres here"}})
                self._test_connection(name, details)
                dbid = self._add_database(name, "postgres", body.get("description") or "", details)
                return self._database_out(dbid)

        m = re.fullmatch(r"/api/database/(\d+)", path)
        if m:
            dbid = int(m.group(1))
            if dbid not in s.databases:
                raise Reply(404, "Not found.")
            if method == "GET":
                return self._database_out(dbid)
            if method == "PUT":
                db = s.databases[dbid]
                if "details" in body:
                    details = {**db["details"], **body["details"]}
                    if details.get("password") == MASK:
                        details["password"] = db["details"].get("password")
                    if details != db["details"]:
                        self._test_connection(body.get("name", db["name"]), details)
                    db["details"] = details
                for field_name in ("name", "description"):
                    if field_name in body:
                        db[field_name] = body[field_name]
                return self._database_out(dbid)
            if method == "DELETE":
                s.databases.pop(dbid)
                for edges in s.data_perms.values():
                    edges.pop(dbid, None)
                for qid in [q for q, d in s.questions.items() if d == dbid]:
                    s.questions.pop(qid)
                s.data_revision += 1
                raise Reply(204)

        raise Reply(404, "API endpoint does not exist.")
