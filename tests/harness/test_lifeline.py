"""Throwaway servers and provider hosts die with the test process that started them, however it ends; a later run
reaps what a run killed together with its watchdogs left behind, and nothing that is not a dead run's server."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from components.local.processes import OpenBaoProcess, free_port, port_in_use
from tests.harness.lifeline import owner_alive, reap, reap_orphans, started_at, stop_process

REPO = Path(__file__).resolve().parents[2]

# A test process of its own: starts the servers named in its arguments (pg15, pg16, bao) and a dynamic-provider
# host (host) through the harness, and claims a directory of files (files) as the converge tests do for
# OpenBao's audit log; says where they run, then waits to be killed (or for its standard input to close, when it
# exits and stops them).
STARTER = textwrap.dedent(
    """
    import json, sys
    from tests.harness.lifeline import FILES, claim
    from tests.harness.openbao import OpenBaoServer
    from tests.harness.postgres import PostgresServer, pgserver_bin_dir
    from tests.harness.provider_host import ProviderHost

    servers = []
    for kind in sys.argv[1:]:
        if kind == "host":
            host = ProviderHost().start()
            servers.append({"name": "provider host", "port": host.port, "pid": host.pid,
                            "dir": str(host.lifeline.base_dir), "watchdog": host.lifeline.watchdog.pid})
            continue
        if kind == "files":
            files = claim(FILES, "smarteros-files-")
            (files.base_dir / "audit.log").write_text("{}")
            servers.append({"name": "files", "port": None, "pid": None, "dir": str(files.base_dir),
                            "watchdog": files.watchdog.pid})
            continue
        if kind == "bao":
            bao = OpenBaoServer.start()
            servers.append({"name": "OpenBao", "port": bao.port, "pid": bao._process.pid(),
                            "dir": str(bao.base_dir), "watchdog": bao.lifeline.watchdog.pid})
            continue
        server = PostgresServer.start(bin_dir=pgserver_bin_dir() if kind == "pg16" else None)
        with server.connect() as conn:
            version = conn.execute("SHOW server_version_num").fetchone()[0]
        pid = int((server.data_dir / "postmaster.pid").read_text().split()[0])
        servers.append({"name": f"PostgreSQL {version[:2]}", "port": server.port, "pid": pid,
                        "dir": str(server.base_dir), "watchdog": server.lifeline.watchdog.pid})
    print(json.dumps(servers), flush=True)
    sys.stdin.read()
    """
)
EVERY_KIND = ("pg15", "pg16", "bao", "files", "host")


@pytest.fixture
def temp_dir() -> Iterator[Path]:
    """A temp dir of the test's own, so that no other run's reaping (another session on this machine) can
    clean up in its place; the postgres account must be able to pass through it."""
    folder = Path(tempfile.mkdtemp(prefix="lifeline-test-"))
    folder.chmod(0o711)
    yield folder
    for base_dir in folder.glob("smarteros-*"):  # what a failing test left behind
        reap(base_dir)
    shutil.rmtree(folder, ignore_errors=True)


def start_test_process(temp_dir: Path, *kinds: str) -> tuple[subprocess.Popen[str], list[dict[str, Any]]]:
    """The starter in a process group of its own, and what it started (all up)."""
    child = subprocess.Popen(
        [sys.executable, "-c", STARTER, *kinds],
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(temp_dir)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert child.stdout is not None and child.stderr is not None
    line = child.stdout.readline()
    if not line:
        child.wait(timeout=10)
        raise AssertionError(f"the test process failed to start its servers: {child.stderr.read()[-2000:]}")
    servers: list[dict[str, Any]] = json.loads(line)
    try:
        running = [s for s in servers if s["port"] is not None]
        assert all(port_in_use(s["port"]) and started_at(s["pid"]) is not None for s in running), servers
        assert all(Path(s["dir"]).parent == temp_dir for s in servers), servers
    except BaseException:
        kill_group(child)
        raise
    return child, servers


def kill_process(child: subprocess.Popen[str]) -> None:
    """SIGKILL the test process alone (``kill -9`` on it, the kernel's OOM killer): unlike a signal to its whole
    process group, this leaves the children that share its group, a provider host, to the lifeline."""
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)


def kill_group(child: subprocess.Popen[str]) -> None:
    """SIGKILL the test process and its whole process group (what a CI timeout does)."""
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=10)


def leftovers(servers: list[dict[str, Any]]) -> list[str]:
    """What is left of ``servers``: open ports, running processes, directories."""
    found = []
    for server in servers:
        if server["port"] is not None and port_in_use(server["port"]):
            found.append(f"{server['name']} still listens on {server['port']}")
        if server["pid"] is not None and started_at(server["pid"]) is not None:
            found.append(f"{server['name']} process {server['pid']} still runs")
        if Path(server["dir"]).exists():
            found.append(f"{server['name']} directory {server['dir']} still exists")
    return found


def wait_until_gone(servers: list[dict[str, Any]], seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := leftovers(servers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_servers_die_with_a_killed_test_process(temp_dir: Path) -> None:
    child, servers = start_test_process(temp_dir, *EVERY_KIND)
    assert [s["name"] for s in servers] == ["PostgreSQL 15", "PostgreSQL 16", "OpenBao", "files", "provider host"]

    kill_process(child)

    assert wait_until_gone(servers, seconds=10) == []


def test_a_later_run_reaps_only_what_a_dead_run_left_behind(temp_dir: Path) -> None:
    # Another test session, still running.
    alive, alive_servers = start_test_process(temp_dir, "bao")
    # A local platform in the temp dir (python -m components local up --dir /tmp/smarteros-local-…): its
    # servers outlive the command that started them, by design.
    platform = OpenBaoProcess(temp_dir / "smarteros-local-platform" / "openbao")
    try:
        port = free_port()
        platform.write_config(port, free_port())
        address = platform.address_for(port)
        starter = (
            "from pathlib import Path; from components.local.processes import OpenBaoProcess as P; "
            f"P(Path({str(platform.base_dir)!r})).start({address!r})"
        )
        subprocess.run([sys.executable, "-c", starter], cwd=REPO, check=True, timeout=60)
        platform_pid = platform.pid()
        assert platform_pid is not None
        # A run killed together with its watchdogs (everything of it ended at once). The watchdog reaps with the
        # same code, so one PostgreSQL (the one whose binaries the record names) stands for both versions here.
        dead, servers = start_test_process(temp_dir, "pg16", "bao", "files", "host")
        for server in servers:
            os.kill(server["watchdog"], signal.SIGKILL)
        kill_process(dead)
        while any(started_at(server["watchdog"]) is not None for server in servers):
            time.sleep(0.05)
        assert all(port_in_use(s["port"]) for s in servers if s["port"]), "nobody is left to stop them"

        reaped = reap_orphans(temp_dir)

        assert sorted(map(str, reaped)) == sorted(server["dir"] for server in servers)
        assert leftovers(servers) == []
        (other,) = alive_servers
        assert requests.get(f"http://127.0.0.1:{other['port']}/v1/sys/health", timeout=5).status_code == 200
        assert Path(other["dir"]).exists()
        assert platform.pid() == platform_pid
        assert platform.health(address) == 501  # still there, not initialised
    finally:
        platform.stop()
        kill_group(alive)
        assert wait_until_gone(alive_servers, seconds=10) == []


def test_a_record_another_account_wrote_is_not_trusted(temp_dir: Path) -> None:
    # Someone else on the machine plants a record naming a dead owner and a pg_ctl of theirs: reaping would
    # run that program. (The suite runs as root here, which can give the file to another account.)
    planted = temp_dir / "smarteros-pg-planted"
    (planted / "bin").mkdir(parents=True)
    evidence = temp_dir / "evidence"
    evidence.mkdir()
    evidence.chmod(0o1777)  # whichever account the program runs as may write here
    ran = evidence / "pg_ctl ran"
    pg_ctl = planted / "bin" / "pg_ctl"
    pg_ctl.write_text(f"#!/bin/sh\ntouch '{ran}'\n")
    pg_ctl.chmod(0o755)
    (planted / "data").mkdir()
    (planted / "data" / "PG_VERSION").write_text("15\n")
    record = planted / "owner.json"
    dead = {"owner": 2**22 + 1, "owner_started": 1, "kind": "postgres", "bin_dir": str(planted / "bin")}
    record.write_text(json.dumps(dead))
    nobody = pwd.getpwnam("nobody")
    os.chown(record, nobody.pw_uid, nobody.pw_gid)

    assert reap_orphans(temp_dir) == []
    assert planted.exists() and not ran.exists()


def test_a_reused_pid_is_not_taken_for_the_owner() -> None:
    me = os.getpid()
    started = started_at(me)
    assert started is not None
    assert owner_alive({"owner": me, "owner_started": started})
    # The same pid, but a process that started at another time: the owner is gone, its pid was given again.
    assert not owner_alive({"owner": me, "owner_started": started - 1})


def plant_process_dir(temp_dir: Path, name: str, process: dict[str, Any]) -> Path:
    """A provider host's directory as a dead run left it: an owner long gone, and ``process`` as its process
    record."""
    base_dir = temp_dir / name
    base_dir.mkdir(mode=0o700)
    (base_dir / "owner.json").write_text(json.dumps({"owner": 2**22 + 1, "owner_started": 1, "kind": "process"}))
    (base_dir / "process.json").write_text(json.dumps(process))
    return base_dir


def test_reaping_signals_only_the_process_recorded(temp_dir: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        started = started_at(bystander.pid)
        assert started is not None
        # The recorded host is gone and its pid went to another process, which started at another time.
        reused = plant_process_dir(temp_dir, "smarteros-host-reused", {"pid": bystander.pid, "started": started - 1})
        # A record naming the right process, but written by another account (planted in the shared temp dir).
        planted = plant_process_dir(temp_dir, "smarteros-host-planted", {"pid": bystander.pid, "started": started})
        nobody = pwd.getpwnam("nobody")
        os.chown(planted / "process.json", nobody.pw_uid, nobody.pw_gid)

        assert sorted(reap_orphans(temp_dir)) == [planted, reused]
        assert bystander.poll() is None, "a process the records do not name was stopped"

        # The record that does name it, as the harness writes it: the process is stopped.
        recorded = plant_process_dir(temp_dir, "smarteros-host-recorded", {"pid": bystander.pid, "started": started})
        assert reap_orphans(temp_dir) == [recorded]
        assert bystander.wait(timeout=10) == -signal.SIGTERM
        assert not recorded.exists()
    finally:
        bystander.kill()
        bystander.wait(timeout=10)


def test_a_process_that_ignores_sigterm_is_killed() -> None:
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; exec sleep 60"])  # ignored signals stay so after exec
    try:
        started = started_at(stubborn.pid)
        assert started is not None
        while not Path(f"/proc/{stubborn.pid}/cmdline").read_bytes().startswith(b"sleep"):  # trap set, exec done
            time.sleep(0.01)

        assert stop_process(stubborn.pid, started, grace=0.3)

        assert stubborn.wait(timeout=10) == -signal.SIGKILL
    finally:
        stubborn.kill()
        stubborn.wait(timeout=10)
