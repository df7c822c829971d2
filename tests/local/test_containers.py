"""The ``local`` Pulumi project (containers) under Pulumi mocks: what it would run, and what it exports."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pulumi.runtime import rpc

from components.graph import ProgramRun, execute
from components.local.containers import METABASE_IMAGE, OPENBAO_IMAGE, POSTGRES_IMAGE, SECRET_EXPORTS, VOLUMES, main
from tests.harness.mocks import by_type, one

CONTAINER = "docker:index/container:Container"


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return execute(main, stack="local")


def test_exactly_three_containers_on_one_network_from_pinned_images(run: ProgramRun) -> None:
    containers = by_type(run.resources, CONTAINER)
    names = sorted(c.inputs["name"] for c in containers)
    assert names == ["smarteros-metabase", "smarteros-openbao", "smarteros-postgres"]
    images = by_type(run.resources, "docker:index/remoteImage:RemoteImage")
    assert sorted(i.inputs["name"] for i in images) == sorted([POSTGRES_IMAGE, OPENBAO_IMAGE, METABASE_IMAGE])
    for image in images:  # an exact release (15.8, 2.7.2, v0.56.4), never a moving tag such as latest or 15
        assert re.fullmatch(r"[a-z/]+:v?\d+\.\d+(\.\d+)?(-[a-z]+)?", image.inputs["name"]), image.inputs["name"]
    for container in containers:
        assert container.inputs["image"] in {POSTGRES_IMAGE, OPENBAO_IMAGE, METABASE_IMAGE}
        assert [n["name"] for n in container.inputs["networksAdvanced"]] == ["smarteros-local"]
        assert container.inputs["healthcheck"]["tests"], container.name
    assert [n.inputs["name"] for n in by_type(run.resources, "docker:index/network:Network")] == ["smarteros-local"]


def test_every_port_is_published_on_loopback_only(run: ProgramRun) -> None:
    published = {
        c.inputs["name"]: [(p["ip"], int(p["external"])) for p in c.inputs["ports"]]
        for c in by_type(run.resources, CONTAINER)
    }
    assert published == {
        "smarteros-postgres": [("127.0.0.1", 5432)],
        "smarteros-openbao": [("127.0.0.1", 8200)],
        "smarteros-metabase": [("127.0.0.1", 3000)],
    }


def test_postgres_keeps_its_data_in_a_named_volume_and_metabase_uses_it(run: ProgramRun) -> None:
    postgres = one(run.resources, type=CONTAINER, name="postgres")
    assert postgres.inputs["volumes"] == [
        {"volumeName": "smarteros-postgres-data", "containerPath": "/var/lib/postgresql/data"}
    ]
    volumes = by_type(run.resources, "docker:index/volume:Volume")
    assert sorted(v.inputs["name"] for v in volumes) == sorted(VOLUMES)
    assert all(v.options.retain_on_delete for v in volumes)  # ./scripts/down keeps data unless --volumes
    metabase = one(run.resources, type=CONTAINER, name="metabase")
    assert rpc.is_rpc_secret(metabase.inputs["envs"])  # the encryption key and the database password
    envs = dict(item.split("=", 1) for item in metabase.inputs["envs"]["value"])
    assert envs["MB_DB_TYPE"] == "postgres" and envs["MB_DB_HOST"] == "postgres"
    assert "MB_ENCRYPTION_SECRET_KEY" in envs
    key = one(run.resources, type="random:index/randomPassword:RandomPassword", name="metabase-encryption-key")
    assert key.inputs["length"] >= 32


def test_the_set_up_runs_after_its_server_and_metabase_after_the_database_set_up(run: ProgramRun) -> None:
    urns = {r.name: r.urn for r in run.resources}
    depends = {r.name: r.options.depends_on for r in run.resources}
    assert urns["postgres"] in depends["postgres-setup"]
    assert urns["openbao"] in depends["openbao-setup"]
    assert urns["postgres-setup"] in depends["metabase"]
    assert urns["metabase"] in depends["metabase-setup"]
    vault = one(run.resources, name="openbao-setup")
    assert set(vault.options.additional_secret_outputs) >= {"unseal_key", "root_token", "token"}
    assert "api_key" in one(run.resources, name="metabase-setup").options.additional_secret_outputs


def test_credentials_are_exported_only_as_secrets(run: ProgramRun) -> None:
    outputs: dict[str, Any] = run.stack_outputs
    assert set(SECRET_EXPORTS) <= set(outputs)
    for key, value in outputs.items():
        if key in SECRET_EXPORTS:
            assert rpc.is_rpc_secret(value), key
        else:
            assert isinstance(value, str) and not rpc.is_rpc_secret(value), key
    assert outputs["metabaseUrl"] == "http://127.0.0.1:3000"
    assert outputs["vaultAddress"] == "http://127.0.0.1:8200"
