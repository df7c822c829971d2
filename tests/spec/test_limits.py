"""One definition of every limit: what validate accepts, every provider's check accepts too.

The corpus under ``extreme/`` holds valid tenant files at the edges of every limit (longest names, largest
numbers, every list full, characters that need quoting in SQL, HCL, JSON and URLs). The real program
turns them into resources under Pulumi mocks, as in a preview (what providers compute on create is not
known yet); each dynamic resource's own provider, exactly as serialised under ``__provider``, then checks
the inputs the program derived, through the real dynamic-provider host. None may fail: a file that
validates never fails at preview for its own content.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import dill
import pulumi
import pytest
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components import limits
from components.__main__ import main
from components.providers import postgres, vault
from tests.harness.mocks import ProgramRun, execute, stack_config
from tests.harness.provider_host import UNKNOWN, ProviderHostFactory

EXTREME = Path(__file__).resolve().parent / "extreme"


def _plain(value: Any) -> Any:
    """Recorded inputs as the engine sends them to Check: secrets unwrapped, unknowns as the sentinel."""
    if rpc.is_rpc_secret(value):
        return _plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@pytest.fixture(scope="module")
def extreme() -> ProgramRun:
    """The program's registrations as in a preview: what a provider computes on create is not known yet."""
    set_mocks = pulumi.runtime.set_mocks

    def previewing(*args: Any, **kwargs: Any) -> None:
        set_mocks(*args, **{**kwargs, "preview": True})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pulumi.runtime, "set_mocks", previewing)
        return execute(config=stack_config("prod", tenantFiles=[str(EXTREME / "*.yaml")]), stack="prod")


def test_the_extreme_corpus_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXTREME)]) == 0
    assert capsys.readouterr().out == f"3 tenant files valid ({EXTREME})\n"


def test_every_provider_check_accepts_what_the_program_derives_from_extreme_files(
    extreme: ProgramRun, provider_host_factory: ProviderHostFactory
) -> None:
    host = provider_host_factory({})
    checked: dict[str, int] = {}
    for resource in extreme.resources:
        inputs = _plain(resource.inputs)
        if "__provider" not in inputs:
            continue  # a Cloudflare resource: its provider plugin checks it, see test_edge
        provider = dill.loads(base64.b64decode(inputs.pop("__provider")))
        outcome = host.check(provider, resource.urn, {}, inputs)
        assert outcome.failures == [], f"{resource.type} {resource.name}: {outcome.failures}"
        kind = type(provider).__name__
        checked[kind] = checked.get(kind, 0) + 1
    # Every dynamic provider the program uses was exercised: the tenant-scoped ones once per tenant.
    assert checked.pop("SharedSchemaProvider") == 1
    for kind in ("TenantRoleProvider", "TableGrantsProvider", "TenantBindingProvider", "TenantRecordProvider"):
        assert checked.pop(kind) == 3, kind
    for kind in ("PolicyProvider", "AppRoleProvider"):
        assert checked.pop(kind) == 3, kind
    assert checked.pop("SecretProvider") >= 5  # four services of the largest tenant, one of the smallest
    assert checked.pop("CollectionProvider") == 3  # the shared parent and two tenants (one has analytics off)
    assert checked.pop("DatabaseConnectionProvider") == 2
    assert checked.pop("PermissionsGroupProvider") == 4
    assert checked, "the Metabase permission providers were exercised too"


def test_the_largest_values_reach_the_providers_unchanged(extreme: ProgramRun) -> None:
    inputs = [_plain(r.inputs) for r in extreme.resources]
    assert limits.ROTATE_MAX in [i.get("rotate") for i in inputs]
    assert "24d" in [i.get("statement_timeout") for i in inputs]
    assert limits.NAME_MAX_LENGTH in [len(i["name"]) for i in inputs if "rut" in i and "slug" in i]


def test_providers_refuse_one_step_past_each_limit() -> None:
    """The same constants bound the providers: one past the edge fails their check too."""
    with pytest.raises(ValueError, match="longer than PostgreSQL allows"):
        postgres.timeout_ms(f"{limits.PG_INT_MAX + 1}ms")
    with pytest.raises(ValueError, match="not a duration"):
        postgres.timeout_ms("30\u00a0s")
    with pytest.raises(ValueError, match="not a duration"):
        postgres.timeout_ms("\u0663\u0660s")
    secret = {"rut": "1-9", "mount": "secret", "stack": "s/p", "service": "odoo", "generate": [], "external": []}
    failures = dict(vault.check_secret_inputs({**secret, "provided": {}, "rotate": limits.ROTATE_MAX + 1}))
    assert failures["rotate"] == f"must be at most {limits.ROTATE_MAX} (numbers beyond it lose precision)"
    assert vault.check_secret_inputs({**secret, "provided": {}, "rotate": limits.ROTATE_MAX}) == []
    record = {
        "rut": "1-9", "slug": "acme", "type": "customer", "status": "active", "plan": "p", "products": [],
        "hostnames": [], "stack": "s/p",
    }  # fmt: skip
    provider = postgres.TenantRecordProvider()
    assert provider.check({}, {**record, "name": "n" * limits.NAME_MAX_LENGTH}).failures == []
    too_long = provider.check({}, {**record, "name": "n" * (limits.NAME_MAX_LENGTH + 1)}).failures or []
    assert [f.property for f in too_long] == ["name"]


def test_ownership_markers_are_the_ones_each_provider_writes() -> None:
    from components.providers import metabase

    assert metabase._TAG_PREFIX == limits.METABASE_TAG_PREFIX
    assert postgres.ownership_marker("s/p", "1-9").startswith(limits.POSTGRES_MARKER_PREFIX)
    assert vault.policy_marker("s/p").startswith("# " + limits.VAULT_MARKER + " ")
    # The Metabase provider refuses a description that carries its tag; a tenant name ends up in one.
    provider = metabase.CollectionProvider()
    result = provider.check({}, {"name": "x", "description": f"BI of {limits.METABASE_TAG_PREFIX}prod]"})
    assert [f.property for f in result.failures or []] == ["description"]


def test_every_metabase_name_the_program_derives_fits_metabase_columns(extreme: ProgramRun) -> None:
    """Metabase keeps collection, group and database names in VARCHAR(254); no check of ours sees that."""
    names = [
        _plain(r.inputs)["name"]
        for r in extreme.resources
        if r.type.split(":")[-1] in ("Collection", "DatabaseConnection", "PermissionsGroup")
    ]
    assert len(names) == 9
    assert max(len(name) for name in names) == limits.METABASE_NAME_MAX_LENGTH  # the longest collection
    assert all(len(name) <= limits.METABASE_NAME_MAX_LENGTH for name in names)
