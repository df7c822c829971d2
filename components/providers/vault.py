"""Vault for one tenant: KV v2 secrets, a least-privilege ACL policy and an AppRole.

Three dynamic resources, each a thin layer over :class:`VaultApi` (``hvac``'s HTTP adapter, one method
per documented endpoint, in :mod:`components.providers.vault_client`) and pure functions that decide what
to write (:mod:`components.providers.vault_plan`). The provider and resource classes stay in this module,
whose import path the state records; every name the two others define is importable from here too:

``pulumi-python:dynamic/vault:Secret``
    ``<mount>/tenants/<rut>/<service>``. It owns the keys named in ``generate`` (random values made with
    :mod:`secrets`) and the values the platform passes in ``provided`` (such as the database login). Keys
    named in ``external`` belong to operators, who fill them in by hand: they are never written, removed or
    compared. Every write starts from the live keys and is sent with check-and-set against the version it
    read, so an edit made meanwhile is reported, not overwritten. Raising ``rotate`` regenerates the
    generated keys; adding a key generates only that key; removing one deletes it. The secret's custom
    metadata carries the ownership marker (``managed-by``, ``pulumi-stack``).
``pulumi-python:dynamic/vault:AclPolicy``
    ``tenant-<rut>`` (Vault stores policy names lower-case), granting ``read`` and ``list`` on exactly
    ``<mount>/data/tenants/<rut>/*`` and ``<mount>/metadata/tenants/<rut>/*``; paths keep the RUT's case.
    The first line of the policy text is the ownership marker.
``pulumi-python:dynamic/vault:AppRole``
    ``tenant-<rut>``, whose tokens carry that policy and nothing else (no ``default`` policy). AppRole
    roles have no field for a marker, so an existing role is adopted only when it is exactly the desired
    one.

Which outputs are secret: ``values`` (every managed key and its value) and ``provided`` (the platform's
values) are declared with ``additional_secret_outputs`` by the resource classes below. Every other output
carries key names and versions, never a value.

Connection settings come from stack config in :meth:`configure` (``smarteros:vault`` for the address and
mount, the secret ``smarteros:vaultToken`` for the token), falling back to ``VAULT_ADDR``/``VAULT_TOKEN``.
The provider object a program builds carries none of them, and neither do outputs nor error messages.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from components.access import ReadOnlyRefusal, read_only
from components.config import VaultConfig, secret_from_raw, section_from_raw
from components.naming import vault_policy_name, vault_secret_path, vault_tenant_prefix

from .base import DynamicResource
from .vault_client import REQUEST_TIMEOUT, KvVersion, VaultApi, VaultRequestError, vault_messages
from .vault_plan import (
    MANAGED_BY,
    MARKER_KEY,
    STACK_KEY,
    Plan,
    SecretDrift,
    SecretInputs,
    approle_matches,
    check_approle_inputs,
    check_policy_inputs,
    check_secret_inputs,
    desired_approle,
    desired_policy,
    diff_approle,
    diff_policy,
    diff_secret,
    hcl_string,
    new_secret_value,
    plan_secret_data,
    policy_is_ours,
    policy_marker,
    render_policy,
    secret_drift,
    secret_marker,
    secret_owner,
    token_policy_names,
)

__all__ = [
    "MANAGED_BY",
    "MARKER_KEY",
    "REQUEST_TIMEOUT",
    "SECRET_OUTPUTS",
    "STACK_KEY",
    "AppRoleProvider",
    "KvVersion",
    "Plan",
    "PolicyProvider",
    "SecretDrift",
    "SecretInputs",
    "SecretProvider",
    "VaultApi",
    "VaultAppRole",
    "VaultPolicy",
    "VaultProviderError",
    "VaultRequestError",
    "VaultSecret",
    "approle_matches",
    "check_approle_inputs",
    "check_policy_inputs",
    "check_secret_inputs",
    "connection_from_config",
    "desired_approle",
    "desired_policy",
    "diff_approle",
    "diff_policy",
    "diff_secret",
    "hcl_string",
    "new_secret_value",
    "plan_secret_data",
    "policy_is_ours",
    "policy_marker",
    "render_policy",
    "secret_drift",
    "secret_marker",
    "secret_owner",
    "token_policy_names",
    "vault_messages",
    "vault_policy_name",
    "vault_secret_path",
    "vault_tenant_prefix",
]

SECRET_OUTPUTS: tuple[str, ...] = ("values", "provided")
"""Outputs of :class:`VaultSecret` that hold secret values."""


class VaultProviderError(Exception):
    """A Vault operation for a tenant failed; the message says which, what was sent and what came back."""


# --------------------------------------------------------------------------------------------------
# Connection settings (never serialised)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Connection:
    address: str
    token: str | None = field(repr=False)
    mount: str = "secret"
    read_only: bool = False


# Per configured provider object, in the process that runs it; never part of the object's pickled state.
_CONNECTIONS: weakref.WeakKeyDictionary[ResourceProvider, _Connection] = weakref.WeakKeyDictionary()
_CLIENTS: weakref.WeakKeyDictionary[ResourceProvider, VaultApi] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def connection_from_config(raw: Any, environ: Mapping[str, str]) -> _Connection:
    """Address, token and mount from a ConfigureRequest's config, with ``VAULT_ADDR``/``VAULT_TOKEN``."""
    section = section_from_raw(raw, "vault", VaultConfig)
    address = section.address if "address" in section.model_fields_set else environ.get("VAULT_ADDR") or section.address
    token = secret_from_raw(raw, "vaultToken", environ)
    return _Connection(address=address, token=token, mount=section.mount, read_only=read_only(environ))


@contextmanager
def _vault_errors(rut: str, doing: str) -> Iterator[None]:
    """Turn a failed request into one line naming the tenant, the request and Vault's answer."""
    try:
        yield
    except ReadOnlyRefusal as refusal:
        raise VaultProviderError(f"tenant {rut}: {refusal}") from None
    except VaultRequestError as error:
        status = str(error.status) if error.status else "no answer"
        hint = ""
        if error.status == 403:
            hint = " (check the provisioning token and its policy, vault/provisioner.hcl)"
        elif error.status == 503:
            hint = " (is Vault sealed or in standby?)"
        raise VaultProviderError(
            f"tenant {rut}: Vault could not {doing}: sent {error.method} /v1/{error.path}, "
            f"got {status} {error.answer}{hint}"
        ) from None


class _VaultProvider(ResourceProvider):
    """Shared plumbing: settings from :meth:`configure`, a client per configured provider."""

    serialize_as_secret_always = False

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        return None

    def configure(self, req: ConfigureRequest) -> None:
        with _LOCK:
            _CONNECTIONS[self] = connection_from_config(req.config, os.environ)
            _CLIENTS.pop(self, None)

    def _connection(self) -> _Connection:
        return _CONNECTIONS.get(self) or connection_from_config(None, os.environ)

    def _api(self, rut: str) -> VaultApi:
        with _LOCK:
            client = _CLIENTS.get(self)
            if client is None:
                connection = self._connection()
                if not connection.token:
                    raise VaultProviderError(
                        f"tenant {rut}: no Vault token: set the VAULT_TOKEN environment variable (or, where the "
                        "stack allows it, `pulumi config set --secret smarteros:vaultToken`)"
                    )
                client = VaultApi(connection.address, connection.token, read_only=connection.read_only)
                _CLIENTS[self] = client
            return client

    def _default_mount(self) -> str:
        return self._connection().mount

    @staticmethod
    def _check_result(news: dict[str, Any], failures: list[tuple[str, str]]) -> CheckResult:
        return CheckResult(news, [CheckFailure(f, r) for f, r in failures])


def _refuse(rut: str, what: str, why: str) -> NoReturn:
    raise VaultProviderError(
        f"tenant {rut}: Vault {what} already exists and {why}; to manage it from this stack, adopt it "
        "with the `import_` resource option, or remove it"
    )


# --------------------------------------------------------------------------------------------------
# KV v2 secret
# --------------------------------------------------------------------------------------------------


class SecretProvider(_VaultProvider):
    """CRUD for one tenant service's KV v2 secret."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = dict(news)
        inputs.setdefault("mount", self._default_mount())
        inputs.setdefault("generate", [])
        inputs.setdefault("external", [])
        inputs.setdefault("rotate", 0)
        inputs.setdefault("provided", {})
        return self._check_result(inputs, check_secret_inputs(inputs))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_secret(olds, news).result()

    def _outputs(
        self,
        desired: SecretInputs,
        data: Mapping[str, str],
        version: int,
        managed: bool,
        drift: SecretDrift | None = None,
        recorded: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Outputs for live ``data``. ``keys`` lists the managed keys present in Vault; ``values`` also keeps
        the ``recorded`` value of a managed key that is missing live, so the next update puts it back as it
        was instead of generating a new one."""
        keys = sorted(k for k in desired.managed if k in data)
        kept = {k: v for k, v in (recorded or {}).items() if k in desired.managed and k not in data}
        return {
            **desired.as_props(),
            "path": desired.full_path,
            "version": version,
            "keys": keys,
            "values": {**kept, **{k: data[k] for k in keys}},
            "managed": managed,
            "changed_keys": list(drift.changed) if drift else [],
            "removed_keys": list(drift.removed) if drift else [],
        }

    def _converge(
        self,
        desired: SecretInputs,
        *,
        recorded: Mapping[str, str],
        previously_managed: Iterable[str],
        rotate: bool,
        creating: bool,
    ) -> dict[str, Any]:
        api = self._api(desired.rut)
        where = desired.full_path
        with _vault_errors(desired.rut, f"read secret {where}"):
            live = api.kv_read(desired.mount, desired.path)
            metadata = None if live is not None else api.kv_read_metadata(desired.mount, desired.path)
        exists = live is not None or metadata is not None
        custom = live.custom_metadata if live is not None else dict((metadata or {}).get("custom_metadata") or {})
        owner = secret_owner(custom) if exists else desired.stack
        if creating and exists and owner != desired.stack:
            why = "is not marked as managed by this stack" if owner is None else f"is managed by stack {owner!r}"
            _refuse(desired.rut, f"secret {where}", why)
        live_data = live.data if live is not None else {}
        version = live.version if live is not None else int((metadata or {}).get("current_version") or 0)
        marker = secret_marker(desired.stack)
        if not exists or any(custom.get(k) != v for k, v in marker.items()):
            with _vault_errors(desired.rut, f"mark secret {where} as managed"):
                api.kv_write_metadata(desired.mount, desired.path, {**custom, **marker})
        data = plan_secret_data(
            live_data, desired, recorded=recorded, previously_managed=previously_managed, rotate=rotate
        )
        if data != live_data or live is None:
            try:
                with _vault_errors(desired.rut, f"write secret {where}"):
                    version = api.kv_write(desired.mount, desired.path, data, cas=version)
            except VaultProviderError as error:
                if "check-and-set" in str(error):
                    raise VaultProviderError(
                        f"{error} — the secret changed while this update ran (check-and-set against version "
                        f"{version}); nothing was overwritten: run `pulumi refresh` and try again"
                    ) from None
                raise
        return self._outputs(desired, data, version, managed=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        desired = SecretInputs.from_props(props)
        outs = self._converge(desired, recorded={}, previously_managed=(), rotate=False, creating=True)
        return CreateResult(desired.full_path, outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        desired = SecretInputs.from_props(news)
        rotate = desired.rotate > int(olds.get("rotate") or 0)
        outs = self._converge(
            desired,
            recorded=dict(olds.get("values") or {}),
            previously_managed=list(olds.get("keys") or []) + list(olds.get("generate") or []),
            rotate=rotate,
            creating=False,
        )
        return UpdateResult(outs)

    @staticmethod
    def _identity(id_: str, props: Mapping[str, Any]) -> tuple[str, str, str]:
        if props.get("mount") and props.get("rut") and props.get("service"):
            return str(props["mount"]), str(props["rut"]), str(props["service"])
        mount, sep, rest = id_.rpartition("/tenants/")
        rut, _, service = rest.partition("/")
        if not sep or not mount or not rut or not service:
            raise VaultProviderError(f"{id_!r} is not a secret id of the form <mount>/tenants/<rut>/<service>")
        return mount, rut, service

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        mount, rut, service = self._identity(id_, props)
        desired = SecretInputs.from_props({**props, "mount": mount, "rut": rut, "service": service})
        api = self._api(rut)
        with _vault_errors(rut, f"read secret {desired.full_path}"):
            live = api.kv_read(mount, desired.path)
            metadata = None if live is not None else api.kv_read_metadata(mount, desired.path)
        if live is None and metadata is None:
            return ReadResult("", {})
        # A secret whose latest version was deleted still exists (its metadata and older versions do):
        # it is reported with every managed key removed, and the next update writes them back.
        data = live.data if live is not None else {}
        version = live.version if live is not None else int((metadata or {}).get("current_version") or 0)
        custom = live.custom_metadata if live is not None else dict((metadata or {}).get("custom_metadata") or {})
        recorded = dict(props.get("values") or {})
        drift = secret_drift(desired.managed, recorded, data)
        managed = secret_owner(custom) == desired.stack
        outputs = self._outputs(desired, data, version, managed, drift, recorded=recorded)
        return ReadResult(desired.full_path, outputs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        mount, rut, service = self._identity(id_, props)
        with _vault_errors(rut, f"delete secret {mount}/{vault_secret_path(rut, service)}"):
            try:
                self._api(rut).kv_delete_all(mount, vault_secret_path(rut, service))
            except VaultRequestError as error:
                if error.status != 404:
                    raise


# --------------------------------------------------------------------------------------------------
# Objects named tenant-<rut>: ACL policy and AppRole
# --------------------------------------------------------------------------------------------------


class _TenantObjectProvider(_VaultProvider):
    """CRUD for a Vault object named ``tenant-<rut>`` that is written whole: read what is live, refuse to
    take over a foreign one on create, write the desired value, and report live state on read.

    ``noun`` names the object in messages; the hooks do the per-kind work.
    """

    noun: ClassVar[str] = ""

    def _desired(self, props: Mapping[str, Any]) -> Any:
        """What to write for these inputs."""
        raise NotImplementedError

    def _refusal(self, live: Any, desired: Any, props: Mapping[str, Any]) -> str | None:
        """Why an existing object must not be taken over on create, or None when it may."""
        raise NotImplementedError

    def _outputs(self, props: Mapping[str, Any], live: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _live_read(self, api: VaultApi, name: str) -> Any | None:
        raise NotImplementedError

    def _live_write(self, api: VaultApi, name: str, desired: Any) -> None:
        raise NotImplementedError

    def _live_delete(self, api: VaultApi, name: str) -> None:
        raise NotImplementedError

    def _write(self, props: Mapping[str, Any], creating: bool) -> dict[str, Any]:
        rut = str(props["rut"])
        name = vault_policy_name(rut)
        desired = self._desired(props)
        api = self._api(rut)
        if creating:
            with _vault_errors(rut, f"read {self.noun} {name}"):
                live = self._live_read(api, name)
            why = None if live is None else self._refusal(live, desired, props)
            if why is not None:
                _refuse(rut, f"{self.noun} {name}", why)
        with _vault_errors(rut, f"write {self.noun} {name}"):
            self._live_write(api, name, desired)
        return self._outputs(props, desired)

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._write(props, creating=True)
        return CreateResult(outs["name"], outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._write(news, creating=False))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        rut = str(props.get("rut") or "")
        name = vault_policy_name(rut) if rut else id_
        with _vault_errors(rut or name, f"read {self.noun} {name}"):
            live = self._live_read(self._api(rut or name), name)
        if live is None:
            return ReadResult("", {})
        return ReadResult(name, self._outputs({**props, "name": name}, live))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        rut = str(props.get("rut") or id_)
        name = vault_policy_name(str(props["rut"])) if props.get("rut") else id_
        with _vault_errors(rut, f"delete {self.noun} {name}"):
            self._live_delete(self._api(rut), name)


class PolicyProvider(_TenantObjectProvider):
    """CRUD for a tenant's ACL policy."""

    noun = "policy"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = dict(news)
        inputs.setdefault("mount", self._default_mount())
        return self._check_result(inputs, check_policy_inputs(inputs))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_policy(olds, news).result()

    def _desired(self, props: Mapping[str, Any]) -> str:
        return desired_policy(props)

    def _refusal(self, live: str, desired: str, props: Mapping[str, Any]) -> str | None:
        if live != desired and not policy_is_ours(live, str(props["stack"])):
            return "does not carry this stack's marker"
        return None

    def _outputs(self, props: Mapping[str, Any], live: str) -> dict[str, Any]:
        return {
            "rut": props.get("rut"),
            "mount": props.get("mount"),
            "stack": props.get("stack"),
            "suspended": props.get("suspended") is True,
            "name": vault_policy_name(str(props["rut"])) if props.get("rut") else props.get("name"),
            "policy": live,
            "managed": policy_is_ours(live, str(props.get("stack") or "")),
        }

    def _live_read(self, api: VaultApi, name: str) -> str | None:
        return api.policy_read(name)

    def _live_write(self, api: VaultApi, name: str, desired: str) -> None:
        api.policy_write(name, desired)

    def _live_delete(self, api: VaultApi, name: str) -> None:
        api.policy_delete(name)


class AppRoleProvider(_TenantObjectProvider):
    """CRUD for a tenant's AppRole."""

    noun = "AppRole"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return self._check_result(dict(news), check_approle_inputs(news))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_approle(olds, news).result()

    def _desired(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return desired_approle(str(props["policy"]))

    def _refusal(self, live: Mapping[str, Any], desired: Mapping[str, Any], props: Mapping[str, Any]) -> str | None:
        policy = str(props["policy"])
        if approle_matches(live, policy):
            return None
        return f"grants {token_policy_names(live.get('token_policies'))} rather than only [{policy!r}]"

    def _outputs(self, props: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "rut": props.get("rut"),
            "policy": props.get("policy"),
            "name": vault_policy_name(str(props["rut"])) if props.get("rut") else props.get("name"),
            "token_policies": token_policy_names(live.get("token_policies")),
            "token_no_default_policy": bool(live.get("token_no_default_policy")),
        }

    def _live_read(self, api: VaultApi, name: str) -> dict[str, Any] | None:
        return api.approle_read(name)

    def _live_write(self, api: VaultApi, name: str, desired: Mapping[str, Any]) -> None:
        api.approle_write(name, desired)

    def _live_delete(self, api: VaultApi, name: str) -> None:
        api.approle_delete(name)


# --------------------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------------------


class VaultSecret(DynamicResource, module="vault", name="Secret"):
    """A tenant service's KV v2 secret at ``<mount>/tenants/<rut>/<service>``."""

    path: pulumi.Output[str]
    version: pulumi.Output[int]
    keys: pulumi.Output[list[str]]
    values: pulumi.Output[dict[str, str]]

    def __init__(
        self,
        name: str,
        *,
        rut: pulumi.Input[str],
        service: str,
        mount: str,
        stack: str,
        generate: list[str] | None = None,
        external: list[str] | None = None,
        rotate: int = 0,
        provided: Mapping[str, pulumi.Input[str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "rut": rut,
            "service": service,
            "mount": mount,
            "stack": stack,
            "generate": list(generate or []),
            "external": list(external or []),
            "rotate": rotate,
            "provided": dict(provided or {}),
            "path": None,
            "version": None,
            "keys": None,
            "values": None,
            "managed": None,
            "changed_keys": None,
            "removed_keys": None,
        }
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_OUTPUTS))
        super().__init__(SecretProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_opts))


class VaultPolicy(DynamicResource, module="vault", name="AclPolicy"):
    """A tenant's ACL policy ``tenant-<rut>``: read and list on its own subtree only."""

    name: pulumi.Output[str]
    policy: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        rut: str,
        mount: str,
        stack: str,
        suspended: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "rut": rut,
            "mount": mount,
            "stack": stack,
            "suspended": suspended,
            "name": None,
            "policy": None,
            "managed": None,
        }
        super().__init__(PolicyProvider(), name, props, opts)


class VaultAppRole(DynamicResource, module="vault", name="AppRole"):
    """A tenant's AppRole ``tenant-<rut>``, whose tokens carry only the tenant's policy."""

    name: pulumi.Output[str]
    token_policies: pulumi.Output[list[str]]

    def __init__(
        self, name: str, *, rut: str, policy: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "rut": rut,
            "policy": policy,
            "name": None,
            "token_policies": None,
            "token_no_default_policy": None,
        }
        super().__init__(AppRoleProvider(), name, props, opts)
