-- The shared tables the platform's applications use. Every tenant-owned table carries an indexed
-- tenant_rut (referencing the registry) and a uuid primary key, so a tenant never learns from a key
-- collision that other rows exist. References between tenant tables include tenant_rut, so a row can
-- only point at rows of the same tenant.
--
-- Applied by the provisioner (acting as smarteros_owner) or by an administrator with psql; idempotent.

SET ROLE smarteros_owner;

CREATE TABLE IF NOT EXISTS public.contacts (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_rut  text        NOT NULL REFERENCES public.tenants (rut),
    name        text        NOT NULL,
    email       text,
    phone       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_rut, id)
);
CREATE INDEX IF NOT EXISTS contacts_tenant_rut_idx ON public.contacts (tenant_rut);

CREATE TABLE IF NOT EXISTS public.conversations (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_rut  text        NOT NULL REFERENCES public.tenants (rut),
    contact_id  uuid,
    channel     text        NOT NULL DEFAULT 'whatsapp',
    status      text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'resolved')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_rut, id),
    FOREIGN KEY (tenant_rut, contact_id) REFERENCES public.contacts (tenant_rut, id)
);
CREATE INDEX IF NOT EXISTS conversations_tenant_rut_idx ON public.conversations (tenant_rut);

CREATE TABLE IF NOT EXISTS public.messages (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_rut       text        NOT NULL REFERENCES public.tenants (rut),
    conversation_id  uuid        NOT NULL,
    direction        text        NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    body             text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_rut, conversation_id) REFERENCES public.conversations (tenant_rut, id)
);
CREATE INDEX IF NOT EXISTS messages_tenant_rut_idx ON public.messages (tenant_rut);

CREATE TABLE IF NOT EXISTS public.orders (
    id          uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_rut  text          NOT NULL REFERENCES public.tenants (rut),
    contact_id  uuid,
    total       numeric(14,2) NOT NULL DEFAULT 0,
    currency    text          NOT NULL DEFAULT 'CLP',
    status      text          NOT NULL DEFAULT 'pending',
    created_at  timestamptz   NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_rut, contact_id) REFERENCES public.contacts (tenant_rut, id)
);
CREATE INDEX IF NOT EXISTS orders_tenant_rut_idx ON public.orders (tenant_rut);

CREATE TABLE IF NOT EXISTS public.events (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_rut   text        NOT NULL REFERENCES public.tenants (rut),
    kind         text        NOT NULL,
    payload      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_tenant_rut_idx ON public.events (tenant_rut);

CREATE TABLE IF NOT EXISTS public.csat_feedback (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_rut       text        NOT NULL REFERENCES public.tenants (rut),
    conversation_id  uuid,
    score            smallint    NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment          text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_rut, conversation_id) REFERENCES public.conversations (tenant_rut, id)
);
CREATE INDEX IF NOT EXISTS csat_feedback_tenant_rut_idx ON public.csat_feedback (tenant_rut);

CREATE TABLE IF NOT EXISTS public.audit_logs (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_rut  text        NOT NULL REFERENCES public.tenants (rut),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_logs_tenant_rut_idx ON public.audit_logs (tenant_rut);

RESET ROLE;
