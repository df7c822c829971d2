"""Converge every tenant this stack owns: validate all tenant files, build the Platform, one Tenant each."""

import os

import pulumi
import pulumi_cloudflare as cloudflare
from pulumi.runtime.config import CONFIG, is_config_secret

from components.access import AccessError
from components.config import PROJECT, ConfigError, credential_problems, load_stack_config
from components.fleet import load_fleet
from components.lifecycle import as_of, today_in, trial_expired
from components.platform import Platform, PlatformArgs
from components.spec import SpecError
from components.tenant import Tenant, TenantArgs

stack_config = pulumi.Config(PROJECT)

# Config and every tenant file are checked before anything is registered: no partial deployment.
try:
    problems = credential_problems(stack_config.get, is_config_secret, os.environ, CONFIG.get())
    if problems:
        raise ConfigError("\n".join(problems))
    config = load_stack_config(stack_config.get)
    tenants = load_fleet(config)
except (ConfigError, AccessError) as error:
    raise pulumi.RunError(f"stack config is not valid:\n{error}") from None
except SpecError as error:
    raise pulumi.RunError(f"tenant files are not valid:\n{error}") from None

# The lifecycle is evaluated at converge: a trial past its last day (in the stack's time zone) is suspended.
today = today_in(config.time_zone)
for spec in tenants:
    if trial_expired(spec, today):
        pulumi.log.warn(
            f"tenant {spec.rut} ({spec.slug}): trial ended on {spec.trial_expires_at}; converging as suspended"
        )
tenants = [as_of(spec, today) for spec in tenants]

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
