"""What the platform offers: products, services with per-tenant credentials, and shared tables.

``TENANT_TABLES`` lists the tables of the shared schema (``sql/``) that carry ``tenant_rut`` and may
be named in a tenant file's ``database.tables``; a test checks it against the schema applied to a
real PostgreSQL.
"""

from __future__ import annotations

PRODUCTS: tuple[str, ...] = ("chat", "erp", "automation", "store")
SERVICES: tuple[str, ...] = ("chatwoot", "botpress", "odoo", "supabase")
PRIVILEGES: tuple[str, ...] = ("select", "insert", "update", "delete")
QUERY_LEVELS: tuple[str, ...] = ("query-builder", "query-builder-and-native", "no")

TENANT_TABLES: tuple[str, ...] = (
    "contacts",
    "conversations",
    "messages",
    "orders",
    "events",
    "csat_feedback",
    "audit_logs",
)
