-- The tenant registry and the role-to-tenant bindings.
--
-- tenants, tenant_products and tenant_domains mirror the tenant files (tenants/<slug>.yaml); the
-- provisioner upserts them on every `pulumi up`, so the applications' tenant overview reflects the
-- YAML. tenant_roles binds each tenant role to its RUT: the row-level-security policies of every shared
-- table look the caller up here, so a role without a binding sees nothing.
--
-- Applied by the provisioner (acting as smarteros_owner) or by an administrator with psql; idempotent.

SET ROLE smarteros_owner;

CREATE TABLE IF NOT EXISTS public.tenants (
    rut               text        PRIMARY KEY CHECK (rut ~ '^[1-9][0-9]{0,8}-[0-9K]$' OR rut ~ '^0-[0-9K]$'),
    slug              text        NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9-]{1,30}[a-z0-9]$'),
    name              text        NOT NULL,
    type              text        NOT NULL CHECK (type IN ('customer', 'infrastructure')),
    status            text        NOT NULL CHECK (status IN ('trial', 'active', 'suspended', 'cancelled')),
    plan              text        NOT NULL,
    trial_expires_at  date,
    managed_by        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.tenants IS 'One row per tenant file; managed_by names the stack that owns the row';

CREATE TABLE IF NOT EXISTS public.tenant_products (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_rut  text        NOT NULL REFERENCES public.tenants (rut) ON DELETE CASCADE,
    product     text        NOT NULL CHECK (product IN ('chat', 'erp', 'automation', 'store')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_rut, product)
);
CREATE INDEX IF NOT EXISTS tenant_products_tenant_rut_idx ON public.tenant_products (tenant_rut);

CREATE TABLE IF NOT EXISTS public.tenant_domains (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_rut  text        NOT NULL REFERENCES public.tenants (rut) ON DELETE CASCADE,
    hostname    text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tenant_domains_tenant_rut_idx ON public.tenant_domains (tenant_rut);

-- Role names are opaque (tenant_ and 24 hex digits, see sql/provisioner.sql); tenant_<rut> names of
-- earlier versions stay valid until their roles are replaced. No index on tenant_rut: every tenant role
-- reads this table (its policies look the caller up here), and an index on a column the caller may
-- filter on would let EXPLAIN ANALYZE count other tenants' rows behind the policy (see 050).
CREATE TABLE IF NOT EXISTS public.tenant_roles (
    role_name   text        PRIMARY KEY CHECK (role_name ~ '^tenant_([0-9a-f]{24}|[0-9]{1,9}_[0-9k])$'),
    tenant_rut  text        NOT NULL REFERENCES public.tenants (rut),
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.tenant_roles IS
    'Binds each tenant role to its RUT; every row-level-security policy keys through it';

RESET ROLE;
