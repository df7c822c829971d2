"""How long the program takes under Pulumi mocks, beside the bare SDK registering the same resources.

For 100 and 1,000 generated tenants (all products, every service, analytics on), this script runs the
real ``__main__.py`` under mocks, records every registration, then replays the very same registrations
(same types, names, parents, inputs and options) through the bare SDK with no library code around them:
``ComponentResource`` for components, the typed ``pulumi_cloudflare`` classes for Cloudflare resources,
``pulumi.dynamic.Resource`` (with the same provider object) for dynamic resources. The replay also
unwraps the SDK's pickler before each dynamic resource, as the library does: without it the bare SDK
cannot register more than about a thousand dynamic resources in one process. Both run in this process,
imports done beforehand, alternating program and replay; each figure is the median of 5 runs. It checks
that the replay registered exactly what the program did, then prints seconds and the ratio (target: at
most 1.25).

    .venv/bin/python scripts/bench_program.py [--sizes 100 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import base64
import re
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dill  # noqa: E402
import pulumi  # noqa: E402
import pulumi_cloudflare as cloudflare  # noqa: E402
from pulumi.dynamic import Resource as DynamicResource  # noqa: E402
from pulumi.dynamic import ResourceProvider  # noqa: E402
from pulumi.runtime import rpc  # noqa: E402

from components.graph import Registered, load_stack_file, run_program  # noqa: E402
from components.providers.base import reset_sdk_pickler  # noqa: E402

CLOUDFLARE_CLASSES: dict[str, type[pulumi.CustomResource]] = {
    "cloudflare:index/dnsRecord:DnsRecord": cloudflare.DnsRecord,
    "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication": cloudflare.ZeroTrustAccessApplication,
    "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy": cloudflare.ZeroTrustAccessPolicy,
    "pulumi:providers:cloudflare": cloudflare.Provider,
}


def write_tenants(folder: Path, count: int) -> None:
    """``count`` valid tenant files with every product and service."""
    for i in range(count):
        body = 10_000_000 + i
        rut = f"{body}-{_check_digit(body)}"
        (folder / f"tenant-{i:05d}.yaml").write_text(
            f"""rut: {rut}
slug: tenant-{i:05d}
name: Tenant {i}
type: customer
status: active
plan: pro
products: [chat, erp, automation, store]
access:
  emails: [owner{i}@example.cl]
  email_domains: [tenant{i}.cl]
database:
  tables: [contacts, conversations, messages]
  privileges: [select, insert]
secrets:
  chatwoot: {{generate: [secret_key_base]}}
  botpress: {{generate: [encryption_key]}}
  odoo: {{generate: [admin_password]}}
  supabase: {{generate: [jwt_secret]}}
analytics:
  owners: [owner{i}@example.cl]
""",
            encoding="utf-8",
        )


def _check_digit(body: int) -> str:
    from stdnum.cl import rut as rut_module

    return str(rut_module.calc_check_digit(str(body)))


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(value: Any) -> Any:
    if isinstance(value, dict) and not rpc.is_rpc_secret(value):
        return {_CAMEL.sub("_", k).lower(): _snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake(v) for v in value]
    return _revive(value)


def _revive(value: Any) -> Any:
    """Secrets as the SDK sent them become secret Outputs again."""
    if rpc.is_rpc_secret(value):
        return pulumi.Output.secret(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_revive(v) for v in value]
    return value


DYNAMIC_PREFIX = "pulumi-python:dynamic/"


def dynamic_class(type_token: str) -> type[DynamicResource]:
    """A bare ``pulumi.dynamic.Resource`` subclass registering under ``type_token``."""
    module, name = type_token.removeprefix(DYNAMIC_PREFIX).split(":")
    return types.new_class(f"Bare{name}", (DynamicResource,), {"module": module, "name": name})


def replay(registered: list[Registered]) -> Callable[[], None]:
    """A program that registers ``registered`` through the bare SDK."""
    classes = {r.type: dynamic_class(r.type) for r in registered if r.type.startswith(DYNAMIC_PREFIX)}
    providers_by_text: dict[str, ResourceProvider] = {}
    for r in registered:
        text = r.inputs.get("__provider") if r.type.startswith(DYNAMIC_PREFIX) else None
        if isinstance(text, dict):  # sent as a secret
            text = rpc.unwrap_rpc_secret(text)
        if isinstance(text, str) and text not in providers_by_text:
            providers_by_text[text] = dill.loads(base64.b64decode(text))

    def program() -> None:
        made: dict[str, pulumi.Resource] = {}
        providers: dict[str, pulumi.ProviderResource] = {}
        for r in registered:
            opts = pulumi.ResourceOptions(
                parent=made.get(r.parent) if r.parent else None,
                provider=providers.get(r.options.provider.rsplit("::", 1)[0]) if r.options.provider else None,
                protect=r.options.protect or None,
                retain_on_delete=r.options.retain_on_delete or None,
                additional_secret_outputs=r.options.additional_secret_outputs or None,
                depends_on=[made[u] for u in r.options.depends_on if u in made] or None,
            )
            resource: pulumi.Resource
            if not r.custom:
                resource = pulumi.ComponentResource(r.type, r.name, None, opts)
                resource.register_outputs({})
            elif r.type in CLOUDFLARE_CLASSES:
                kwargs = {k: _snake(v) for k, v in r.inputs.items()}
                kwargs = {_CAMEL.sub("_", k).lower(): v for k, v in kwargs.items()}
                resource = CLOUDFLARE_CLASSES[r.type](r.name, opts=opts, **kwargs)
            elif r.type in classes:
                text = r.inputs["__provider"]
                provider = providers_by_text[rpc.unwrap_rpc_secret(text) if isinstance(text, dict) else text]
                props = _revive({k: v for k, v in r.inputs.items() if k != "__provider"})
                reset_sdk_pickler()
                resource = classes[r.type](provider, r.name, props, opts)
            else:
                resource = pulumi.CustomResource(r.type, r.name, _revive(dict(r.inputs)), opts)
            made[r.urn] = resource
            if isinstance(resource, pulumi.ProviderResource):
                providers[r.urn] = resource

    return program


def _without_nulls(value: Any) -> Any:
    """The SDK drops null properties when it sends a plain dict; compare what reaches the engine."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in sorted(value.items()) if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _signature(registered: list[Registered]) -> list[tuple[str, str, str | None, str]]:
    return sorted((r.type, r.name, r.parent, repr(_without_nulls(r.inputs))) for r in registered)


def seconds(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    values, secret_keys = load_stack_file("prod")
    print(f"{'tenants':>8} {'resources':>10} {'program s':>10} {'bare SDK s':>11} {'ratio':>6}")
    worst = 0.0
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            write_tenants(Path(folder), size)
            config = {**values, "smarteros:tenantFiles": [f"{folder}/*.yaml"]}

            def library(config: dict[str, Any] = config) -> list[Registered]:
                return run_program(config=config, secret_keys=secret_keys, stack="prod")

            registered = library()
            floor_program = replay(registered)

            def floor(config: dict[str, Any] = config, program: Callable[[], None] = floor_program) -> list[Registered]:
                return run_program(program, config=config, secret_keys=secret_keys, stack="prod")

            if _signature(floor()) != _signature(registered):
                print("the bare replay did not register the same resources", file=sys.stderr)
                return 1
            samples: dict[str, list[float]] = {"program": [], "floor": []}
            for _ in range(args.runs):
                samples["program"].append(seconds(library))
                samples["floor"].append(seconds(floor))
            program_s = statistics.median(samples["program"])
            floor_s = statistics.median(samples["floor"])
            ratio = program_s / floor_s
            worst = max(worst, ratio)
            print(f"{size:>8} {len(registered):>10} {program_s:>10.2f} {floor_s:>11.2f} {ratio:>6.2f}")
    print(f"target: ratio <= 1.25; worst {worst:.2f}: {'met' if worst <= 1.25 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
