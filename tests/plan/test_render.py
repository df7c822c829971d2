"""The comment stays inert and within GitHub's size limit whatever the tenant files say."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import markdown_it

from components import plan

CLOUDFLARE_DNS = "cloudflare:index/dnsRecord:DnsRecord"


def resource(rut: str, logical: str, type_: str = CLOUDFLARE_DNS, **inputs: Any) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:prod::smarteros::smarteros:tenant:Tenant${type_}::{logical}",
        "type": type_,
        "name": logical,
        "parent": f"urn:tenant:{rut}",
        "custom": True,
        "inputs": inputs,
        "protect": False,
        "retain_on_delete": False,
    }


def tenant(rut: str) -> dict[str, Any]:
    return {
        "urn": f"urn:tenant:{rut}",
        "type": plan.TENANT_TYPE,
        "name": rut,
        "parent": None,
        "custom": False,
        "inputs": {},
    }


def side(label: str, resources: list[dict[str, Any]], files: list[plan.TenantFile]) -> plan.Side:
    return plan.Side(label=label, resources=resources, files=files)


def file(rut: str, name: str, status: str = "active", path: str | None = None) -> plan.TenantFile:
    where = path or f"tenants/t{rut}.yaml"
    return plan.TenantFile(path=where, rut=rut, name=name, status=status, trial_expires_at=None)


HOSTILE = "<img src=x onerror=alert(1)> @everyone [click](https://evil.example) | **bold** `tick` &amp;"


def rendered_html(markdown: str) -> str:
    return str(markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown))


def test_hostile_tenant_names_render_as_plain_text() -> None:
    rut = "76953480-6"
    base = side("main", [], [])
    head = side(
        "pr",
        [tenant(rut), resource(rut, f"{rut}-app", name=HOSTILE, content="x")],
        [file(rut, HOSTILE, path="tenants/acme.yaml")],
    )
    markdown = plan.render(plan.compare(base, head, stack="prod", today=date(2026, 6, 1)))
    page = rendered_html(markdown)
    assert "<img" not in page
    assert "<a " not in page
    assert "<strong>bold" not in page
    # GitHub makes no mention of an @name inside code: every place the name appears is code
    assert len(re.findall(r"@everyone", page)) == len(re.findall(r"<code>[^<]*@everyone[^<]*</code>", page)) == 2
    # the table keeps its eight columns: the name's "|" did not open a new cell
    row = next(line for line in markdown.splitlines() if line.startswith("| ") and rut in line)
    assert len(re.findall(r"(?<!\\)\|", row)) == 9
    # the summary line is inside an HTML block: escaped as HTML, and no bare @mention
    summary = next(line for line in markdown.splitlines() if line.startswith("<details>"))
    assert "<img" not in summary
    assert "<code>&lt;img src=x onerror=alert(1)&gt; &#64;everyone" in summary


def test_a_huge_change_is_summarised_to_fit_one_comment() -> None:
    base = side("main", [], [])
    resources: list[dict[str, Any]] = []
    files = []
    for n in range(400):
        rut = f"{10_000_000 + n}-{n % 10}"
        resources.append(tenant(rut))
        resources += [resource(rut, f"{rut}-host-{i}", name=f"h{i}-{'x' * 40}.example.cl") for i in range(12)]
        files.append(file(rut, f"Tenant {n}"))
    markdown = plan.render(plan.compare(base, side("pr", resources, files), stack="prod", today=date(2026, 6, 1)))
    assert len(markdown) <= plan.BUDGET < plan.COMMENT_LIMIT
    assert "Too large for one comment" in markdown
    assert markdown.count("<details>") == markdown.count("</details>")


def test_a_small_change_is_shown_in_full() -> None:
    rut = "76953480-6"
    old = resource(rut, f"{rut}-app", name="a.example.cl", content="old")
    new = resource(rut, f"{rut}-app", name="a.example.cl", content="new")
    base = side("main", [tenant(rut), old], [file(rut, "A")])
    head = side("pr", [tenant(rut), new], [file(rut, "A")])
    markdown = plan.render(plan.compare(base, head, stack="prod", today=date(2026, 6, 1)))
    assert "  - `content`: `old` → `new`" in markdown
    assert "Too large" not in markdown
