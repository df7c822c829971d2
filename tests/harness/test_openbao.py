"""The OpenBao harness: a real Vault-API server on a free local port, set up as the Vault tests expect."""

from __future__ import annotations

import hvac
import pytest
import requests

from tests.harness.openbao import OpenBaoServer, openbao_server


def test_server_answers_with_approle_and_kv_v2(openbao_server: OpenBaoServer) -> None:
    client = hvac.Client(url=openbao_server.address, token=openbao_server.root_token, timeout=10)
    assert client.sys.is_initialized() and not client.sys.is_sealed()
    assert "approle/" in client.sys.list_auth_methods()["data"]
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    assert mounts["secret/"]["type"] == "kv" and mounts["secret/"]["options"]["version"] == "2"
    assert openbao_server.host == "127.0.0.1"
    assert openbao_server.root_token not in repr(openbao_server)


def test_a_wrong_token_is_refused(openbao_server: OpenBaoServer) -> None:
    answer = requests.get(
        f"{openbao_server.address}/v1/secret/data/anything", headers={"X-Vault-Token": "not-a-token"}, timeout=5
    )
    assert answer.status_code == 403


def test_seal_and_unseal_on_demand() -> None:
    with openbao_server() as server:
        server.seal()
        sealed = requests.get(
            f"{server.address}/v1/secret/data/x", headers={"X-Vault-Token": server.root_token}, timeout=5
        )
        assert sealed.status_code == 503
        server.unseal()
        client = hvac.Client(url=server.address, token=server.root_token, timeout=10)
        assert not client.sys.is_sealed()


def test_stop_removes_everything_and_frees_the_port() -> None:
    with openbao_server() as server:
        base_dir, address = server.base_dir, server.address
    assert not base_dir.exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{address}/v1/sys/health", timeout=2)
