"""The tenant model as other code builds it: defaults, normal forms, and the rules that hold in Python too."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from components.spec import AnalyticsSpec, DatabaseSpec, ServiceSecretsSpec, TenantSpec

MINIMAL: dict[str, Any] = {
    "rut": "76.953.480-6",
    "slug": "acme",
    "name": "Ferretería Juanito",
    "status": "active",
    "plan": "pro",
}


def build(**changes: Any) -> TenantSpec:
    return TenantSpec.model_validate({**MINIMAL, **changes})


def _errors(**changes: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        build(**changes)
    return [(tuple(e["loc"]), e["msg"]) for e in caught.value.errors()]


def test_minimal_tenant_gets_the_documented_defaults() -> None:
    spec = build()
    assert spec.rut == "76953480-6"
    assert spec.type == "customer"
    assert spec.trial_expires_at is None
    assert spec.products == []
    assert (spec.access.emails, spec.access.email_domains, spec.access.session_duration) == ([], [], "24h")
    assert spec.database.tables == []
    assert spec.database.privileges == ["select"]
    assert spec.database.connection_limit == 5
    assert spec.database.statement_timeout == "30s"
    assert spec.secrets == {}
    assert spec.analytics.enabled is True
    assert spec.analytics.collection is None
    assert spec.analytics.queries == "query-builder"


def test_collection_name_defaults_to_rut_and_name() -> None:
    assert build().collection_name == "76953480-6 (Ferretería Juanito)"
    named = build(analytics=AnalyticsSpec(collection="Juanito BI"))
    assert named.collection_name == "Juanito BI"


def test_specs_are_frozen() -> None:
    spec = build()
    with pytest.raises(ValidationError):
        setattr(spec, "slug", "other")  # noqa: B010 - assignment must fail at run time


def test_unknown_fields_are_refused() -> None:
    assert _errors(country="CL")[0][0] == ("country",)


def test_trial_needs_an_end_date_and_only_a_trial_has_one() -> None:
    assert _errors(status="trial")[0][0] == ("trial_expires_at",)
    assert _errors(trial_expires_at=date(2027, 3, 31))[0][0] == ("trial_expires_at",)
    spec = build(status="trial", trial_expires_at="2027-03-31")
    assert spec.trial_expires_at == date(2027, 3, 31)


def test_a_date_with_a_time_is_not_a_trial_end() -> None:
    errors = _errors(status="trial", trial_expires_at="2027-03-31T10:00:00")
    assert errors[0][0] == ("trial_expires_at",)


def test_types_are_not_coerced() -> None:
    assert _errors(database={"connection_limit": "5"})[0][0] == ("database", "connection_limit")
    assert _errors(analytics={"enabled": "yes"})[0][0] == ("analytics", "enabled")
    assert _errors(name=2024)[0][0] == ("name",)


@pytest.mark.parametrize("duration", ["30m", "24h", "720h", "1h30m", "1.5h", "90s"])
def test_go_durations_are_accepted(duration: str) -> None:
    spec = build(access={"session_duration": duration})
    assert spec.access.session_duration == duration


@pytest.mark.parametrize("duration", ["1d", "24", "h", "0h", "24 h", "-1h", "24H"])
def test_other_session_durations_are_refused(duration: str) -> None:
    assert _errors(access={"session_duration": duration})[0][0] == ("access", "session_duration")


@pytest.mark.parametrize("timeout", ["500ms", "30s", "5min", "1h", "1d", "30 s"])
def test_postgres_timeouts_are_accepted(timeout: str) -> None:
    assert DatabaseSpec(statement_timeout=timeout).statement_timeout == timeout


@pytest.mark.parametrize("timeout", ["0s", "30", "30m", "30 seconds", "25d", "1.5s"])
def test_other_statement_timeouts_are_refused(timeout: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DatabaseSpec(statement_timeout=timeout)
    assert caught.value.errors()[0]["loc"] == ("statement_timeout",)


@pytest.mark.parametrize("limit", [0, 1001, -3])
def test_connection_limit_stays_within_bounds(limit: int) -> None:
    with pytest.raises(ValidationError):
        DatabaseSpec(connection_limit=limit)


def test_connection_limit_bounds_are_inclusive() -> None:
    assert DatabaseSpec(connection_limit=1).connection_limit == 1
    assert DatabaseSpec(connection_limit=1000).connection_limit == 1000


def test_tables_must_exist_in_the_shared_schema() -> None:
    assert DatabaseSpec(tables=["orders", "contacts"]).tables == ["orders", "contacts"]
    with pytest.raises(ValidationError) as caught:
        DatabaseSpec(tables=["orders", "pg_authid"])
    assert caught.value.errors()[0]["loc"] == ("tables", 1)


def test_secret_keys_are_generated_or_external_never_both() -> None:
    ok = ServiceSecretsSpec(generate=["jwt_secret"], external=["anon_key"], rotate=2)
    assert (ok.generate, ok.external, ok.rotate) == (["jwt_secret"], ["anon_key"], 2)
    with pytest.raises(ValidationError) as caught:
        ServiceSecretsSpec(generate=["jwt_secret"], external=["anon_key", "jwt_secret"])
    assert "also listed under generate" in caught.value.errors()[0]["msg"]


@pytest.mark.parametrize("key", ["Key", "1key", "api-key", "a" * 64, ""])
def test_secret_key_names_are_plain_identifiers(key: str) -> None:
    with pytest.raises(ValidationError):
        ServiceSecretsSpec(generate=[key])


def test_secrets_are_keyed_by_known_services() -> None:
    spec = build(secrets={"odoo": {"generate": ["admin_password"]}})
    assert spec.secrets["odoo"].generate == ["admin_password"]
    assert _errors(secrets={"vault": {}})[0][0][:2] == ("secrets", "vault")


@pytest.mark.parametrize("email", ["ana@acme.cl", "ana.maria+bi@sub.acme.cl", "o'brien@acme.com", "ANA@ACME.CL"])
def test_plain_email_addresses_are_accepted(email: str) -> None:
    assert build(access={"emails": [email]}).access.emails == [email]


@pytest.mark.parametrize(
    "email", ["bob@", "@acme.cl", "ana@acme", "ana@@acme.cl", "ana @acme.cl", "ana..b@acme.cl", "ana@-acme.cl"]
)
def test_malformed_email_addresses_are_refused(email: str) -> None:
    assert _errors(access={"emails": ["ok@acme.cl", email]})[0][0] == ("access", "emails", 1)


def test_repeated_list_items_are_refused() -> None:
    assert _errors(analytics={"owners": ["ana@acme.cl", "Ana@acme.cl"]})[0][0] == ("analytics", "owners")


def test_the_model_offers_exactly_what_the_catalog_lists() -> None:
    from typing import get_args

    from components import catalog

    fields = TenantSpec.model_fields
    assert get_args(get_args(fields["products"].annotation)[0]) == catalog.PRODUCTS
    assert get_args(get_args(fields["secrets"].annotation)[0]) == catalog.SERVICES
    assert get_args(get_args(DatabaseSpec.model_fields["privileges"].annotation)[0]) == catalog.PRIVILEGES
    assert get_args(AnalyticsSpec.model_fields["queries"].annotation) == catalog.QUERY_LEVELS
