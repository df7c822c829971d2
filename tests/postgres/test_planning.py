"""The PostgreSQL provider's decisions as plain functions: validation, diffs and grant plans."""

from __future__ import annotations

import pytest
from pulumi.output import Unknown

from components.providers.postgres import (
    GROUP,
    ROLE_ATTRIBUTES,
    GrantInputs,
    RecordInputs,
    RoleInputs,
    TenantRoleProvider,
    desired_grants,
    diff_binding,
    diff_grants,
    diff_record,
    diff_role,
    diff_schema,
    ownership_marker,
    plan_grants,
    role_marker,
    settings_from_config,
    timeout_ms,
    validate,
)
from tests.harness.provider_host import ProviderHost, secret_leaks
from tests.postgres.conftest import STACK, grant_props, record_props, role_props, sample_role_name

RUT = "76953480-6"


def role_outputs(**extra):
    return {
        **role_props(RUT),
        "member_of": [GROUP],
        "attributes": dict(ROLE_ATTRIBUTES),
        "role_name": sample_role_name(RUT),
        "comment": role_marker(STACK),
        "password": "generated",
        **extra,
    }


def test_valid_role_inputs_pass() -> None:
    assert validate(RoleInputs, role_props(RUT), "role") == []


def test_a_wrong_check_digit_names_the_field_and_the_expected_digit() -> None:
    failures = validate(RoleInputs, role_props(RUT, tenant_rut="76953480-5"), "role")
    assert failures == [("tenant_rut", "RUT '76953480-5' has check digit 5, expected 6")]


def test_the_role_name_is_an_output_not_an_input() -> None:
    # The database computes the name; a program cannot choose it (an old state's input is left out).
    assert validate(RoleInputs, role_props(RUT, role_name="tenant_11111111_1"), "role") == []
    failures = validate(RoleInputs, role_props(RUT, owner="postgres"), "role")
    assert failures == [("owner", "Extra inputs are not permitted")]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("statement_timeout", "30 seconds; DROP"),
        ("connection_limit", 100000),
        ("stack", "x'; --"),
    ],
)
def test_bad_role_values_are_failures_not_exceptions(field, value) -> None:
    failures = validate(RoleInputs, role_props(RUT, **{field: value}), "role")
    assert failures and failures[0][0] == field


def test_hostile_table_names_are_refused() -> None:
    failures = validate(GrantInputs, grant_props(RUT, tables=["contacts", "orders; DROP TABLE x"]), "grants")
    assert failures == [("tables", "'orders; DROP TABLE x' is not a table name (lower-case letters, digits, _)")]


def test_values_unknown_during_preview_pass_check() -> None:
    assert validate(GrantInputs, {**grant_props(RUT), "role_name": Unknown()}, "grants") == []


def test_record_dates_and_hostnames_are_checked() -> None:
    assert validate(RecordInputs, record_props(RUT, "demo", trial_expires_at="2027-03-31"), "record") == []
    failures = validate(RecordInputs, record_props(RUT, "demo", hostnames=["Demo.example.cl"]), "record")
    assert failures == [("hostnames", "'Demo.example.cl' is not a lower-case DNS name")]


def test_timeouts_compare_in_milliseconds() -> None:
    assert timeout_ms("30s") == timeout_ms("30000ms") == timeout_ms("30000") == 30_000
    assert timeout_ms("5min") == 300_000
    with pytest.raises(ValueError, match="not a duration"):
        timeout_ms("30 parsecs")


def test_unchanged_role_has_no_diff() -> None:
    assert diff_role(role_outputs(), role_props(RUT)).changes is False
    assert diff_role(role_outputs(statement_timeout="30000ms"), role_props(RUT)).changes is False


def test_limit_and_timeout_update_in_place() -> None:
    change = diff_role(role_outputs(), role_props(RUT, connection_limit=9, statement_timeout="1min"))
    assert change.fields == ("connection_limit", "statement_timeout")
    assert change.replaces == ()


def test_a_new_identity_replaces_the_role_deleting_the_old_one_first() -> None:
    other = "11111111-1"
    change = diff_role(role_outputs(), role_props(other))
    assert change.replaces == ("tenant_rut",)
    assert change.delete_before_replace is True


def test_a_role_named_after_its_rut_by_an_earlier_version_is_replaced() -> None:
    legacy = role_outputs(role_name="tenant_76953480_6", comment=ownership_marker(STACK, RUT))
    change = diff_role(legacy, role_props(RUT))
    assert change.replaces == ("role_name",)
    assert change.delete_before_replace is True


@pytest.mark.parametrize(
    ("drift", "field"),
    [
        ({"member_of": []}, "member_of"),
        ({"member_of": [GROUP, "pg_read_all_data"]}, "member_of"),
        ({"attributes": {**ROLE_ATTRIBUTES, "bypassrls": True}}, "attributes"),
        ({"comment": "made by hand"}, "comment"),
        ({"password": ""}, "password"),
    ],
)
def test_live_drift_of_a_role_is_a_change(drift, field) -> None:
    assert diff_role(role_outputs(**drift), role_props(RUT)).fields == (field,)


def test_grant_order_does_not_matter_and_changes_are_in_place() -> None:
    outputs = {
        **grant_props(RUT),
        "granted": desired_grants(grant_props(RUT)["tables"], grant_props(RUT)["privileges"]),
    }
    reordered = {**grant_props(RUT), "tables": list(reversed(grant_props(RUT)["tables"]))}
    assert diff_grants(outputs, reordered).changes is False
    fewer = diff_grants(outputs, grant_props(RUT, privileges=["select"]))
    assert fewer.fields == ("privileges",) and fewer.replaces == ()
    drifted = {**outputs, "granted": {**outputs["granted"], "contacts": ["select"]}}
    assert diff_grants(drifted, grant_props(RUT)).fields == ("granted",)
    assert diff_grants(outputs, {**grant_props(RUT), "role_name": sample_role_name("1-9")}).replaces == ("role_name",)


def test_grant_plan_is_exactly_the_difference() -> None:
    live = {"contacts": ["select", "insert", "truncate"], "orders": ["select"]}
    desired = desired_grants(["contacts", "events"], ["select", "update"])
    plan = plan_grants(live, desired)
    assert plan.grant == {"contacts": ["update"], "events": ["select", "update"]}
    assert plan.revoke == {"contacts": ["insert", "truncate"], "orders": ["select"]}
    assert plan_grants(desired, desired).empty


def test_no_privileges_means_no_grants() -> None:
    assert desired_grants(["contacts"], []) == {}


def test_binding_record_and_schema_diffs() -> None:
    binding = {"role_name": sample_role_name(RUT), "tenant_rut": RUT}
    assert diff_binding(binding, binding).changes is False
    assert diff_binding(binding, {**binding, "tenant_rut": "11111111-1"}).fields == ("tenant_rut",)
    record = record_props(RUT, "demo")
    assert diff_record(record, {**record, "products": ["erp", "chat"]}).changes is False
    assert diff_record(record, {**record, "status": "suspended"}).fields == ("status",)
    assert diff_record(record, {**record, "rut": "11111111-1"}).replaces == ("rut",)
    schema = {"files": {"010_a.sql": "SELECT 1"}, "tenant_tables": ["contacts"], "stack": STACK}
    assert diff_schema({**schema, "rls_tables": ["contacts"]}, schema).changes is False
    assert diff_schema({**schema, "rls_tables": []}, schema).fields == ("rls_tables",)


def test_settings_come_from_config_then_environment() -> None:
    config = {
        "smarteros:postgres": '{"host": "db.internal", "port": 6543, "sslmode": "require"}',
        "smarteros:postgresPassword": "from-config",
    }
    settings = settings_from_config(config, {"PGHOST": "ignored", "PGPASSWORD": "ignored"})
    assert (settings.host, settings.port, settings.sslmode, settings.password) == (
        "db.internal",
        6543,
        "require",
        "from-config",
    )
    assert "from-config" not in repr(settings)
    env = settings_from_config({}, {"PGHOST": "h", "PGPORT": "7", "PGUSER": "u", "PGPASSWORD": "p"})
    assert (env.host, env.port, env.user, env.password, env.dbname) == ("h", 7, "u", "p", "smarteros")
    url = settings_from_config(None, {"DATABASE_URL": "postgresql://u2:p2@h2:5433/db2?sslmode=verify-full"})
    assert (url.host, url.port, url.user, url.password, url.dbname, url.sslmode) == (
        "h2",
        5433,
        "u2",
        "p2",
        "db2",
        "verify-full",
    )


def test_a_configured_provider_serialises_without_its_credentials() -> None:
    provider = TenantRoleProvider()
    provider._settings = settings_from_config({"smarteros:postgresPassword": "hunter2-very-secret"}, {})
    assert secret_leaks("hunter2-very-secret", ProviderHost.serialized(provider)) == []


def test_importing_an_id_that_is_not_a_tenant_role_says_what_an_id_looks_like() -> None:
    from components.providers.postgres import PostgresError, rut_of_role

    assert rut_of_role("tenant_10000013_k") == "10000013-K"  # an earlier version's name
    assert rut_of_role("10000013-K") == "10000013-K"
    with pytest.raises(PostgresError) as failure:
        rut_of_role("postgres")
    assert str(failure.value) == (
        "'postgres' is not a tenant role id; import a tenant role by its tenant's RUT (76953480-6) or by its "
        "role name together with the program's inputs"
    )
