"""The package layout keeps old state working: providers serialised by the single-module layout
(``components.providers.metabase.<Class>``, pickled by reference) still load in the provider host and work.

``fixtures/providers_before_package.json`` holds the ``__provider`` strings exactly as the engine stored them
before ``components/providers/metabase`` became a package (``serialize_provider`` of each provider class).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from components.providers import metabase
from tests.harness.provider_host import ProviderHost
from tests.metabase.conftest import Driven, fake_rut

FIXTURE = Path(__file__).parent / "fixtures" / "providers_before_package.json"
OLD: dict[str, str] = json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_the_fixture_refers_to_the_old_module_path() -> None:
    for name, serialized in OLD.items():
        raw = base64.b64decode(serialized)
        assert b"components.providers.metabase\x94" in raw and name.encode() in raw, name
        assert b"components.providers.metabase." not in raw, name  # not a sub-module path


@pytest.mark.parametrize("name", sorted(OLD))
def test_every_old_class_path_still_resolves(name: str) -> None:
    assert isinstance(getattr(metabase, name), type)


def test_an_old_serialised_provider_loads_and_works(double_host: ProviderHost, metabase_double: Any) -> None:
    rut = fake_rut()
    group = Driven(double_host, OLD["PermissionsGroupProvider"], metabase.PermissionsGroup, f"{rut}-owners")
    group.create({"name": f"tenant {rut} owners", "tenant": rut})
    assert metabase_double.group_named(f"tenant {rut} owners")["id"] == int(group.id)
    assert group.diff().changes is False
    assert group.refresh() == group.id
    group.delete()
    assert metabase_double.group_named(f"tenant {rut} owners") is None
