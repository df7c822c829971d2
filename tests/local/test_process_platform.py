"""The local platform as processes, for real: Debian's PostgreSQL and OpenBao from PyPI, set up as README says.

``python -m components local up`` starts both in a fresh directory and bootstraps them; the dev stack's
providers then converge one tenant (Vault secret, policy, AppRole; PostgreSQL schema, registry row, role,
grants, binding) through the real provider host, with nothing but the environment the command wrote.
``down`` leaves no process and no listening port; the next ``up`` finds the tenant's data again.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from components import local
from components.catalog import TENANT_TABLES
from components.database import schema_files
from components.local import tenant_view
from components.local.processes import OpenBaoProcess, PostgresProcess, port_in_use
from components.providers.postgres import (
    SharedSchemaProvider,
    TableGrantsProvider,
    TenantBindingProvider,
    TenantRecordProvider,
    TenantRoleProvider,
)
from components.providers.vault import AppRoleProvider, PolicyProvider, SecretProvider, VaultAppRole, VaultPolicy
from components.providers.vault import VaultSecret as VaultSecretResource
from tests.harness.provider_host import ProviderHost, start_provider_host, urn
from tests.postgres.conftest import STACK, binding_props, grant_props, record_props, role_props

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "components", "local", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def platform_dir() -> Iterator[tuple[Path, subprocess.CompletedProcess[str]]]:
    # Not pytest's tmp_path: its parents are private to root, and the postgres account must reach the cluster.
    directory = Path(tempfile.mkdtemp(prefix="smarteros-local-"))
    directory.chmod(0o755)
    try:
        first = run_cli("up", "--dir", str(directory), "--postgres-port", "0", "--vault-port", "0")
        assert first.returncode == 0, first.stderr
        yield directory, first
    finally:
        local.stop(directory)
        shutil.rmtree(directory, ignore_errors=True)


def read_env(directory: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in (directory / local.ENV_FILE).read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value.strip("'")
    return env


def test_up_prints_addresses_and_keeps_every_credential_in_owner_only_files(platform_dir) -> None:
    directory, first = platform_dir
    env = read_env(directory)
    assert set(env) == {"PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSSLMODE"} | {
        "VAULT_ADDR",
        "VAULT_TOKEN",
    }
    assert f"PostgreSQL: 127.0.0.1:{env['PGPORT']} database smarteros" in first.stdout
    assert f"OpenBao:    {env['VAULT_ADDR']}" in first.stdout
    assert "Metabase: off" in first.stdout
    secrets = [env["PGPASSWORD"], env["VAULT_TOKEN"], *local.start(directory).admin_secrets().values()]
    for secret in secrets:
        assert len(secret) >= 16
        assert secret not in first.stdout + first.stderr
    for name in (local.ENV_FILE, local.STATE_FILE):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600

    status = run_cli("status", "--dir", str(directory))
    assert status.returncode == 0
    assert f"PostgreSQL: running on 127.0.0.1:{env['PGPORT']}" in status.stdout
    assert all(secret not in status.stdout for secret in secrets)


def test_the_provisioning_identities_are_not_administrators(platform_dir) -> None:
    directory, _ = platform_dir
    env = read_env(directory)
    with psycopg.connect(
        host=env["PGHOST"], port=env["PGPORT"], dbname=env["PGDATABASE"], user=env["PGUSER"],
        password=env["PGPASSWORD"], autocommit=True,
    ) as conn:
        assert conn.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone() == (
            False,
            False,
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE ROLE attacker SUPERUSER LOGIN")
    headers = {"X-Vault-Token": env["VAULT_TOKEN"]}
    root = {"X-Vault-Token": local.start(directory).admin_secrets()["vault_root_token"]}
    me = requests.post(
        f"{env['VAULT_ADDR']}/v1/auth/token/lookup", headers=root, json={"token": env["VAULT_TOKEN"]}, timeout=5
    ).json()["data"]
    assert me["policies"] == ["smarteros-provisioner"] and me["period"] > 0
    # A token that may write any ACL policy could grant itself anything: the provisioner's cannot.
    grab = requests.put(
        f"{env['VAULT_ADDR']}/v1/sys/policies/acl/admin",
        headers=headers,
        json={"policy": 'path "*" { capabilities = ["sudo", "read", "create", "update", "delete", "list"] }'},
        timeout=5,
    )
    assert grab.status_code == 403


def converge_tenant(host: ProviderHost, rut: str) -> dict[str, dict[str, Any]]:
    """What the dev stack registers for one tenant, in dependency order; the outputs by resource."""
    def create(key: str, provider: Any, resource_urn: str, inputs: dict[str, Any]) -> None:
        checked = host.check(provider, resource_urn, {}, inputs)
        assert checked.failures == [], (key, checked.failures)
        _, outputs[key] = host.create(provider, resource_urn, checked.inputs)

    outputs: dict[str, dict[str, Any]] = {}
    postgres = "pulumi-python:dynamic/postgres:"
    create("schema", SharedSchemaProvider(), urn(f"{postgres}SharedSchema", "platform-schema"),
           {"files": schema_files(), "tenant_tables": list(TENANT_TABLES), "stack": STACK})
    create("record", TenantRecordProvider(), urn(f"{postgres}TenantRecord", f"{rut}-record"), record_props(rut, "demo"))
    create("role", TenantRoleProvider(), urn(f"{postgres}TenantRole", f"{rut}-role"), role_props(rut))
    role_name = outputs["role"]["role_name"]  # the database names the role (a keyed hash of the RUT)
    create("grants", TableGrantsProvider(), urn(f"{postgres}TableGrants", f"{rut}-grants"),
           grant_props(rut, role_name=role_name))
    create("binding", TenantBindingProvider(), urn(f"{postgres}TenantBinding", f"{rut}-binding"),
           binding_props(rut, role_name=role_name))
    create("secret", SecretProvider(), urn(VaultSecretResource, f"{rut}-chatwoot"),
           {"rut": rut, "service": "chatwoot", "mount": "secret", "stack": STACK,
            "generate": ["secret_key_base"], "external": [], "rotate": 0, "provided": {}})
    create("policy", PolicyProvider(), urn(VaultPolicy, f"{rut}-policy"), {"rut": rut, "stack": STACK})
    # The tenant's database login in its own Vault subtree, as the Tenant component stores it.
    login = {"username": outputs["role"]["role_name"], "password": outputs["role"]["password"]}
    postgres_secret = {"rut": rut, "service": "postgres", "mount": "secret", "stack": STACK,
                       "generate": [], "external": [], "rotate": 0, "provided": login}
    _, outputs["postgres"] = host.create(SecretProvider(), urn(VaultSecretResource, f"{rut}-postgres"), postgres_secret)
    approle = {"rut": rut, "policy": outputs["policy"]["name"]}
    _, outputs["approle"] = host.create(AppRoleProvider(), urn(VaultAppRole, f"{rut}-approle"), approle)
    return outputs


def tenant_vault_token(address: str, root_token: str, role: str) -> str:
    """Log in through the tenant's AppRole, as the tenant's application would."""
    admin = {"X-Vault-Token": root_token}
    role_id = requests.get(f"{address}/v1/auth/approle/role/{role}/role-id", headers=admin, timeout=5)
    secret_id = requests.post(f"{address}/v1/auth/approle/role/{role}/secret-id", headers=admin, timeout=5)
    login = requests.post(
        f"{address}/v1/auth/approle/login",
        json={"role_id": role_id.json()["data"]["role_id"], "secret_id": secret_id.json()["data"]["secret_id"]},
        timeout=5,
    )
    return str(login.json()["auth"]["client_token"])


def test_the_dev_stack_converges_stops_without_a_trace_and_finds_its_data_again(platform_dir) -> None:
    directory, _ = platform_dir
    env = read_env(directory)
    rut, other = "11111111-1", tenant_view.OTHER_RUT  # tenants/demo.yaml, and a RUT no tenant uses
    # Only the environment `local up` wrote: no stack config at all.
    with start_provider_host({}, env=env) as host:
        outputs = converge_tenant(host, rut)
        other_record = record_props(other, "other-tenant")
        host.create(TenantRecordProvider(), urn("pulumi-python:dynamic/postgres:TenantRecord", "other"), other_record)
    platform = local.start(directory)
    root_token = platform.admin_secrets()["vault_root_token"]
    with psycopg.connect(platform.postgres_admin().conninfo("smarteros"), autocommit=True) as admin:
        for owner, count in ((rut, 2), (other, 3)):
            for n in range(count):
                admin.execute("INSERT INTO contacts (tenant_rut, name) VALUES (%s, %s)", (owner, f"c{n}"))
    address = env["VAULT_ADDR"]
    requests.post(  # another tenant's secret, written by the administrator
        f"{address}/v1/secret/data/tenants/{other}/chatwoot",
        headers={"X-Vault-Token": root_token},
        json={"data": {"k": "not yours"}},
        timeout=5,
    ).raise_for_status()

    token = tenant_vault_token(address, root_token, outputs["approle"]["name"])
    own = requests.get(f"{address}/v1/secret/data/tenants/{rut}/chatwoot", headers={"X-Vault-Token": token}, timeout=5)
    assert own.status_code == 200 and set(own.json()["data"]["data"]) == {"secret_key_base"}
    theirs = requests.get(
        f"{address}/v1/secret/data/tenants/{other}/chatwoot", headers={"X-Vault-Token": token}, timeout=5
    )
    assert theirs.status_code == 403

    shown = run_cli("tenant", "demo", "--dir", str(directory))
    assert shown.returncode == 0, shown.stderr
    assert f"Vault: logged in through AppRole tenant-{rut}; policies ['tenant-{rut}']" in shown.stdout
    assert f"reads secret/tenants/{rut}/postgres: keys password, username" in shown.stdout
    assert f"another tenant's secret secret/tenants/{other}/postgres: answered 403" in shown.stdout
    assert f"PostgreSQL: logged in as {outputs['role']['role_name']} with the login from its own secret" in shown.stdout
    assert f"rows it sees in contacts: 2 of {rut}" in shown.stdout
    assert "rows of other tenants it can see in contacts: 0" in shown.stdout
    assert outputs["role"]["password"] not in shown.stdout and root_token not in shown.stdout

    tenant_conninfo = psycopg.conninfo.make_conninfo(
        host=env["PGHOST"], port=env["PGPORT"], dbname=env["PGDATABASE"], sslmode="disable",
        user=outputs["role"]["role_name"], password=outputs["role"]["password"],
    )
    with psycopg.connect(tenant_conninfo, autocommit=True) as conn:
        conn.execute("INSERT INTO audit_logs (tenant_rut, actor, action) VALUES (%s, 'me', 'kept')", (rut,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO audit_logs (tenant_rut, actor, action) VALUES (%s, 'me', 'x')", (other,))

    # down: no process of the directory and no listening port remain.
    pg_pid = int((directory / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
    bao_pid = OpenBaoProcess(directory / "openbao").pid()
    assert bao_pid is not None
    down = run_cli("down", "--dir", str(directory))
    assert down.returncode == 0 and "stopped: OpenBao, PostgreSQL" in down.stdout
    for pid in (pg_pid, bao_pid):
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    assert not port_in_use(int(env["PGPORT"])) and not port_in_use(int(address.rsplit(":", 1)[1]))
    assert not PostgresProcess(directory / "postgres").running()
    assert run_cli("status", "--dir", str(directory)).returncode == 3

    # up again: same ports, same credentials, the tenant's secret and rows are still there.
    again = local.start(directory)
    assert again.reused and again.env() == env
    token = tenant_vault_token(address, again.admin_secrets()["vault_root_token"], outputs["approle"]["name"])
    own_again = requests.get(
        f"{address}/v1/secret/data/tenants/{rut}/chatwoot", headers={"X-Vault-Token": token}, timeout=5
    )
    assert own_again.json()["data"]["data"] == own.json()["data"]["data"]
    with psycopg.connect(tenant_conninfo, autocommit=True) as conn:
        assert conn.execute("SELECT action FROM audit_logs").fetchall() == [("kept",)]
        assert conn.execute("SELECT count(*) FROM contacts").fetchone() == (2,)
    assert os.environ.get("VAULT_TOKEN") != env["VAULT_TOKEN"]
