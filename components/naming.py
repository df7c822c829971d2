"""Names derived from a tenant's normalised RUT.

The RUT is the tenant's identity: it names the Vault path, the Metabase groups and the Pulumi logical
names, so renaming a slug never recreates data. (The database role is named by the database itself, from a
keyed hash of the RUT: see ``components/database.py``.) Every function here takes the
normal form produced by :func:`components.spec.normalise_rut` (``76953480-6``, ``10000013-K``, ``0-0``).
"""

from __future__ import annotations

from collections.abc import Sequence


def role_name(rut: str) -> str:
    """The PostgreSQL role name earlier versions gave a tenant: ``tenant_10000013_k``.

    Every database role can read every role name, so this form told each tenant every other customer's
    RUT. Roles are now named by the database (``tenant_`` and a keyed hash of the RUT, see
    ``sql/provisioner.sql``) and the name is the ``TenantRole``'s output; this form only recognises roles
    still to be replaced.
    """
    return "tenant_" + rut.replace("-", "_").lower()


def vault_policy_name(rut: str) -> str:
    """Vault ACL policy (and AppRole) name; Vault stores policy names lower-case."""
    return f"tenant-{rut}".lower()


def vault_tenant_prefix(rut: str) -> str:
    """Path of a tenant's subtree inside the KV v2 mount; keeps the RUT's case."""
    return f"tenants/{rut}"


def vault_secret_path(rut: str, service: str) -> str:
    """Path of one service's secret inside the KV v2 mount."""
    return f"{vault_tenant_prefix(rut)}/{service}"


def metabase_group_name(rut: str, kind: str) -> str:
    """Metabase permissions group: ``tenant 76953480-6 owners`` / ``… viewers``."""
    return f"tenant {rut} {kind}"


def default_collection_name(rut: str, name: str) -> str:
    """Metabase collection name when the tenant file names none."""
    return f"{rut} ({name})"


def app_hostname(slug: str, zone: str) -> str:
    """The tenant's application hostname, one label under the zone."""
    return f"{slug}.{zone}"


def product_hostname(slug: str, product: str, zone: str) -> str:
    """A product's hostname, one label under the zone (Universal SSL covers ``*.zone`` only)."""
    return f"{slug}-{product}.{zone}"


def tenant_hostnames(slug: str, products: Sequence[str], zone: str) -> list[str]:
    """Every hostname a tenant gets: the application's, then one per product in file order."""
    return [app_hostname(slug, zone)] + [product_hostname(slug, product, zone) for product in products]
