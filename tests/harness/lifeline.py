"""Throwaway servers die with the test process that started them, whatever kills it.

Every throwaway server of the harness (a PostgreSQL cluster, an OpenBao dev server) lives in a directory of
its own under the system temp dir, and so do files a server uses (the converge tests' OpenBao audit log) and
each dynamic-provider host a test starts (``python -m pulumi.dynamic``, :mod:`tests.harness.provider_host`;
its directory holds only records).
:func:`claim` makes that directory, writes an owner record into it (``owner.json``: the pid of the process
starting the server, that process's start time so that a reused pid is never taken for it, which kind of
server it is and, for PostgreSQL, which binaries run it; a host's directory gets a second record,
``process.json``, naming the host's pid and start time) and starts a *watchdog*: ``python -m
tests.harness.lifeline <dir>``, a small process in a session of its own that waits on a pidfd for the owner to
exit. However the owner ends (SIGKILL, a CI timeout killing its process group, Ctrl-C twice, a crash in C
code), the kernel wakes the watchdog, which stops the server with the local platform's own process code
(:mod:`components.local.processes`; PostgreSQL by an immediate shutdown), or a provider host with SIGTERM and,
five seconds later, SIGKILL, and removes the directory, about a second after the owner died. A normal stop
does the same work in the owner and then dismisses the watchdog. A host shares its owner's process group, so a
signal to the whole group ends it anyway; a SIGKILL of the owner alone (``kill -9``, the OOM killer) does not,
and there only the watchdog stops it. The watchdog is one more interpreter per host: about 50 ms of CPU
next to a host's 450 ms start and stop, and 4 ms of the owner's time (``scripts/bench_lifeline.py``).

Why a watchdog, and not:

* ``atexit`` alone: runs only when the interpreter exits normally, never after SIGKILL or
  ``os._exit``.
* ``prctl(PR_SET_PDEATHSIG)`` in a ``preexec_fn``: ``pg_ctl start`` daemonizes the postmaster, so it is no
  child of ours; as root the binaries run through ``runuser``, and the kernel clears the death signal when
  credentials change; the signal follows the *thread* that forked, not the process, so a server started from
  a worker thread would die with that thread; it kills but never removes the data directory; and a
  ``preexec_fn`` forces a plain fork(), which runs the fork handlers gRPC registers in this process (the
  reason the binaries run through ``runuser`` at all). Starting ``postgres`` as a direct child would mend
  only the first of these, and would need our own readiness wait in place of ``pg_ctl -w``. A provider host
  is a direct child, but one started from a worker thread would die with that thread, and the ``preexec_fn``
  would run gRPC's fork handlers in the process that drives the host (which always has gRPC loaded).
* A registry read only at the next session's start: the servers would hold their ports, memory and files
  until someone runs the tests again.

The watchdog runs in a session of its own so that a signal to the test's process group does not reach it.
Should it be killed as well (everything of a run ended at once), the next run reaps what is left:
:func:`reap_orphans`, called at pytest's session start and once per process before its first server, stops
the server of each ``smarteros-*`` directory in the temp dir whose owner record names a process that is gone,
and removes the directory. Left alone: a directory without an owner record (made by something else, by an
older harness, or a local platform's: ``python -m components local up --dir``, whose servers outlive the
command by design), one whose record another account wrote (the temp dir is shared, and reaping runs the
``pg_ctl`` a record names), and one whose owner still runs (another test session going on at the same time, on this
checkout or another). No process is signalled but the server recorded in such a directory: PostgreSQL through
``pg_ctl stop`` on its data directory (which signals only the postmaster named in that directory's
``postmaster.pid``), OpenBao through the pid in its pid file, checked against ``/proc/<pid>/cmdline``, a
provider host through a pidfd of the pid its process record names, opened before the process's start time is
compared with the recorded one (a process record is read, too, only when this account wrote it).

Two windows stay: an owner killed while ``pg_ctl start`` runs leaves a postmaster that may come up after the
watchdog looked and removed the directory; PostgreSQL checks its lock file once a minute and shuts itself
down when the file is gone. An owner killed between a host's fork and the writing of its process record (a
file write, microseconds) leaves that host running.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PREFIX = "smarteros-"
RECORD = "owner.json"
POSTGRES = "postgres"
OPENBAO = "openbao"
FILES = "files"
"""A directory of files only (a server's configuration and audit log, say): reaping removes it."""
PROCESS = "process"
"""One process the owner started itself (a provider host): :meth:`Lifeline.record_process` names it in
``process.json`` (pid and start time); reaping stops that process with SIGTERM, then SIGKILL."""
KINDS = (POSTGRES, OPENBAO, FILES, PROCESS)
PROCESS_RECORD = "process.json"
STOP_GRACE = 5.0
"""Seconds a recorded process has between SIGTERM and SIGKILL."""


def started_at(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``); None when it is gone (or a
    zombie: exited, only not yet collected by its parent)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


@dataclass
class Lifeline:
    """A claimed server directory and the watchdog that cleans it up if this process dies first."""

    base_dir: Path
    watchdog: subprocess.Popen[bytes]

    @contextlib.contextmanager
    def starting(self, stop: Callable[[], None]) -> Iterator[None]:
        """Around a server's start: should the start fail, ``stop`` runs at once; once the server runs, it
        runs when the interpreter exits normally too (unless stopped before)."""
        try:
            yield
        except BaseException:
            stop()
            raise
        atexit.register(stop)

    def record_process(self, pid: int) -> None:
        """Name the process this directory stands for (kind :data:`PROCESS`): its pid and its start time, so
        that the watchdog and reaping stop that process and never one given the same pid later."""
        record = {"pid": pid, "started": started_at(pid)}
        written = self.base_dir / f"{PROCESS_RECORD}.new"
        written.write_text(json.dumps(record) + "\n")
        written.replace(self.base_dir / PROCESS_RECORD)  # a reaper never sees half a record

    def close(self, stop: Callable[[], None] | None = None) -> None:
        """The server stopped (``stop`` unregistered from the interpreter's exit): remove its directory and
        dismiss the watchdog. Safe to call twice."""
        if stop is not None:
            atexit.unregister(stop)
        shutil.rmtree(self.base_dir, ignore_errors=True)
        if self.watchdog.poll() is None:
            self.watchdog.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.watchdog.wait(timeout=10)


def claim(kind: str, prefix: str, bin_dir: Path | None = None) -> Lifeline:
    """A fresh directory under the temp dir for a server of ``kind``, owned by this process and watched.

    Servers that earlier runs left behind are reaped first (once per process).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind of server {kind!r}")
    _reap_once()
    base_dir = Path(tempfile.mkdtemp(prefix=prefix))
    owner = os.getpid()
    record = {
        "owner": owner,
        "owner_started": started_at(owner),
        "kind": kind,
        "bin_dir": str(bin_dir) if bin_dir is not None else None,
    }
    written = base_dir / f"{RECORD}.new"
    written.write_text(json.dumps(record) + "\n")
    written.replace(base_dir / RECORD)  # a reaper never sees half a record
    try:
        watchdog = subprocess.Popen(
            [sys.executable, "-m", "tests.harness.lifeline", str(base_dir)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except BaseException:
        shutil.rmtree(base_dir, ignore_errors=True)
        raise
    return Lifeline(base_dir, watchdog)


def start_on_a_free_port(
    launch: Callable[[int], None],
    *,
    attempts: int,
    retry_on: type[Exception],
    after_failure: Callable[[], object] = lambda: None,
) -> int:
    """``launch(port)`` on a free local port, and on another one when it fails with ``retry_on`` (something
    else took the port between the choice and the server's bind), ``attempts`` times at most; the port."""
    from components.local.processes import free_port

    for attempt in range(1, attempts + 1):
        port = free_port()
        try:
            launch(port)
            return port
        except retry_on:
            after_failure()
            if attempt == attempts:
                raise
    raise ValueError(f"attempts must be at least 1, not {attempts}")


def _own_json(base_dir: Path, name: str) -> Any:
    """The JSON in ``base_dir/name`` when this user wrote it (no link, in no linked directory); else None."""
    path = base_dir / name
    try:
        if base_dir.is_symlink() or path.is_symlink() or path.stat().st_uid != os.geteuid():
            return None
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_record(base_dir: Path) -> dict[str, Any] | None:
    """The owner record of ``base_dir``, or None when it has none that this harness, as this user, wrote.

    The temp dir is shared: a record another account wrote (or a link to one) is never trusted, since
    reaping runs the ``pg_ctl`` it names, or signals the process it names.
    """
    record = _own_json(base_dir, RECORD)
    if not isinstance(record, dict) or record.get("kind") not in KINDS or not isinstance(record.get("owner"), int):
        return None
    return record


def stop_process(pid: int, started: int, grace: float = STOP_GRACE) -> bool:
    """Stop process ``pid`` if it is the one that started at ``started``: SIGTERM, then SIGKILL after ``grace``
    seconds; wait until it has exited. False when no such process runs (gone, or the pid is another's now).

    The signals go through a pidfd opened before the start time is compared, so a process that exits in
    between and leaves its pid to a newcomer is never signalled in its place.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        if started_at(pid) != started:
            return False
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        if not select.select([pidfd], [], [], grace)[0]:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            select.select([pidfd], [], [], grace)
        return True
    finally:
        os.close(pidfd)


def stop_recorded_process(base_dir: Path) -> bool:
    """Stop the process ``base_dir``'s process record names (see :func:`stop_process`); False when none runs,
    or when the record is missing or this user did not write it."""
    record = _own_json(base_dir, PROCESS_RECORD)
    if not isinstance(record, dict):
        return False
    pid, started = record.get("pid"), record.get("started")
    if not isinstance(pid, int) or not isinstance(started, int):
        return False
    return stop_process(pid, started)


def owner_alive(record: dict[str, Any]) -> bool:
    """Whether the process that claimed the directory still runs (the same process, not a reused pid)."""
    started = started_at(record["owner"])
    return started is not None and started == record.get("owner_started")


def reap(base_dir: Path) -> bool:
    """Stop the server recorded in ``base_dir`` and remove the directory; False when it holds no record."""
    record = read_record(base_dir)
    if record is None:
        return False
    try:
        if record["kind"] == POSTGRES:
            from components.local.processes import PostgresProcess

            bin_dir = record.get("bin_dir")
            PostgresProcess(base_dir, Path(bin_dir) if bin_dir else None).stop(mode="immediate")
        elif record["kind"] == OPENBAO:
            from components.local.processes import OpenBaoProcess

            OpenBaoProcess(base_dir).stop()
        elif record["kind"] == PROCESS:
            stop_recorded_process(base_dir)
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
    return True


def reap_orphans(temp_dir: Path | None = None) -> list[Path]:
    """Reap every server directory in ``temp_dir`` (the system temp dir) whose owner is gone; what was reaped."""
    reaped = []
    for base_dir in sorted(Path(temp_dir or tempfile.gettempdir()).glob(f"{PREFIX}*")):
        record = read_record(base_dir)
        if record is None or owner_alive(record):
            continue
        try:
            if reap(base_dir):
                reaped.append(base_dir)
        except Exception as error:  # one stubborn leftover must not keep the tests from starting
            print(f"could not reap {base_dir}: {error}", file=sys.stderr)
    return reaped


_reaped_once = False


def _reap_once() -> None:
    global _reaped_once
    if not _reaped_once:
        _reaped_once = True
        reap_orphans()


def wait_for_exit(pid: int, started: int | None) -> None:
    """Return once process ``pid`` (started at ``started``) has ended."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # no pidfd (an old kernel): look every fifth of a second
        while started is not None and started_at(pid) == started:
            time.sleep(0.2)
        return
    try:
        if started is not None and started_at(pid) == started:  # the pidfd is the owner's, not a reused pid's
            select.select([pidfd], [], [])  # readable once the process has exited
    finally:
        os.close(pidfd)


def watch(base_dir: Path) -> None:
    """The watchdog: wait for the owner of ``base_dir`` to end, then reap the directory."""
    record = read_record(base_dir)
    if record is None:
        return
    wait_for_exit(record["owner"], record.get("owner_started"))
    reap(base_dir)


if __name__ == "__main__":
    watch(Path(sys.argv[1]))
