# Policy of the read-only token that `pulumi preview` and the daily drift check use (environment `preview`,
# secret VAULT_PREVIEW_TOKEN). It reads what the tenant resources are compared against (the tenants'
# secrets and their metadata, the tenant-* ACL policies, the tenant-* AppRoles) and can change none of it.
# Reading a secret's data returns its values: keep this token in the protected environment only.
# The paths assume the KV v2 engine is mounted at `secret` (stack config `smarteros:vault.mount`).

# Tenant secrets: the live keys and values a refresh compares with the recorded ones.
path "secret/data/tenants/*" {
  capabilities = ["read"]
}

# Ownership marker (custom metadata) and versions of each tenant secret.
path "secret/metadata/tenants/*" {
  capabilities = ["read", "list"]
}

# Tenant ACL policies (Vault stores policy names lower-case: tenant-10000013-k).
path "sys/policies/acl/tenant-*" {
  capabilities = ["read"]
}

# Tenant AppRoles and their settings (token policies, secret-id rules), the role itself only: `+` is one
# path segment, so nothing below a role is readable (a `tenant-*` glob would also match `tenant-x/role-id`).
path "auth/approle/role/+" {
  capabilities = ["read"]
}
