"""``python -m components graph``: what reviewers see of a tenant file, without credentials."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from components.graph import SECRET, load_stack_file, redacted
from tests.harness.mocks import run_program

ROOT = Path(__file__).resolve().parents[2]


def graph(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "components", "graph", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_graph_of_shipped_tenants_prints_each_tenant_with_its_edge_parented_correctly() -> None:
    result = graph()
    assert result.returncode == 0, result.stderr
    resources = json.loads(result.stdout)
    by_urn = {r["urn"]: r for r in resources}
    assert all(set(r) == {"urn", "type", "name", "parent", "inputs"} for r in resources)
    prod, _ = load_stack_file("prod")
    for rut in ("99999999-9", "11111111-1", "0-0"):
        tenant = next(r for r in resources if r["type"] == "smarteros:tenant:Tenant" and r["name"] == rut)
        assert tenant["parent"] is None
        edge = next(r for r in resources if r["type"] == "smarteros:tenant:Edge" and r["parent"] == tenant["urn"])
        edge_parts = [r for r in resources if r["parent"] == edge["urn"]]
        kinds = sorted(r["type"].split(":")[-1] for r in edge_parts)
        assert kinds.count("ZeroTrustAccessApplication") == 1
        assert kinds.count("ZeroTrustAccessPolicy") == 1
        assert kinds.count("DnsRecord") >= 1
        for record in (r for r in edge_parts if r["type"].endswith("DnsRecord")):
            assert record["inputs"]["zoneId"] == prod["smarteros:cloudflare"]["zoneId"]
            assert by_urn[record["parent"]]["parent"] == tenant["urn"]
        for access in (r for r in edge_parts if "ZeroTrust" in r["type"]):
            assert access["inputs"]["accountId"] == prod["smarteros:cloudflare"]["accountId"]


def test_graph_of_a_bad_folder_exits_1_with_the_messages_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text("rut: 12.345.678-9\nslug: acme\nname: Acme\nplan: x\n", encoding="utf-8")
    result = graph("--tenants", str(tmp_path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "acme.yaml:1:6: rut:" in result.stderr


def test_unknown_stack_is_a_one_line_error() -> None:
    result = graph("--stack", "nope")
    assert result.returncode == 1
    assert result.stderr.strip() == "Pulumi.nope.yaml: no such stack file"


def test_secure_values_of_a_stack_file_show_as_secret(tmp_path: Path) -> None:
    stack = (ROOT / "Pulumi.prod.yaml").read_text(encoding="utf-8")
    stack = stack.replace("smarteros:credentials: environment", "smarteros:credentials: config-or-environment")
    stack += "  smarteros:cloudflareApiToken:\n    secure: v1:AAAABBBBCCCCDDDD\n"
    (tmp_path / "Pulumi.review.yaml").write_text(stack, encoding="utf-8")
    values, secret_keys = load_stack_file("review", root=tmp_path)
    assert secret_keys == ["smarteros:cloudflareApiToken"]
    values["smarteros:tenantFiles"] = [str(ROOT / "tenants" / "*.yaml")]
    shown = redacted(run_program(config=values, secret_keys=secret_keys, stack="review"))
    (provider,) = [r for r in shown if r["type"] == "pulumi:providers:cloudflare"]
    assert provider["inputs"]["apiToken"] == SECRET
    assert "v1:AAAABBBBCCCCDDDD" not in json.dumps(shown)

