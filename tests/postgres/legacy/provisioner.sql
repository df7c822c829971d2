-- Roles the platform needs before its schema can be applied. Run once per cluster and database by a
-- database administrator (a superuser, or the database owner holding CREATEROLE), e.g.
--
--     psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -f sql/provisioner.sql
--     psql "$ADMIN_URL" -c '\password smarteros_provisioner'
--
-- Safe to run again: every statement checks before it creates.
--
--   smarteros_owner        NOLOGIN. Owns every table, view and policy of sql/schema/. Nobody logs in
--                          as it; the provisioner acts as it to apply the schema and to grant table
--                          privileges, so every grant is recorded with the owner as grantor and an
--                          administrator can revoke it by hand (and the provisioner can undo a hand-made
--                          grant).
--   smarteros_provisioner  LOGIN CREATEROLE, not a superuser, cannot bypass row-level security on its
--                          own. The identity `pulumi up` uses (stack config smarteros:postgres and the
--                          secret smarteros:postgresPassword). It creates, alters and drops the
--                          tenant_<rut> roles, adds them to tenant_members, and writes the tenant
--                          registry and the tenant_roles bindings.
--   tenant_members         NOLOGIN group of every tenant role. The row-level-security policies of the
--                          shared tables apply TO this role.
--
-- Least privilege, and its limits: CREATEROLE on PostgreSQL 15 and older lets its holder grant itself
-- membership in any role that is not a superuser; PostgreSQL 16 narrows that to the roles it has ADMIN
-- on. Keep the provisioner's password in the stack's secrets and nowhere else.

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'smarteros_owner') THEN
        CREATE ROLE smarteros_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'smarteros_provisioner') THEN
        CREATE ROLE smarteros_provisioner LOGIN CREATEROLE NOSUPERUSER NOCREATEDB NOBYPASSRLS NOREPLICATION;
    ELSE
        ALTER ROLE smarteros_provisioner LOGIN CREATEROLE NOSUPERUSER NOCREATEDB NOBYPASSRLS NOREPLICATION;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'tenant_members') THEN
        CREATE ROLE tenant_members NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    END IF;
END
$roles$;

COMMENT ON ROLE smarteros_owner IS 'smarteros: owns the shared schema (sql/schema); never logs in';
COMMENT ON ROLE smarteros_provisioner IS 'smarteros: provisioning identity of pulumi up (CREATEROLE, not superuser)';
COMMENT ON ROLE tenant_members IS 'smarteros: group of every tenant role; row-level-security policies apply to it';

-- The provisioner acts as the owner of the shared objects.
GRANT smarteros_owner TO smarteros_provisioner;

-- Adding tenant roles to tenant_members: PostgreSQL 15 lets CREATEROLE do it; from 16 on the provisioner
-- needs ADMIN on the group, granted without inheriting the group's privileges.
DO $members$
BEGIN
    IF current_setting('server_version_num')::int >= 160000 THEN
        EXECUTE 'GRANT tenant_members TO smarteros_provisioner WITH ADMIN TRUE, INHERIT FALSE, SET FALSE';
    END IF;
END
$members$;

-- The owner creates the shared objects in the public schema (PostgreSQL 15 no longer lets PUBLIC do it).
GRANT USAGE, CREATE ON SCHEMA public TO smarteros_owner;

-- Onboarding never queues behind the applications' queries: a lock it cannot get at once fails the
-- operation quickly instead (onboarding itself takes no lock on the shared tables; see sql/schema/).
ALTER ROLE smarteros_provisioner SET lock_timeout = '5s';
ALTER ROLE smarteros_provisioner SET statement_timeout = '120s';

-- Tenant roles log in to this database even where CONNECT was revoked from PUBLIC.
DO $connect$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO tenant_members, smarteros_provisioner', current_database());
END
$connect$;
