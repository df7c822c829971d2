-- Tenants blind to each other, for databases set up by earlier versions of 010-040 (a new database
-- already looks like this; every statement here is idempotent).
--
-- * tenant_roles accepts the opaque role names of sql/provisioner.sql.
-- * tenant_roles loses its index on tenant_rut. Every tenant role reads tenant_roles (the policies look
--   the caller up there); with that index, EXPLAIN ANALYZE SELECT ... WHERE tenant_rut = ANY('{...}')
--   ran an index scan on the guessed RUTs and reported the other tenants' rows the policy then removed
--   ("Rows Removed by Filter"), so a tenant could tell which RUTs are customers. Its only index is now
--   the primary key on role_name, and role names are opaque.
-- * Tenant roles no longer read tenants, tenant_products and tenant_domains directly (their unique
--   indexes on slug and hostname gave the same oracle); tenant_overview serves them their own rows.
-- * No planner statistics on any column of a table with row-level security (SET STATISTICS 0). Under
--   row-level security the planner still estimates a caller's own conditions from the statistics when
--   the operator is leakproof (=, <, > on text, uuid, numbers, timestamps), so plain EXPLAIN SELECT ...
--   WHERE tenant_rut = '<rut>' showed that tenant's row count (most-common values), and range conditions
--   walked the histogram bounds, which are other tenants' values (RUTs, names, e-mail addresses). Without
--   statistics the planner uses its defaults for every value alike. The tenant_rut indexes still serve
--   the policies; sql/provisioner.sql removes statistics gathered before this file ran (that takes a
--   superuser). A table added by a later file needs the same: the schema tests check every RLS table.
--
-- Applied by the provisioner (acting as smarteros_owner) or by an administrator with psql; idempotent.

SET ROLE smarteros_owner;

DO $privacy$
DECLARE
    statement text;
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_constraint
                WHERE conrelid = 'public.tenant_roles'::regclass AND conname = 'tenant_roles_role_name_check'
                  AND pg_catalog.pg_get_constraintdef(oid) NOT LIKE '%[0-9a-f]{24}%') THEN
        ALTER TABLE public.tenant_roles DROP CONSTRAINT tenant_roles_role_name_check;
        ALTER TABLE public.tenant_roles ADD CONSTRAINT tenant_roles_role_name_check
            CHECK (role_name ~ '^tenant_([0-9a-f]{24}|[0-9]{1,9}_[0-9k])$');
    END IF;
    IF pg_catalog.to_regclass('public.tenant_roles_tenant_rut_idx') IS NOT NULL THEN
        DROP INDEX public.tenant_roles_tenant_rut_idx;
    END IF;
    IF pg_catalog.has_table_privilege('tenant_members', 'public.tenants', 'SELECT')
       OR pg_catalog.has_table_privilege('tenant_members', 'public.tenant_products', 'SELECT')
       OR pg_catalog.has_table_privilege('tenant_members', 'public.tenant_domains', 'SELECT') THEN
        REVOKE ALL ON public.tenants, public.tenant_products, public.tenant_domains FROM tenant_members;
    END IF;
    -- SET STATISTICS takes a SHARE UPDATE EXCLUSIVE lock: reads and writes go on.
    FOR statement IN
        SELECT pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS 0', c.oid::regclass, a.attname)
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relrowsecurity
           AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget IS DISTINCT FROM 0
    LOOP
        EXECUTE statement;
    END LOOP;
END
$privacy$;

RESET ROLE;
