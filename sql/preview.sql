-- The read-only identity of `pulumi preview` and the daily drift check (environment `preview`, secret
-- POSTGRES_PREVIEW_PASSWORD). Run once per cluster and database by a database administrator, after
-- sql/provisioner.sql and the first `pulumi up` (the registry tables must exist), e.g.
--
--     psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -f sql/preview.sql
--     psql "$ADMIN_URL" -c '\password smarteros_preview'
--
-- Safe to run again. smarteros_preview logs in, reads the catalogs (roles, memberships, role settings and
-- comments, table privileges: readable by every role) and the tenant registry with its bindings. It owns
-- nothing, holds no write privilege on any table, cannot create or alter roles, and reads no tenant data
-- table (contacts, orders…): no grant on them, and row-level security gives it no row anyway.
-- CREATE POLICY takes an ACCESS EXCLUSIVE lock on the registry tables: run it when no query is running.

-- An administrator (a superuser) runs this file, again after every upgrade. Objects anyone created in
-- public (the owner may) must never run then: a function there whose argument types match better than the
-- catalog's (pg_catalog.format(text, name), say) would be chosen over it, and run as the superuser. So nothing is
-- looked up outside pg_catalog for the rest of this run, and every catalog function is named with it.
SET search_path = pg_catalog, pg_temp;

DO $role$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'smarteros_preview') THEN
        CREATE ROLE smarteros_preview LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION NOINHERIT;
    ELSE
        ALTER ROLE smarteros_preview LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION NOINHERIT;
    END IF;
END
$role$;

COMMENT ON ROLE smarteros_preview IS 'smarteros: read-only identity of pulumi preview and the drift check';
ALTER ROLE smarteros_preview SET default_transaction_read_only = on;
ALTER ROLE smarteros_preview SET statement_timeout = '60s';

DO $connect$
BEGIN
    EXECUTE pg_catalog.format('GRANT CONNECT ON DATABASE %I TO smarteros_preview', pg_catalog.current_database());
END
$connect$;
GRANT USAGE ON SCHEMA public TO smarteros_preview;
GRANT SELECT ON public.tenants, public.tenant_products, public.tenant_domains, public.tenant_roles
    TO smarteros_preview;
-- The role name of a RUT, for a preview that adopts a role by RUT (`import_`): what tenant_roles shows it
-- already. Nothing else in smarteros_admin: its other functions are the provisioner's alone.
GRANT USAGE ON SCHEMA smarteros_admin TO smarteros_preview;
GRANT EXECUTE ON FUNCTION smarteros_admin.tenant_role_name(text) TO smarteros_preview;

-- The registry and the bindings have row-level security for tenant roles; the preview reads every row.
SET ROLE smarteros_owner;
DO $policies$
DECLARE
    registry_table text;
BEGIN
    FOREACH registry_table IN ARRAY ARRAY['tenants', 'tenant_products', 'tenant_domains', 'tenant_roles']
    LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_policies
                        WHERE schemaname = 'public' AND tablename = registry_table
                          AND policyname = 'preview_reads') THEN
            EXECUTE pg_catalog.format('CREATE POLICY preview_reads ON public.%I FOR SELECT TO smarteros_preview USING (true)',
                           registry_table);
        END IF;
    END LOOP;
END
$policies$;
RESET ROLE;
