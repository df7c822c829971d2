# Policy of the token `pulumi up` uses to provision tenants (stack secret `smarteros:vaultToken`).
# It reaches the tenants' KV v2 subtree, the tenant-* ACL policies and the tenant-* AppRole roles only.
# The paths assume the KV v2 engine is mounted at `secret` (stack config `smarteros:vault.mount`);
# replace `secret/` in the first two blocks when the mount differs.

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

# Tenant AppRoles, whose tokens may carry tenant-* policies only, never `default` or anything else.
path "auth/approle/role/tenant-*" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "token_policies"          = ["tenant-*"]
    "token_no_default_policy" = [true]
  }
}
