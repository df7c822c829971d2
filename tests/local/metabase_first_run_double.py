"""A stand-in for the Metabase endpoints of a first run (no Metabase can run here), on 127.0.0.1.

Each behaviour mirrors Metabase's source:

* ``GET /api/health`` answers 200 ``{"status": "ok"}`` once the application database is migrated.
* ``GET /api/session/properties`` carries the public settings ``setup-token`` (a UUID) and ``has-user-setup``
  (``src/metabase/setup/settings.clj``: both ``:visibility :public``).
* ``POST /api/setup`` (``src/metabase/setup/api.clj``): ``token`` must match the setup token (400 otherwise);
  403 once any user exists; creates a superuser from ``user`` and answers the session as ``{"id": ...}``.
* ``POST /api/session`` with ``username``/``password`` answers ``{"id": session}``, 401 on a wrong password.
* ``GET /api/permissions/group``: "All Users" (1) and "Administrators" (2) are built in.
* ``/api/api-key`` (``src/metabase/api_keys/api.clj``): every endpoint checks for a superuser (403); ``POST``
  takes ``group_id`` and ``name``, refuses a name that exists (400) and shows ``unmasked_key`` only in its
  answer; ``PUT /:id/regenerate`` issues a new key; ``GET`` lists keys without it.
* No session (header ``X-Metabase-Session``): 401 ``Unauthenticated``.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from tests.harness.http_double import HttpDouble, JsonHandler

GROUPS = [{"id": 1, "name": "All Users"}, {"id": 2, "name": "Administrators"}]


class _Handler(JsonHandler):
    double: MetabaseFirstRunDouble

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        body = self.parse_json(self.read_body())
        status, answer = self.double.handle(method, self.path, self.headers.get("X-Metabase-Session"), body)
        self.send_body(status, answer)


class MetabaseFirstRunDouble(HttpDouble):
    handler = _Handler

    def __init__(self) -> None:
        super().__init__()
        self.setup_token = str(uuid.uuid4())
        self.users: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, str] = {}
        self.api_keys: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []

    def handle(self, method: str, path: str, session: str | None, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path))
        if (method, path) == ("GET", "/api/health"):
            return 200, {"status": "ok"}
        if (method, path) == ("GET", "/api/session/properties"):
            return 200, {"setup-token": self.setup_token, "has-user-setup": bool(self.users)}
        if (method, path) == ("POST", "/api/setup"):
            if body.get("token") != self.setup_token:
                return 400, {"errors": {"token": "Token does not match the setup token."}}
            if self.users:
                return 403, "The /api/setup route can only be used to create the first user"
            user = body["user"]
            self.users[user["email"]] = {**user, "is_superuser": True}
            return 200, {"id": self._session(user["email"])}
        if (method, path) == ("POST", "/api/session"):
            user = self.users.get(body.get("username", ""))
            if user is None or user["password"] != body.get("password"):
                return 401, {"errors": {"password": "did not match stored password"}}
            return 200, {"id": self._session(user["email"])}
        email = self.sessions.get(session or "")
        if email is None:
            return 401, "Unauthenticated"
        if (method, path) == ("GET", "/api/permissions/group"):
            return 200, GROUPS
        if path.startswith("/api/api-key") and not self.users[email]["is_superuser"]:
            return 403, "You don't have permissions to do that."
        if (method, path) == ("GET", "/api/api-key"):
            return 200, [{k: v for k, v in key.items() if k != "unmasked_key"} for key in self.api_keys]
        if (method, path) == ("POST", "/api/api-key"):
            if any(key["name"] == body["name"] for key in self.api_keys):
                return 400, {"errors": {"name": "An API key with this name already exists."}}
            group = next(g for g in GROUPS if g["id"] == body["group_id"])
            key = {"id": len(self.api_keys) + 1, "name": body["name"], "group": group, "unmasked_key": _key()}
            self.api_keys.append(key)
            return 200, key
        if method == "PUT" and path.startswith("/api/api-key/") and path.endswith("/regenerate"):
            key_id = int(path.split("/")[3])
            key = next(k for k in self.api_keys if k["id"] == key_id)
            key["unmasked_key"] = _key()
            return 200, key
        return 404, "API endpoint does not exist."

    def _session(self, email: str) -> str:
        session = str(uuid.uuid4())
        self.sessions[session] = email
        return session


def _key() -> str:
    return "mb_" + secrets.token_urlsafe(32)
