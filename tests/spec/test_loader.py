"""Loading tenant files: the shipped tenants, every problem reported at once, and the command line."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from components.spec import (
    MAX_EXPANDED_NODES,
    Problem,
    SpecError,
    credential_kind,
    load_tenants,
    tenant_json_schema,
)

ROOT = Path(__file__).resolve().parents[2]
TENANTS = ROOT / "tenants"

HEADER = "# yaml-language-server: $schema=./tenant.schema.json\n"


def tenant(rut: str, slug: str, extra: str = "") -> str:
    return f"{HEADER}rut: {rut}\nslug: {slug}\nname: {slug.title()}\nstatus: active\nplan: pro\n{extra}"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(*paths: str | Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_tenants(list(paths))
    return str(caught.value).splitlines()


# -- the shipped tenants ---------------------------------------------------------------------------


def test_shipped_tenants_are_valid() -> None:
    specs = load_tenants([TENANTS])
    by_slug = {s.slug: s for s in specs}
    assert [s.slug for s in specs] == ["demo", "smarterbot", "smartermcp"]  # file order
    assert by_slug["smarterbot"].rut == "99999999-9"
    assert (by_slug["smarterbot"].type, by_slug["smarterbot"].status, by_slug["smarterbot"].plan) == (
        "infrastructure",
        "active",
        "infinite",
    )
    assert by_slug["demo"].rut == "11111111-1"
    assert (by_slug["demo"].type, by_slug["demo"].status, by_slug["demo"].plan) == ("customer", "trial", "trial")
    assert by_slug["demo"].trial_expires_at == date(2027, 3, 31)
    assert by_slug["demo"].collection_name == "11111111-1 (DEMO)"
    assert by_slug["smartermcp"].rut == "0-0"
    assert (by_slug["smartermcp"].type, by_slug["smartermcp"].plan) == ("infrastructure", "infrastructure")


def test_every_tenant_file_starts_with_the_schema_line() -> None:
    for path in sorted(TENANTS.glob("*.yaml")):
        assert path.read_text(encoding="utf-8").splitlines()[0] == HEADER.rstrip("\n"), path.name


def test_cli_reports_valid_tenants_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "components", "validate"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "3 tenant files valid (tenants/)\n", "")


def test_cli_accepts_files_and_patterns() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "components", "validate", "tenants/demo.yaml", "tenants/smarter*.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "3 tenant files valid (tenants/demo.yaml, tenants/smarter*.yaml)\n"


def test_validate_never_imports_pulumi() -> None:
    code = (
        "import sys; from components.__main__ import main; rc = main(['validate', 'tenants/']); "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_cloudflare', 'grpc')); "
        "print(rc, loaded)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.stdout.splitlines()[-1] == "0 []", result.stderr


def test_cli_without_a_command_shows_usage() -> None:
    result = subprocess.run([sys.executable, "-m", "components"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "validate" in result.stderr and "Traceback" not in result.stderr


def test_schema_file_is_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("generate_schema", ROOT / "scripts" / "generate_schema.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (TENANTS / "tenant.schema.json").read_text(encoding="utf-8")
    assert committed == module.render(), "run scripts/generate_schema.py"


def test_schema_describes_every_field_and_the_trial_rule() -> None:
    schema = tenant_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "Tenant file"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"rut", "slug", "name", "status", "plan"}
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name
    for model in schema["$defs"].values():
        for name, prop in model["properties"].items():
            assert prop.get("description"), name
    assert schema["then"] == {"required": ["trial_expires_at"]}
    json.dumps(schema)  # serialisable as written to the file


# -- several files, every problem at once ----------------------------------------------------------


def test_every_problem_in_every_file_is_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "tenants"
    folder.mkdir()
    write(folder, "acme.yaml", tenant("76.953.480-6", "acme", "access:\n  emails: [ana@acme.cl, 'bob@']\n"))
    write(folder, "beta.yaml", tenant("12.345.678-9", "beta", "products: [chat, crm]\n"))
    write(folder, "gamma.yaml", tenant("076953480-6", "gama"))
    write(folder, "good.yaml", tenant("10000013-K", "good"))
    assert problems_of("tenants") == [
        "tenants/acme.yaml:8:25: access.emails[1]: 'bob@' is not an e-mail address",
        "tenants/beta.yaml:2:6: rut: '12.345.678-9' has check digit 9, expected 5",
        "tenants/beta.yaml:7:18: products[1]: 'crm' is not one of 'chat', 'erp', 'automation' or 'store'",
        "tenants/gamma.yaml:2:6: rut: '076953480-6' is RUT 76953480-6, already used by tenants/acme.yaml:2:6",
        "tenants/gamma.yaml:3:7: slug: 'gama' differs from the file name; rename the file to gama.yaml",
    ]


def test_problems_carry_path_position_and_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "acme.yaml", tenant("76953480-6", "acme", "database:\n  tables: [orders, invoices]\n"))
    with pytest.raises(SpecError) as caught:
        load_tenants(["acme.yaml"])
    (problem,) = caught.value.problems
    assert (problem.path, problem.line, problem.col, problem.field) == ("acme.yaml", 8, 20, "database.tables[1]")
    assert problem.message.startswith("'invoices' is not a shared table")


def test_a_valid_file_next_to_a_bad_one_is_not_deployed(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", tenant("76953480-6", "acme"))
    write(tmp_path, "beta.yaml", tenant("10000013-K", "beta", "plan: again\n"))
    with pytest.raises(SpecError) as caught:
        load_tenants([tmp_path])
    assert [p.field for p in caught.value.problems] == ["plan"]


def test_the_same_file_named_twice_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    specs = load_tenants(["tenants/", "tenants/demo.yaml", str(TENANTS / "demo.yaml"), "tenants/*.yaml"])
    assert [s.slug for s in specs] == ["demo", "smarterbot", "smartermcp"]


def test_hostnames_clash_between_a_slug_and_a_product_hostname(tmp_path: Path) -> None:
    write(tmp_path, "acme.yaml", tenant("76953480-6", "acme", "products: [chat]\n"))
    write(tmp_path, "acme-chat.yaml", tenant("10000013-K", "acme-chat"))
    lines = problems_of(tmp_path)
    assert len(lines) == 1
    assert lines[0].endswith(f"products[0]: hostname acme-chat.<zone> is also claimed by {tmp_path}/acme-chat.yaml:3:7")


# -- YAML details ----------------------------------------------------------------------------------


def test_yaml_one_point_two_scalars(tmp_path: Path) -> None:
    extra = "analytics:\n  queries: no\n  enabled: false\n  collection: on\n"
    write(tmp_path, "acme.yaml", tenant("76953480-6", "acme", extra).replace("plan: pro", "plan: yes"))
    (spec,) = load_tenants([tmp_path])
    assert (spec.analytics.queries, spec.analytics.enabled, spec.analytics.collection, spec.plan) == (
        "no",
        False,
        "on",
        "yes",
    )


def test_a_plain_alias_is_accepted(tmp_path: Path) -> None:
    extra = "analytics:\n  owners: &team [ana@acme.cl, luis@acme.cl]\n  viewers: *team\n"
    write(tmp_path, "acme.yaml", tenant("76953480-6", "acme", extra))
    (spec,) = load_tenants([tmp_path])
    assert spec.analytics.viewers == ["ana@acme.cl", "luis@acme.cl"]


def test_aliases_may_not_expand_beyond_the_budget(tmp_path: Path) -> None:
    # 2**14 list items from 14 nested aliases: tiny on disk, over budget once expanded.
    lines = ["x0: &l0 [a, a]"] + [f"x{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, 15)]
    write(tmp_path, "acme.yaml", tenant("76953480-6", "acme", "\n".join(lines) + "\n"))
    assert MAX_EXPANDED_NODES < 2**15
    (line,) = problems_of(tmp_path)
    assert "expand this document beyond" in line


def test_unreadable_paths_are_problems_not_crashes(tmp_path: Path) -> None:
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    assert problems_of(tmp_path / "absent.yaml", folder) == [
        f"{tmp_path}/absent.yaml: cannot read: no such file or folder",
        f"{folder}: is a folder, not a tenant file; tenant files are not looked for inside it",
    ]


# -- credential-looking values ---------------------------------------------------------------------

SECRETS = {
    "a PEM block": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    "a URL with a password": "postgres://acme:Tr0ub4dor@db.acme.cl/acme",
    "a connection string with a password": "host=db user=acme password=Tr0ub4dor",
    "a GitHub token": "ghp_" + "Ab1" * 12,
    "a Stripe secret key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "a Slack token": "xoxb-1234567890-abcdefghij",
    "an AWS access key": "AKIAIOSFODNN7EXAMPLE",
    "a JSON Web Token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "a long hexadecimal token": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
    "a long random-looking token": "q7Xv2LpR9sTz4WbN8mKd3HfJ",
}

HARMLESS = [
    "query-builder-and-native",
    "customer-relationship-management",
    "smarterbot-infrastructure-tenant",
    "chatwoot_platform_api_token_v2",
    "ERP_Sales_Reports_2024_Q1",
    "CustomerRelationshipManagementReports",
    "3f2a9c1e-7b4d-4e2a-9c1e-7b4d4e2a9c1e",
    "https://metabase.smarterbot.cl/collection/12",
    "postgresql://db.acme.cl:5432/acme",
    "ops@smarterbot.cl",
    "Ferretería Juanito (sucursal Ñuñoa)",
    "76.953.480-6",
]


@pytest.mark.parametrize(("kind", "value"), list(SECRETS.items()))
def test_credential_looking_values_are_recognised(kind: str, value: str) -> None:
    assert credential_kind(value) == kind


@pytest.mark.parametrize("value", HARMLESS)
def test_ordinary_values_are_not_mistaken_for_credentials(value: str) -> None:
    assert credential_kind(value) is None


def test_values_of_the_shipped_tenants_are_not_mistaken_for_credentials() -> None:
    import yaml

    def scalars(node: object) -> list[str]:
        if isinstance(node, dict):
            return [s for k, v in node.items() for s in [str(k), *scalars(v)]]
        if isinstance(node, list):
            return [s for v in node for s in scalars(v)]
        return [str(node)]

    for path in TENANTS.glob("*.yaml"):
        for value in scalars(yaml.safe_load(path.read_text(encoding="utf-8"))):
            assert credential_kind(value) is None, (path.name, value)


@pytest.mark.parametrize("value", list(SECRETS.values()))
def test_messages_never_repeat_a_credential(tmp_path: Path, value: str) -> None:
    # In a field that would also fail its own rules: still one message, without the value.
    extra = "access:\n  emails:\n    - " + json.dumps(value) + "\n"
    path = write(tmp_path, "acme.yaml", tenant("76953480-6", "acme", extra))
    lines = problems_of(path)
    assert len(lines) == 1
    assert "looks like a credential" in lines[0] and "credentials belong in Vault" in lines[0]
    for piece in value.split():
        if len(piece) >= 8:
            assert piece not in lines[0]


def test_keys_are_not_judged_only_values(tmp_path: Path) -> None:
    extra = "secrets:\n  supabase:\n    external: [service_role_key]\n"
    write(tmp_path, "acme.yaml", tenant("76953480-6", "acme", extra))
    (spec,) = load_tenants([tmp_path])
    assert spec.secrets["supabase"].external == ["service_role_key"]


def test_problem_text_format() -> None:
    assert str(Problem("tenants/acme.yaml", 12, 5, "access.emails[1]", "'bob@' is not an e-mail address")) == (
        "tenants/acme.yaml:12:5: access.emails[1]: 'bob@' is not an e-mail address"
    )
    assert str(Problem("tenants/x.yaml", 0, 0, "", "cannot read: permission denied")) == (
        "tenants/x.yaml: cannot read: permission denied"
    )
    assert os.sep == "/"


def test_an_unknown_key_holding_a_credential_gets_both_messages(tmp_path: Path) -> None:
    path = write(tmp_path, "acme.yaml", tenant("76953480-6", "acme", 'notes: "host=db password=hunter2"\n'))
    lines = problems_of(path)
    assert [line.split(": ", 2)[1:] for line in lines] == [
        ["notes", "unknown key; allowed: " + ", ".join(tenant_json_schema()["properties"])],
        ["notes", "looks like a credential (a connection string with a password); credentials belong in Vault"],
    ]
    assert "hunter2" not in "\n".join(lines)
