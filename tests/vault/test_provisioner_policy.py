"""The provisioning identity: a token made exactly as README's "Once per Vault" set-up says.

It runs the whole tenant lifecycle through the real provider host, and it cannot raise itself: every known
escalation is attempted on the server as that token and must be refused. A tenant's own identity (an AppRole
login with a role-id and a secret-id the operator reads and mints) reaches its own subtree only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest

from components.providers.vault import (
    AppRoleProvider,
    PolicyProvider,
    SecretProvider,
    VaultAppRole,
    VaultPolicy,
    VaultSecret,
    render_policy,
)
from tests.harness.openbao import (
    approle_login,
    openbao_server,
    provision,
    readme_vault_setup,
    run_readme_vault_commands,
)
from tests.harness.provider_host import ProviderHost, urn
from tests.vault.conftest import VaultTarget, fresh_rut

WIDE_OPEN = 'path "*" {\n  capabilities = ["create", "read", "update", "delete", "list", "sudo"]\n}\n'


def refused(answer: Any) -> None:
    """The server refused the call as the ACL does: 403 permission denied."""
    assert answer.status_code == 403, f"{answer.request.method} {answer.url}: {answer.status_code} {answer.text}"
    assert "permission denied" in " ".join(answer.json()["errors"])


def test_the_setup_is_readmes_and_the_token_carries_the_provisioner_policy_only(
    vault: VaultTarget, provisioner_token: str
):
    me = vault.call("GET", "auth/token/lookup-self", provisioner_token).json()["data"]
    assert me["policies"] == ["smarteros-provisioner"]
    assert me["orphan"] is True and me["period"] > 0
    assert vault.call("PUT", "auth/token/renew-self", provisioner_token, {}).status_code == 200


def test_readmes_own_commands_issue_the_token_the_bootstrap_issues():
    """README's "Once per Vault" commands, run literally with the real CLI on a throwaway OpenBao, make a
    token with the same policies and shape as the one the product's bootstrap (which every fixture uses)
    issues, and install the same policy text."""
    assert [c[:3] for c in readme_vault_setup()] == [
        ["vault", "policy", "write"],
        ["vault", "token", "create"],
    ]
    with openbao_server() as server:
        by_readme = run_readme_vault_commands(server.address, server.root_token)
        readme_policy = server.request("GET", "sys/policies/acl/smarteros-provisioner").json()["data"]["policy"]
        by_bootstrap = provision(server.address, server.root_token, server.mount)
        bootstrap_policy = server.request("GET", "sys/policies/acl/smarteros-provisioner").json()["data"]["policy"]

        def shape(token: str) -> tuple[Any, ...]:
            me = server.request("GET", "auth/token/lookup-self", token=token).json()["data"]
            return tuple(me["policies"]), me["orphan"], me["period"], me["renewable"]

        assert by_readme != by_bootstrap
        assert shape(by_readme) == shape(by_bootstrap) == (("smarteros-provisioner",), True, 86400, True)
        assert readme_policy == bootstrap_policy


# -- the whole lifecycle -----------------------------------------------------------------------------


def test_the_provisioning_token_runs_the_whole_lifecycle(vault: VaultTarget, provisioner_host: ProviderHost):
    host = provisioner_host
    rut = fresh_rut("K")
    secret, policy, approle = SecretProvider(), PolicyProvider(), AppRoleProvider()
    s_urn, p_urn, a_urn = urn(VaultSecret, "s"), urn(VaultPolicy, "p"), urn(VaultAppRole, "a")
    inputs = {
        "rut": rut,
        "service": "odoo",
        "mount": "secret",
        "stack": "s/t",
        "generate": ["admin_password"],
        "external": [],
        "rotate": 0,
        "provided": {"username": "u"},
    }

    s_id, s_out = host.create(secret, s_urn, inputs)
    s_out = host.update(secret, s_id, s_urn, s_out, {**inputs, "rotate": 1, "provided": {"username": "v"}})
    _, s_read, _ = host.read(secret, s_id, s_urn, s_out)
    assert s_read["values"] == s_out["values"] and s_read["managed"] is True
    p_id, p_out = host.create(policy, p_urn, {"rut": rut, "mount": "secret", "stack": "s/t"})
    p_out = host.update(policy, p_id, p_urn, p_out, {"rut": rut, "mount": "secret", "stack": "s/u"})
    a_id, a_out = host.create(approle, a_urn, {"rut": rut, "policy": p_id})
    a_out = host.update(approle, a_id, a_urn, a_out, {"rut": rut, "policy": p_id})
    assert host.read(approle, a_id, a_urn, a_out)[1]["token_policies"] == [p_id]
    assert host.read(policy, p_id, p_urn, p_out)[1]["managed"] is True

    # What it made works for the tenant: the operator hands its service a role-id and a secret-id.
    tenant = vault.tenant_login(rut)
    assert vault.call("GET", f"secret/data/tenants/{rut}/odoo", tenant).json()["data"]["data"]["username"] == "v"

    host.delete(approle, a_id, a_urn, a_out)
    host.delete(policy, p_id, p_urn, p_out)
    host.delete(secret, s_id, s_urn, s_out)
    for gone in (f"auth/approle/role/{a_id}", f"sys/policies/acl/{p_id}", f"secret/metadata/tenants/{rut}/odoo"):
        assert vault.call("GET", gone, vault.token).status_code == 404, gone


def test_the_provisioning_token_can_suspend_a_tenant_and_restore_the_same_approle(
    vault: VaultTarget, vault_host: ProviderHost, provisioner_token: str
):
    rut = fresh_rut()
    name = f"tenant-{rut.lower()}"
    vault_host.create(
        SecretProvider(),
        urn(VaultSecret, "s"),
        {
            "rut": rut,
            "service": "odoo",
            "mount": "secret",
            "stack": "s/t",
            "generate": ["k"],
            "external": [],
            "rotate": 0,
            "provided": {},
        },
    )
    vault_host.create(PolicyProvider(), urn(VaultPolicy, "p"), {"rut": rut, "mount": "secret", "stack": "s/t"})
    vault_host.create(AppRoleProvider(), urn(VaultAppRole, "a"), {"rut": rut, "policy": name})
    issued = vault.tenant_login(rut)
    own = f"secret/data/tenants/{rut}/odoo"
    assert vault.call("GET", own, issued).status_code == 200

    suspended = render_policy(rut, "secret", "s/t", suspended=True)
    assert vault.call("PUT", f"sys/policies/acl/{name}", provisioner_token, {"policy": suspended}).status_code == 204
    refused(vault.call("GET", own, issued))
    refused(vault.call("GET", own, vault.tenant_login(rut)))

    active = render_policy(rut, "secret", "s/t")
    assert vault.call("PUT", f"sys/policies/acl/{name}", provisioner_token, {"policy": active}).status_code == 204
    assert vault.call("GET", own, issued).status_code == 200, "the token issued before comes back with the tenant"


# -- escalations: each must be refused ---------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One call the provisioning token makes to raise itself."""

    name: str
    method: str
    path: str
    body: dict[str, Any] | None = None


ROLE = "tenant-pwn"
ATTEMPTS: tuple[Attempt, ...] = (
    # Get login material for an AppRole it made.
    Attempt("read the role-id", "GET", f"auth/approle/role/{ROLE}/role-id"),
    Attempt("set the role-id", "POST", f"auth/approle/role/{ROLE}/role-id", {"role_id": "chosen-by-me"}),
    Attempt(
        "set the role-id on create",
        "POST",
        f"auth/approle/role/{ROLE}",
        {"token_policies": ROLE, "token_no_default_policy": True, "role_id": "chosen-by-me"},
    ),
    Attempt("mint a secret-id", "POST", f"auth/approle/role/{ROLE}/secret-id", {}),
    Attempt(
        "mint a custom secret-id",
        "POST",
        f"auth/approle/role/{ROLE}/custom-secret-id",
        {"secret_id": "chosen-secret-id-0123456789abcdef"},
    ),
    Attempt("list secret-id accessors", "LIST", f"auth/approle/role/{ROLE}/secret-id"),
    Attempt(
        "look up a secret-id accessor",
        "POST",
        f"auth/approle/role/{ROLE}/secret-id-accessor/lookup",
        {"secret_id_accessor": "x"},
    ),
    Attempt(
        "log in without a secret-id (bind_secret_id=false)",
        "POST",
        f"auth/approle/role/{ROLE}",
        {"token_policies": ROLE, "token_no_default_policy": True, "bind_secret_id": False},
    ),
    Attempt(
        "bind secret-ids to a network",
        "POST",
        f"auth/approle/role/{ROLE}",
        {"token_policies": ROLE, "secret_id_bound_cidrs": ["127.0.0.1/32"]},
    ),
    Attempt("periodic tokens", "POST", f"auth/approle/role/{ROLE}", {"token_policies": ROLE, "token_period": "768h"}),
    Attempt("batch tokens", "POST", f"auth/approle/role/{ROLE}", {"token_policies": ROLE, "token_type": "batch"}),
    # Grant more than one tenant-* policy through an AppRole.
    Attempt("token_policies 'default'", "POST", f"auth/approle/role/{ROLE}", {"token_policies": "default"}),
    Attempt("token_policies 'root'", "POST", f"auth/approle/role/{ROLE}", {"token_policies": "root"}),
    Attempt(
        "token_policies the provisioner's",
        "POST",
        f"auth/approle/role/{ROLE}",
        {"token_policies": "smarteros-provisioner"},
    ),
    Attempt(
        "token_policies 'tenant-pwn,default'",
        "POST",
        f"auth/approle/role/{ROLE}",
        {"token_policies": f"{ROLE},default"},
    ),
    Attempt(
        "token_policies 'tenant-pwn, root'", "POST", f"auth/approle/role/{ROLE}", {"token_policies": f"{ROLE}, root"}
    ),
    Attempt("token_policies ['tenant-pwn']", "POST", f"auth/approle/role/{ROLE}", {"token_policies": [ROLE]}),
    Attempt(
        "token_policies ['tenant-pwn', 'default']",
        "POST",
        f"auth/approle/role/{ROLE}",
        {"token_policies": [ROLE, "default"]},
    ),
    Attempt("token_policies ['root']", "POST", f"auth/approle/role/{ROLE}", {"token_policies": ["root"]}),
    Attempt("policies (the older name) 'root'", "POST", f"auth/approle/role/{ROLE}", {"policies": "root"}),
    Attempt(
        "the default policy on its tokens",
        "POST",
        f"auth/approle/role/{ROLE}",
        {"token_policies": ROLE, "token_no_default_policy": False},
    ),
    # Write policy text outside tenant-*.
    Attempt("write policy admin-backdoor", "PUT", "sys/policies/acl/admin-backdoor", {"policy": WIDE_OPEN}),
    Attempt("rewrite its own policy", "PUT", "sys/policies/acl/smarteros-provisioner", {"policy": WIDE_OPEN}),
    Attempt("rewrite the default policy", "PUT", "sys/policies/acl/default", {"policy": WIDE_OPEN}),
    Attempt("write a policy through the older endpoint", "PUT", "sys/policy/admin-backdoor", {"policy": WIDE_OPEN}),
    # Make a token directly, or another way in.
    Attempt("create a token", "POST", "auth/token/create", {"policies": [ROLE]}),
    Attempt("create an orphan token", "POST", "auth/token/create-orphan", {"policies": [ROLE]}),
    Attempt("create a token role", "POST", "auth/token/roles/pwn", {"allowed_policies": [ROLE]}),
    Attempt("enable an auth method", "POST", "sys/auth/pwn", {"type": "userpass"}),
    Attempt("mount a secrets engine", "POST", "sys/mounts/pwn", {"type": "kv"}),
    Attempt("give an identity entity a policy", "POST", "identity/entity", {"name": "pwn", "policies": [ROLE]}),
    Attempt("read a secret outside the tenants subtree", "GET", "secret/data/platform/root"),
    Attempt("write a secret outside the tenants subtree", "POST", "secret/data/platform/root", {"data": {"k": "v"}}),
)


@pytest.fixture(scope="module")
def pwn_role(vault: VaultTarget, provisioner_token: str) -> str:
    """Step one and two of the known chain, which the provisioning token may do: a tenant-* policy that opens
    everything, and an AppRole whose tokens would carry it."""
    policy = vault.call("PUT", f"sys/policies/acl/{ROLE}", provisioner_token, {"policy": WIDE_OPEN})
    assert policy.status_code == 204, policy.text
    role = vault.call(
        "POST",
        f"auth/approle/role/{ROLE}",
        provisioner_token,
        {"token_policies": ROLE, "token_no_default_policy": True},
    )
    assert role.status_code == 204, role.text
    return ROLE


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=lambda a: a.name)
def test_the_provisioning_token_cannot_raise_itself(
    vault: VaultTarget, provisioner_token: str, pwn_role: str, attempt: Attempt
):
    refused(vault.call(attempt.method, attempt.path, provisioner_token, attempt.body))


# The previous provisioner.hcl, whose AppRole rule was a `tenant-*` glob: kept here as the control that shows
# the chain below really escalates when a policy lets it.
PREVIOUS_POLICY = """
path "sys/policies/acl/tenant-*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "auth/approle/role/tenant-*" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "token_policies"          = ["tenant-*"]
    "token_no_default_policy" = [true]
  }
}
"""


def pwn_chain(vault: VaultTarget, token: str, role: str) -> dict[str, int]:
    """The known chain, step by step, as ``token``: each step's status; it stops where it is refused."""
    answers: dict[str, int] = {}

    def step(name: str, method: str, path: str, as_token: str | None, body: Any = None) -> Any:
        answer = vault.call(method, path, as_token, body)
        answers[name] = answer.status_code
        return answer if answer.status_code < 400 else None

    if not step("write policy", "PUT", f"sys/policies/acl/{role}", token, {"policy": WIDE_OPEN}):
        return answers
    if not step(
        "create AppRole",
        "POST",
        f"auth/approle/role/{role}",
        token,
        {"token_policies": role, "token_no_default_policy": True},
    ):
        return answers
    role_id = step("read role-id", "GET", f"auth/approle/role/{role}/role-id", token)
    secret_id = step("mint secret-id", "POST", f"auth/approle/role/{role}/secret-id", token, {})
    if role_id is None or secret_id is None:
        return answers
    login = step(
        "log in",
        "POST",
        "auth/approle/login",
        None,
        {"role_id": role_id.json()["data"]["role_id"], "secret_id": secret_id.json()["data"]["secret_id"]},
    )
    if login is None:
        return answers
    minted = login.json()["auth"]["client_token"]
    outside = f"secret/data/platform/{role}"
    assert vault.call("POST", outside, vault.token, {"data": {"k": "v"}}).status_code == 200
    step("read a secret outside the tenants subtree", "GET", outside, minted)
    step("write admin-backdoor", "PUT", f"sys/policies/acl/{role}-admin-backdoor", minted, {"policy": WIDE_OPEN})
    step("enable an auth method", "POST", f"sys/auth/{role}", minted, {"type": "userpass"})
    return answers


def test_the_tenant_pwn_chain_ends_without_a_token(vault: VaultTarget, provisioner_token: str):
    """The two steps it may take succeed; then no way remains to log in as the role it made."""
    assert pwn_chain(vault, provisioner_token, f"{ROLE}-chain") == {
        "write policy": 204,
        "create AppRole": 204,
        "read role-id": 403,
        "mint secret-id": 403,
    }
    login = vault.call("POST", "auth/approle/login", None, {"role_id": "chosen-by-me", "secret_id": "guess"})
    assert login.status_code == 400 and "auth" not in login.json()


def test_the_same_chain_escalates_under_the_previous_policy(vault: VaultTarget):
    """The control: with the previous provisioner.hcl the same calls end in a token that writes any policy."""
    name = f"smarteros-provisioner-previous-{secrets.token_hex(3)}"
    vault.put_policy(name, PREVIOUS_POLICY)
    assert pwn_chain(vault, vault.token_with_policies(name), f"{ROLE}-{secrets.token_hex(3)}") == {
        "write policy": 204,
        "create AppRole": 204,
        "read role-id": 200,
        "mint secret-id": 200,
        "log in": 200,
        "read a secret outside the tenants subtree": 200,
        "write admin-backdoor": 204,
        "enable an auth method": 204,
    }


def test_a_tenant_approle_reaches_its_own_subtree_only(vault: VaultTarget, provisioner_host: ProviderHost):
    ruts = [fresh_rut("K"), fresh_rut()]
    for rut in ruts:
        provisioner_host.create(
            SecretProvider(),
            urn(VaultSecret, f"{rut}-s"),
            {
                "rut": rut,
                "service": "postgres",
                "mount": "secret",
                "stack": "s/t",
                "generate": [],
                "external": [],
                "rotate": 0,
                "provided": {"password": f"pw-{secrets.token_hex(8)}"},
            },
        )
        p_id, _ = provisioner_host.create(
            PolicyProvider(), urn(VaultPolicy, f"{rut}-p"), {"rut": rut, "mount": "secret", "stack": "s/t"}
        )
        provisioner_host.create(AppRoleProvider(), urn(VaultAppRole, f"{rut}-a"), {"rut": rut, "policy": p_id})
    mine, theirs = ruts
    token = vault.tenant_login(mine)

    assert vault.call("GET", f"secret/data/tenants/{mine}/postgres", token).status_code == 200
    assert vault.call("LIST", f"secret/metadata/tenants/{mine}/", token).json()["data"]["keys"] == ["postgres"]
    for method, path, body in (
        ("GET", f"secret/data/tenants/{theirs}/postgres", None),
        ("GET", f"secret/metadata/tenants/{theirs}/postgres", None),
        ("GET", f"secret/data/tenants/{mine.lower()}/postgres", None),
        ("LIST", "secret/metadata/tenants/", None),
        ("POST", f"secret/data/tenants/{mine}/postgres", {"data": {"password": "x"}}),
        ("DELETE", f"secret/metadata/tenants/{mine}/postgres", None),
        ("GET", f"sys/policies/acl/tenant-{mine.lower()}", None),
        ("POST", f"auth/approle/role/tenant-{mine.lower()}/secret-id", {}),
        ("POST", "auth/token/create", {}),
    ):
        refused(vault.call(method, path, token, body))


def test_what_it_still_allows_is_what_vault_readme_says(vault: VaultTarget, provisioner_token: str):
    """The residue vault/README.md lists: any text in tenant-* policies, any role name on the AppRole mount
    (with a tenant-* policy only)."""
    other = f"ops-{secrets.token_hex(4)}"
    vault.call("POST", f"auth/approle/role/{other}", vault.token, {"token_policies": "ops"})
    text = vault.call("PUT", f"sys/policies/acl/{ROLE}-text", provisioner_token, {"policy": WIDE_OPEN})
    assert text.status_code == 204
    pointed = vault.call("POST", f"auth/approle/role/{other}", provisioner_token, {"token_policies": ROLE})
    assert pointed.status_code == 204
    refused(vault.call("POST", f"auth/approle/role/{other}", provisioner_token, {"token_policies": "ops"}))
    assert vault.call("DELETE", f"auth/approle/role/{other}", provisioner_token).status_code == 204


def test_a_provisioning_token_from_an_approle_of_the_same_mount_could_raise_itself(
    vault: VaultTarget, provisioner_token: str
):
    """Why vault/README.md says to issue the token with `vault token create` and never through an AppRole of
    auth/approle: such a token may point its own role at a tenant-* policy it wrote, and log in again."""
    ci = f"ci-{secrets.token_hex(3)}"  # provisioner_token: README's set-up has installed the policy
    assert vault.call("POST", f"auth/approle/role/{ci}", vault.token, {"token_policies": "smarteros-provisioner"}).ok
    first = vault.call("GET", "auth/token/lookup-self", approle_login(vault.address, vault.token, ci))
    assert first.json()["data"]["policies"] == ["default", "smarteros-provisioner"]
    role_id = vault.operator().auth.approle.read_role_id(ci)["data"]["role_id"]
    secret_id = vault.operator().auth.approle.generate_secret_id(ci)["data"]["secret_id"]
    credentials = {"role_id": role_id, "secret_id": secret_id}
    token = vault.call("POST", "auth/approle/login", None, credentials).json()["auth"]["client_token"]

    wide = f"tenant-{ci}"
    assert vault.call("PUT", f"sys/policies/acl/{wide}", token, {"policy": WIDE_OPEN}).status_code == 204
    assert vault.call("POST", f"auth/approle/role/{ci}", token, {"token_policies": wide}).status_code == 204
    again = vault.call("POST", "auth/approle/login", None, credentials).json()["auth"]["client_token"]
    backdoor = vault.call("PUT", f"sys/policies/acl/{ci}-admin-backdoor", again, {"policy": WIDE_OPEN})
    assert backdoor.status_code == 204
