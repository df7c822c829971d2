"""Contract tests of the Vault providers, through the real provider host (gRPC + dill), against ``vault``.

Each test plays what the engine does — check, create, diff, read (refresh), update, delete — and looks at
Vault itself, as an operator would, through its HTTP API. Edits "by hand" also go over HTTP, so the same
tests run against the session's OpenBao by default and against any Vault with ``-m live_vault``. A sealed
server is the session's OpenBao sealed through ``sys/seal``; the two faults a server cannot be made to show
on demand (a writer racing the update, an answer cut mid-way) go through the fault proxy of
``tests/vault/double.py``, whose answers still come from the server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import hvac
import pytest

from components.providers.vault import (
    SECRET_OUTPUTS,
    AppRoleProvider,
    PolicyProvider,
    SecretProvider,
    VaultAppRole,
    VaultPolicy,
    VaultSecret,
)
from tests.conftest import ProviderHostFactory
from tests.harness.openbao import OpenBaoServer
from tests.harness.provider_host import UNKNOWN, ProviderCallError, ProviderHost, urn
from tests.vault.conftest import VaultTarget, fresh_rut
from tests.vault.double import VaultFaultProxy

STACK = "smarteros/test"
SECRET_URN = urn(VaultSecret, "tenant-secret")
POLICY_URN = urn(VaultPolicy, "tenant-policy")
APPROLE_URN = urn(VaultAppRole, "tenant-approle")


def secret_inputs(rut: str, **overrides: Any) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "rut": rut,
        "service": "chatwoot",
        "mount": "secret",
        "stack": STACK,
        "generate": ["secret_key_base", "webhook_secret"],
        "external": ["api_access_token"],
        "rotate": 0,
        "provided": {},
    }
    inputs.update(overrides)
    return inputs


def kv_path(rut: str, service: str = "chatwoot") -> str:
    return f"tenants/{rut}/{service}"


def live_secret(vault: VaultTarget, rut: str, service: str = "chatwoot") -> dict[str, Any]:
    answer = vault.operator().secrets.kv.v2.read_secret_version(
        path=kv_path(rut, service), mount_point=vault.mount, raise_on_deleted_version=True
    )
    return dict(answer["data"]["data"])


def write_by_hand(vault: VaultTarget, rut: str, data: dict[str, Any], service: str = "chatwoot") -> None:
    """An operator's edit: read the live keys, change them, write a new version."""
    vault.operator().secrets.kv.v2.create_or_update_secret(
        path=kv_path(rut, service), secret=data, mount_point=vault.mount
    )


def public_outputs(outputs: dict[str, Any]) -> str:
    """What the state stores in clear: everything but the declared secret outputs."""
    return repr({k: v for k, v in outputs.items() if k not in SECRET_OUTPUTS})


def create_secret(host: ProviderHost, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    provider = SecretProvider()
    checked = host.check(provider, SECRET_URN, {}, inputs)
    assert checked.failures == []
    return host.create(provider, SECRET_URN, checked.inputs)


def update_secret(host: ProviderHost, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
    provider = SecretProvider()
    checked = host.check(provider, SECRET_URN, olds, news)
    assert checked.failures == []
    assert host.diff(provider, id_, SECRET_URN, olds, checked.inputs).changes is True
    return host.update(provider, id_, SECRET_URN, olds, checked.inputs)


# -- KV v2 secret ------------------------------------------------------------------------------------


def test_create_writes_generated_and_provided_values_with_the_marker(vault: VaultTarget, vault_host, rut):
    inputs = secret_inputs(
        rut,
        service="postgres",
        generate=["api_key"],
        external=[],
        provided={"username": "tenant_x", "password": "provided-pw-123"},
    )
    id_, outputs = create_secret(vault_host, inputs)

    assert id_ == f"secret/tenants/{rut}/postgres"
    live = live_secret(vault, rut, "postgres")
    assert set(live) == {"api_key", "username", "password"}
    assert live["password"] == "provided-pw-123"
    assert len(live["api_key"]) >= 40
    assert outputs["values"] == live
    assert outputs["keys"] == ["api_key", "password", "username"]
    assert outputs["path"] == f"secret/tenants/{rut}/postgres"
    for key, value in inputs.items():
        assert outputs[key] == value
    meta = vault.operator().secrets.kv.v2.read_secret_metadata(path=kv_path(rut, "postgres"), mount_point="secret")
    assert meta["data"]["custom_metadata"] == {"managed-by": "smarteros", "pulumi-stack": STACK}
    assert live["api_key"] not in public_outputs(outputs)


def test_unchanged_inputs_diff_to_no_change_before_and_after_a_refresh(vault: VaultTarget, vault_host, rut):
    inputs = secret_inputs(rut)
    id_, outputs = create_secret(vault_host, inputs)
    provider = SecretProvider()
    assert vault_host.diff(provider, id_, SECRET_URN, outputs, inputs).changes is False

    read_id, refreshed, _ = vault_host.read(provider, id_, SECRET_URN, outputs)
    assert read_id == id_
    assert refreshed["changed_keys"] == [] and refreshed["removed_keys"] == []
    assert vault_host.diff(provider, id_, SECRET_URN, refreshed, inputs).changes is False


def test_adding_a_key_generates_only_that_key(vault: VaultTarget, vault_host, rut):
    id_, outputs = create_secret(vault_host, secret_inputs(rut))
    before = live_secret(vault, rut)

    news = secret_inputs(rut, generate=["secret_key_base", "webhook_secret", "signing_key"])
    updated = update_secret(vault_host, id_, outputs, news)

    after = live_secret(vault, rut)
    assert set(after) == {"secret_key_base", "webhook_secret", "signing_key"}
    assert {k: after[k] for k in before} == before
    assert updated["version"] == outputs["version"] + 1
    assert updated["values"] == after


def test_removing_a_key_removes_it_and_nothing_else(vault: VaultTarget, vault_host, rut):
    id_, outputs = create_secret(vault_host, secret_inputs(rut))
    before = live_secret(vault, rut)

    updated = update_secret(vault_host, id_, outputs, secret_inputs(rut, generate=["secret_key_base"]))

    assert live_secret(vault, rut) == {"secret_key_base": before["secret_key_base"]}
    assert updated["keys"] == ["secret_key_base"]


def test_raising_rotate_regenerates_the_generated_keys_only(vault: VaultTarget, vault_host, rut):
    inputs = secret_inputs(rut, provided={"admin_user": "admin"})
    id_, outputs = create_secret(vault_host, inputs)
    before = live_secret(vault, rut)

    updated = update_secret(vault_host, id_, outputs, {**inputs, "rotate": 1})

    after = live_secret(vault, rut)
    assert after["admin_user"] == "admin"
    assert after["secret_key_base"] != before["secret_key_base"]
    assert after["webhook_secret"] != before["webhook_secret"]
    # the same rotate number again regenerates nothing
    provider = SecretProvider()
    assert vault_host.diff(provider, id_, SECRET_URN, updated, {**inputs, "rotate": 1}).changes is False


def test_an_external_key_set_by_hand_survives_every_later_update(vault: VaultTarget, vault_host, rut):
    inputs = secret_inputs(rut)
    id_, outputs = create_secret(vault_host, inputs)
    write_by_hand(vault, rut, {**live_secret(vault, rut), "api_access_token": "vendor-issued-token"})
    _, outputs, _ = vault_host.read(SecretProvider(), id_, SECRET_URN, outputs)
    assert "vendor-issued-token" not in repr(outputs), "external keys are never read into the state"

    steps = [
        secret_inputs(rut, generate=["secret_key_base", "webhook_secret", "extra"]),
        secret_inputs(rut, generate=["secret_key_base"]),
        secret_inputs(rut, generate=["secret_key_base"], rotate=2),
        secret_inputs(rut, generate=["secret_key_base"], rotate=2, provided={"db": "x"}),
    ]
    for news in steps:
        outputs = update_secret(vault_host, id_, outputs, news)
        assert live_secret(vault, rut)["api_access_token"] == "vendor-issued-token"


def test_refresh_reports_hand_edits_by_key_name_and_up_repairs_them(vault: VaultTarget, vault_host, rut):
    inputs = secret_inputs(rut, provided={"password": "platform-pw"})
    id_, outputs = create_secret(vault_host, inputs)
    live = live_secret(vault, rut)
    edited = dict(live, secret_key_base="typed-by-hand-1", password="changed-by-hand-2")
    del edited["webhook_secret"]
    write_by_hand(vault, rut, edited)

    provider = SecretProvider()
    read_id, refreshed, _ = vault_host.read(provider, id_, SECRET_URN, outputs)

    assert read_id == id_
    assert refreshed["changed_keys"] == ["password", "secret_key_base"]
    assert refreshed["removed_keys"] == ["webhook_secret"]
    assert refreshed["keys"] == ["password", "secret_key_base"]
    assert "typed-by-hand-1" not in public_outputs(refreshed)
    assert "changed-by-hand-2" not in public_outputs(refreshed)

    assert vault_host.diff(provider, id_, SECRET_URN, refreshed, inputs).changes is True
    repaired = vault_host.update(provider, id_, SECRET_URN, refreshed, inputs)
    after = live_secret(vault, rut)
    assert after["password"] == "platform-pw", "a provided value is put back"
    assert after["secret_key_base"] == "typed-by-hand-1", "a generated value edited by hand is adopted"
    assert after["webhook_secret"] == live["webhook_secret"], "a removed key is put back as it was"
    assert repaired["changed_keys"] == [] and repaired["removed_keys"] == []
    assert vault_host.diff(provider, id_, SECRET_URN, repaired, inputs).changes is False


def test_a_deleted_latest_version_is_drift_and_up_writes_the_same_values_back(
    vault: VaultTarget, vault_host, rut
):
    inputs = secret_inputs(rut, provided={"password": "platform-pw"})
    id_, outputs = create_secret(vault_host, inputs)
    before = live_secret(vault, rut)
    vault.operator().secrets.kv.v2.delete_latest_version_of_secret(path=kv_path(rut), mount_point="secret")

    provider = SecretProvider()
    read_id, refreshed, _ = vault_host.read(provider, id_, SECRET_URN, outputs)
    assert read_id == id_, "the secret still exists: only its latest version was deleted"
    assert refreshed["removed_keys"] == sorted(before)
    assert vault_host.diff(provider, id_, SECRET_URN, refreshed, inputs).changes is True

    vault_host.update(provider, id_, SECRET_URN, refreshed, inputs)
    assert live_secret(vault, rut) == before, "nothing is regenerated: the recorded values are written back"


def test_delete_removes_every_version_and_deleting_again_succeeds(vault: VaultTarget, vault_host, rut):
    id_, outputs = create_secret(vault_host, secret_inputs(rut))
    write_by_hand(vault, rut, {**live_secret(vault, rut), "api_access_token": "t"})
    provider = SecretProvider()

    vault_host.delete(provider, id_, SECRET_URN, outputs)

    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.operator().secrets.kv.v2.read_secret_metadata(path=kv_path(rut), mount_point="secret")
    assert vault_host.read(provider, id_, SECRET_URN, outputs)[0] == ""
    vault_host.delete(provider, id_, SECRET_URN, outputs)


def test_create_refuses_a_secret_this_stack_does_not_own(vault: VaultTarget, vault_host, rut):
    write_by_hand(vault, rut, {"secret_key_base": "someone-elses-value"})

    with pytest.raises(ProviderCallError) as failure:
        create_secret(vault_host, secret_inputs(rut))

    message = failure.value.message
    assert f"tenant {rut}" in message
    assert f"secret/tenants/{rut}/chatwoot" in message
    assert "import_" in message
    assert "someone-elses-value" not in failure.value.details
    assert live_secret(vault, rut) == {"secret_key_base": "someone-elses-value"}


def test_a_secret_adopted_with_import_is_marked_and_keeps_its_values(vault: VaultTarget, vault_host, rut):
    write_by_hand(vault, rut, {"secret_key_base": "existing", "api_access_token": "vendor"})
    inputs = secret_inputs(rut)
    provider = SecretProvider()
    id_ = f"secret/tenants/{rut}/chatwoot"

    _, imported, _ = vault_host.read(provider, id_, SECRET_URN, inputs)
    assert imported["managed"] is False
    assert vault_host.diff(provider, id_, SECRET_URN, imported, inputs).changes is True
    vault_host.update(provider, id_, SECRET_URN, imported, inputs)

    after = live_secret(vault, rut)
    assert after["secret_key_base"] == "existing" and after["api_access_token"] == "vendor"
    assert len(after["webhook_secret"]) >= 40
    meta = vault.operator().secrets.kv.v2.read_secret_metadata(path=kv_path(rut), mount_point="secret")
    assert meta["data"]["custom_metadata"]["managed-by"] == "smarteros"


def test_changing_the_service_replaces_the_secret_without_delete_first(vault_host, rut):
    _, outputs = create_secret(vault_host, secret_inputs(rut))
    outcome = vault_host.diff(SecretProvider(), "x", SECRET_URN, outputs, secret_inputs(rut, service="odoo"))
    assert outcome.changes is True
    assert outcome.replaces == ["service"]
    assert outcome.delete_before_replace is False


def test_a_provided_value_unknown_during_preview_shows_as_a_change(vault_host, rut):
    id_, outputs = create_secret(vault_host, secret_inputs(rut, provided={"password": "pw"}))
    outcome = vault_host.diff(
        SecretProvider(), id_, SECRET_URN, outputs, secret_inputs(rut, provided={"password": UNKNOWN})
    )
    assert outcome.changes is True and outcome.replaces == []


def test_check_reports_hostile_inputs_as_field_failures(vault_host):
    news = secret_inputs(
        '1-9"*',
        service="../sys",
        mount="secret/*",
        generate=["ok", "ok", "bad key"],
        external=["ok"],
        stack="x\ny",
    )
    outcome = vault_host.check(SecretProvider(), SECRET_URN, {}, news)
    fields = {field for field, _ in outcome.failures}
    assert {"rut", "service", "mount", "generate[1]", "generate[2]", "external", "stack"} <= fields
    policy = vault_host.check(PolicyProvider(), POLICY_URN, {}, {"rut": "1-9", "mount": 'a" {', "stack": STACK})
    assert [field for field, _ in policy.failures] == ["mount"]


# -- faults ------------------------------------------------------------------------------------------


def test_a_write_racing_the_update_is_detected_not_overwritten(
    vault: VaultTarget, fault_proxy: VaultFaultProxy, fault_host: ProviderHost, rut: str
):
    id_, outputs = create_secret(fault_host, secret_inputs(rut))
    racing = {**live_secret(vault, rut), "api_access_token": "written-meanwhile"}
    fault_proxy.before_next_write(f"secret/data/{kv_path(rut)}", lambda: write_by_hand(vault, rut, racing))

    news = secret_inputs(rut, generate=["secret_key_base", "webhook_secret", "new_key"])
    with pytest.raises(ProviderCallError) as failure:
        fault_host.update(SecretProvider(), id_, SECRET_URN, outputs, news)

    message = failure.value.message
    assert f"tenant {rut}" in message
    assert "400 check-and-set parameter did not match the current version" in message
    assert "pulumi refresh" in message
    assert live_secret(vault, rut) == racing
    for value in racing.values():
        assert value not in failure.value.details


def test_an_answer_cut_mid_way_is_reported_and_the_rerun_regenerates_nothing(
    vault: VaultTarget, fault_proxy: VaultFaultProxy, fault_host: ProviderHost, rut: str
):
    fault_proxy.cut_next_answer("POST", f"secret/data/{kv_path(rut)}")
    with pytest.raises(ProviderCallError) as failure:
        create_secret(fault_host, secret_inputs(rut))
    assert failure.value.message.endswith(
        f"tenant {rut}: Vault could not write secret secret/tenants/{rut}/chatwoot: sent POST "
        f"/v1/secret/data/tenants/{rut}/chatwoot, got no answer (connection lost before a complete answer)"
    )
    written = live_secret(vault, rut)  # the server applied the write before the answer was cut
    assert set(written) == {"secret_key_base", "webhook_secret"}

    _, outputs = create_secret(fault_host, secret_inputs(rut))
    assert live_secret(vault, rut) == written, "the rerun adopts what was written, nothing is regenerated"
    assert outputs["values"] == written


@pytest.fixture
def sealed_openbao(openbao_server: OpenBaoServer) -> Iterator[OpenBaoServer]:
    """The session's OpenBao, sealed with ``PUT /v1/sys/seal`` for one test and unsealed afterwards."""
    openbao_server.seal()
    try:
        yield openbao_server
    finally:
        openbao_server.unseal()


def test_a_sealed_vault_fails_fast_with_a_clear_message(
    sealed_openbao: OpenBaoServer, provider_host_factory: ProviderHostFactory, rut: str
):
    with VaultFaultProxy(sealed_openbao.address) as watching:
        host = provider_host_factory(
            {
                "smarteros:vault": {"address": watching.address, "mount": "secret"},
                "smarteros:vaultToken": sealed_openbao.root_token,
            }
        )
        began = time.perf_counter()
        with pytest.raises(ProviderCallError) as failure:
            create_secret(host, secret_inputs(rut))
        elapsed = time.perf_counter() - began
        relayed = list(watching.requests)

    assert failure.value.message.endswith(
        f"tenant {rut}: Vault could not read secret secret/tenants/{rut}/chatwoot: sent GET "
        f"/v1/secret/data/tenants/{rut}/chatwoot, got 503 Vault is sealed (is Vault sealed or in standby?)"
    )
    assert elapsed < 5
    assert [(r.method, r.status) for r in relayed] == [("GET", 503)] * 3, "two quick retries, then the error"
    assert sealed_openbao.root_token not in failure.value.details


def test_a_wrong_token_is_refused_and_never_shown(vault: VaultTarget, provider_host_factory: ProviderHostFactory):
    bad_token = "hvs.not-a-real-token-" + fresh_rut()
    host = provider_host_factory(vault.config(token=bad_token))
    rut = fresh_rut()

    with pytest.raises(ProviderCallError) as failure:
        create_secret(host, secret_inputs(rut))

    assert failure.value.message.endswith(
        "got 403 permission denied (check the provisioning token and its policy, vault/provisioner.hcl)"
    )
    assert f"tenant {rut}" in failure.value.message
    assert bad_token not in failure.value.details
    assert bad_token not in host.logs()
    assert vault.address not in failure.value.details


def test_no_token_at_all_names_the_setting_to_fill(vault: VaultTarget, provider_host_factory: ProviderHostFactory):
    host = provider_host_factory({"smarteros:vault": {"address": vault.address}})
    rut = fresh_rut()
    with pytest.raises(ProviderCallError) as failure:
        create_secret(host, secret_inputs(rut))
    assert failure.value.reason == (
        f"tenant {rut}: no Vault token: set the VAULT_TOKEN environment variable (or, where the stack allows "
        "it, `pulumi config set --secret smarteros:vaultToken`)"
    )


# -- ACL policy --------------------------------------------------------------------------------------


def create_policy(host: ProviderHost, rut: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    provider = PolicyProvider()
    checked = host.check(provider, POLICY_URN, {}, {"rut": rut, "stack": STACK})
    assert checked.failures == []
    id_, outputs = host.create(provider, POLICY_URN, checked.inputs)
    return id_, outputs, checked.inputs


def test_policy_has_a_lower_case_name_and_reads_only_its_tenants_subtree(vault: VaultTarget, vault_host):
    rut = fresh_rut("K")
    other = fresh_rut()
    id_, outputs, _ = create_policy(vault_host, rut)
    lower = f"tenant-{rut.lower()}"
    assert id_ == lower and outputs["name"] == lower

    stored = vault.operator().sys.read_acl_policy(lower)["data"]["policy"]
    assert f'"secret/data/tenants/{rut}/*"' in stored
    assert f'"secret/metadata/tenants/{rut}/*"' in stored

    for tenant in (rut, other):
        write_by_hand(vault, tenant, {"k": f"value-of-{tenant}"})
    tenant_vault = vault.operator(vault.token_with_policies(lower))
    own = tenant_vault.secrets.kv.v2.read_secret_version(
        path=kv_path(rut), mount_point="secret", raise_on_deleted_version=True
    )
    assert own["data"]["data"] == {"k": f"value-of-{rut}"}
    assert tenant_vault.secrets.kv.v2.list_secrets(path=f"tenants/{rut}", mount_point="secret")["data"]["keys"]
    with pytest.raises(hvac.exceptions.Forbidden):
        tenant_vault.secrets.kv.v2.read_secret_version(
            path=kv_path(other), mount_point="secret", raise_on_deleted_version=True
        )
    with pytest.raises(hvac.exceptions.Forbidden):
        tenant_vault.secrets.kv.v2.create_or_update_secret(path=kv_path(rut), secret={"k": "x"}, mount_point="secret")


def test_a_policy_edited_by_hand_shows_on_refresh_and_is_restored(vault: VaultTarget, vault_host, rut):
    id_, outputs, inputs = create_policy(vault_host, rut)
    original = outputs["policy"]
    vault.put_policy(id_, original + 'path "secret/data/*" {\n  capabilities = ["read"]\n}\n')

    provider = PolicyProvider()
    _, refreshed, _ = vault_host.read(provider, id_, POLICY_URN, outputs)
    assert refreshed["policy"] != original
    assert vault_host.diff(provider, id_, POLICY_URN, refreshed, inputs).changes is True

    restored = vault_host.update(provider, id_, POLICY_URN, refreshed, inputs)
    assert vault.operator().sys.read_acl_policy(id_)["data"]["policy"] == original
    assert vault_host.diff(provider, id_, POLICY_URN, restored, inputs).changes is False


def test_policy_create_refuses_an_unmarked_policy_and_delete_tolerates_absence(vault: VaultTarget, vault_host, rut):
    name = f"tenant-{rut.lower()}"
    vault.put_policy(name, 'path "secret/data/x" {\n  capabilities = ["read"]\n}\n')
    with pytest.raises(ProviderCallError) as failure:
        create_policy(vault_host, rut)
    assert f"tenant {rut}" in failure.value.message and "import_" in failure.value.message

    provider = PolicyProvider()
    props = {"rut": rut, "mount": "secret", "stack": STACK}
    vault_host.delete(provider, name, POLICY_URN, props)
    assert vault_host.read(provider, name, POLICY_URN, props)[0] == ""
    vault_host.delete(provider, name, POLICY_URN, props)


# -- AppRole -----------------------------------------------------------------------------------------


def test_approle_carries_only_the_tenant_policy_and_repairs_hand_edits(vault: VaultTarget, vault_host, rut):
    policy_id, _, _ = create_policy(vault_host, rut)
    provider = AppRoleProvider()
    inputs = {"rut": rut, "policy": policy_id}
    id_, outputs = vault_host.create(provider, APPROLE_URN, inputs)

    role = vault.operator().auth.approle.read_role(id_)["data"]
    assert role["token_policies"] == [policy_id]
    assert role["token_no_default_policy"] is True
    assert vault_host.diff(provider, id_, APPROLE_URN, outputs, inputs).changes is False

    vault.operator().auth.approle.create_or_update_approle(id_, token_policies=[policy_id, "default"])
    _, refreshed, _ = vault_host.read(provider, id_, APPROLE_URN, outputs)
    assert refreshed["token_policies"] == ["default", policy_id]
    assert vault_host.diff(provider, id_, APPROLE_URN, refreshed, inputs).changes is True
    vault_host.update(provider, id_, APPROLE_URN, refreshed, inputs)
    assert vault.operator().auth.approle.read_role(id_)["data"]["token_policies"] == [policy_id]

    vault_host.delete(provider, id_, APPROLE_URN, outputs)
    assert vault_host.read(provider, id_, APPROLE_URN, outputs)[0] == ""
    vault_host.delete(provider, id_, APPROLE_URN, outputs)


def test_approle_create_refuses_a_role_granting_something_else(vault: VaultTarget, vault_host, rut):
    name = f"tenant-{rut.lower()}"
    vault.operator().auth.approle.create_or_update_approle(name, token_policies=["admin"])
    with pytest.raises(ProviderCallError) as failure:
        vault_host.create(AppRoleProvider(), APPROLE_URN, {"rut": rut, "policy": name})
    assert f"tenant {rut}" in failure.value.message
    assert "AppRole tenant-" in failure.value.message and "import_" in failure.value.message
    assert vault.operator().auth.approle.read_role(name)["data"]["token_policies"] == ["admin"]


def test_create_over_this_stacks_own_soft_deleted_secret_writes_a_new_version(vault: VaultTarget, vault_host, rut):
    inputs = secret_inputs(rut)
    id_, outputs = create_secret(vault_host, inputs)
    vault.operator().secrets.kv.v2.delete_latest_version_of_secret(path=kv_path(rut), mount_point="secret")

    recreated_id, recreated = create_secret(vault_host, inputs)
    assert recreated_id == id_
    assert recreated["version"] == outputs["version"] + 1
    assert set(live_secret(vault, rut)) == {"secret_key_base", "webhook_secret"}
