"""The pure decisions of the Vault provider: rendering, validation, write plans, drift and diffs (and the
rendered policy of a K RUT, enforced by the server under test)."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

import pytest

from components.providers.vault import (
    SecretInputs,
    check_policy_inputs,
    check_secret_inputs,
    connection_from_config,
    diff_approle,
    diff_policy,
    diff_secret,
    hcl_string,
    plan_secret_data,
    policy_is_ours,
    render_policy,
    secret_drift,
)
from tests.vault.conftest import VaultTarget


def counter():
    numbers = itertools.count(1)
    return lambda: f"new-{next(numbers)}"


def desired(**kw) -> SecretInputs:
    base: dict[str, Any] = dict(
        rut="76953480-6",
        service="chatwoot",
        mount="secret",
        stack="s/t",
        generate=("a", "b"),
        external=("ext",),
        rotate=0,
        provided={},
    )
    base.update(kw)
    return SecretInputs(**base)


def test_hcl_strings_are_json_quoted_and_template_sequences_refused():
    assert hcl_string('a"b\\c') == '"a\\"b\\\\c"'
    for hostile in ('${file("/etc")}', "%{ if x }", "a\nb"):
        with pytest.raises(ValueError):
            hcl_string(hostile)


def test_the_policy_of_a_k_rut_keeps_upper_case_paths_and_reaches_only_that_tenant(vault: VaultTarget):
    text = render_policy("10000013-K", "secret", "smarteros/prod")
    assert 'path "secret/data/tenants/10000013-K/*"' in text
    assert 'path "secret/metadata/tenants/10000013-K/*"' in text
    assert policy_is_ours(text, "smarteros/prod") and not policy_is_ours(text, "smarteros/dev")
    name = f"tenant-planning-{secrets.token_hex(4)}"
    vault.put_policy(name, text)
    holder = vault.token_with_policies(name)
    kv = vault.operator().secrets.kv.v2
    for path in (
        "tenants/10000013-K/odoo",
        "tenants/10000013-K2/odoo",
        "tenants/110000013-K/odoo",
        "tenants/10000013-k/odoo",
        "platform",
    ):
        kv.create_or_update_secret(path=path, secret={"k": path}, mount_point="secret")

    def status(method: str, path: str) -> int:
        return vault.call(method, path, holder).status_code

    assert status("GET", "secret/data/tenants/10000013-K/odoo") == 200
    assert status("LIST", "secret/metadata/tenants/10000013-K/") == 200
    for elsewhere in (
        "secret/data/tenants/10000013-K2/odoo",
        "secret/data/tenants/110000013-K/odoo",
        "secret/data/tenants/10000013-k/odoo",
        "secret/data/platform",
        "sys/policies/acl/default",
    ):
        assert status("GET", elsewhere) == 403, elsewhere
    assert vault.call("POST", "secret/data/tenants/10000013-K/odoo", holder, {"data": {"k": "x"}}).status_code == 403
    vault.operator().sys.delete_acl_policy(name)


def test_hostile_names_never_reach_the_policy_text():
    failures = check_policy_inputs({"rut": '1-9" {}', "mount": "secret/*", "stack": "a\npath"})
    assert {f for f, _ in failures} == {"rut", "mount", "stack"}
    assert check_policy_inputs({"rut": "0-0", "mount": "kv/tenants-v2", "stack": "smarteros/prod"}) == []


def test_secret_checks_name_each_bad_field():
    ok = {
        "rut": "0-0",
        "service": "odoo",
        "mount": "secret",
        "stack": "p/s",
        "generate": ["a"],
        "external": ["b"],
        "rotate": 0,
        "provided": {},
    }
    assert check_secret_inputs(ok) == []
    failures = dict(check_secret_inputs({**ok, "generate": ["a", "b"], "rotate": -1, "provided": {"a": "x"}}))
    assert failures["external"] == "'b' cannot be both generated and filled in by hand"
    assert failures["rotate"] == "-1 is not a whole number >= 0"
    assert failures["provided.a"] == "'a' is also listed in generate or external"


def test_plan_keeps_live_and_external_keys_and_generates_only_what_is_missing():
    live = {"a": "live-a", "ext": "operator", "stray": "kept"}
    plan = plan_secret_data(live, desired(), new_value=counter())
    assert plan == {"a": "live-a", "b": "new-1", "ext": "operator", "stray": "kept"}


def test_plan_restores_a_recorded_value_removed_by_hand_and_rotates_on_request():
    plan = plan_secret_data({}, desired(), recorded={"a": "rec-a"}, new_value=counter())
    assert plan == {"a": "rec-a", "b": "new-1"}
    rotated = plan_secret_data({"a": "1", "b": "2", "ext": "e"}, desired(), rotate=True, new_value=counter())
    assert rotated == {"a": "new-1", "b": "new-2", "ext": "e"}


def test_plan_removes_keys_no_longer_managed_unless_they_became_external():
    live = {"a": "1", "b": "2", "old": "3", "ext": "4"}
    plan = plan_secret_data(live, desired(generate=("a",), external=("ext", "b")), previously_managed=["a", "b", "old"])
    assert plan == {"a": "1", "b": "2", "ext": "4"}


def test_plan_puts_provided_values_over_live_ones():
    plan = plan_secret_data({"password": "hand"}, desired(generate=(), provided={"password": "db"}))
    assert plan == {"password": "db"}


def test_drift_names_changed_and_removed_managed_keys_only():
    drift = secret_drift(["a", "b", "c"], {"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "X", "ext": "Y"})
    assert drift.changed == ("b",) and drift.removed == ("c",)


def outputs(**kw):
    d = desired(**kw)
    return {**d.as_props(), "keys": sorted(d.managed), "values": {k: "v" for k in d.managed}, "managed": True}


def test_secret_diff_reports_changes_and_replacements():
    olds = outputs()
    same = desired().as_props()
    assert diff_secret(olds, same).result().changes is False
    assert diff_secret(olds, {**same, "generate": ["a"]}).changed == ("keys",)
    assert diff_secret(olds, {**same, "rotate": 1}).changed == ("rotate",)
    assert diff_secret(olds, {**same, "external": []}).changed == ("external",)
    assert diff_secret({**olds, "managed": False}, same).changed == ("stack",)
    replaced = diff_secret(olds, {**same, "rut": "0-0"})
    assert replaced.replaces == ("rut",) and replaced.delete_before_replace is False
    assert diff_secret({**olds, "keys": ["a"]}, same).changed == ("keys",), "a key removed by hand"
    assert diff_secret(outputs(provided={"p": "v"}), desired(provided={"p": "w"}).as_props()).changed == ("provided",)


def test_policy_and_approle_diffs():
    news = {"rut": "10000013-K", "mount": "secret", "stack": "s/t"}
    olds = {**news, "policy": render_policy("10000013-K", "secret", "s/t")}
    assert diff_policy(olds, news).result().changes is False
    assert diff_policy({**olds, "policy": "edited"}, news).changed == ("policy",)
    assert diff_policy(olds, {**news, "mount": "kv"}).changed == ("policy", "mount")
    assert diff_policy(olds, {**news, "rut": "0-0"}).replaces == ("rut",)
    role = {"rut": "0-0", "policy": "tenant-0-0", "token_policies": ["tenant-0-0"], "token_no_default_policy": True}
    assert diff_approle(role, {"rut": "0-0", "policy": "tenant-0-0"}).result().changes is False
    assert diff_approle(
        {**role, "token_policies": ["default", "tenant-0-0"]}, {"rut": "0-0", "policy": "tenant-0-0"}
    ).changed == ("token_policies",)
    assert diff_approle({**role, "token_no_default_policy": False}, {"rut": "0-0", "policy": "tenant-0-0"}).changed == (
        "token_policies",
    )


def test_connection_settings_come_from_config_then_environment():
    env = {"VAULT_ADDR": "http://env:8200", "VAULT_TOKEN": "env-token"}
    assert connection_from_config({}, env).address == "http://env:8200"
    assert connection_from_config({}, env).token == "env-token"
    configured = connection_from_config(
        {"smarteros:vault": '{"address": "http://cfg:8200", "mount": "kv"}', "smarteros:vaultToken": "cfg-token"}, env
    )
    assert (configured.address, configured.token, configured.mount) == ("http://cfg:8200", "cfg-token", "kv")
    assert "cfg-token" not in repr(configured), "the token never shows in a repr"
