# Policy of the token `pulumi up` uses to provision tenants (stack secret `smarteros:vaultToken`).
# It reaches the tenants' KV v2 subtree, the tenant-* ACL policies and AppRole roles, and nothing that
# yields a token: no role-id, no secret-id, no token creation, no sys/* beyond tenant-* policies.
# vault/README.md says why each rule is shaped as it is, and what it still allows.
# The paths assume the KV v2 engine is mounted at `secret` (stack config `smarteros:vault.mount`) and
# AppRole at `auth/approle`; replace those prefixes when they differ.

# Tenant secrets: write new versions, read them back (merge and check-and-set need the live keys).
path "secret/data/tenants/*" {
  capabilities = ["create", "read", "update"]
}

# Ownership marker (custom metadata), versions, and deleting a tenant's secret with all its versions.
path "secret/metadata/tenants/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Tenant ACL policies (Vault stores policy names lower-case: tenant-10000013-k).
path "sys/policies/acl/tenant-*" {
  capabilities = ["create", "read", "update", "delete"]
}

# AppRole roles, the role itself only: `+` is exactly one path segment, so nothing below a role is
# granted (role-id, secret-id, custom-secret-id, secret-id-accessor, ...). A `tenant-*` glob here would
# also match those sub-paths. Only two parameters may be sent: any other (role_id, bind_secret_id,
# secret_id_bound_cidrs, token_type, token_period, policies, ...) is refused.
# token_policies must be sent as one string: a glob matches strings only (a JSON list never matches),
# and a string holding a comma would name several policies ("tenant-x,default"), so commas are denied.
path "auth/approle/role/+" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "token_policies"          = ["tenant-*"]
    "token_no_default_policy" = [true]
  }
  denied_parameters = {
    "token_policies" = ["*,*"]
  }
}

# The token's own upkeep (it is made with -no-default-policy and a period).
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}
