-- Views over the shared tables. Every view runs with the rights of the caller (security_invoker), so
-- row-level security of the underlying tables applies to whoever queries it.
--
-- Applied by the provisioner (acting as smarteros_owner) or by an administrator with psql; idempotent.

SET ROLE smarteros_owner;

CREATE OR REPLACE VIEW public.tenant_overview WITH (security_invoker = true) AS
SELECT t.rut,
       t.slug,
       t.name,
       t.type,
       t.status,
       t.plan,
       t.trial_expires_at,
       COALESCE((SELECT array_agg(p.product ORDER BY p.product)
                   FROM public.tenant_products p WHERE p.tenant_rut = t.rut), '{}') AS products,
       COALESCE((SELECT array_agg(d.hostname ORDER BY d.hostname)
                   FROM public.tenant_domains d WHERE d.tenant_rut = t.rut), '{}') AS hostnames
  FROM public.tenants t;

CREATE OR REPLACE VIEW public.conversation_summary WITH (security_invoker = true) AS
SELECT c.tenant_rut,
       c.id AS conversation_id,
       c.channel,
       c.status,
       count(m.id) AS message_count,
       max(m.created_at) AS last_message_at
  FROM public.conversations c
  LEFT JOIN public.messages m ON m.tenant_rut = c.tenant_rut AND m.conversation_id = c.id
 GROUP BY c.tenant_rut, c.id, c.channel, c.status;

RESET ROLE;
