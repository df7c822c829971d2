"""Edge: a tenant's Cloudflare DNS records and its Zero Trust Access application and policy.

What the tenant gets:
- one proxied CNAME per hostname: ``<slug>.<zone>`` for the application and ``<slug>-<product>.<zone>``
  for each product, each pointing at that product's ingress from stack config. Hostnames stay one label
  under the zone because Cloudflare's Universal SSL certificate covers ``*.zone`` only;
- one Access application covering the protected hostnames (products marked ``public`` in stack config,
  such as the store, stay outside it) and one allow policy: the tenant's e-mails and e-mail domains, plus
  the platform's admin group. A suspended or cancelled tenant keeps its records, but its policy lets only
  the platform admins through.

The planning is pure (:func:`plan_edge`); :class:`Edge` registers what the plan says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_cloudflare as cloudflare

from . import naming
from .config import CloudflareConfig
from .lifecycle import OPEN_STATUSES
from .spec import TenantSpec


@dataclass(frozen=True)
class Hostname:
    """A DNS name the tenant gets, where it points, and whether Access protects it."""

    key: str
    fqdn: str
    target: str
    protected: bool


@dataclass(frozen=True)
class EdgePlan:
    """Everything a tenant's edge consists of, as plain data."""

    hostnames: tuple[Hostname, ...]
    emails: tuple[str, ...]
    email_domains: tuple[str, ...]
    admin_group_id: str
    session_duration: str

    @property
    def protected(self) -> tuple[Hostname, ...]:
        return tuple(h for h in self.hostnames if h.protected)


def plan_edge(tenant: TenantSpec, config: CloudflareConfig) -> EdgePlan:
    """The tenant's hostnames and Access rules under the stack's zone."""
    fqdns = naming.tenant_hostnames(tenant.slug, tenant.products, config.zone)
    hostnames = [Hostname("app", fqdns[0], config.app_target, config.app_exposure == "protected")]
    for product, fqdn in zip(tenant.products, fqdns[1:], strict=True):
        edge = config.products[product]
        hostnames.append(Hostname(product, fqdn, edge.target, edge.exposure == "protected"))
    admitted = tenant.status in OPEN_STATUSES
    return EdgePlan(
        hostnames=tuple(hostnames),
        emails=tuple(tenant.access.emails) if admitted else (),
        email_domains=tuple(tenant.access.email_domains) if admitted else (),
        admin_group_id=config.admin_group_id,
        session_duration=tenant.access.session_duration,
    )


def access_includes(plan: EdgePlan) -> list[dict[str, Any]]:
    """Include rules of the allow policy: e-mails, e-mail domains, then the platform admin group."""
    rules: list[dict[str, Any]] = [{"email": {"email": e}} for e in plan.emails]
    rules += [{"email_domain": {"domain": d}} for d in plan.email_domains]
    if plan.admin_group_id:
        rules.append({"group": {"id": plan.admin_group_id}})
    return rules


@dataclass(frozen=True)
class EdgeArgs:
    tenant: TenantSpec
    config: CloudflareConfig
    provider: pulumi.ProviderResource | None = None


class Edge(pulumi.ComponentResource):
    """A tenant's DNS records and Access application + allow policy."""

    hostnames: pulumi.Output[list[str]]

    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("smarteros:tenant:Edge", name, None, opts)
        tenant, config = args.tenant, args.config
        plan = plan_edge(tenant, config)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        rut = tenant.rut

        for host in plan.hostnames:
            cloudflare.DnsRecord(
                f"{rut}-{host.key}",
                zone_id=config.zone_id,
                name=host.fqdn,
                type="CNAME",
                content=host.target,
                ttl=config.ttl,
                proxied=True,
                comment=f"smarteros tenant {rut} ({tenant.slug})",
                opts=child,
            )

        if plan.protected:
            policy = cloudflare.ZeroTrustAccessPolicy(
                f"{rut}-access-allow",
                account_id=config.account_id,
                name=f"tenant {rut} allow",
                decision="allow",
                includes=cast("list[cloudflare.ZeroTrustAccessPolicyIncludeArgsDict]", access_includes(plan)),
                opts=child,
            )
            cloudflare.ZeroTrustAccessApplication(
                f"{rut}-access",
                account_id=config.account_id,
                name=f"{tenant.name} ({rut})",
                type="self_hosted",
                domain=plan.protected[0].fqdn,
                destinations=[{"type": "public", "uri": h.fqdn} for h in plan.protected],
                session_duration=plan.session_duration,
                policies=[{"id": policy.id, "precedence": 1}],
                opts=child,
            )

        self.hostnames = pulumi.Output.from_input([h.fqdn for h in plan.hostnames])
        self.register_outputs({"hostnames": self.hostnames})
