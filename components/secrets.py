"""Secrets: a tenant's credentials in Vault, the policy that reads them and the AppRole its services use.

For tenant ``<rut>`` under the KV v2 mount of stack config ``smarteros:vault``:

- one secret ``<mount>/tenants/<rut>/<service>`` per service of the tenant file (its ``generate`` keys get
  random values, its ``external`` keys are left to operators), and one per entry of the platform's values
  (``postgres`` holds the database login); retained when removed from the program, protected when the
  stack sets ``smarteros:protect``;
- the ACL policy ``tenant-<rut>`` (lower-case), read and list on ``<mount>/{data,metadata}/tenants/<rut>/*``
  while the tenant is trial or active, no rule at all while it is suspended or cancelled;
- the AppRole ``tenant-<rut>``, whose tokens carry that policy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi

from .config import StackConfig
from .lifecycle import is_open
from .naming import vault_tenant_prefix
from .providers.base import stack_marker
from .providers.vault import VaultAppRole, VaultPolicy, VaultSecret

if TYPE_CHECKING:
    from .spec import TenantSpec


def policy_inputs(tenant: TenantSpec, mount: str, stack: str) -> dict[str, Any]:
    """The tenant's ACL policy. A suspended or cancelled tenant's grants nothing: its AppRole still logs in,
    but the token it gets (and every token issued before) reads nothing until the tenant is open again."""
    return {"rut": tenant.rut, "mount": mount, "stack": stack, "suspended": not is_open(tenant.status)}


@dataclass(frozen=True)
class SecretsArgs:
    """What a tenant's Vault objects are built from."""

    tenant: TenantSpec
    config: StackConfig
    platform_values: Mapping[str, Mapping[str, pulumi.Input[str]]] = field(default_factory=dict)
    """Extra secrets the platform manages under the tenant's subtree, by secret name then key."""


class Secrets(pulumi.ComponentResource):
    """A tenant's Vault secrets, ACL policy and AppRole."""

    path: pulumi.Output[str]
    policy_name: pulumi.Output[str]
    approle_name: pulumi.Output[str]

    def __init__(self, name: str, args: SecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("smarteros:tenant:Secrets", name, None, opts)
        tenant, mount = args.tenant, args.config.vault.mount
        rut = tenant.rut
        stack = stack_marker()
        clash = sorted(set(args.platform_values) & set(tenant.secrets))
        if clash:
            raise ValueError(
                f"tenant {rut}: secrets {clash} are managed by the platform; remove them from the tenant file"
            )
        data_opts = pulumi.ResourceOptions(parent=self, retain_on_delete=True, protect=args.config.protect)

        for service, wanted in sorted(tenant.secrets.items()):
            VaultSecret(
                f"{rut}-{service}",
                rut=rut,
                service=service,
                mount=mount,
                stack=stack,
                generate=list(wanted.generate),
                external=list(wanted.external),
                rotate=wanted.rotate,
                opts=data_opts,
            )
        for secret_name, values in sorted(args.platform_values.items()):
            VaultSecret(
                f"{rut}-{secret_name}",
                rut=rut,
                service=secret_name,
                mount=mount,
                stack=stack,
                provided=dict(values),
                opts=data_opts,
            )

        policy = VaultPolicy(
            f"{rut}-policy", **policy_inputs(tenant, mount, stack), opts=pulumi.ResourceOptions(parent=self)
        )
        approle = VaultAppRole(f"{rut}-approle", rut=rut, policy=policy.name, opts=pulumi.ResourceOptions(parent=self))

        self.path = pulumi.Output.from_input(f"{mount}/{vault_tenant_prefix(rut)}")
        self.policy_name = policy.name
        self.approle_name = approle.name
        self.register_outputs({"path": self.path, "policy_name": self.policy_name, "approle_name": self.approle_name})
