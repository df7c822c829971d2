"""Converge every tenant this stack owns: validate all tenant files, build the Platform, one Tenant each."""

import pulumi
import pulumi_cloudflare as cloudflare

from components.config import PROJECT, load_stack_config
from components.fleet import load_fleet
from components.platform import Platform, PlatformArgs
from components.spec import SpecError
from components.tenant import Tenant, TenantArgs

stack_config = pulumi.Config(PROJECT)
config = load_stack_config(stack_config.get)

# Every file is checked before anything is registered: a bad file never yields a partial deployment.
try:
    tenants = load_fleet(config)
except SpecError as error:
    raise pulumi.RunError(f"tenant files are not valid:\n{error}") from None

platform = Platform("platform", PlatformArgs(config))
edge_provider = (
    cloudflare.Provider("cloudflare", api_token=stack_config.get_secret("cloudflareApiToken"))
    if config.cloudflare.enabled
    else None
)

pulumi.export(
    "tenants",
    {
        spec.rut: Tenant(TenantArgs(spec, config, platform.refs, edge_provider)).summary
        for spec in tenants
    },
)
