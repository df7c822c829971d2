-- Views over the shared tables. Every view runs with the rights of the caller (security_invoker), so
-- row-level security of the underlying tables applies to whoever queries it.
--
-- Applied by the provisioner (acting as smarteros_owner) or by an administrator with psql; idempotent.

SET ROLE smarteros_owner;

-- The registry as its reader may see it: a tenant role gets its own tenant's row, smarteros_owner (and
-- so the provisioner and administrators) every row. Tenant roles cannot read the registry tables
-- themselves: their unique indexes (slug, hostname) would let EXPLAIN ANALYZE tell, behind the policy,
-- whether another customer exists. The rows come out of a SECURITY DEFINER function instead, which the
-- planner never looks into, so the caller's filters apply only to the rows it may see. The caller names
-- itself (current_user, so SET ROLE works) and must be that role or a member of it.
CREATE OR REPLACE FUNCTION public.tenant_overview_rows(caller name DEFAULT current_user)
    RETURNS TABLE (rut text, slug text, name text, type text, status text, plan text, trial_expires_at date,
                   products text[], hostnames text[])
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF caller IS NULL OR NOT pg_catalog.pg_has_role(session_user, caller, 'MEMBER') THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT t.rut, t.slug, t.name, t.type, t.status, t.plan, t.trial_expires_at,
           COALESCE((SELECT pg_catalog.array_agg(p.product ORDER BY p.product)
                       FROM public.tenant_products p WHERE p.tenant_rut = t.rut), '{}'),
           COALESCE((SELECT pg_catalog.array_agg(d.hostname ORDER BY d.hostname)
                       FROM public.tenant_domains d WHERE d.tenant_rut = t.rut), '{}')
      FROM public.tenants t
     WHERE pg_catalog.pg_has_role(caller, 'smarteros_owner', 'USAGE')
        OR t.rut = (SELECT tr.tenant_rut FROM public.tenant_roles tr WHERE tr.role_name = caller);
END
$fn$;
REVOKE ALL ON FUNCTION public.tenant_overview_rows(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.tenant_overview_rows(name) TO tenant_members;

CREATE OR REPLACE VIEW public.tenant_overview WITH (security_invoker = true) AS
SELECT o.rut, o.slug, o.name, o.type, o.status, o.plan, o.trial_expires_at, o.products, o.hostnames
  FROM public.tenant_overview_rows(current_user) AS o;

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
