-- Row-level security: the platform defines it once per table; onboarding a tenant never touches it.
--
-- Every tenant-owned table gets RLS and one policy, TO tenant_members, keyed through tenant_roles:
--
--     tenant_rut = (SELECT tenant_rut FROM tenant_roles WHERE role_name = current_user)
--
-- The sub-select becomes an init-plan evaluated once per query, so the planner still uses the
-- tenant_rut index (about as fast as the administrator's own WHERE tenant_rut = '...'). Policies never
-- call SECURITY DEFINER functions: the planner cannot see through them (sequential scans, several times
-- slower) and inside them current_user is the function's owner, not the caller.
--
-- ENABLE ROW LEVEL SECURITY and CREATE POLICY take an ACCESS EXCLUSIVE lock that queues behind every
-- running query, which is why they live here and run only when this file set changes. Onboarding a
-- tenant runs CREATE ROLE, GRANT and row inserts, none of which wait for the applications' queries.
-- A policy that already exists is left alone; to change one, add a later file that drops and recreates
-- it.
--
-- Applied by the provisioner (acting as smarteros_owner) or by an administrator with psql; idempotent.

SET ROLE smarteros_owner;

-- Tenant roles read their own binding (every policy looks the caller up there) and their own registry
-- rows through tenant_overview (030); the registry tables themselves stay closed to them (050).
GRANT SELECT ON public.tenant_roles, public.tenant_overview TO tenant_members;

DO $rls$
DECLARE
    own_rut constant text :=
        '(SELECT tr.tenant_rut FROM public.tenant_roles tr WHERE tr.role_name = current_user)';
    tenant_table text;
BEGIN
    -- The mapping table: each member reads only its own row.
    IF NOT (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = 'public.tenant_roles'::regclass) THEN
        ALTER TABLE public.tenant_roles ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_policies
                    WHERE schemaname = 'public' AND tablename = 'tenant_roles' AND policyname = 'own_binding') THEN
        CREATE POLICY own_binding ON public.tenant_roles FOR SELECT TO tenant_members
            USING (role_name = current_user);
    END IF;

    -- The registry row of the tenant itself (keyed by rut).
    IF NOT (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = 'public.tenants'::regclass) THEN
        ALTER TABLE public.tenants ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_policies
                    WHERE schemaname = 'public' AND tablename = 'tenants' AND policyname = 'own_tenant') THEN
        EXECUTE format('CREATE POLICY own_tenant ON public.tenants FOR SELECT TO tenant_members USING (rut = %s)',
                       own_rut);
    END IF;

    -- Every table keyed by tenant_rut.
    FOREACH tenant_table IN ARRAY ARRAY['tenant_products', 'tenant_domains', 'contacts', 'conversations',
                                        'messages', 'orders', 'events', 'csat_feedback', 'audit_logs']
    LOOP
        IF NOT (SELECT relrowsecurity FROM pg_catalog.pg_class
                 WHERE oid = format('public.%I', tenant_table)::regclass) THEN
            EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', tenant_table);
        END IF;
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_policies
                        WHERE schemaname = 'public' AND tablename = tenant_table
                          AND policyname = 'tenant_isolation') THEN
            EXECUTE format('CREATE POLICY tenant_isolation ON public.%I FOR ALL TO tenant_members '
                           'USING (tenant_rut = %s) WITH CHECK (tenant_rut = %s)',
                           tenant_table, own_rut, own_rut);
        END IF;
    END LOOP;
END
$rls$;

RESET ROLE;
