"""A minimal dynamic provider for the harness self-tests: notes stored on a small HTTP notes service.

The service URL comes from ``smarteros:demo`` (``{"url": ...}``) and its bearer token from the secret
``smarteros:demoToken``, both read in :meth:`NoteProvider.configure`; the provider object built in a program
carries neither.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import requests
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)
from pulumi.output import Unknown

from components.config import PROJECT

MARKER = "managed-by-smarteros"
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


class NotesServiceError(Exception):
    """The notes service refused a request."""


class NoteProvider(ResourceProvider):
    """Notes ``{name, text}`` kept by the notes service; ``name`` is the identity."""

    url: str
    token: str

    def configure(self, req: ConfigureRequest) -> None:
        import json

        raw = req.config.get(f"{PROJECT}:demo")
        section = json.loads(raw) if isinstance(raw, str) else (raw or {})
        self.url = str(section.get("url", "http://127.0.0.1:9"))
        self.token = str(req.config.get(f"{PROJECT}:demoToken") or "")

    # -- notes service client -------------------------------------------------------------------

    def _request(self, method: str, name: str, body: dict[str, Any] | None = None) -> requests.Response:
        path = f"/notes/{quote(name, safe='')}"
        response = requests.request(
            method,
            self.url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        if response.status_code >= 400 and not (method in {"GET", "DELETE"} and response.status_code == 404):
            raise NotesServiceError(
                f"note {name}: notes service {method} {path} -> "
                f"{response.status_code} {response.text.strip()}"
            ) from None
        return response

    # -- provider methods ---------------------------------------------------------------------------

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        name = news.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            failures.append(
                CheckFailure("name", f"{name!r} is not a note name (lower-case letters, digits, -)")
            )
        if not isinstance(news.get("text"), str | Unknown):  # unknown until apply during a preview
            failures.append(CheckFailure("text", "text is required"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in ("name",) if olds.get(key) != news.get(key)]
        changed = [key for key in ("name", "text") if olds.get(key) != news.get(key)]
        return DiffResult(
            changes=bool(changed),
            replaces=replaces,
            stables=["name"] if not replaces else [],
            delete_before_replace=False,
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        name = props["name"]
        existing = self._request("GET", name)
        if existing.status_code == 200 and existing.json().get("marker") != MARKER:
            raise NotesServiceError(
                f"note {name}: exists and is not managed by this stack; "
                "adopt it with the import_ resource option"
            )
        saved = self._request("PUT", name, {"text": props["text"], "marker": MARKER}).json()
        return CreateResult(name, {**props, "revision": saved["revision"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        response = self._request("GET", id_)
        if response.status_code == 404:
            return ReadResult("", {})
        live = response.json()
        return ReadResult(id_, {**props, "name": id_, "text": live["text"], "revision": live["revision"]})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        saved = self._request("PUT", news["name"], {"text": news["text"], "marker": MARKER}).json()
        return UpdateResult({**news, "revision": saved["revision"]})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self._request("DELETE", id_)
        print(f"deleted note {id_}")


class Note(Resource, module="demo", name="Note"):
    """A note on the notes service (used by the harness self-tests only)."""
