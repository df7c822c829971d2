"""Benchmark: a no-change pass over N tenants' Metabase resources issues only reads, and what it costs per tenant.

For each fleet size, starts the Metabase test double (connection checks off: no PostgreSQL needed) and a real
provider host, converges the platform scaffolding and N tenants' workspaces through Check/Create, then runs the
pass a no-change ``pulumi up --refresh`` makes: Check, Read and Diff for every resource. It prints the requests
and the bytes Metabase answered per tenant on that pass (per endpoint too), and fails (exit 1) if the second
pass reported a change or issued anything but GET.

    .venv/bin/python scripts/bench_metabase.py --tenants 100 1000
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stdnum.cl import rut as cl_rut

from components import naming
from components.analytics import collection_description, database_connection_name
from components.providers import metabase as mb
from components.providers.base import reset_sdk_pickler
from tests.harness import provider_host
from tests.harness.provider_host import ProviderHost, urn
from tests.metabase.double import MetabaseDouble


@dataclass
class Res:
    provider: Any
    kind: Any
    name: str
    news: dict[str, Any]
    id: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def urn(self) -> str:
        return urn(self.kind, self.name)


_sdk_serialize = provider_host.serialize_provider


def _serialize(provider: Any) -> str:
    # The harness serialises the provider on every call; keep the SDK's pickler from nesting without bound.
    reset_sdk_pickler()
    return str(_sdk_serialize(provider))


provider_host.serialize_provider = _serialize


def create(host: ProviderHost, res: Res) -> Res:
    checked = host.check(res.provider, res.urn, {}, res.news)
    assert not checked.failures, checked.failures
    res.inputs = checked.inputs
    res.id, res.outputs = host.create(res.provider, res.urn, res.inputs)
    return res


def second_pass(host: ProviderHost, res: Res) -> bool:
    """Check, Read, Diff as a no-change refresh-and-update does; True when a change was reported."""
    checked = host.check(res.provider, res.urn, res.inputs, res.news)
    found, outputs, _ = host.read(res.provider, res.id, res.urn, res.outputs)
    assert found == res.id, f"{res.name} disappeared"
    res.outputs = outputs  # what a refresh writes back into the state
    diff = host.diff(res.provider, res.id, res.urn, outputs, checked.inputs)
    return bool(diff.changes)


def tenant_resources(host: ProviderHost, rut: str, tenants_collection: int) -> list[Res]:
    """What the Analytics component registers for one tenant."""
    name = f"Empresa {rut}"
    made: list[Res] = []
    groups = {}
    for kind in ("owners", "viewers"):
        groups[kind] = create(
            host,
            Res(
                mb.PermissionsGroupProvider(),
                mb.PermissionsGroup,
                f"{rut}-{kind}",
                {"name": naming.metabase_group_name(rut, kind), "tenant": rut},
            ),
        )
    made += groups.values()
    allowed = [int(g.id) for g in groups.values()]
    col = create(
        host,
        Res(
            mb.CollectionProvider(),
            mb.Collection,
            f"{rut}-collection",
            {
                "name": naming.default_collection_name(rut, name),
                "parent_id": tenants_collection,
                "description": collection_description(rut, name),
                "tenant": rut,
                "allowed_group_ids": allowed,
            },
        ),
    )
    made.append(col)
    for kind, level in (("owners", "write"), ("viewers", "read")):
        made.append(
            create(
                host,
                Res(
                    mb.CollectionPermissionProvider(),
                    mb.CollectionPermission,
                    f"{rut}-{kind}-collection",
                    {"group_id": int(groups[kind].id), "collection_id": int(col.id), "level": level, "tenant": rut},
                ),
            )
        )
    made.append(
        create(
            host,
            Res(
                mb.CollectionIsolationProvider(),
                mb.CollectionIsolation,
                f"{rut}-collection-isolation",
                {"collection_id": int(col.id), "allowed_group_ids": allowed, "tenant": rut},
            ),
        )
    )
    db = create(
        host,
        Res(
            mb.DatabaseConnectionProvider(),
            mb.DatabaseConnection,
            f"{rut}-database",
            {
                "name": database_connection_name(rut, name),
                "host": "db.internal",
                "port": 6543,
                "dbname": "postgres",
                "role": naming.role_name(rut),
                "user_template": "{role}.projectref",
                "password": secrets.token_urlsafe(24),
                "ssl": True,
                "additional_options": "prepareThreshold=0",
                "tenant": rut,
                "allowed_group_ids": allowed,
            },
        ),
    )
    made.append(db)
    made.append(
        create(
            host,
            Res(
                mb.DatabaseIsolationProvider(),
                mb.DatabaseIsolation,
                f"{rut}-database-isolation",
                {"database_id": int(db.id), "allowed_group_ids": allowed, "tenant": rut},
            ),
        )
    )
    for kind in ("owners", "viewers"):
        made.append(
            create(
                host,
                Res(
                    mb.DataPermissionProvider(),
                    mb.DataPermission,
                    f"{rut}-{kind}-data",
                    {
                        "group_id": int(groups[kind].id),
                        "database_id": int(db.id),
                        "level": "query-builder",
                        "tenant": rut,
                    },
                ),
            )
        )
    return made


@dataclass
class Figures:
    """One no-change pass (Check, Read, Diff of every resource), per tenant."""

    seconds: float
    requests_per_tenant: list[int]
    bytes_per_tenant: list[int]
    by_endpoint: Counter[str]
    bytes_by_endpoint: Counter[str]
    platform: Counter[str]
    non_get: int
    changed: list[str]


@dataclass
class Run:
    tenants: int
    resources: int
    converge_seconds: float
    passes: list[Figures]


def measure_pass(
    double: MetabaseDouble, host: ProviderHost, platform: list[Res], ruts: list[str], by_tenant: dict[str, list[Res]]
) -> Figures:
    began = time.perf_counter()
    changed: list[str] = []
    requests_per_tenant: list[int] = []
    bytes_per_tenant: list[int] = []
    by_endpoint: Counter[str] = Counter()
    bytes_by_endpoint: Counter[str] = Counter()
    with double.recording() as calls:
        for res in platform:
            if second_pass(host, res):
                changed.append(res.name)
    platform_counts = Counter(method for method, _ in calls)
    non_get = sum(v for k, v in platform_counts.items() if k != "GET")
    for rut in ruts:
        start = len(double.bytes_sent)
        with double.recording() as calls:
            for res in by_tenant[rut]:
                if second_pass(host, res):
                    changed.append(res.name)
        answered = double.bytes_sent[start:]
        requests_per_tenant.append(len(calls))
        bytes_per_tenant.append(sum(size for _, _, size in answered))
        non_get += sum(1 for method, _ in calls if method != "GET")
        by_endpoint.update(f"{method} {_shape(path)}" for method, path in calls)
        for method, path, size in answered:
            bytes_by_endpoint[f"{method} {_shape(path)}"] += size
    return Figures(
        time.perf_counter() - began, requests_per_tenant, bytes_per_tenant, by_endpoint, bytes_by_endpoint,
        platform_counts, non_get, changed,
    )


def run(tenants: int) -> Run:
    double = MetabaseDouble(check_connections=False, ssl_available=True).start()
    host = ProviderHost().start()
    try:
        host.configure({"smarteros:metabase": {"url": double.url}, "smarteros:metabaseApiKey": double.api_key})
        double.seed_database("smarteros (admin)", {"host": "db.internal", "dbname": "postgres"})
        began = time.perf_counter()
        platform = [
            create(
                host, Res(mb.CollectionProvider(), mb.Collection, "platform-tenants-collection", {"name": "Tenants"})
            )
        ]
        tenants_collection = int(platform[0].id)
        for key, cid in (("root", "root"), ("tenants", tenants_collection)):
            platform.append(
                create(
                    host,
                    Res(
                        mb.CollectionPermissionProvider(),
                        mb.CollectionPermission,
                        f"platform-all-users-{key}-collection",
                        {"group_id": mb.ALL_USERS_GROUP_ID, "collection_id": cid, "level": "none"},
                    ),
                )
            )
        platform.append(
            create(
                host,
                Res(
                    mb.CollectionIsolationProvider(),
                    mb.CollectionIsolation,
                    "platform-tenants-collection-isolation",
                    {"collection_id": tenants_collection, "allowed_group_ids": []},
                ),
            )
        )
        platform.append(
            create(
                host,
                Res(
                    mb.DatabaseAccessLockdownProvider(),
                    mb.DatabaseAccessLockdown,
                    "platform-all-users-no-queries",
                    {"group_id": mb.ALL_USERS_GROUP_ID, "level": "no"},
                ),
            )
        )
        ruts = [f"{b}-{cl_rut.calc_check_digit(str(b))}" for b in range(76_000_000, 76_000_000 + tenants)]
        by_tenant = {rut: tenant_resources(host, rut, tenants_collection) for rut in ruts}
        first_seconds = time.perf_counter() - began
        resources = sum(len(v) for v in by_tenant.values())

        passes = [measure_pass(double, host, platform, ruts, by_tenant) for _ in range(2)]
    finally:
        host.close()
        double.stop()
    return Run(tenants, resources, first_seconds, passes)


def report(run: Run) -> bool:
    n = run.tenants
    print(f"== {n} tenants: {run.resources} tenant resources; converge {run.converge_seconds:.1f}s")
    ok = True
    titles = ("first refresh after the converge", "steady no-change pass (refresh state written back)")
    for title, f in zip(titles, run.passes, strict=True):
        reqs, sent = f.requests_per_tenant, f.bytes_per_tenant
        print(f"  {title}: {f.seconds:.1f}s")
        print(f"    requests per tenant: mean {sum(reqs) / n:.2f} (min {min(reqs)}, max {max(reqs)})")
        print(f"    bytes per tenant:    mean {sum(sent) / n:,.0f} (min {min(sent):,}, max {max(sent):,})")
        print(f"    platform: {dict(f.platform)}")
        for endpoint in sorted(f.by_endpoint):
            print(
                f"      {endpoint}: {f.by_endpoint[endpoint] / n:.2f} requests, "
                f"{f.bytes_by_endpoint[endpoint] / n:,.0f} bytes per tenant"
            )
        print(f"    resources reporting a change: {len(f.changed)} {f.changed[:5]}; non-GET requests: {f.non_get}")
        ok = ok and not f.changed and f.non_get == 0
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, nargs="+", default=[100, 1000])
    args = parser.parse_args(argv)
    ok = all([report(run(n)) for n in args.tenants])
    print("RESULT:", "ok" if ok else "FAILED")
    return 0 if ok else 1


def _shape(path: str) -> str:
    return "/".join(":id" if part.isdigit() else part for part in path.split("/"))


if __name__ == "__main__":
    raise SystemExit(main())
