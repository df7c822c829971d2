"""Vault: the KV v2 / ACL policy / AppRole providers, their test double and contract tests."""
