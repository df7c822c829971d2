"""What a stack refuses in tenant files beyond their format: platform hostnames and public mail domains.

A slug becomes hostnames under the stack's zone (``<slug>.<zone>``, ``<slug>-<product>.<zone>``), so a
slug such as ``vault`` or ``www`` would put a CNAME and an Access application on the platform's own
hosts. A domain in ``access.email_domains`` lets everyone with an address there through Cloudflare
Access, so the domains of public mail providers are refused: list those people under ``access.emails``.

The built-in lists can be extended per stack with ``smarteros:reservedSlugs`` and
``smarteros:publicMailDomains``; every label directly under the zone that the stack's own hostnames use
(``vault.smarterbot.cl``, ``bi.smarterbot.cl``, ``chat.ingress.smarterbot.cl`` → ``ingress``) is
reserved too. Nothing here imports Pulumi.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .config import StackConfig

DEFAULT_RESERVED_SLUGS: frozenset[str] = frozenset(
    {
        "www", "api", "app", "apps", "vault", "kpi", "bi", "metabase", "admin", "auth", "login", "sso",
        "access", "mail", "smtp", "imap", "mx", "ns1", "ns2", "cdn", "static", "assets", "status", "docs",
        "help", "support", "billing", "ingress", "gateway", "proxy", "db", "database", "postgres", "registry",
    }
)  # fmt: skip
"""Labels the platform uses or will use for itself under its zone."""

PUBLIC_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "outlook.es", "hotmail.com", "hotmail.es", "hotmail.cl",
        "live.com", "live.cl", "msn.com", "yahoo.com", "yahoo.es", "yahoo.cl", "ymail.com", "rocketmail.com",
        "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "pm.me", "gmx.com",
        "gmx.net", "gmx.de", "mail.com", "zoho.com", "yandex.com", "yandex.ru", "tutanota.com", "tuta.io",
        "fastmail.com", "hey.com", "qq.com", "163.com", "126.com", "mail.ru", "web.de", "inbox.com",
        "terra.com.br", "uol.com.br", "bol.com.br",
    }
)  # fmt: skip
"""Domains where anyone can get an address; none of them may open a tenant's Access application."""


@dataclass(frozen=True)
class Policy:
    """The stack's refusals: reserved hostname labels and public mail domains (lower-case)."""

    reserved_labels: frozenset[str] = DEFAULT_RESERVED_SLUGS
    public_mail_domains: frozenset[str] = PUBLIC_MAIL_DOMAINS
    sources: tuple[str, ...] = field(default=(), compare=False)

    def merged(self, other: Policy) -> Policy:
        """Both policies' refusals (``validate`` checks against every stack of the project at once)."""
        return Policy(
            self.reserved_labels | other.reserved_labels,
            self.public_mail_domains | other.public_mail_domains,
            self.sources + other.sources,
        )


def _host(value: str) -> str:
    """The host name in a URL or a bare host name, lower-case."""
    text = value.strip().lower()
    if "://" in text:
        return (urlsplit(text).hostname or "").rstrip(".")
    return text.split("/", 1)[0].split(":", 1)[0].rstrip(".")


def labels_under_zone(hosts: Iterable[str], zone: str) -> set[str]:
    """The label directly under ``zone`` of every host inside it (``chat.ingress.z`` → ``ingress``)."""
    zone = zone.strip().lower().rstrip(".")
    found: set[str] = set()
    if not zone:
        return found
    for raw in hosts:
        host = _host(raw)
        if host.endswith("." + zone):
            found.add(host[: -len(zone) - 1].rsplit(".", 1)[-1])
    return found


def policy_from_config(config: StackConfig, source: str = "") -> Policy:
    """The policy of one stack: the built-in lists, its own additions and its platform hostnames."""
    hosts = [
        config.cloudflare.app_target,
        *(product.target for product in config.cloudflare.products.values()),
        config.vault.address,
        config.metabase.url,
        config.metabase.database.host,
        config.postgres.host,
    ]
    reserved = DEFAULT_RESERVED_SLUGS | {s.lower() for s in config.reserved_slugs}
    reserved |= labels_under_zone(hosts, config.cloudflare.zone)
    domains = PUBLIC_MAIL_DOMAINS | {d.lower().strip().lstrip("@") for d in config.public_mail_domains}
    return Policy(frozenset(reserved), frozenset(domains), (source,) if source else ())
