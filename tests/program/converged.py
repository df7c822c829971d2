"""What the converge tests look at on the servers, each as the identity that matters.

Vault as root (the operator) or as a tenant's AppRole, PostgreSQL as the superuser or as a tenant role with
the login it reads from Vault, Metabase through its API with the administrator's key.
"""

from __future__ import annotations

from typing import Any

import psycopg
import requests

from components import naming
from components.spec import TenantSpec
from tests.harness.converge import DBNAME, Servers

MOUNT = "secret"


def metabase(servers: Servers, path: str) -> Any:
    answer = requests.get(f"{servers.metabase.url}{path}", headers={"x-api-key": servers.metabase.api_key}, timeout=10)
    assert answer.status_code == 200, f"GET {path} answered {answer.status_code}"
    return answer.json()


def vault(servers: Servers, method: str, path: str, *, token: str | None = None, json: Any = None) -> requests.Response:
    return requests.request(
        method,
        f"{servers.openbao.address}/v1/{path}",
        headers={"X-Vault-Token": token or servers.openbao.root_token},
        json=json,
        timeout=10,
    )


def approle_token(servers: Servers, rut: str) -> str:
    """Log in as the tenant's AppRole: its role-id, and a fresh secret-id minted by the operator (root)."""
    role = naming.vault_policy_name(rut)
    role_id = vault(servers, "GET", f"auth/approle/role/{role}/role-id").json()["data"]["role_id"]
    secret_id = vault(servers, "POST", f"auth/approle/role/{role}/secret-id").json()["data"]["secret_id"]
    login = vault(servers, "POST", "auth/approle/login", json={"role_id": role_id, "secret_id": secret_id})
    assert login.status_code == 200, f"tenant {rut}: AppRole login answered {login.status_code}: {login.text}"
    return str(login.json()["auth"]["client_token"])


def database_login(servers: Servers, rut: str) -> dict[str, str]:
    """The tenant's database login, read from Vault with the tenant's own AppRole token."""
    token = approle_token(servers, rut)
    answer = vault(servers, "GET", f"{MOUNT}/data/{naming.vault_secret_path(rut, 'postgres')}", token=token)
    assert answer.status_code == 200, f"tenant {rut}: reading its postgres secret answered {answer.status_code}"
    return dict(answer.json()["data"]["data"])


def connect_as(servers: Servers, login: dict[str, str]) -> psycopg.Connection[Any]:
    return servers.postgres.connect(user=login["username"], password=login["password"], dbname=DBNAME)


def secret_values(servers: Servers, tenants: list[TenantSpec]) -> dict[str, dict[str, str]]:
    """Every tenant secret's live data, read as root: ``{<rut>/<service>: data}``."""
    found = {}
    for spec in tenants:
        for service in [*spec.secrets, "postgres"]:
            answer = vault(servers, "GET", f"{MOUNT}/data/{naming.vault_secret_path(spec.rut, service)}")
            assert answer.status_code == 200, (spec.rut, service, answer.status_code)
            found[f"{spec.rut}/{service}"] = dict(answer.json()["data"]["data"])
    return found


def inventory(servers: Servers) -> dict[str, Any]:
    """What exists on every server, counted so a duplicate shows."""
    with servers.postgres.connect(dbname=DBNAME) as admin:
        roles = sorted(
            r[0]
            for r in admin.execute(
                "SELECT m.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid"
                " JOIN pg_roles m ON m.oid = a.member WHERE g.rolname = 'tenant_members' AND m.rolcanlogin"
                " AND m.rolname <> 'smarteros_provisioner'"
            )
        )
        registry = sorted(r[0] for r in admin.execute("SELECT rut FROM tenants"))
        bindings = sorted(tuple(r) for r in admin.execute("SELECT role_name, tenant_rut FROM tenant_roles"))
    policies = sorted(vault(servers, "LIST", "sys/policies/acl").json()["data"]["keys"])
    approles = sorted(vault(servers, "LIST", "auth/approle/role").json()["data"]["keys"])
    groups = sorted(g["name"] for g in metabase(servers, "/api/permissions/group"))
    ids = sorted(metabase(servers, "/api/collection/graph")["groups"]["1"])
    found = [metabase(servers, f"/api/collection/{cid}") for cid in ids if cid != "root"]
    collections = sorted(c["name"] for c in found if not c.get("archived"))
    listed = metabase(servers, "/api/database")
    databases = sorted(d["name"] for d in (listed["data"] if isinstance(listed, dict) else listed))
    return {
        "roles": roles,
        "registry": registry,
        "bindings": bindings,
        "policies": policies,
        "approles": approles,
        "groups": groups,
        "collections": collections,
        "databases": databases,
    }
