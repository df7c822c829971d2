"""Facts about the Vault API that the providers rely on (DESIGN.md section 6), checked on the server under
test through the same client an operator uses (hvac), so a server that answers otherwise fails here first."""

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


def test_policy_and_approle_names_are_stored_lower_case(vault: VaultTarget):
    rut = fresh_rut("K")
    client = vault.operator()
    client.sys.create_or_update_acl_policy(name=f"Tenant-{rut}", policy='path "x/*" {\n  capabilities = ["read"]\n}\n')
    assert client.sys.read_acl_policy(f"tenant-{rut.lower()}")["data"]["name"] == f"tenant-{rut.lower()}"
    client.sys.delete_acl_policy(f"tenant-{rut.lower()}")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.sys.read_acl_policy(f"tenant-{rut.lower()}")
    client.auth.approle.create_or_update_approle(f"Tenant-{rut}", token_policies="x")
    assert f"tenant-{rut.lower()}" in client.auth.approle.list_roles()["data"]["keys"]
    client.auth.approle.delete_role(f"tenant-{rut.lower()}")


def test_a_bad_token_is_refused_plainly_and_a_missing_capability_with_a_wrapped_message(vault: VaultTarget):
    bad = vault.call("GET", "sys/policies/acl/default", "hvs.wrong")
    assert (bad.status_code, bad.json()) == (403, {"errors": ["permission denied"]})
    limited = vault.token_with_policies("no-such-policy")
    denied = vault.call("GET", "sys/policies/acl/default", limited)
    assert (denied.status_code, denied.json()) == (403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]})


def test_token_policies_sent_as_a_string_are_split_on_commas(vault: VaultTarget):
    name = f"tenant-{fresh_rut().lower()}"
    approle = vault.operator().auth.approle
    vault.call("POST", f"auth/approle/role/{name}", vault.token, {"token_policies": "b, a,default"})
    assert approle.read_role(name)["data"]["token_policies"] == ["b", "a", "default"]
    approle.delete_role(name)
