"""One tenant's view of the platform, as the tenant: what its own credentials reach, and what they do not.

``python -m components local tenant SLUG`` logs in to Vault through the tenant's AppRole (an operator issues
the secret-id with the administrator's token, as a deployment would), lists and reads the tenant's own
secrets, reads its database login from its own ``postgres`` secret, then queries PostgreSQL as that role.
It also tries what isolation forbids: another tenant's Vault subtree, and another tenant's rows. Only key
names, counts and the server's answers are printed, never a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import requests
from psycopg import sql

from components import naming
from components.spec import TenantSpec, load_tenants

OTHER_RUT = "0-0"  # never a tenant (the validator accepts it as a RUT, no tenant file uses it)


@dataclass(frozen=True)
class Target:
    """Where the platform answers, and the operator token that issues the tenant's secret-id."""

    vault_address: str
    admin_token: str
    postgres_host: str
    postgres_port: int
    database: str
    mount: str = "secret"


def find_tenant(slug: str, tenants_dir: Path) -> TenantSpec:
    path = tenants_dir / f"{slug}.yaml"
    if not path.is_file():
        raise LookupError(f"no tenant file {path}")
    return load_tenants([str(path)])[0]


def _vault(target: Target, method: str, path: str, token: str, json: Any = None) -> requests.Response:
    return requests.request(
        method, f"{target.vault_address}/v1/{path}", headers={"X-Vault-Token": token}, json=json, timeout=10
    )


def _ok(answer: requests.Response, what: str) -> Any:
    if answer.status_code >= 400:
        raise LookupError(f"{what}: Vault answered {answer.status_code}")
    return answer.json()


def tenant_login(target: Target, rut: str) -> dict[str, Any]:
    """The ``auth`` of an AppRole login as the tenant (role-id + a fresh secret-id): token and policies."""
    role = naming.vault_policy_name(rut)
    answer = _vault(target, "GET", f"auth/approle/role/{role}/role-id", target.admin_token)
    if answer.status_code == 404:
        raise LookupError(f"tenant {rut} has no AppRole {role} yet: converge the dev stack first (./scripts/up)")
    role_id = _ok(answer, f"AppRole {role}")
    secret_id = _ok(_vault(target, "POST", f"auth/approle/role/{role}/secret-id", target.admin_token), "secret-id")
    login = requests.post(
        f"{target.vault_address}/v1/auth/approle/login",
        json={"role_id": role_id["data"]["role_id"], "secret_id": secret_id["data"]["secret_id"]},
        timeout=10,
    )
    return dict(_ok(login, f"AppRole {role} login")["auth"])


def view(spec: TenantSpec, target: Target) -> list[str]:
    """The lines ``local tenant`` prints."""
    rut, mount = spec.rut, target.mount
    lines = [f"Tenant {spec.slug} (RUT {rut}), with its own credentials only:"]
    auth = tenant_login(target, rut)
    token = str(auth["client_token"])
    lines.append(f"  Vault: logged in through AppRole {naming.vault_policy_name(rut)}; policies {auth['policies']}")
    listed = _ok(_vault(target, "LIST", f"{mount}/metadata/tenants/{rut}", token), "list")["data"]["keys"]
    login: dict[str, str] = {}
    for service in listed:
        data = _ok(_vault(target, "GET", f"{mount}/data/tenants/{rut}/{service}", token), service)["data"]["data"]
        lines.append(f"    reads {mount}/tenants/{rut}/{service}: keys {', '.join(sorted(data))}")
        if service == "postgres":
            login = data
    other = _vault(target, "GET", f"{mount}/data/tenants/{OTHER_RUT}/postgres", token).status_code
    every = _vault(target, "LIST", f"{mount}/metadata/tenants", token).status_code
    lines.append(f"    another tenant's secret {mount}/tenants/{OTHER_RUT}/postgres: answered {other}")
    lines.append(f"    the list of all tenants {mount}/tenants/: answered {every}")
    if not login:
        lines.append("  PostgreSQL: no postgres secret for this tenant (not converged yet?)")
        return lines
    conninfo = psycopg.conninfo.make_conninfo(
        host=target.postgres_host,
        port=target.postgres_port,
        dbname=target.database,
        user=login["username"],
        password=login["password"],
        sslmode="disable",
        connect_timeout=10,
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        user = conn.execute("SELECT current_user").fetchone()
        lines.append(f"  PostgreSQL: logged in as {user[0] if user else '?'} with the login from its own secret")
        for table in spec.database.tables:
            try:
                rows = conn.execute(
                    sql.SQL("SELECT tenant_rut, count(*) FROM {} GROUP BY tenant_rut ORDER BY 1").format(
                        sql.Identifier(table)
                    )
                ).fetchall()
            except psycopg.Error as exc:
                lines.append(f"    {table}: {exc.diag.message_primary}")
                continue
            seen = ", ".join(f"{count} of {owner}" for owner, count in rows) or "no rows yet"
            lines.append(f"    rows it sees in {table}: {seen}")
        for table in spec.database.tables[:1]:
            query = sql.SQL("SELECT count(*) FROM {} WHERE tenant_rut <> %s").format(sql.Identifier(table))
            try:
                found = conn.execute(query, (rut,)).fetchone()
                lines.append(f"    rows of other tenants it can see in {table}: {found[0] if found else '?'}")
            except psycopg.Error as exc:
                lines.append(f"    rows of other tenants in {table}: {exc.diag.message_primary}")
    return lines
