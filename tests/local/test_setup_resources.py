"""The container program's set-up resources, for real, through the provider host.

``local/`` runs PostgreSQL and OpenBao in Docker, which this machine does not have; the set-up resources only
need their addresses, so here they run against the same servers started as processes on free ports:
a fresh OpenBao (not initialised) and a fresh PostgreSQL cluster (only its superuser).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from components.local import containers
from components.local.containers import PostgresSetupProvider, VaultSetupProvider
from components.local.processes import OpenBaoProcess, PostgresProcess, free_port
from tests.harness.provider_host import ProviderHost, start_provider_host, urn


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Path, OpenBaoProcess, str, PostgresProcess, int, str]]:
    base = Path(tempfile.mkdtemp(prefix="smarteros-setup-"))
    base.chmod(0o755)
    bao = OpenBaoProcess(base / "openbao")
    pg = PostgresProcess(base / "postgres")
    password = secrets.token_urlsafe(24)
    try:
        port = free_port()
        bao.write_config(port, free_port())
        bao.start(bao.address_for(port))
        pg.init("postgres", password)
        pg_port = free_port()
        pg.start(pg_port)
        yield base, bao, bao.address_for(port), pg, pg_port, password
    finally:
        bao.stop()
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def host() -> Iterator[ProviderHost]:
    with start_provider_host({}) as started:
        yield started


def test_openbao_is_initialised_set_up_and_unsealed_again_after_a_restart(servers, host: ProviderHost) -> None:
    _, bao, address, *_ = servers
    provider, name = VaultSetupProvider(), urn(containers.VaultSetup, "openbao-setup")
    inputs = {"name": "openbao-setup", "address": address, "setup": "1"}
    _, outs = host.create(provider, name, inputs)
    assert set(outs) >= {"unseal_key", "root_token", "token"}
    lookup = requests.post(
        f"{address}/v1/auth/token/lookup",
        headers={"X-Vault-Token": outs["root_token"]},
        json={"token": outs["token"]},
        timeout=5,
    ).json()["data"]
    assert lookup["policies"] == ["smarteros-provisioner"]
    assert host.diff(provider, "openbao-setup", name, outs, inputs).changes is False

    bao.stop()
    bao.start(address)
    assert requests.get(f"{address}/v1/sys/health", timeout=5).status_code == 503  # sealed after a restart
    assert host.diff(provider, "openbao-setup", name, outs, inputs).changes is True
    again = host.update(provider, "openbao-setup", name, outs, inputs)
    assert requests.get(f"{address}/v1/sys/health", timeout=5).status_code == 200
    assert again["token"] == outs["token"] and again["root_token"] == outs["root_token"]
    assert host.diff(provider, "openbao-setup", name, again, inputs).changes is False


def test_postgres_gets_readme_roles_and_metabase_its_own_database(servers, host: ProviderHost) -> None:
    *_, pg_port, admin_password = servers
    provisioner, metabase = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    inputs = {
        "name": "postgres-setup",
        "port": pg_port,
        "admin_password": admin_password,
        "provisioner_password": provisioner,
        "metabase_password": metabase,
        "setup": "1",
    }
    provider, name = PostgresSetupProvider(), urn(containers.PostgresSetup, "postgres-setup")
    _, outs = host.create(provider, name, inputs)
    assert "smarteros_provisioner" in outs["roles"]

    def login(user: str, password: str, dbname: str) -> tuple[object, ...] | None:
        conninfo = psycopg.conninfo.make_conninfo(
            host="127.0.0.1", port=pg_port, user=user, password=password, dbname=dbname, sslmode="disable"
        )
        with psycopg.connect(conninfo) as conn:
            return conn.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()

    assert login("smarteros_provisioner", provisioner, "smarteros") == ("smarteros_provisioner", False)
    assert login("metabase", metabase, "metabase") == ("metabase", False)
    with pytest.raises(psycopg.OperationalError):
        login("smarteros_provisioner", "not-the-password", "smarteros")
    # Running the set-up again changes nothing: the same passwords still log in.
    host.update(provider, "postgres-setup", name, outs, inputs)
    assert login("smarteros_provisioner", provisioner, "smarteros") == ("smarteros_provisioner", False)
