"""The throwaway PostgreSQL cluster: reachable, password-protected, and gone after teardown."""

from __future__ import annotations

import os
import pwd
import secrets
import socket

import psycopg
import pytest
from psycopg import sql

from tests.harness.postgres import PostgresServer, postgres_cluster


def test_superuser_connects_over_tcp_and_is_superuser(postgres_server: PostgresServer) -> None:
    with postgres_server.connect() as conn:
        user, is_super, address, port = conn.execute(
            "SELECT current_user, rolsuper, inet_server_addr()::text, inet_server_port() "
            "FROM pg_roles WHERE rolname = current_user"
        ).fetchone() or (None, None, None, None)

    assert user == "postgres"
    assert is_super is True
    assert address == "127.0.0.1/32"
    assert port == postgres_server.port


def test_settings_favour_speed_and_local_only(postgres_server: PostgresServer) -> None:
    with postgres_server.connect() as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('fsync', 'listen_addresses', 'password_encryption', 'server_version_num')"
            ).fetchall()
        )

    assert settings["fsync"] == "off"
    assert settings["listen_addresses"] == "127.0.0.1"
    assert settings["password_encryption"] == "scram-sha-256"
    assert int(settings["server_version_num"]) >= 150000


def test_a_role_with_a_password_logs_in_and_a_wrong_password_is_refused(
    postgres_server: PostgresServer,
) -> None:
    role = f"tenant_probe_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    with postgres_server.connect() as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )
    try:
        with postgres_server.connect(user=role, password=password) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)

        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            postgres_server.connect(user=role, password=password + "x")
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(postgres_server.dsn(user=role, password=""))
    finally:
        with postgres_server.connect() as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_create_database_accepts_names_that_need_quoting(postgres_server: PostgresServer) -> None:
    name = f"Tenant DB {secrets.token_hex(3)}"
    postgres_server.create_database(name)
    try:
        with postgres_server.connect(dbname=name) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
    finally:
        with postgres_server.connect() as admin:
            admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))


def test_env_gives_libpq_variables_that_connect(postgres_server: PostgresServer) -> None:
    env = postgres_server.env()
    with psycopg.connect(
        host=env["PGHOST"],
        port=env["PGPORT"],
        user=env["PGUSER"],
        password=env["PGPASSWORD"],
        dbname="postgres",
    ) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_cluster_belongs_to_an_unprivileged_account(postgres_server: PostgresServer) -> None:
    expected = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()

    assert postgres_server.data_dir.stat().st_uid == expected
    assert expected != 0


def test_teardown_stops_the_server_and_removes_its_files_even_after_a_failure() -> None:
    with pytest.raises(RuntimeError, match="body failed"), postgres_cluster() as server:
        base_dir, port = server.base_dir, server.port
        assert (server.data_dir / "PG_VERSION").exists()
        with server.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        raise RuntimeError("body failed")

    assert not base_dir.exists()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    server.stop()  # a second stop is harmless
