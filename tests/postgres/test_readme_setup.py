"""README's "Once per database" commands, run literally with the real ``psql`` on a throwaway cluster, leave
the same roles, functions and grants as the product's bootstrap (which every PostgreSQL fixture uses), and
the password typed at ``\\password`` is the one the provisioning role logs in with."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest

from components.local.bootstrap import bootstrap_postgres
from components.local.steps import REPO_ROOT, Step, readme_steps
from tests.harness.postgres import PostgresServer
from tests.postgres.conftest import DBNAME, PROVISIONER


@pytest.fixture
def clusters() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    first = PostgresServer.start()
    try:
        second = PostgresServer.start()
        try:
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


def run_readme_psql(server: PostgresServer, dbname: str, password: str, steps: Sequence[Step] | None = None) -> None:
    """README's psql commands as written (its "Once per database" ones unless ``steps`` says), ``$ADMIN_URL``
    naming the superuser (its password in ``PGPASSWORD``); ``\\password`` reads the new password twice from
    standard input (no terminal: a session of its own)."""
    psql = shutil.which("psql")
    assert psql is not None, "the psql client is not installed"
    admin_url = psycopg.conninfo.make_conninfo(
        host=server.host, port=server.port, user=server.superuser, dbname=dbname, sslmode="disable"
    )
    env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": server.superuser_password}
    for step in readme_steps().database if steps is None else steps:
        assert step.argv[0] == "psql", f"README's database set-up runs {step.argv[0]!r}"
        argv = [psql, *(admin_url if word == "$ADMIN_URL" else word for word in step.argv[1:])]
        done = subprocess.run(
            argv,
            cwd=REPO_ROOT,
            env=env,
            input=f"{password}\n{password}\n",
            capture_output=True,
            text=True,
            timeout=60,
            start_new_session=True,
        )
        assert done.returncode == 0, f"`{step}` failed: {done.stderr[-500:]}"


def standing(server: PostgresServer, dbname: str) -> dict[str, Any]:
    """What the set-up leaves, by name: roles and their attributes and memberships, and in the database the
    non-system functions with their owner, security mode and grants, and the schemas' grants."""
    with server.connect(dbname=dbname) as conn:
        roles = conn.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolinherit, rolbypassrls,"
            " rolconfig, ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid"
            " WHERE m.member = r.oid ORDER BY 1) FROM pg_roles r"
            " WHERE left(rolname, 3) <> 'pg_' AND rolname <> %s ORDER BY 1",
            (server.superuser,),
        ).fetchall()
        functions = conn.execute(
            "SELECT n.nspname, p.oid::regprocedure::text, pg_get_userbyid(p.proowner), p.prosecdef,"
            " p.proconfig, p.proacl::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        schemas = conn.execute(
            "SELECT nspname, pg_get_userbyid(nspowner), nspacl::text FROM pg_namespace"
            " WHERE left(nspname, 3) <> 'pg_' AND nspname <> 'information_schema' ORDER BY 1"
        ).fetchall()
        database = conn.execute("SELECT datacl::text FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
    return {"roles": roles, "functions": functions, "schemas": schemas, "database": database}


def test_readmes_own_psql_commands_set_up_what_the_bootstrap_sets_up(
    clusters: tuple[PostgresServer, PostgresServer],
) -> None:
    by_readme, by_bootstrap = clusters
    typed, generated = secrets.token_urlsafe(18), secrets.token_urlsafe(18)

    by_readme.create_database(DBNAME)
    run_readme_psql(by_readme, DBNAME, typed)
    assert bootstrap_postgres(by_bootstrap.admin(), DBNAME, known_passwords={PROVISIONER: generated}) == {
        PROVISIONER: generated
    }

    readme_standing = standing(by_readme, DBNAME)
    assert any(role[0] == PROVISIONER for role in readme_standing["roles"])
    assert readme_standing["functions"], "sql/provisioner.sql created no function"
    assert readme_standing == standing(by_bootstrap, DBNAME)
    for server, password in ((by_readme, typed), (by_bootstrap, generated)):
        with psycopg.connect(
            host=server.host, port=server.port, user=PROVISIONER, password=password, dbname=DBNAME, sslmode="disable"
        ) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (PROVISIONER,)
