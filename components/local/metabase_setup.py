"""Metabase's first run, done by a program: the first administrator, then an Administrators API key.

Endpoints (Metabase's source, ``metabase.setup.api`` and ``metabase.api-keys.api``):

* ``GET /api/session/properties`` carries the public settings ``setup-token`` and ``has-user-setup``
  (``metabase.setup.settings``); ``POST /api/setup`` answers 403 once a user exists.
* ``POST /api/setup`` with ``token``, ``user`` (first/last name, email, password) and ``prefs`` (``site_name``,
  ``allow_tracking``) creates that administrator and answers a session ``id``.
* ``POST /api/session`` with ``username``/``password`` logs in later (a second run).
* ``GET /api/permissions/group`` lists groups; "Administrators" is built in.
* ``POST /api/api-key`` with ``group_id`` and ``name`` (superusers only; names are unique) answers the key once
  as ``unmasked_key``; ``PUT /api/api-key/:id/regenerate`` issues a new one for an existing name.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from components.local.steps import SetupError

ADMIN_GROUP = "Administrators"


def _call(method: str, url: str, *, session: str | None = None, json: Any = None, timeout: float = 30.0) -> Any:
    headers = {"X-Metabase-Session": session} if session else {}
    answer = requests.request(method, url, headers=headers, json=json, timeout=timeout)
    if answer.status_code >= 400:
        raise SetupError(f"Metabase {method} {url.split('/api/', 1)[-1]} answered {answer.status_code}")
    return answer.json() if answer.content else None


def wait_until_healthy(url: str, timeout: float = 300.0) -> None:
    """Metabase migrates its application database on first start; ``/api/health`` says when it is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/api/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise SetupError(f"Metabase at {url} did not become healthy within {timeout:.0f} s")


def first_run(url: str, *, email: str, password: str, site_name: str, key_name: str) -> str:
    """Set Metabase up (or log in when it already is) and return a fresh Administrators API key."""
    wait_until_healthy(url)
    properties = _call("GET", f"{url}/api/session/properties")
    token = properties.get("setup-token")
    if token and not properties.get("has-user-setup"):
        session = _call(
            "POST",
            f"{url}/api/setup",
            json={
                "token": token,
                "user": {"first_name": "Platform", "last_name": "Admin", "email": email, "password": password},
                "prefs": {"site_name": site_name, "allow_tracking": False},
            },
        )["id"]
    else:
        session = _call("POST", f"{url}/api/session", json={"username": email, "password": password})["id"]
    groups = _call("GET", f"{url}/api/permissions/group", session=session)
    admins = next((g["id"] for g in groups if g.get("name") == ADMIN_GROUP), None)
    if admins is None:
        raise SetupError(f"Metabase at {url} has no {ADMIN_GROUP} group")
    existing = next(
        (k for k in _call("GET", f"{url}/api/api-key", session=session) if k.get("name") == key_name), None
    )
    if existing is not None:
        created = _call("PUT", f"{url}/api/api-key/{existing['id']}/regenerate", session=session)
    else:
        created = _call("POST", f"{url}/api/api-key", session=session, json={"group_id": admins, "name": key_name})
    return str(created["unmasked_key"])
