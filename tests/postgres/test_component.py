"""What the Database components register, under Pulumi mocks: types, names, parents, options."""

from __future__ import annotations

from typing import Any

from components.config import StackConfig
from components.database import Database, DatabaseArgs, SharedDatabase, SharedDatabaseArgs
from components.spec import TenantSpec
from tests.harness.mocks import by_type, one, run_program

TENANT = {
    "rut": "76.953.480-6",
    "slug": "ferreteria",
    "name": "Ferretería Juanito",
    "type": "customer",
    "status": "trial",
    "plan": "trial",
    "trial_expires_at": "2027-03-31",
    "products": ["chat", "erp"],
    "database": {
        "tables": ["orders", "contacts"],
        "privileges": ["select", "insert"],
        "connection_limit": 3,
        "statement_timeout": "15s",
    },
}


def build(protect: bool = False) -> list[Any]:
    cloudflare = {
        "zone": "smarterbot.cl",
        "zoneId": "zone-id",
        "accountId": "account-id",
        "adminGroupId": "admin-group-id",
        "appTarget": "app.ingress.smarterbot.cl",
        "products": {p: {"target": f"{p}.ingress.smarterbot.cl"} for p in ("chat", "erp", "automation", "store")},
    }
    config = StackConfig.model_validate({"protect": protect, "cloudflare": cloudflare})

    def program() -> None:
        shared = SharedDatabase("platform", SharedDatabaseArgs(config))
        Database("76953480-6", DatabaseArgs(TenantSpec.model_validate(TENANT), config, shared.ready))

    return run_program(program)


def test_a_tenant_gets_record_role_grants_and_binding_under_its_database() -> None:
    resources = build()
    database = one(resources, type="smarteros:tenant:Database")
    assert database.name == "76953480-6"
    kinds = {r.type.rsplit(":", 1)[-1]: r for r in resources if r.parent == database.urn}
    assert sorted(kinds) == ["TableGrants", "TenantBinding", "TenantRecord", "TenantRole"]
    assert {r.name for r in kinds.values()} == {
        "76953480-6-record",
        "76953480-6-role",
        "76953480-6-grants",
        "76953480-6-binding",
    }
    role = kinds["TenantRole"]
    assert role.type == "pulumi-python:dynamic/postgres:TenantRole"
    assert role.options.additional_secret_outputs == ["password"]
    # The database names the role (a keyed hash of the RUT): the name is an output, never the RUT.
    assert role.inputs.get("role_name") is None
    assert role.inputs["connection_limit"] == 3 and role.inputs["statement_timeout"] == "15s"
    assert role.inputs["stack"].endswith("/test")
    grants = kinds["TableGrants"]
    assert grants.inputs["tables"] == ["contacts", "orders"]
    assert grants.inputs["privileges"] == ["insert", "select"]
    assert grants.inputs.get("role_name") is None  # the role's output: unknown until the database names it
    assert role.urn in grants.options.depends_on
    binding = kinds["TenantBinding"]
    assert {role.urn, kinds["TenantRecord"].urn} <= set(binding.options.depends_on)
    record = kinds["TenantRecord"]
    assert record.inputs["hostnames"] == [
        "ferreteria-chat.smarterbot.cl",
        "ferreteria-erp.smarterbot.cl",
        "ferreteria.smarterbot.cl",
    ]
    assert record.inputs["trial_expires_at"] == "2027-03-31"
    schema = one(resources, type="pulumi-python:dynamic/postgres:SharedSchema")
    assert schema.urn in role.options.depends_on and schema.urn in record.options.depends_on


def test_the_shared_schema_is_retained_and_protected_in_production() -> None:
    for protect in (False, True):
        resources = build(protect)
        schema = one(resources, type="pulumi-python:dynamic/postgres:SharedSchema")
        assert schema.options.retain_on_delete is True
        assert schema.options.protect is protect
        assert schema.parent == one(resources, type="smarteros:platform:SharedDatabase").urn
        assert sorted(schema.inputs["files"]) == [
            "010_registry.sql",
            "020_tenant_tables.sql",
            "030_views.sql",
            "040_row_level_security.sql",
            "050_tenant_privacy.sql",
        ]
    assert not by_type(resources, "pulumi-python:dynamic/postgres:TenantRole")[0].options.protect
