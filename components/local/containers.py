"""The local platform in containers (``local/``, stack ``local``): PostgreSQL, OpenBao and Metabase on Docker.

:func:`build` registers, with ``pulumi-docker``: one network; PostgreSQL with a named volume; OpenBao with a
real configuration (raft storage on a named volume, not dev mode); Metabase with its application database
on that PostgreSQL and ``MB_ENCRYPTION_SECRET_KEY`` from ``pulumi-random``. Images are pinned to exact tags,
every port is published on 127.0.0.1 only, and every container has a health check. Then three dynamic
resources do the set-up with the same functions as the process platform (:mod:`components.local.bootstrap`):
README's "Once per database" and "Once per Vault" steps, OpenBao's initialisation and unsealing, and
Metabase's first run with an Administrators API key. Credentials are exported as secrets only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_random as random
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult
from pulumi.dynamic import Resource as DynamicResource

from components.local.steps import REPO_ROOT

POSTGRES_IMAGE = "postgres:15.8-bookworm"
OPENBAO_IMAGE = "openbao/openbao:2.7.2"
METABASE_IMAGE = "metabase/metabase:v0.56.4"
LOOPBACK = "127.0.0.1"
PORTS = {"postgres": 5432, "openbao": 8200, "metabase": 3000}
DATABASE = "smarteros"
PROVISIONER = "smarteros_provisioner"
MOUNT = "secret"
METABASE_DB = "metabase"
METABASE_ROLE = "metabase"
ADMIN_EMAIL = "admin@smarteros.local"
VOLUMES = ("smarteros-postgres-data", "smarteros-openbao-data")
SECRET_EXPORTS = ("postgresPassword", "vaultToken", "metabaseApiKey", "metabaseAdminPassword", "vaultRootToken")


def setup_digest() -> str:
    """A digest of the files the set-up reads: a change to any of them re-runs the set-up."""
    digest = hashlib.sha256()
    for path in sorted([REPO_ROOT / "README.md", *REPO_ROOT.glob("sql/*.sql"), *REPO_ROOT.glob("vault/*.hcl")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def openbao_config() -> str:
    """OpenBao's server configuration inside its container."""
    return json.dumps(
        {
            "storage": {"raft": {"path": "/openbao/file", "node_id": "local", "performance_multiplier": 1}},
            "listener": [{"tcp": {"address": "0.0.0.0:8200", "cluster_address": "0.0.0.0:8201", "tls_disable": True}}],
            "api_addr": "http://127.0.0.1:8200",
            "cluster_addr": "https://127.0.0.1:8201",
            "ui": False,
        },
        indent=2,
    )


# -- set-up as dynamic resources -------------------------------------------------------------------------


class _SetupProvider(ResourceProvider):
    """Runs a set-up function on create and whenever its inputs change; deleting it changes nothing."""

    def run(self, props: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=str(props.get("name", "setup")), outs={**props, **self.run(props)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in news if olds.get(key) != news[key]]
        return DiffResult(changes=bool(changed) or self.needs_run(olds))

    def needs_run(self, olds: dict[str, Any]) -> bool:
        return False

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs={**news, **self.run({**olds, **news})})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


class PostgresSetupProvider(_SetupProvider):
    def run(self, props: dict[str, Any]) -> dict[str, Any]:
        from components.local.bootstrap import PostgresAdmin, bootstrap_postgres, ensure_app_database

        admin = PostgresAdmin(LOOPBACK, int(props["port"]), "postgres", str(props["admin_password"]))
        _wait_for_postgres(admin)
        known = {PROVISIONER: str(props["provisioner_password"])}
        passwords = bootstrap_postgres(admin, DATABASE, known_passwords=known)
        ensure_app_database(admin, METABASE_DB, METABASE_ROLE, str(props["metabase_password"]))
        return {"roles": sorted(passwords)}


class VaultSetupProvider(_SetupProvider):
    def run(self, props: dict[str, Any]) -> dict[str, Any]:
        from components.local.bootstrap import bootstrap_vault, init_and_unseal

        address = str(props["address"])
        kept = {k: str(props[k]) for k in ("unseal_key", "root_token") if props.get(k)}
        keys = init_and_unseal(address, kept)
        known = [str(props["token"])] if props.get("token") else []
        tokens = bootstrap_vault(address, keys["root_token"], MOUNT, known_tokens=known)
        return {**keys, "token": tokens[0]}

    def needs_run(self, olds: dict[str, Any]) -> bool:
        """A restarted OpenBao comes back sealed: unseal it on the next ``pulumi up``."""
        import requests

        try:
            return requests.get(f"{olds['address']}/v1/sys/health", timeout=5).status_code != 200
        except requests.RequestException:
            return True


class MetabaseSetupProvider(_SetupProvider):
    def run(self, props: dict[str, Any]) -> dict[str, Any]:
        from components.local.metabase_setup import first_run

        key = first_run(
            str(props["url"]),
            email=str(props["email"]),
            password=str(props["password"]),
            site_name="smarteros (local)",
            key_name="smarteros provisioning",
        )
        return {"api_key": key}


def _wait_for_postgres(admin: Any, timeout: float = 120.0) -> None:
    import time

    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(admin.conninfo("postgres")):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


class PostgresSetup(DynamicResource, module="local", name="PostgresSetup"):
    """README's "Once per database" steps, plus Metabase's application database."""

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        secrets = pulumi.ResourceOptions(
            additional_secret_outputs=["admin_password", "provisioner_password", "metabase_password"]
        )
        inputs = {**props, "name": name, "roles": None}
        super().__init__(PostgresSetupProvider(), name, inputs, pulumi.ResourceOptions.merge(opts, secrets))


class VaultSetup(DynamicResource, module="local", name="VaultSetup"):
    """OpenBao initialised and unsealed, KV v2 and AppRole enabled, README's "Once per Vault" steps."""

    unseal_key: pulumi.Output[str]
    root_token: pulumi.Output[str]
    token: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        secrets = pulumi.ResourceOptions(additional_secret_outputs=["unseal_key", "root_token", "token"])
        super().__init__(
            VaultSetupProvider(),
            name,
            {**props, "name": name, "unseal_key": None, "root_token": None, "token": None},
            pulumi.ResourceOptions.merge(opts, secrets),
        )


class MetabaseSetup(DynamicResource, module="local", name="MetabaseSetup"):
    """Metabase's first administrator and an API key in its Administrators group."""

    api_key: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        secrets = pulumi.ResourceOptions(additional_secret_outputs=["api_key", "password"])
        inputs = {**props, "name": name, "api_key": None}
        super().__init__(MetabaseSetupProvider(), name, inputs, pulumi.ResourceOptions.merge(opts, secrets))


# -- the program -----------------------------------------------------------------------------------------


def _port(name: str) -> docker.ContainerPortArgs:
    return docker.ContainerPortArgs(internal=PORTS[name], external=PORTS[name], ip=LOOPBACK)


def _health(test: list[str], start_period: str) -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=test, interval="5s", timeout="3s", retries=30, start_period=start_period
    )


def _secret_env(pairs: dict[str, pulumi.Input[str]]) -> pulumi.Output[list[str]]:
    return pulumi.Output.secret(pulumi.Output.all(*pairs.values()).apply(
        lambda values: [f"{key}={value}" for key, value in zip(pairs, values, strict=True)]
    ))


def build() -> dict[str, pulumi.Output[Any]]:
    """Register the local platform; returns the stack's exports (credentials wrapped as secrets)."""
    network = docker.Network("network", name="smarteros-local", driver="bridge")
    on_network = [docker.ContainerNetworksAdvancedArgs(name=network.name)]

    def password(name: str, length: int = 32) -> random.RandomPassword:
        return random.RandomPassword(name, length=length, special=False)

    pg_admin = password("postgres-admin-password")
    provisioner = password("provisioner-password")
    metabase_db = password("metabase-db-password")
    encryption = password("metabase-encryption-key", 48)
    metabase_admin = password("metabase-admin-password")

    images = {
        key: docker.RemoteImage(f"{key}-image", name=image, keep_locally=True)
        for key, image in (("postgres", POSTGRES_IMAGE), ("openbao", OPENBAO_IMAGE), ("metabase", METABASE_IMAGE))
    }
    # Data outlives `pulumi destroy` (./scripts/down); `./scripts/down --volumes` removes it.
    keep = pulumi.ResourceOptions(retain_on_delete=True)
    pg_volume = docker.Volume("postgres-data", name="smarteros-postgres-data", opts=keep)
    bao_volume = docker.Volume("openbao-data", name="smarteros-openbao-data", opts=keep)

    postgres = docker.Container(
        "postgres",
        name="smarteros-postgres",
        image=images["postgres"].name,
        envs=_secret_env({"POSTGRES_PASSWORD": pg_admin.result}),
        ports=[_port("postgres")],
        volumes=[docker.ContainerVolumeArgs(volume_name=pg_volume.name, container_path="/var/lib/postgresql/data")],
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=["postgres"])],
        healthcheck=_health(["CMD-SHELL", "pg_isready -U postgres -h 127.0.0.1"], "5s"),
        restart="unless-stopped",
        wait=True,
    )
    openbao = docker.Container(
        "openbao",
        name="smarteros-openbao",
        image=images["openbao"].name,
        command=["server"],
        envs=["SKIP_SETCAP=true"],
        uploads=[docker.ContainerUploadArgs(file="/openbao/config/local.json", content=openbao_config())],
        ports=[_port("openbao")],
        volumes=[docker.ContainerVolumeArgs(volume_name=bao_volume.name, container_path="/openbao/file")],
        networks_advanced=on_network,
        # Answers while sealed or uninitialised too: the set-up below unseals it.
        healthcheck=_health(
            ["CMD", "wget", "-q", "-O", "/dev/null",
             "http://127.0.0.1:8200/v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200"],
            "5s",
        ),
        restart="unless-stopped",
        wait=True,
    )
    db_setup = PostgresSetup(
        "postgres-setup",
        {
            "port": PORTS["postgres"],
            "admin_password": pg_admin.result,
            "provisioner_password": provisioner.result,
            "metabase_password": metabase_db.result,
            "setup": setup_digest(),
        },
        pulumi.ResourceOptions(depends_on=[postgres]),
    )
    vault_setup = VaultSetup(
        "openbao-setup",
        {"address": f"http://{LOOPBACK}:{PORTS['openbao']}", "setup": setup_digest()},
        pulumi.ResourceOptions(depends_on=[openbao]),
    )
    metabase = docker.Container(
        "metabase",
        name="smarteros-metabase",
        image=images["metabase"].name,
        envs=_secret_env(
            {
                "MB_DB_TYPE": "postgres",
                "MB_DB_HOST": "postgres",
                "MB_DB_PORT": "5432",
                "MB_DB_DBNAME": METABASE_DB,
                "MB_DB_USER": METABASE_ROLE,
                "MB_DB_PASS": metabase_db.result,
                "MB_ENCRYPTION_SECRET_KEY": encryption.result,
                "MB_ANON_TRACKING_ENABLED": "false",
                "MB_CHECK_FOR_UPDATES": "false",
            }
        ),
        ports=[_port("metabase")],
        networks_advanced=on_network,
        healthcheck=_health(["CMD-SHELL", "curl -fs http://127.0.0.1:3000/api/health"], "120s"),
        restart="unless-stopped",
        wait=True,
        wait_timeout=600,
        opts=pulumi.ResourceOptions(depends_on=[db_setup]),
    )
    metabase_setup = MetabaseSetup(
        "metabase-setup",
        {"url": f"http://{LOOPBACK}:{PORTS['metabase']}", "email": ADMIN_EMAIL, "password": metabase_admin.result},
        pulumi.ResourceOptions(depends_on=[metabase]),
    )
    return {
        "postgresAddress": pulumi.Output.from_input(f"{LOOPBACK}:{PORTS['postgres']}"),
        "postgresUser": pulumi.Output.from_input(PROVISIONER),
        "postgresPassword": pulumi.Output.secret(provisioner.result),
        "vaultAddress": pulumi.Output.from_input(f"http://{LOOPBACK}:{PORTS['openbao']}"),
        "vaultToken": pulumi.Output.secret(vault_setup.token),
        "vaultRootToken": pulumi.Output.secret(vault_setup.root_token),
        "metabaseUrl": pulumi.Output.from_input(f"http://{LOOPBACK}:{PORTS['metabase']}"),
        "metabaseAdminEmail": pulumi.Output.from_input(ADMIN_EMAIL),
        "metabaseAdminPassword": pulumi.Output.secret(metabase_admin.result),
        "metabaseApiKey": pulumi.Output.secret(metabase_setup.api_key),
    }


def main() -> None:
    """The ``local`` project's program: build and export."""
    for key, value in build().items():
        pulumi.export(key, value)
