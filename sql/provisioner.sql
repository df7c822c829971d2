-- Roles and role-management functions the platform needs before its schema can be applied. Run once per
-- cluster and database, and again after every upgrade of this file, by a database administrator (a
-- superuser; see "Without a superuser" below), e.g.
--
--     psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -f sql/provisioner.sql
--     psql "$ADMIN_URL" -c '\password smarteros_provisioner'
--
-- Safe to run again: every statement checks before it creates, and a run over an older version of this
-- file takes back what that version granted (CREATEROLE of the provisioner, its ADMIN on tenant roles).
--
--   smarteros_owner        NOLOGIN. Owns every table, view and policy of sql/schema/. Nobody logs in as
--                          it; the provisioner acts as it to apply the schema and to grant table
--                          privileges, so every grant is recorded with the owner as grantor.
--   smarteros_provisioner  LOGIN, no CREATEROLE, not a superuser, cannot bypass row-level security on
--                          its own. The identity `pulumi up` uses (stack config smarteros:postgres and the
--                          secret smarteros:postgresPassword). It writes the tenant registry and the
--                          tenant_roles bindings, grants table privileges (as smarteros_owner), and
--                          creates, alters and drops tenant roles ONLY through the functions of schema
--                          smarteros_admin below.
--   smarteros_role_admin   NOLOGIN CREATEROLE, nobody is a member of it. Owns schema smarteros_admin and
--                          its functions; the functions are the only way its CREATEROLE is ever used.
--   tenant_members         NOLOGIN group of every tenant role. The row-level-security policies of the
--                          shared tables apply TO this role.
--
-- Why the provisioner holds no CREATEROLE
-- ---------------------------------------
-- On PostgreSQL 15 and older, CREATEROLE may grant membership in any role that is not a superuser,
-- predefined roles included, and set the password of any such role: GRANT pg_execute_server_program TO
-- itself, then COPY ... TO PROGRAM rewrites pg_hba.conf, and the cluster is its. PostgreSQL 16 narrows
-- CREATEROLE to roles the holder has ADMIN on, but the same design is used on every version, so there is
-- one thing to reason about:
--
--   * The provisioner calls SECURITY DEFINER functions owned by smarteros_role_admin. EXECUTE on them is
--     revoked from PUBLIC and granted to the provisioner alone.
--   * The functions take a RUT, never a role name to create or alter: the role name is computed inside
--     (smarteros_admin.tenant_role_name, see below), so they can only ever touch a role named like a
--     tenant role. DROP also accepts the tenant_<rut> names of earlier versions, and only for roles that
--     carry the stack's ownership comment.
--   * Every role they create or alter gets fixed attributes: LOGIN INHERIT NOSUPERUSER NOCREATEDB
--     NOCREATEROLE NOREPLICATION NOBYPASSRLS, membership in tenant_members and nothing else (any other
--     membership is revoked), a connection limit, a statement_timeout, a SCRAM verifier (never a
--     plain-text password) and an ownership comment. A role that has SUPERUSER, REPLICATION or BYPASSRLS is
--     refused, never altered or dropped.
--   * Each function pins search_path = pg_catalog, pg_temp, qualifies every catalog object, quotes every
--     identifier and literal with pg_catalog.format('%I' / '%L'), and checks every argument against a pattern
--     before building a statement.
--   * Every role change is written to the server log (RAISE LOG 'smarteros_admin: ...'), verifiers
--     withheld.
--
-- Tenants blind to each other
-- ---------------------------
-- Every role can read pg_roles, pg_auth_members and role comments. Tenant role names are therefore
-- opaque: tenant_ followed by 24 hex digits of HMAC-SHA-256(key, RUT), with a random 256-bit key generated
-- here once per database and readable by smarteros_role_admin only. The same RUT always gives the same
-- name in the same database (a lost Pulumi state still finds its roles), and nobody without the key can
-- tell which RUT a name belongs to (RUTs are few enough to try all of them against a plain hash). Role
-- comments carry only the stack's ownership marker. Keep the key: a database restored without the table
-- smarteros_admin.role_name_key gives every tenant a new role name on the next `pulumi up` (the old roles
-- are replaced; no row is lost, rows are keyed by RUT).
--
-- This file also revokes PUBLIC's access to the statistics views and functions (pg_stat_activity,
-- pg_stat_*_tables, pg_statio_*, pg_stat_get_*, pg_relation_size and friends) and grants them to
-- pg_read_all_stats instead. It needs a superuser to do so; without one it skips that step with a NOTICE. See README.md, "What a tenant
-- role can see", for what remains visible and why.
--
-- Residual risks
-- --------------
--   * The provisioner is a member of smarteros_owner: it reads and writes every tenant's rows (the owner
--     is not subject to row-level security) and can create triggers on the shared tables and functions in
--     their security_invoker views. A superuser who queries or writes them runs that code with superuser
--     rights, so administrators work on tenant data as smarteros_owner (SET ROLE smarteros_owner).
--   * Whoever can become smarteros_role_admin or replace its functions holds CREATEROLE: only superusers.
--     Never grant smarteros_role_admin to anyone, never give it LOGIN.
--   * The provisioner chooses tenant passwords, so it can log in as any tenant role: that is what it is
--     for, and a tenant role is worth less than smarteros_owner, which it already acts as.
--   * On PostgreSQL 16+, adopting a tenant role that an administrator created by hand needs
--     GRANT <role> TO smarteros_role_admin WITH ADMIN TRUE, INHERIT FALSE, SET FALSE first.
--   * On PostgreSQL 16+, a membership an administrator gave a tenant role by hand cannot be revoked by
--     the functions (smarteros_role_admin holds ADMIN on no predefined role); the update fails naming it.
--
-- Without a superuser (managed services): an administrator holding CREATEROLE can run everything except the
-- statistics revokes; the script then makes itself a member of smarteros_role_admin for the duration of
-- the run and gives the membership back at the end.
--
-- Least privilege of the provisioner is tested as the provisioner on PostgreSQL 15 and 16: see
-- tests/postgres/test_escalation.py.

-- An administrator (a superuser) runs this file, again after every upgrade. Objects anyone created in
-- public (the owner may) must never run then: a function there whose argument types match better than the
-- catalog's (pg_catalog.format(text, name), say) would be chosen over it, and run as the superuser. So nothing is
-- looked up outside pg_catalog for the rest of this run, and every catalog function is named with it.
SET search_path = pg_catalog, pg_temp;

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'smarteros_owner') THEN
        CREATE ROLE smarteros_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'smarteros_provisioner') THEN
        CREATE ROLE smarteros_provisioner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION;
    ELSE
        ALTER ROLE smarteros_provisioner LOGIN NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'smarteros_role_admin') THEN
        CREATE ROLE smarteros_role_admin NOLOGIN CREATEROLE NOSUPERUSER NOCREATEDB NOBYPASSRLS NOREPLICATION;
    ELSE
        ALTER ROLE smarteros_role_admin NOLOGIN CREATEROLE NOCREATEDB;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'tenant_members') THEN
        CREATE ROLE tenant_members NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    END IF;
END
$roles$;

COMMENT ON ROLE smarteros_owner IS 'smarteros: owns the shared schema (sql/schema); never logs in';
COMMENT ON ROLE smarteros_provisioner IS 'smarteros: provisioning identity of pulumi up (no CREATEROLE)';
COMMENT ON ROLE smarteros_role_admin IS 'smarteros: owns the tenant-role functions (smarteros_admin); never logs in';
COMMENT ON ROLE tenant_members IS 'smarteros: group of every tenant role; row-level-security policies apply to it';

-- The provisioner acts as the owner of the shared objects.
GRANT smarteros_owner TO smarteros_provisioner;

-- Take back what earlier versions of this file gave the provisioner: ADMIN on tenant_members (16+) and the
-- ADMIN that PostgreSQL 16 gives the creator of each role on the roles it created. From 16 on,
-- smarteros_role_admin needs ADMIN (without the group's privileges) on tenant_members and on every
-- existing tenant role to add, alter and drop them; 15 lets its CREATEROLE do that. Memberships in
-- tenant_members that the provisioner granted are granted again by smarteros_role_admin first, so
-- revoking the provisioner's ADMIN (CASCADE drops what it granted) leaves every tenant role in the group.
DO $admin$
DECLARE
    granted record;
BEGIN
    IF current_setting('server_version_num')::int >= 160000 THEN
        EXECUTE 'GRANT tenant_members TO smarteros_role_admin WITH ADMIN TRUE, INHERIT FALSE, SET FALSE';
        FOR granted IN
            SELECT DISTINCT r.rolname::text AS name
              FROM pg_catalog.pg_auth_members m
              JOIN pg_catalog.pg_roles r ON r.oid = m.member
             WHERE m.roleid = 'tenant_members'::regrole
               AND r.rolname NOT IN ('smarteros_role_admin', 'smarteros_provisioner')
        LOOP
            EXECUTE pg_catalog.format('GRANT tenant_members TO %I GRANTED BY smarteros_role_admin', granted.name);
            IF granted.name ~ '^tenant_' THEN
                EXECUTE pg_catalog.format('GRANT %I TO smarteros_role_admin WITH ADMIN TRUE, INHERIT FALSE, SET FALSE',
                               granted.name);
            END IF;
        END LOOP;
    END IF;
    FOR granted IN
        SELECT DISTINCT g.rolname::text AS name
          FROM pg_catalog.pg_auth_members m
          JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
         WHERE m.member = 'smarteros_provisioner'::regrole AND g.rolname <> 'smarteros_owner'
    LOOP
        EXECUTE pg_catalog.format('REVOKE %I FROM smarteros_provisioner CASCADE', granted.name);
    END LOOP;
END
$admin$;

-- The owner creates the shared objects in the public schema (PostgreSQL 15 no longer lets PUBLIC do it).
GRANT USAGE, CREATE ON SCHEMA public TO smarteros_owner;

-- Onboarding never queues behind the applications' queries: a lock it cannot get at once fails the
-- operation quickly instead (onboarding itself takes no lock on the shared tables; see sql/schema/).
ALTER ROLE smarteros_provisioner SET lock_timeout = '5s';
ALTER ROLE smarteros_provisioner SET statement_timeout = '120s';

-- Tenant roles log in to this database even where CONNECT was revoked from PUBLIC.
DO $connect$
BEGIN
    EXECUTE pg_catalog.format('GRANT CONNECT ON DATABASE %I TO tenant_members, smarteros_provisioner', pg_catalog.current_database());
END
$connect$;

-- An administrator without superuser becomes smarteros_role_admin for the rest of this run.
DO $become$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
       AND NOT pg_catalog.pg_has_role('smarteros_role_admin', 'MEMBER') THEN
        EXECUTE pg_catalog.format('GRANT smarteros_role_admin TO %I', current_user);
    END IF;
END
$become$;

CREATE SCHEMA IF NOT EXISTS smarteros_admin AUTHORIZATION smarteros_role_admin;
ALTER SCHEMA smarteros_admin OWNER TO smarteros_role_admin;
REVOKE ALL ON SCHEMA smarteros_admin FROM PUBLIC;
GRANT USAGE ON SCHEMA smarteros_admin TO smarteros_provisioner;

SET ROLE smarteros_role_admin;

-- The key of the role names: HMAC-SHA-256 with a random 256-bit key, kept as its two padded halves
-- (key XOR ipad, key XOR opad) so the functions compute the HMAC with sha256() alone.
CREATE TABLE IF NOT EXISTS smarteros_admin.role_name_key (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    inner_pad   bytea   NOT NULL CHECK (length(inner_pad) = 64),
    outer_pad   bytea   NOT NULL CHECK (length(outer_pad) = 64)
);
REVOKE ALL ON smarteros_admin.role_name_key FROM PUBLIC;

DO $key$
DECLARE
    raw bytea;
    inner_pad bytea;
    outer_pad bytea;
BEGIN
    IF EXISTS (SELECT FROM smarteros_admin.role_name_key) THEN
        RETURN;
    END IF;
    -- gen_random_uuid() draws on the server's strong random source: two of them give 244 random bits.
    raw := decode(replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', '')
                  || repeat('00', 32), 'hex');
    inner_pad := raw;
    outer_pad := raw;
    FOR i IN 0..63 LOOP
        inner_pad := set_byte(inner_pad, i, get_byte(raw, i) # 54);  -- 0x36
        outer_pad := set_byte(outer_pad, i, get_byte(raw, i) # 92);  -- 0x5c
    END LOOP;
    INSERT INTO smarteros_admin.role_name_key (inner_pad, outer_pad) VALUES (inner_pad, outer_pad);
END
$key$;

-- The role name of a tenant: tenant_ and the first 24 hex digits of HMAC-SHA-256(key, RUT).
CREATE OR REPLACE FUNCTION smarteros_admin.tenant_role_name(rut text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    k smarteros_admin.role_name_key;
BEGIN
    IF rut IS NULL OR rut !~ '^(0|[1-9][0-9]{0,8})-[0-9K]$' THEN
        RAISE EXCEPTION 'smarteros_admin: % is not a RUT in normal form', pg_catalog.quote_literal(rut)
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO STRICT k FROM smarteros_admin.role_name_key;
    RETURN 'tenant_' || pg_catalog.left(pg_catalog.encode(pg_catalog.sha256(
        k.outer_pad || pg_catalog.sha256(k.inner_pad || pg_catalog.convert_to(rut, 'UTF8'))), 'hex'), 24);
END
$fn$;

-- Checks shared by the functions below; raise on anything that is not a tenant role's business.
CREATE OR REPLACE FUNCTION smarteros_admin.check_settings(connection_limit integer, statement_timeout text,
                                                          stack text, verifier text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF connection_limit IS NULL OR connection_limit < -1 OR connection_limit > 10000 THEN
        RAISE EXCEPTION 'smarteros_admin: connection limit % is outside -1..10000', connection_limit
            USING ERRCODE = '22023';
    END IF;
    IF statement_timeout IS NULL OR statement_timeout !~ '^\s*[0-9]{1,12}\s*(ms|s|min|h|d)?\s*$' THEN
        RAISE EXCEPTION 'smarteros_admin: statement_timeout % is not a duration such as 30s',
            pg_catalog.quote_literal(statement_timeout) USING ERRCODE = '22023';
    END IF;
    IF stack IS NULL OR stack !~ '^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,199}$' THEN
        RAISE EXCEPTION 'smarteros_admin: % is not a stack name', pg_catalog.quote_literal(stack)
            USING ERRCODE = '22023';
    END IF;
    IF verifier IS NOT NULL AND verifier !~ '^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$' THEN
        RAISE EXCEPTION 'smarteros_admin: the password must be a SCRAM-SHA-256 verifier'
            USING ERRCODE = '22023';
    END IF;
END
$fn$;

-- Refuses a role that a function here must never touch; returns whether it exists.
CREATE OR REPLACE FUNCTION smarteros_admin.check_role(role_name text) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    r record;
BEGIN
    SELECT rolsuper, rolreplication, rolbypassrls INTO r FROM pg_catalog.pg_roles WHERE rolname = role_name;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF r.rolsuper OR r.rolreplication OR r.rolbypassrls THEN
        RAISE EXCEPTION 'smarteros_admin: role % has SUPERUSER, REPLICATION or BYPASSRLS; only a superuser may '
                        'change it', pg_catalog.quote_ident(role_name) USING ERRCODE = '42501';
    END IF;
    RETURN true;
END
$fn$;

CREATE OR REPLACE FUNCTION smarteros_admin.run(statement text, shown text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RAISE LOG 'smarteros_admin: %', shown;
    EXECUTE statement;
END
$fn$;

-- Makes the tenant's role match: fixed attributes, LOGIN or (a suspended or cancelled tenant) NOLOGIN, the
-- limit, the timeout, tenant_members only, the ownership comment, and the verifier when one is given. A role
-- that may not log in also loses the sessions it has open (terminate_sessions below).
CREATE OR REPLACE FUNCTION smarteros_admin.converge(role_name text, verifier text, connection_limit integer,
                                                    statement_timeout text, stack text, login boolean)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    r record;
    statement text;
    attributes text;
    marker constant text := 'managed by pulumi stack ' || stack;
BEGIN
    IF login IS NULL THEN
        RAISE EXCEPTION 'smarteros_admin: login must be true or false' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO STRICT r FROM pg_catalog.pg_roles WHERE rolname = role_name;
    -- Only what differs is named: PostgreSQL 16 lets only a CREATEDB role even mention NOCREATEDB.
    attributes := pg_catalog.concat_ws(' ',
        CASE WHEN login AND NOT r.rolcanlogin THEN 'LOGIN' WHEN NOT login AND r.rolcanlogin THEN 'NOLOGIN' END,
        CASE WHEN NOT r.rolinherit THEN 'INHERIT' END,
        CASE WHEN r.rolcreatedb THEN 'NOCREATEDB' END, CASE WHEN r.rolcreaterole THEN 'NOCREATEROLE' END);
    IF attributes <> '' OR r.rolconnlimit IS DISTINCT FROM connection_limit THEN
        statement := pg_catalog.format('ALTER ROLE %I WITH %s CONNECTION LIMIT %s', role_name, attributes,
                                       connection_limit);
        PERFORM smarteros_admin.run(statement, statement);
    END IF;
    IF verifier IS NOT NULL THEN
        PERFORM smarteros_admin.run(pg_catalog.format('ALTER ROLE %I WITH PASSWORD %L', role_name, verifier),
                                    pg_catalog.format('ALTER ROLE %I WITH PASSWORD (verifier withheld)', role_name));
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.unnest(r.rolconfig) AS s
                    WHERE s = 'statement_timeout=' || pg_catalog.btrim(statement_timeout)) THEN
        statement := pg_catalog.format('ALTER ROLE %I SET statement_timeout = %L', role_name,
                                       pg_catalog.btrim(statement_timeout));
        PERFORM smarteros_admin.run(statement, statement);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                    WHERE m.member = r.oid AND m.roleid = 'tenant_members'::pg_catalog.regrole) THEN
        statement := pg_catalog.format('GRANT tenant_members TO %I', role_name);
        PERFORM smarteros_admin.run(statement, statement);
    END IF;
    FOR statement IN
        SELECT pg_catalog.format('REVOKE %I FROM %I', g.rolname, role_name)
          FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
         WHERE m.member = r.oid AND g.rolname <> 'tenant_members'
    LOOP
        PERFORM smarteros_admin.run(statement, statement);
    END LOOP;
    IF pg_catalog.shobj_description(r.oid, 'pg_authid') IS DISTINCT FROM marker THEN
        statement := pg_catalog.format('COMMENT ON ROLE %I IS %L', role_name, marker);
        PERFORM smarteros_admin.run(statement, statement);
    END IF;
    IF NOT login THEN
        PERFORM smarteros_admin.terminate_sessions(r.oid);
    END IF;
END
$fn$;

-- The five-argument form of earlier versions: a role that logs in.
CREATE OR REPLACE FUNCTION smarteros_admin.converge(role_name text, verifier text, connection_limit integer,
                                                    statement_timeout text, stack text) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT smarteros_admin.converge(role_name, verifier, connection_limit, statement_timeout, stack, true);
$fn$;

-- Ends every session logged in as the role (NOLOGIN only stops new ones). Takes a role oid, so it can only
-- be reached from converge() above, which has checked the role; never a superuser's session (PostgreSQL
-- refuses that to pg_signal_backend). Needs pg_signal_backend and pg_read_all_stats (granted below); without
-- them it leaves the sessions open with a WARNING and the role is NOLOGIN all the same.
CREATE OR REPLACE FUNCTION smarteros_admin.terminate_sessions(role_oid oid) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    session integer;
    ended integer := 0;
BEGIN
    FOR session IN
        SELECT a.pid FROM pg_catalog.pg_stat_activity a
         WHERE a.usesysid = role_oid AND a.pid <> pg_catalog.pg_backend_pid()
    LOOP
        RAISE LOG 'smarteros_admin: pg_terminate_backend(%) of role %', session, role_oid::pg_catalog.regrole;
        IF pg_catalog.pg_terminate_backend(session) THEN
            ended := ended + 1;
        END IF;
    END LOOP;
    RETURN ended;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'smarteros_admin: sessions of role % stay open: % (grant pg_signal_backend and '
                  'pg_read_all_stats to smarteros_role_admin)', role_oid::pg_catalog.regrole, SQLERRM;
    RETURN 0;
END
$fn$;

-- Creates the tenant's role, LOGIN or (a suspended or cancelled tenant) NOLOGIN; returns its name.
CREATE OR REPLACE FUNCTION smarteros_admin.create_tenant_role(rut text, verifier text, connection_limit integer,
                                                              statement_timeout text, stack text, login boolean)
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    role_name constant text := smarteros_admin.tenant_role_name(rut);
    statement text;
BEGIN
    PERFORM smarteros_admin.check_settings(connection_limit, statement_timeout, stack, verifier);
    IF verifier IS NULL THEN
        RAISE EXCEPTION 'smarteros_admin: a new role needs a password verifier' USING ERRCODE = '22023';
    END IF;
    IF smarteros_admin.check_role(role_name) THEN
        RAISE EXCEPTION 'smarteros_admin: role % already exists', pg_catalog.quote_ident(role_name)
            USING ERRCODE = '42710';
    END IF;
    IF login IS NULL THEN
        RAISE EXCEPTION 'smarteros_admin: login must be true or false' USING ERRCODE = '22023';
    END IF;
    statement := pg_catalog.format(
        'CREATE ROLE %I WITH %s INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS '
        'CONNECTION LIMIT %s PASSWORD %L IN ROLE tenant_members', role_name,
        CASE WHEN login THEN 'LOGIN' ELSE 'NOLOGIN' END, connection_limit, verifier);
    PERFORM smarteros_admin.run(statement, pg_catalog.format(
        'CREATE ROLE %I ... CONNECTION LIMIT %s PASSWORD (verifier withheld) IN ROLE tenant_members',
        role_name, connection_limit));
    PERFORM smarteros_admin.converge(role_name, NULL, connection_limit, statement_timeout, stack, login);
    RETURN role_name;
END
$fn$;

-- The five-argument form of earlier versions: a role that logs in.
CREATE OR REPLACE FUNCTION smarteros_admin.create_tenant_role(rut text, verifier text, connection_limit integer,
                                                              statement_timeout text, stack text)
    RETURNS text
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT smarteros_admin.create_tenant_role(rut, verifier, connection_limit, statement_timeout, stack, true);
$fn$;

-- Alters the tenant's existing role; a NULL verifier keeps the password. login false makes it NOLOGIN and
-- ends its open sessions; true lets it log in again with the password it had.
CREATE OR REPLACE FUNCTION smarteros_admin.alter_tenant_role(rut text, verifier text, connection_limit integer,
                                                             statement_timeout text, stack text, login boolean)
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    role_name constant text := smarteros_admin.tenant_role_name(rut);
BEGIN
    PERFORM smarteros_admin.check_settings(connection_limit, statement_timeout, stack, verifier);
    IF login IS NULL THEN
        RAISE EXCEPTION 'smarteros_admin: login must be true or false' USING ERRCODE = '22023';
    END IF;
    IF NOT smarteros_admin.check_role(role_name) THEN
        RAISE EXCEPTION 'smarteros_admin: role % does not exist', pg_catalog.quote_ident(role_name)
            USING ERRCODE = '42704';
    END IF;
    PERFORM smarteros_admin.converge(role_name, verifier, connection_limit, statement_timeout, stack, login);
    RETURN role_name;
END
$fn$;

-- The five-argument form of earlier versions: a role that logs in.
CREATE OR REPLACE FUNCTION smarteros_admin.alter_tenant_role(rut text, verifier text, connection_limit integer,
                                                             statement_timeout text, stack text)
    RETURNS text
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT smarteros_admin.alter_tenant_role(rut, verifier, connection_limit, statement_timeout, stack, true);
$fn$;

-- Drops a tenant role by name: an opaque name, or a tenant_<rut> name of earlier versions, and only a role
-- that carries a stack's ownership comment. Returns whether a role was dropped.
CREATE OR REPLACE FUNCTION smarteros_admin.drop_tenant_role(role_name text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    statement text;
BEGIN
    IF role_name IS NULL OR role_name !~ '^tenant_([0-9a-f]{24}|[0-9]{1,9}_[0-9k])$' THEN
        RAISE EXCEPTION 'smarteros_admin: % is not a tenant role name', pg_catalog.quote_literal(role_name)
            USING ERRCODE = '22023';
    END IF;
    IF NOT smarteros_admin.check_role(role_name) THEN
        RETURN false;
    END IF;
    IF NOT pg_catalog.starts_with(COALESCE(pg_catalog.shobj_description(
            (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = role_name), 'pg_authid'), ''),
            'managed by pulumi stack ') THEN
        RAISE EXCEPTION 'smarteros_admin: role % is not managed by a pulumi stack', pg_catalog.quote_ident(role_name)
            USING ERRCODE = '42501';
    END IF;
    statement := pg_catalog.format('DROP ROLE %I', role_name);
    PERFORM smarteros_admin.run(statement, statement);
    RETURN true;
END
$fn$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA smarteros_admin FROM PUBLIC;
GRANT EXECUTE ON FUNCTION smarteros_admin.tenant_role_name(text),
                          smarteros_admin.create_tenant_role(text, text, integer, text, text),
                          smarteros_admin.alter_tenant_role(text, text, integer, text, text),
                          smarteros_admin.create_tenant_role(text, text, integer, text, text, boolean),
                          smarteros_admin.alter_tenant_role(text, text, integer, text, text, boolean),
                          smarteros_admin.drop_tenant_role(text)
   TO smarteros_provisioner;

RESET ROLE;

-- What terminate_sessions() needs: see other sessions, and signal them (never a superuser's). Nobody can
-- become smarteros_role_admin, so only its functions use these. An administrator who may not grant them
-- gets a NOTICE; suspended tenants' roles are then NOLOGIN but keep the sessions they have open.
DO $signal$
BEGIN
    GRANT pg_signal_backend, pg_read_all_stats TO smarteros_role_admin;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'cannot grant pg_signal_backend and pg_read_all_stats to smarteros_role_admin (%): a suspended '
                 'tenant''s open sessions are not ended', SQLERRM;
END
$signal$;

DO $unbecome$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
       AND pg_catalog.pg_has_role('smarteros_role_admin', 'MEMBER') THEN
        EXECUTE pg_catalog.format('REVOKE smarteros_role_admin FROM %I', current_user);
    END IF;
END
$unbecome$;

-- Other sessions and activity counters: PUBLIC may read neither; pg_read_all_stats (and so pg_monitor)
-- keeps both, so monitoring works as before. Needs a superuser; skipped with a NOTICE otherwise.
DO $stats$
DECLARE
    target text;
BEGIN
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RAISE NOTICE 'not a superuser: the statistics views stay readable by PUBLIC (see README.md)';
        RETURN;
    END IF;
    FOR target IN
        SELECT pg_catalog.format('TABLE pg_catalog.%I', c.relname)
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'v'
           AND (c.relname LIKE 'pg\_stat\_%' OR c.relname LIKE 'pg\_statio\_%')
        UNION ALL
        SELECT pg_catalog.format('FUNCTION %s', p.oid::regprocedure)
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'pg_catalog'::regnamespace
           AND (p.proname LIKE 'pg\_stat\_get\_%'
                OR p.proname IN ('pg_relation_size', 'pg_table_size', 'pg_indexes_size', 'pg_total_relation_size'))
    LOOP
        EXECUTE 'REVOKE ALL ON ' || target || ' FROM PUBLIC';
        IF pg_catalog.starts_with(target, 'TABLE') THEN
            EXECUTE 'GRANT SELECT ON ' || target || ' TO pg_read_all_stats';
        ELSE
            EXECUTE 'GRANT EXECUTE ON ' || target || ' TO pg_read_all_stats';
        END IF;
    END LOOP;
END
$stats$;

-- Planner statistics of the tables with row-level security: none (sql/schema/050_tenant_privacy.sql says
-- why). That file switches them off; statistics gathered before stay until a superuser removes them,
-- which this step does (run this file again after the first `pulumi up` of a version that adds a table).
DO $statistics$
DECLARE
    statement text;
BEGIN
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RAISE NOTICE 'not a superuser: planner statistics of the shared tables are kept (see README.md)';
        RETURN;
    END IF;
    FOR statement IN
        SELECT pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS 0', c.oid::regclass, a.attname)
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relrowsecurity
           AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget IS DISTINCT FROM 0
    LOOP
        EXECUTE statement;
    END LOOP;
    DELETE FROM pg_catalog.pg_statistic s
     USING pg_catalog.pg_class c
     WHERE s.starelid = c.oid AND c.relnamespace = 'public'::regnamespace AND c.relrowsecurity;
END
$statistics$;
