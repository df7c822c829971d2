"""The test double answers as Vault documents it, through the same client an operator uses (hvac)."""

from __future__ import annotations

import hvac
import pytest

from tests.vault.conftest import VaultTarget, fresh_rut


def test_kv_versions_check_and_set_and_custom_metadata(vault: VaultTarget):
    kv = vault.operator().secrets.kv.v2
    path = f"tenants/{fresh_rut()}/odoo"
    assert kv.create_or_update_secret(path=path, secret={"a": "1"}, cas=0, mount_point="secret")["data"]["version"] == 1
    with pytest.raises(hvac.exceptions.InvalidRequest) as mismatch:
        kv.create_or_update_secret(path=path, secret={"a": "2"}, cas=0, mount_point="secret")
    assert mismatch.value.errors == ["check-and-set parameter did not match the current version"]
    assert kv.create_or_update_secret(path=path, secret={"a": "2"}, cas=1, mount_point="secret")["data"]["version"] == 2
    vault.operator().adapter.post(f"/v1/secret/metadata/{path}", json={"custom_metadata": {"owner": "x"}})
    meta = kv.read_secret_metadata(path=path, mount_point="secret")["data"]
    assert meta["current_version"] == 2 and sorted(meta["versions"]) == ["1", "2"]
    assert meta["custom_metadata"] == {"owner": "x"}
    read = kv.read_secret_version(path=path, version=1, mount_point="secret", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"a": "1"}


def test_kv_deleted_latest_version_reads_as_absent_and_metadata_delete_removes_everything(vault: VaultTarget):
    kv = vault.operator().secrets.kv.v2
    path = f"tenants/{fresh_rut()}/odoo"
    kv.create_or_update_secret(path=path, secret={"a": "1"}, mount_point="secret")
    kv.delete_latest_version_of_secret(path=path, mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
    assert kv.read_secret_metadata(path=path, mount_point="secret")["data"]["current_version"] == 1
    kv.delete_metadata_and_all_versions(path=path, mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata(path=path, mount_point="secret")


def test_policy_names_are_stored_lower_case(vault: VaultTarget):
    rut = fresh_rut("K")
    client = vault.operator()
    client.sys.create_or_update_acl_policy(name=f"Tenant-{rut}", policy='path "x/*" {\n  capabilities = ["read"]\n}\n')
    assert client.sys.read_acl_policy(f"tenant-{rut.lower()}")["data"]["name"] == f"tenant-{rut.lower()}"
    client.sys.delete_acl_policy(f"tenant-{rut.lower()}")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.sys.read_acl_policy(f"tenant-{rut.lower()}")


def test_a_bad_token_is_refused(vault: VaultTarget):
    with pytest.raises(hvac.exceptions.Forbidden) as refused:
        vault.operator("hvs.wrong").sys.read_acl_policy("default")
    assert refused.value.errors == ["permission denied"]


def test_a_sealed_double_answers_503(vault_double):
    vault_double.sealed = True
    try:
        with pytest.raises(hvac.exceptions.VaultDown) as down:
            hvac.Client(url=vault_double.address, token=vault_double.root_token).sys.read_acl_policy("x")
        assert down.value.errors == ["Vault is sealed"]
    finally:
        vault_double.sealed = False
