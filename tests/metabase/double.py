"""An in-process HTTP stand-in for the Metabase endpoints this project calls, on 127.0.0.1.

No Metabase server runs on this machine, so this double is written from Metabase's source, v50 to the current
v0.6x line (paths as in the metabase/metabase repository; DESIGN.md section 6). Each behaviour below names the
file it mirrors, as that file reads on the v0.6x line; the behaviour is the same since v50 unless the comment
gives a version (the collection graph's omitted ``none`` entries: 0.56.13). Where the double and a real
Metabase disagree, the double is the bug: the same contract tests run against a real server with
``-m live_metabase``.

Modes: ``sample_database=False`` is an instance whose Sample Database was removed (groups made then have no
permission rows, so a new database opens to them); ``ssl_available=True`` makes the opportunistic SSL attempt
succeed; :meth:`MetabaseDouble.fail_next` arms faults, including a create answering 500 after the row was
written (``after_write=True``) and a connection dropped mid-call (``drop=True``). Changes "by hand" go
through the ``hand_*`` methods; :attr:`MetabaseDouble.requests` logs every call and
:attr:`MetabaseDouble.bytes_sent` the bytes of every answer.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg

from tests.harness.http_double import HttpDouble, JsonHandler

ALL_USERS = 1
ADMINS = 2
SAMPLE_DATABASE = 1
MASK = "**MetabasePass**"
LEVEL_ORDER = {"no": 0, "query-builder": 1, "query-builder-and-native": 2}
# src/metabase/permissions/util.clj (check-revision-numbers): a 409 whose body is this plain text.
STALE = (
    "Looks like someone else edited the permissions and your data is out of date. "
    "Please fetch new data and try again."
)
# src/metabase/driver/util.clj (connection-error-messages): what a failed connection test says.
PASSWORD_INCORRECT = "Looks like your password is incorrect."
USERNAME_INCORRECT = "Looks like your username is incorrect."
DATABASE_MISSING = "Looks like you have the wrong database name."


class Reply(Exception):
    def __init__(self, status: int, body: Any = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class Dropped(Exception):
    """The connection is closed without an answer (a proxy restart, a network cut)."""


@dataclass
class Fault:
    method: str
    path: str
    status: int
    times: int
    message: str
    after_write: bool = False
    drop: bool = False


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


def _fresh_state(sample_database: bool) -> State:
    state = State()
    # src/metabase/permissions/models/permissions_group.clj: the magic groups, found by magic_group_type.
    state.groups = {
        ALL_USERS: {"id": ALL_USERS, "name": "All Users", "magic_group_type": "all-internal-users"},
        ADMINS: {"id": ADMINS, "name": "Administrators", "magic_group_type": "admin"},
    }
    state.members = {ALL_USERS: 1, ADMINS: 1}
    # src/metabase/collections/models/collection/root.clj: All Users curates the root collection by default.
    state.collection_perms = {ALL_USERS: {"root": "write"}, ADMINS: {"root": "write"}}
    state.data_perms = {ALL_USERS: {}, ADMINS: {}}
    if sample_database:
        # src/metabase/sample_data/impl.clj: the Sample Database, with All Users' default (native) access.
        state.databases[SAMPLE_DATABASE] = {
            "id": SAMPLE_DATABASE,
            "name": "Sample Database",
            "engine": "h2",
            "description": None,
            "details": {"db": "sample-database.db"},
            "is_sample": True,
        }
        state.data_perms[ALL_USERS][SAMPLE_DATABASE] = {
            "view-data": "unrestricted",
            "create-queries": "query-builder-and-native",
        }
    return state


def _size(status: int, body: Any) -> int:
    if status == 204 or body is None:
        return 0
    return len(body.encode() if isinstance(body, str) else json.dumps(body).encode())


class _Handler(JsonHandler):
    double: MetabaseDouble

    def _serve(self) -> None:
        method = self.command
        parts = urlsplit(self.path)
        raw = self.read_body()
        if self.headers.get("x-api-key") != self.double.api_key:
            # src/metabase/server/middleware/auth.clj: a missing or wrong key answers 401, plain text.
            with self.double.lock:
                self.double.requests.append((method, parts.path))
            self.send_body(401, "Unauthenticated")
            return
        try:
            body = self.parse_json(raw)
        except ValueError:
            self.send_body(400, {"message": "malformed JSON"})
            return
        try:
            status, answer = self.double.handle(method, parts.path, parse_qs(parts.query), body)
        except Dropped:
            self.close_connection = True
            return
        with self.double.lock:
            self.double.bytes_sent.append((method, parts.path, _size(status, answer)))
        self.send_body(status, answer)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class MetabaseDouble(HttpDouble):
    """The test double: start it, point the providers at :attr:`url` with :attr:`api_key`."""

    handler = _Handler

    def __init__(
        self, *, check_connections: bool = True, sample_database: bool = True, ssl_available: bool = False
    ) -> None:
        super().__init__()
        self.api_key = secrets.token_urlsafe(24)
        self.check_connections = check_connections
        self.sample_database = sample_database
        self.ssl_available = ssl_available
        self.lock = threading.RLock()
        self.state = _fresh_state(sample_database)
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.bytes_sent: list[tuple[str, str, int]] = []
        self.logins: list[ReceivedLogin] = []
        self.dropped_description: list[str] = []

    # -- lifecycle ----------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a fresh Metabase: built-in groups only, no collections, databases, faults or log."""
        with self.lock:
            self.state = _fresh_state(self.sample_database)
            self.faults.clear()
            self.requests.clear()
            self.bytes_sent.clear()
            self.logins.clear()

    # -- test controls ------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path: str,
        status: int = 500,
        *,
        times: int = 1,
        message: str | None = None,
        after_write: bool = False,
        drop: bool = False,
    ) -> None:
        """Fail the next ``times`` calls of ``method path`` (path without query; ``*`` matches any part).

        ``status`` answers instead of doing anything, unless ``after_write``: then the call takes effect first
        and the answer is the failure, as when an event handler fails after the insert
        (``src/metabase/events/impl.clj`` publishes outside the transaction). ``drop`` closes the connection
        without an answer (before or after the write, as ``after_write`` says).
        """
        text = message or (STALE if status == 409 else "Internal server error")
        with self.lock:
            self.faults.append(Fault(method.upper(), path, status, times, text, after_write, drop))

    def counts(self) -> Counter[str]:
        """Requests per method."""
        with self.lock:
            return Counter(method for method, _ in self.requests)

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()
            self.bytes_sent.clear()

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
            if level != "no":
                edge["view-data"] = "unrestricted"
            self.state.data_revision += 1

    def hand_update_database(self, database_id: int, **details: Any) -> None:
        with self.lock:
            self.state.databases[database_id]["details"].update(details)

    def hand_create_database(self, name: str, details: dict[str, Any], description: str | None = None) -> int:
        """A connection added in the admin UI (default permissions, no connection test)."""
        with self.lock:
            return self._add_database(name, "postgres", description, details)

    def seed_database(self, name: str, details: dict[str, Any]) -> int:
        """A connection added outside this stack (the platform's admin connection), default permissions."""
        return self.hand_create_database(name, details)

    def add_question(self, database_id: int) -> int:
        with self.lock:
            qid = self.state.new_id()
            self.state.questions[qid] = database_id
            return qid

    def questions_on(self, database_id: int) -> list[int]:
        with self.lock:
            return [q for q, db in self.state.questions.items() if db == database_id]

    def collection_graph(self) -> dict[str, Any]:
        """The collection graph as ``GET /api/collection/graph`` answers it."""
        with self.lock:
            return self._collection_graph()

    def data_graph(self) -> dict[str, Any]:
        """The data graph as ``GET /api/permissions/graph`` answers it."""
        with self.lock:
            return self._data_graph(None, None)

    def databases_named(self, name: str) -> list[int]:
        with self.lock:
            return sorted(d for d, db in self.state.databases.items() if db["name"] == name)

    def group_named(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            return next((dict(g) for g in self.state.groups.values() if g["name"] == name), None)

    # -- model ------------------------------------------------------------------------------------

    def _group_out(self, gid: int) -> dict[str, Any]:
        group = self.state.groups[gid]
        return {
            "id": gid,
            "name": group["name"],
            "magic_group_type": group.get("magic_group_type"),
            "member_count": self.state.members.get(gid, 0),
        }

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

    def _archived(self, cid: int) -> bool:
        """Archived itself or inside an archived collection (both are in the Trash)."""
        c = self.state.collections[cid]
        ancestors = [int(p) for p in c["location"].split("/") if p]
        known = self.state.collections
        return c["archived"] or any(known[a]["archived"] for a in ancestors if a in known)

    def _collection_graph(self) -> dict[str, Any]:
        # src/metabase/permissions/models/collection/graph.clj (graph): archived (trash) and personal collections
        # are never listed; since 0.56.13 ``none`` entries are omitted. Administrators hold write everywhere.
        ids = ["root", *[str(cid) for cid in sorted(self.state.collections) if not self._archived(cid)]]
        groups: dict[str, dict[str, str]] = {}
        for gid in sorted(self.state.groups):
            stored = self.state.collection_perms.get(gid, {})
            if gid == ADMINS:
                edges = dict.fromkeys(ids, "write")
            else:
                edges = {cid: stored[cid] for cid in ids if stored.get(cid, "none") != "none"}
            groups[str(gid)] = edges
        return {"revision": self.state.collection_revision, "groups": groups}

    def _edge(self, gid: int, dbid: int) -> dict[str, Any]:
        """One group's entry on one database as the API graph shows it.

        src/metabase/permissions/models/data_permissions/graph.clj (api-graph): least-permissive values are
        left out (``create-queries: no``) and empty entries dropped; Administrators have everything.
        """
        if gid == ADMINS:
            return {
                "view-data": "unrestricted",
                "create-queries": "query-builder-and-native",
                "download": {"schemas": "full"},
            }
        stored = self.state.data_perms.get(gid, {}).get(dbid)
        if stored is None:
            return {}
        edge: dict[str, Any] = {}
        if stored.get("view-data"):
            edge["view-data"] = stored["view-data"]
        level = stored.get("create-queries", "no")
        if level != "no":
            edge["create-queries"] = level
            edge["download"] = {"schemas": "full"}
        return edge

    def _data_graph(self, only_db: int | None, only_group: int | None) -> dict[str, Any]:
        # src/metabase/permissions/api.clj (GET /graph, /graph/db/:db-id, /graph/group/:group-id): the slices
        # answer 200 for ids that do not exist (there is simply nothing to show).
        dbs = [only_db] if only_db is not None else sorted(self.state.databases)
        gids = [only_group] if only_group is not None else sorted(self.state.groups)
        groups: dict[str, dict[str, Any]] = {}
        for g in gids:
            if g not in self.state.groups:
                continue
            entries = {str(d): self._edge(g, d) for d in dbs if d in self.state.databases}
            entries = {d: e for d, e in entries.items() if e}
            if entries:
                groups[str(g)] = entries
        return {"revision": self.state.data_revision, "groups": groups}

    def _lowest_level(self, gid: int) -> str | None:
        lowest: str | None = None
        for dbid, edge in self.state.data_perms.get(gid, {}).items():
            if dbid not in self.state.databases:
                continue
            level = edge.get("create-queries", "no")
            if level == "no":
                return level  # nothing is lower
            if lowest is None or LEVEL_ORDER[level] < LEVEL_ORDER[lowest]:
                lowest = level
        return lowest

    def _add_database(self, name: str, engine: str, description: str | None, details: dict[str, Any]) -> int:
        dbid = self.state.new_id()
        # src/metabase/permissions/models/data_permissions.clj (new-database-permissions): each group gets its
        # lowest create-queries level on any database, or query-builder-and-native when it has no rows at all,
        # and view-data unrestricted. Administrators have everything.
        defaults: dict[int, str] = {}
        for gid in self.state.groups:
            if gid == ADMINS:
                continue
            lowest = self._lowest_level(gid)
            defaults[gid] = lowest if lowest is not None else "query-builder-and-native"
        self.state.databases[dbid] = {
            "id": dbid,
            "name": name,
            "engine": engine,
            "description": description,
            "details": dict(details),
        }
        for gid, level in defaults.items():
            self.state.data_perms.setdefault(gid, {})[dbid] = {"view-data": "unrestricted", "create-queries": level}
        # No new revision: only graph PUTs save one (src/metabase/permissions/util.clj save-perms-revision!).
        return dbid

    def _database_out(self, dbid: int) -> dict[str, Any]:
        db = self.state.databases[dbid]
        details = dict(db["details"])
        # src/metabase/warehouses/models/database.clj: sensitive fields come back as the protected mask.
        if details.get("password"):
            details["password"] = MASK
        return {
            "id": dbid,
            "name": db["name"],
            "engine": db["engine"],
            "description": db["description"],
            "details": details,
            "is_sample": bool(db.get("is_sample")),
        }

    def _try_login(self, name: str, details: dict[str, Any], ssl: bool) -> str | None:
        """None when the login works, else Metabase's humanised message (src/metabase/driver/util.clj)."""
        login = ReceivedLogin(
            database_name=name,
            host=str(details.get("host")),
            port=int(details.get("port") or 5432),
            dbname=str(details.get("dbname")),
            user=str(details.get("user")),
            password=str(details.get("password") or ""),
            ssl=ssl,
            additional_options=details.get("additional-options"),
            succeeded=False,
        )
        self.logins.append(login)
        if ssl and not self.ssl_available:
            return "SSL is not available on this server."
        if self.check_connections:
            try:
                with psycopg.connect(
                    host=login.host,
                    port=login.port,
                    dbname=login.dbname,
                    user=login.user,
                    password=login.password,
                    connect_timeout=3,
                    sslmode="disable",
                ) as conn:
                    conn.execute("SELECT 1")
            except psycopg.Error as exc:
                text = str(exc)
                if "password authentication failed" in text:
                    return PASSWORD_INCORRECT
                if "role" in text and "does not exist" in text:
                    return USERNAME_INCORRECT
                if "database" in text and "does not exist" in text:
                    return DATABASE_MISSING
                return " ".join(text.split())
        login.succeeded = True
        return None

    def _test_connection(self, name: str, details: dict[str, Any], *, opportunistic: bool) -> dict[str, Any]:
        """The details to store, or a 400 as Metabase answers a failed connection test.

        src/metabase/warehouses/util.clj (test-connection-details): when ``ssl`` is not true, SSL is tried
        first and ``ssl: true`` is stored if that works; otherwise the details as sent are tested. A failure
        answers 400 ``{message, errors}`` (``test-database-connection``). ``PUT`` tests without the SSL try.
        """
        if opportunistic and details.get("ssl") is not True and self._try_login(name, details, ssl=True) is None:
            return {**details, "ssl": True}
        problem = self._try_login(name, details, ssl=bool(details.get("ssl")))
        if problem is not None:
            key = "password" if problem == PASSWORD_INCORRECT else "dbname" if problem == DATABASE_MISSING else "user"
            raise Reply(400, {"message": problem, "errors": {key: problem}})
        return details

    # -- HTTP -------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path))
            fault = next(
                (f for f in self.faults if f.method == method and fnmatchcase(path, f.path) and f.times > 0),
                None,
            )
            if fault is not None:
                fault.times -= 1
        if fault is not None and not fault.after_write:
            if fault.drop:
                raise Dropped
            return fault.status, self._fault_body(fault)
        try:
            with self.lock:
                answer = 200, self._route(method, path, query, body)
        except Reply as reply:
            answer = reply.status, reply.body
        if fault is not None:
            if fault.drop:
                raise Dropped
            return fault.status, self._fault_body(fault)
        return answer

    @staticmethod
    def _fault_body(fault: Fault) -> Any:
        # src/metabase/server/middleware/exceptions.clj: an exception with only a status answers its message as
        # plain text; an unexpected one (500) answers JSON with the message and a stack trace.
        if fault.message.lstrip().startswith("<"):
            return fault.message  # a proxy's HTML page, not Metabase's answer
        if fault.status >= 500:
            return {"message": fault.message, "via": [{"type": "java.lang.Exception"}], "trace": []}
        return fault.message

    @staticmethod
    def _invalid(field_name: str, reason: str) -> Reply:
        # src/metabase/api/macros.clj: a body that fails its schema answers 400 {errors, specific-errors}.
        return Reply(400, {"errors": {field_name: reason}, "specific-errors": {field_name: [reason]}})

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Any:
        s = self.state
        m = re.fullmatch(r"/api/permissions/group(?:/(\d+))?", path)
        if m:
            gid = int(m.group(1)) if m.group(1) else None
            # src/metabase/permissions/api.clj (GET /group): ordered by lower-cased name, with member_count.
            if gid is None and method == "GET":
                return [self._group_out(g) for g in sorted(s.groups, key=lambda g: s.groups[g]["name"].lower())]
            if gid is None and method == "POST":
                name = (body or {}).get("name")
                if not isinstance(name, str) or not name.strip():
                    raise self._invalid("name", "value must be a non-blank string.")
                # src/metabase/permissions/models/permissions_group.clj (check-name-not-already-taken): names
                # are compared lower-cased; the 400 carries only a message, so it is plain text.
                if any(g["name"].lower() == name.lower() for g in s.groups.values()):
                    raise Reply(400, "A group with that name already exists.")
                gid = s.new_id()
                s.groups[gid] = {"id": gid, "name": name, "magic_group_type": None}
                s.members[gid] = 0
                # src/metabase/permissions/models/data_permissions.clj (set-default-group-permissions!): a new
                # group copies All Users' create-queries level on every database.
                s.data_perms[gid] = {
                    dbid: {
                        "view-data": "unrestricted",
                        "create-queries": s.data_perms.get(ALL_USERS, {}).get(dbid, {}).get("create-queries", "no"),
                    }
                    for dbid in s.databases
                }
                # No new revision: only graph PUTs save one (src/metabase/permissions/util.clj save-perms-revision!).
                return self._group_out(gid)
            if method == "DELETE" and gid is not None:
                # src/metabase/permissions/api.clj (DELETE /group/:group-id): deletes whatever matches and
                # answers 204, also when nothing did; the magic groups refuse (plain-text 400).
                if gid in s.groups and s.groups[gid].get("magic_group_type"):
                    name = s.groups[gid]["name"]
                    raise Reply(400, f"You cannot edit or delete the '{name}' permissions group!")
                self._delete_group(gid)
                raise Reply(204)
            if gid is None or gid not in s.groups:
                raise Reply(404, "Not found.")
            if method == "GET":
                return {**self._group_out(gid), "members": []}
            if method == "PUT":
                if s.groups[gid].get("magic_group_type"):
                    raise Reply(400, f"You cannot edit or delete the '{s.groups[gid]['name']}' permissions group!")
                name = (body or {}).get("name")
                others = [g for g in s.groups.values() if g["id"] != gid]
                if any(g["name"].lower() == str(name).lower() for g in others):
                    raise Reply(400, "A group with that name already exists.")
                s.groups[gid]["name"] = name
                return self._group_out(gid)

        if path == "/api/collection/graph":
            if method == "GET":
                return self._collection_graph()
            if method == "PUT":
                # src/metabase/permissions/models/collection/graph.clj (update-graph!): revision checked
                # (409, plain text), only the edges sent change, edges of archived collections are dropped.
                if body.get("revision") != s.collection_revision:
                    raise Reply(409, STALE)
                changes = body.get("groups") or {}
                for gid_text, edges in changes.items():
                    gid = int(gid_text)
                    if gid == ADMINS:
                        raise Reply(400, "You cannot edit permissions for the Administrators group.")
                    for cid, level in edges.items():
                        if level not in ("read", "write", "none"):
                            raise self._invalid("groups", f"invalid level {level}")
                        if cid != "root" and (int(cid) not in s.collections or self._archived(int(cid))):
                            continue
                        s.collection_perms.setdefault(gid, {})[str(cid)] = level
                s.collection_revision += 1
                return self._collection_graph()

        m = re.fullmatch(r"/api/collection/(root|\d+)/items", path)
        if m and method == "GET":
            # src/metabase/collections_rest/api.clj (GET /:id/items, /root/items): the children in ``data``;
            # archived ones are not listed.
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
            if not isinstance(name, str) or not name.strip():
                raise self._invalid("name", "value must be a non-blank string.")
            parent_id = body.get("parent_id")
            location = self._location_under(parent_id)
            cid = s.new_id()
            s.collections[cid] = {
                "name": name,
                "description": body.get("description"),
                "location": location,
                "archived": False,
            }
            # src/metabase/collections/models/collection.clj (copy-parent-permissions!): a new collection gets
            # its parent's permissions.
            parent_key = "root" if parent_id is None else str(parent_id)
            for gid, edges in s.collection_perms.items():
                if parent_key in edges and gid != ADMINS:
                    edges[str(cid)] = edges[parent_key]
            # No new revision: only graph PUTs save one (src/metabase/permissions/util.clj save-perms-revision!).
            return self._collection_out(cid)

        m = re.fullmatch(r"/api/collection/(\d+)", path)
        if m:
            cid = int(m.group(1))
            if cid not in s.collections:
                raise Reply(404, "Not found.")
            # src/metabase/collections_rest/api.clj (GET|PUT /:id): 404 "Not found." (plain text) when absent; a PUT
            # with ``archived: true`` moves it to the Trash and keeps ``location``.
            if method == "GET":
                return self._collection_out(cid)
            if method == "PUT":
                if "name" in body and not str(body["name"] or "").strip():
                    raise self._invalid("name", "value must be a non-blank string.")
                self._update_collection(cid, body)
                return self._collection_out(cid)

        if path == "/api/permissions/graph":
            if method == "GET":
                return self._data_graph(None, None)
            if method == "PUT":
                # src/metabase/permissions/api.clj (PUT /graph): a partial graph is accepted; the revision is
                # checked (409, plain text); ``skip-graph`` answers only the revision.
                if body.get("revision") != s.data_revision:
                    raise Reply(409, STALE)
                for gid_text, dbs in (body.get("groups") or {}).items():
                    gid = int(gid_text)
                    if gid == ADMINS:
                        raise Reply(400, "You cannot edit permissions for the Administrators group.")
                    if gid not in s.groups:
                        continue
                    for db_text, edge in dbs.items():
                        dbid = int(db_text)
                        if dbid not in s.databases:
                            continue
                        level = edge.get("create-queries")
                        if level is not None and level not in LEVEL_ORDER:
                            raise self._invalid("create-queries", f"invalid level {level}")
                        stored = s.data_perms.setdefault(gid, {}).setdefault(dbid, {})
                        stored.update({k: v for k, v in edge.items() if k in ("view-data", "create-queries")})
                        # src/metabase/permissions/models/data_permissions/graph.clj: create-queries other than
                        # ``no`` implies view-data unrestricted.
                        if stored.get("create-queries", "no") != "no":
                            stored["view-data"] = "unrestricted"
                s.data_revision += 1
                if query.get("skip-graph") == ["true"]:
                    return {"revision": s.data_revision}
                return self._data_graph(None, None)

        m = re.fullmatch(r"/api/permissions/graph/(db|group)/(\d+)", path)
        if m and method == "GET":
            key = int(m.group(2))
            return self._data_graph(key, None) if m.group(1) == "db" else self._data_graph(None, key)

        if path == "/api/database":
            # src/metabase/warehouses_rest/api.clj (GET /): ``{data, total}``, passwords masked.
            if method == "GET":
                data = [self._database_out(d) for d in sorted(s.databases)]
                return {"data": data, "total": len(data)}
            if method == "POST":
                # src/metabase/warehouses_rest/api.clj (POST /): the body schema has name, engine, details and
                # sync options, no description: v50 drops it silently (the current line's closed schema would
                # refuse it). The connection is tested first (opportunistic SSL), then the row is inserted.
                # Nothing skips the test: the current line (commit 004f0ce6) refuses ``is_stub`` ("is_stub may
                # not be set via the API") and always calls ``test-connection-details``; v50's handler
                # (src/metabase/api/database.clj, commit 005fb02b) likewise. So a NOLOGIN role gets a 400.
                name = (body or {}).get("name")
                if not isinstance(name, str) or not name.strip():
                    raise self._invalid("name", "value must be a non-blank string.")
                if body.get("engine") != "postgres":
                    raise self._invalid("engine", "value must be a valid database engine.")
                if "description" in body:
                    self.dropped_description.append(str(body["description"]))
                details = self._test_connection(name, dict(body.get("details") or {}), opportunistic=True)
                dbid = self._add_database(name, "postgres", None, details)
                return self._database_out(dbid)

        m = re.fullmatch(r"/api/database/(\d+)", path)
        if m:
            dbid = int(m.group(1))
            if dbid not in s.databases:
                raise Reply(404, "Not found.")
            if method == "GET":
                return self._database_out(dbid)
            if method == "PUT":
                # src/metabase/warehouses_rest/api.clj (PUT /:id, upsert-sensitive-fields): the details sent are
                # merged into the stored ones, the mask stands for the stored password, and the connection is
                # retested only when the details changed.
                db = s.databases[dbid]
                if db.get("is_sample"):
                    raise Reply(400, "The sample database cannot be edited.")
                if "details" in body:
                    details = {**db["details"], **body["details"]}
                    if details.get("password") == MASK:
                        details["password"] = db["details"].get("password")
                    if details != db["details"]:
                        details = self._test_connection(body.get("name", db["name"]), details, opportunistic=False)
                    db["details"] = details
                for field_name in ("name", "description"):
                    if field_name in body:
                        db[field_name] = body[field_name]
                return self._database_out(dbid)
            if method == "DELETE":
                # DELETE /:id: the questions built on it go too.
                s.databases.pop(dbid)
                for edges in s.data_perms.values():
                    edges.pop(dbid, None)
                for qid in [q for q, d in s.questions.items() if d == dbid]:
                    s.questions.pop(qid)
                # No new revision: only graph PUTs save one (src/metabase/permissions/util.clj save-perms-revision!).
                raise Reply(204)

        raise Reply(404, "API endpoint does not exist.")
