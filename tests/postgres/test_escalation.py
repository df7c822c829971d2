"""Every known way for ``smarteros_provisioner`` to raise itself, attempted as the provisioner, on 15 and 16.

Each attempt must fail with the SQLSTATE and message listed, and the cluster must look the same afterwards:
the provisioner a member of ``smarteros_owner`` only, without SUPERUSER, CREATEROLE, CREATEDB, REPLICATION
or BYPASSRLS, and no role it should not touch changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from components.database import SQL_DIR
from tests.postgres.conftest import PROVISIONER, Platform, Tenant, make_rut

RUT = make_rut(76400001)


@dataclass(frozen=True)
class Attempt:
    label: str
    statement: str
    sqlstate: str
    answer: str  # a regular expression the server's primary message must match


def attempts(tenant_role: str, verifier: str) -> list[Attempt]:
    """The attempts; ``{tenant}`` is an existing tenant role, ``{verifier}`` a valid SCRAM verifier."""
    denied = "42501"
    table = [
        Attempt("COPY ... TO PROGRAM", "COPY (SELECT 1) TO PROGRAM 'touch /tmp/smarteros-pwned'", denied,
                r"permission denied to COPY to or from an external program|must be superuser or have privileges "
                r"of the pg_execute_server_program role to COPY to or from an external program"),
        Attempt("COPY ... FROM PROGRAM", "COPY public.events (kind) FROM PROGRAM 'echo x'", denied,
                r"to COPY to or from an external program"),
        Attempt("COPY ... TO a server file", "COPY (SELECT 1) TO '/tmp/smarteros-pwned'", denied,
                r"to COPY to a file"),
        Attempt("pg_read_file of pg_hba.conf", "SELECT pg_read_file('pg_hba.conf')", denied,
                r"permission denied for function pg_read_file"),
        Attempt("ALTER ROLE postgres PASSWORD", "ALTER ROLE postgres PASSWORD 'pwned'", denied,
                r"permission denied to alter role|must be superuser to alter superuser roles"),
        Attempt("ALTER ROLE smarteros_owner PASSWORD", "ALTER ROLE smarteros_owner LOGIN PASSWORD 'pwned'", denied,
                r"permission denied to alter role|permission denied"),
        Attempt("ALTER ROLE smarteros_role_admin LOGIN", "ALTER ROLE smarteros_role_admin LOGIN PASSWORD 'pwned'",
                denied, r"permission denied to alter role|permission denied"),
        Attempt("ALTER ROLE tenant_members", "ALTER ROLE tenant_members LOGIN PASSWORD 'pwned'", denied,
                r"permission denied to alter role|permission denied"),
        Attempt("ALTER ROLE <tenant> PASSWORD directly", f'ALTER ROLE "{tenant_role}" PASSWORD \'pwned\'', denied,
                r"permission denied to alter role|permission denied"),
        Attempt("ALTER ROLE self CREATEROLE", f"ALTER ROLE {PROVISIONER} CREATEROLE", denied,
                r"permission denied to alter role|permission denied"),
        Attempt("ALTER ROLE self SUPERUSER", f"ALTER ROLE {PROVISIONER} SUPERUSER", denied,
                r"must be superuser to alter superuser roles or change superuser attribute|permission denied"),
        Attempt("ALTER ROLE self BYPASSRLS", f"ALTER ROLE {PROVISIONER} BYPASSRLS", denied,
                r"must be superuser to change bypassrls attribute|permission denied"),
        Attempt("CREATE ROLE", "CREATE ROLE smarteros_pwned LOGIN", denied, r"permission denied to create role"),
        Attempt("CREATE ROLE SUPERUSER", "CREATE ROLE smarteros_pwned SUPERUSER LOGIN", denied,
                r"must be superuser to create superusers|permission denied to create role"),
        Attempt("CREATE ROLE BYPASSRLS", "CREATE ROLE smarteros_pwned BYPASSRLS LOGIN", denied,
                r"must be superuser to create bypassrls users|permission denied to create role"),
        Attempt("CREATE ROLE CREATEROLE", "CREATE ROLE smarteros_pwned CREATEROLE LOGIN", denied,
                r"permission denied to create role"),
        Attempt("CREATE ROLE REPLICATION", "CREATE ROLE smarteros_pwned REPLICATION LOGIN", denied,
                r"must be superuser to create replication users|permission denied to create role"),
        Attempt("GRANT smarteros_owner to a tenant role", f'GRANT smarteros_owner TO "{tenant_role}"', denied,
                r"must have admin option on role|permission denied to grant role"),
        Attempt("GRANT smarteros_role_admin to itself", f"GRANT smarteros_role_admin TO {PROVISIONER}", denied,
                r"must have admin option on role|permission denied to grant role"),
        Attempt("GRANT postgres (database owner) to itself", f"GRANT postgres TO {PROVISIONER}", denied,
                r"must be superuser to alter superusers|must have admin option on role|permission denied"),
        Attempt("GRANT a tenant role to itself", f'GRANT "{tenant_role}" TO {PROVISIONER}', denied,
                r"must have admin option on role|permission denied to grant role"),
        Attempt("GRANT tenant_members to itself", f"GRANT tenant_members TO {PROVISIONER}", denied,
                r"must have admin option on role|permission denied to grant role"),
        Attempt("SET ROLE smarteros_role_admin", "SET ROLE smarteros_role_admin", denied,
                r'permission denied to set role "smarteros_role_admin"'),
        Attempt("SET ROLE postgres", "SET ROLE postgres", denied, r'permission denied to set role "postgres"'),
        Attempt("SET ROLE <tenant>", f'SET ROLE "{tenant_role}"', denied, r"permission denied to set role"),
        Attempt("SET SESSION AUTHORIZATION postgres", "SET SESSION AUTHORIZATION postgres", denied,
                r'permission denied to set session authorization'),
        # The functions, called with what they must refuse.
        Attempt("drop_tenant_role('postgres')", "SELECT smarteros_admin.drop_tenant_role('postgres')", "22023",
                r"^smarteros_admin: 'postgres' is not a tenant role name$"),
        Attempt("drop_tenant_role('smarteros_owner')", "SELECT smarteros_admin.drop_tenant_role('smarteros_owner')",
                "22023", r"^smarteros_admin: 'smarteros_owner' is not a tenant role name$"),
        Attempt("drop_tenant_role('tenant_members')", "SELECT smarteros_admin.drop_tenant_role('tenant_members')",
                "22023", r"^smarteros_admin: 'tenant_members' is not a tenant role name$"),
        Attempt("drop_tenant_role(injection)",
                "SELECT smarteros_admin.drop_tenant_role('tenant_1_9\"; DROP ROLE postgres; --')", "22023",
                r"is not a tenant role name$"),
        Attempt("create_tenant_role(RUT injection)",
                f"SELECT smarteros_admin.create_tenant_role('1-9'') SUPERUSER --', '{verifier}', 1, '1s', 's')",
                "22023", r"is not a RUT in normal form$"),
        Attempt("create_tenant_role(timeout injection)",
                f"SELECT smarteros_admin.create_tenant_role('5-1', '{verifier}', 1, '1s''; ALTER ROLE x SUPERUSER; --',"
                " 's')", "22023", r"statement_timeout .* is not a duration such as 30s$"),
        Attempt("create_tenant_role(stack injection)",
                f"SELECT smarteros_admin.create_tenant_role('5-1', '{verifier}', 1, '1s', 's''; DROP ROLE postgres')",
                "22023", r"is not a stack name$"),
        Attempt("create_tenant_role(plain-text password)",
                "SELECT smarteros_admin.create_tenant_role('5-1', 'hunter2', 1, '1s', 's')", "22023",
                r"^smarteros_admin: the password must be a SCRAM-SHA-256 verifier$"),
        Attempt("alter_tenant_role(a RUT without a role)",
                "SELECT smarteros_admin.alter_tenant_role('5-1', NULL, 1, '1s', 's')", "42704", r"does not exist$"),
        Attempt("the internal helper run()",
                f"SELECT smarteros_admin.run('GRANT pg_execute_server_program TO {PROVISIONER}', '')", denied,
                r"permission denied for function run"),
        Attempt("the internal helper converge()",
                f"SELECT smarteros_admin.converge('smarteros_owner', '{verifier}', 1, '1s', 's')", denied,
                r"permission denied for function converge"),
        Attempt("the internal helper converge() with login",
                f"SELECT smarteros_admin.converge('smarteros_owner', '{verifier}', 1, '1s', 's', false)", denied,
                r"permission denied for function converge"),
        Attempt("the internal helper terminate_sessions()",
                "SELECT smarteros_admin.terminate_sessions('postgres'::regrole)", denied,
                r"permission denied for function terminate_sessions"),
        Attempt("alter_tenant_role(login NULL)",
                "SELECT smarteros_admin.alter_tenant_role('5-1', NULL, 1, '1s', 's', NULL)", "22023",
                r"^smarteros_admin: login must be true or false$"),
        Attempt("create_tenant_role(RUT injection, with login)",
                f"SELECT smarteros_admin.create_tenant_role('1-9'') SUPERUSER --', '{verifier}', 1, '1s', 's', true)",
                "22023", r"is not a RUT in normal form$"),
        Attempt("signal another backend", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity", denied,
                r"permission denied"),
        Attempt("read the name key", "SELECT * FROM smarteros_admin.role_name_key", denied,
                r"permission denied for table role_name_key"),
        Attempt("replace a function",
                "CREATE OR REPLACE FUNCTION smarteros_admin.tenant_role_name(rut text) RETURNS text "
                "LANGUAGE sql AS $$ SELECT 'postgres' $$", denied, r"permission denied for schema smarteros_admin"),
        Attempt("re-pin a function's search_path",
                "ALTER FUNCTION smarteros_admin.drop_tenant_role(text) SET search_path = public", denied,
                r"must be owner of function (smarteros_admin\.)?drop_tenant_role"),
        Attempt("change a function's owner",
                f"ALTER FUNCTION smarteros_admin.drop_tenant_role(text) OWNER TO {PROVISIONER}", denied,
                r"must be owner of function (smarteros_admin\.)?drop_tenant_role"),
    ]
    return table


def answer(conn: psycopg.Connection[Any], statement: str) -> tuple[str, str]:
    """Run ``statement`` in a transaction rolled back afterwards; the server's SQLSTATE and message."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(statement.encode())
    except psycopg.Error as exc:
        return exc.sqlstate or "", exc.diag.message_primary or ""
    return "", "succeeded"


@pytest.fixture(scope="module")
def victim(platform: Platform) -> Iterator[Tenant]:
    tenant = platform.onboard(RUT, "escalation")
    yield tenant
    platform.offboard(tenant)


def provisioner_standing(platform: Platform) -> dict[str, Any]:
    """What the provisioner is, as the superuser sees it."""
    with platform.admin() as admin:
        row = admin.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,"
            " ARRAY(SELECT roleid::regrole::text FROM pg_auth_members WHERE member = r.oid ORDER BY 1)"
            " FROM pg_roles r WHERE rolname = %s",
            (PROVISIONER,),
        ).fetchone()
        roles = admin.execute(
            "SELECT rolname::text, rolsuper, rolcanlogin, rolpassword IS NOT NULL FROM pg_authid"
            " WHERE rolname IN ('postgres', 'smarteros_owner', 'smarteros_role_admin', 'tenant_members')"
            " ORDER BY 1"
        ).fetchall()
    assert row is not None
    return {"attributes": row[:5], "member_of": row[5], "roles": roles}


def test_every_known_escalation_fails_as_the_provisioner(platform: Platform, victim: Tenant) -> None:
    before = provisioner_standing(platform)
    assert before["attributes"] == (False, False, False, False, False)
    assert before["member_of"] == ["smarteros_owner"]
    with platform.provisioner() as prov:
        verifier = prov.pgconn.encrypt_password(b"x", b"x", b"scram-sha-256").decode()
        outcomes = {a.label: (a, answer(prov, a.statement)) for a in attempts(victim.role_name, verifier)}
    wrong = {
        label: got
        for label, (attempt, got) in outcomes.items()
        if got[0] != attempt.sqlstate or re.search(attempt.answer, got[1]) is None
    }
    assert wrong == {}
    assert provisioner_standing(platform) == before


def test_the_provisioner_cannot_grant_itself_any_predefined_role(platform: Platform) -> None:
    with platform.admin() as admin:
        predefined = [
            r[0] for r in admin.execute("SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'pg\\_%' ORDER BY 1")
        ]
    assert {"pg_execute_server_program", "pg_read_server_files", "pg_write_server_files", "pg_signal_backend"} <= set(
        predefined
    )
    with platform.provisioner() as prov:
        got = {
            role: answer(prov, sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(PROVISIONER))
                         .as_string(prov))
            for role in predefined
        }
    # pg_database_owner takes no members at all (XX000 "cannot have explicit members"); the rest answer 42501.
    granted = {
        role: answer_
        for role, answer_ in got.items()
        if answer_[0] != "42501" and answer_ != ("XX000", 'role "pg_database_owner" cannot have explicit members')
    }
    assert granted == {}
    assert provisioner_standing(platform)["member_of"] == ["smarteros_owner"]


def test_functions_refuse_roles_with_privileged_attributes_and_unmarked_roles(platform: Platform) -> None:
    """A role that merely looks like a tenant role is refused unless it is one this stack may touch."""
    rut, unmarked_rut = make_rut(76400002), make_rut(76400003)
    with platform.admin() as admin:
        names = {}
        for r in (rut, unmarked_rut):
            row = admin.execute("SELECT smarteros_admin.tenant_role_name(%s)", (r,)).fetchone()
            assert row is not None
            names[r] = str(row[0])
        admin.execute(sql.SQL("CREATE ROLE {} BYPASSRLS").format(sql.Identifier(names[rut])))
        admin.execute(
            sql.SQL("COMMENT ON ROLE {} IS 'managed by pulumi stack smarteros/test'").format(sql.Identifier(names[rut]))
        )
        admin.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(names[unmarked_rut])))
    try:
        with platform.provisioner() as prov:
            verifier = prov.pgconn.encrypt_password(b"x", b"x", b"scram-sha-256").decode()
            bypass = f"role {names[rut]} has SUPERUSER, REPLICATION or BYPASSRLS; only a superuser may change it"
            assert answer(prov, f"SELECT smarteros_admin.alter_tenant_role('{rut}', '{verifier}', 1, '1s', 's')") == (
                "42501",
                f"smarteros_admin: {bypass}",
            )
            assert answer(prov, f"SELECT smarteros_admin.drop_tenant_role('{names[rut]}')") == (
                "42501",
                f"smarteros_admin: {bypass}",
            )
            assert answer(prov, f"SELECT smarteros_admin.drop_tenant_role('{names[unmarked_rut]}')") == (
                "42501",
                f"smarteros_admin: role {names[unmarked_rut]} is not managed by a pulumi stack",
            )
        with platform.admin() as admin:
            live = admin.execute(
                "SELECT rolname::text, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1",
                (list(names.values()),),
            ).fetchall()
        assert sorted(live) == sorted([(names[rut], True, False), (names[unmarked_rut], False, False)])
    finally:
        with platform.admin() as admin:
            for name in names.values():
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_search_path_tricks_do_not_reach_the_functions(platform: Platform, victim: Tenant) -> None:
    """Shadowing catalog functions, operators and tables in public or pg_temp changes nothing the
    functions do: their search_path is pinned and every catalog object is qualified."""
    with platform.provisioner() as prov:
        prov.execute("SET ROLE smarteros_owner")
        prov.execute(
            "CREATE FUNCTION public.quote_ident(text) RETURNS text LANGUAGE sql AS $$ SELECT 'postgres' $$;"
            "CREATE FUNCTION public.format(text, text, integer) RETURNS text LANGUAGE sql"
            "  AS $$ SELECT 'ALTER ROLE smarteros_provisioner SUPERUSER' $$;"
            "CREATE FUNCTION public.starts_with(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;"
            "CREATE FUNCTION public.textregexne_always_false(text, text) RETURNS boolean LANGUAGE sql"
            "  AS $$ SELECT false $$;"
            "CREATE OPERATOR public.!~ (LEFTARG = text, RIGHTARG = text, FUNCTION = public.textregexne_always_false);"
        )
        try:
            prov.execute("RESET ROLE")
            prov.execute("CREATE TEMP TABLE pg_roles (rolname name, rolsuper boolean, rolreplication boolean,"
                         " rolbypassrls boolean)")
            prov.execute("SET search_path = pg_temp, public, pg_catalog")
            # With the operator shadowed, 'postgres' would pass the name check if the function used it.
            assert answer(prov, "SELECT smarteros_admin.drop_tenant_role('postgres')") == (
                "22023",
                "smarteros_admin: 'postgres' is not a tenant role name",
            )
            # The victim's role is changed as asked and nothing else: the shadowed format() is not used.
            prov.execute(
                "SELECT smarteros_admin.alter_tenant_role(%s, NULL, 4, '30s', 'smarteros/test')", (victim.rut,)
            )
        finally:
            prov.execute("RESET search_path")
            prov.execute("SET ROLE smarteros_owner")
            prov.execute(
                "DROP OPERATOR public.!~ (text, text); DROP FUNCTION public.textregexne_always_false(text, text);"
                "DROP FUNCTION public.format(text, text, integer); DROP FUNCTION public.quote_ident(text);"
                "DROP FUNCTION public.starts_with(text, text)"
            )
    with platform.admin() as admin:
        assert admin.execute(
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (victim.role_name,)
        ).fetchone() == (4,)
        assert admin.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname IN ('postgres', %s) ORDER BY rolname", (PROVISIONER,)
        ).fetchall() == [(True,), (False,)]
    assert provisioner_standing(platform)["attributes"] == (False, False, False, False, False)
    platform.update(victim.role, victim.role.inputs)


PLANTED = """
CREATE FUNCTION public.format(f text, a {arg}) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE smarteros_provisioner SUPERUSER';
    END IF;
    RETURN pg_catalog.format(f, a);
END
$$;
"""


def test_functions_planted_in_public_never_run_when_an_administrator_reruns_the_scripts(platform: Platform) -> None:
    """README has a superuser run sql/provisioner.sql again after every upgrade (and sql/preview.sql once). The
    provisioner, acting as the owner, may create functions in public; one whose argument types match a call
    better than the catalog's (``format(text, name)`` beats ``format(text, VARIADIC "any")``) would be chosen
    and run as the superuser. The scripts look nothing up outside pg_catalog, so the planted code never runs."""
    with platform.provisioner() as prov:
        prov.execute("SET ROLE smarteros_owner")
        prov.execute(PLANTED.format(arg="name") + PLANTED.format(arg="text"))
    superuser = "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = %s"
    try:
        with platform.admin() as admin:
            admin.execute((SQL_DIR / "provisioner.sql").read_text(encoding="utf-8").encode())
            assert admin.execute(superuser, (PROVISIONER,)).fetchone() == (False,)
        # preview.sql is run and checked in one transaction that is rolled back, so the preview role and its
        # policies do not outlive this test on the shared cluster.
        with platform.admin() as admin, admin.transaction(force_rollback=True):
            admin.execute((SQL_DIR / "preview.sql").read_text(encoding="utf-8").encode())
            assert admin.execute(superuser, (PROVISIONER,)).fetchone() == (False,)
    finally:
        with platform.provisioner() as prov:
            prov.execute("SET ROLE smarteros_owner")
            prov.execute("DROP FUNCTION public.format(text, name); DROP FUNCTION public.format(text, text)")
    with platform.provisioner() as prov:
        assert prov.execute("SHOW is_superuser").fetchone() == ("off",)
