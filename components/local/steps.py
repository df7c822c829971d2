"""The README's one-time set-up steps, read from README.md and applied by a program.

README.md tells an administrator what to run once per database ("Once per database, ..."), once per
Vault ("Once per Vault, ...") and once per preview environment (the read-only identities): shell blocks
of ``psql`` and ``vault`` commands. :func:`readme_steps` reads those blocks from the README itself, so
whatever the README says is what the local platform and the tests do;
:func:`apply_database_steps` and :func:`apply_vault_steps` carry them out with psycopg and hvac instead of
the command-line tools (which a machine running the platform in containers may not have).

Understood commands (anything else is refused, naming the README line, so a changed README never runs
half-understood):

* ``psql "$ADMIN_URL" [-v NAME=VALUE ...] -f FILE``: FILE's SQL, as the administrator, in one go
  (stopping at the first error, as ``ON_ERROR_STOP=1`` does). psql meta-commands in FILE are refused.
* ``psql "$ADMIN_URL" -c '\\password ROLE'``: sets ROLE's password to a generated one (or the one kept from
  an earlier run), returned to the caller, never printed.
* ``psql "$ADMIN_URL" -c 'SQL'``: that SQL.
* ``vault policy write NAME FILE``: installs the ACL policy.
* ``vault secrets enable [-path=P] [-version=2] ENGINE`` and ``vault auth enable [-path=P] METHOD``:
  mounted unless something is mounted there already.
* ``vault token create [-policy=P ...] [-no-default-policy] [-orphan] [-period=D] [-ttl=D]
  [-display-name=N] [-renewable=BOOL]``: issues the token, unless the caller passes one kept from an
  earlier run that is still valid and carries exactly those policies.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DATABASE_SECTION = "Once per database"
VAULT_SECTION = "Once per Vault"
PREVIEW_SECTION = "Once per preview environment"
_FENCE = re.compile(r"^```(\w*)\s*$")


class SetupError(Exception):
    """A README step that cannot be understood or that failed; names README.md and the line."""


@dataclass(frozen=True)
class Step:
    """One shell command of a README block: its words and where it stands."""

    argv: tuple[str, ...]
    line: int
    source: str = "README.md"

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    def __str__(self) -> str:
        return shlex.join(self.argv)


def _blocks_after(lines: Sequence[str], marker: str, source: str) -> list[Step]:
    """The commands of the shell blocks after the paragraph starting with ``marker``, up to the next
    "Once per" paragraph or heading."""
    start = next((i for i, text in enumerate(lines) if text.startswith(marker)), None)
    if start is None:
        raise SetupError(f"{source}: no paragraph starting with {marker!r}: the set-up steps are not where expected")
    steps: list[Step] = []
    in_block = False
    shell = False
    pending = ""
    pending_line = 0
    for index in range(start + 1, len(lines)):
        text = lines[index]
        fence = _FENCE.match(text.strip())
        if fence and not in_block:
            in_block, shell = True, fence.group(1) in ("sh", "bash", "shell", "console")
            continue
        if fence and in_block:
            in_block = False
            continue
        if not in_block:
            if text.startswith(("Once per", "#")):
                break
            continue
        if not shell:
            continue
        stripped = text.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            pending_line = index + 1
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        pending += stripped
        try:
            argv = tuple(shlex.split(pending, comments=True))
        except ValueError as exc:
            raise SetupError(f"{source}:{pending_line}: cannot read the command: {exc}") from None
        if argv:
            steps.append(Step(argv, pending_line, source))
        pending = ""
    if not steps:
        raise SetupError(f"{source}:{start + 1}: no shell commands follow {marker!r}")
    return steps


@dataclass(frozen=True)
class ReadmeSteps:
    """The set-up steps README.md gives, per system."""

    database: tuple[Step, ...]
    vault: tuple[Step, ...]
    preview: tuple[Step, ...] = ()
    """The read-only identities of previews and the drift check: psql and vault steps together."""

    def preview_for(self, tool: str) -> tuple[Step, ...]:
        """The preview steps of one tool (``psql`` or ``vault``); a README without them is an error."""
        found = tuple(step for step in self.preview if step.argv[0] == tool)
        if not found:
            raise SetupError(f"README.md: no {tool} command follows {PREVIEW_SECTION!r}")
        return found


def readme_steps(readme: Path | None = None) -> ReadmeSteps:
    """Read README.md's "Once per database", "Once per Vault" and "Once per preview environment" blocks."""
    path = readme or REPO_ROOT / "README.md"
    lines = path.read_text(encoding="utf-8").splitlines()
    source = path.name
    return ReadmeSteps(
        database=tuple(_blocks_after(lines, DATABASE_SECTION, source)),
        vault=tuple(_blocks_after(lines, VAULT_SECTION, source)),
        preview=tuple(_blocks_after(lines, PREVIEW_SECTION, source))
        if any(text.startswith(PREVIEW_SECTION) for text in lines)
        else (),
    )


# -- PostgreSQL -----------------------------------------------------------------------------------------


@dataclass
class DatabaseOutcome:
    """What the database steps produced: the passwords set, by role."""

    passwords: dict[str, str] = field(default_factory=dict)


_PASSWORD = re.compile(r"^\\password\s+(\S+)\s*$")


def _psql_parts(step: Step) -> tuple[list[str], list[str]]:
    """The ``-f`` files and ``-c`` commands of a psql step; other options are accepted and ignored."""
    files: list[str] = []
    commands: list[str] = []
    args = list(step.argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-f", "--file", "-c", "--command") and i + 1 < len(args):
            (files if arg in ("-f", "--file") else commands).append(args[i + 1])
            i += 2
            continue
        if arg.startswith("--file="):
            files.append(arg.split("=", 1)[1])
        elif arg.startswith("--command="):
            commands.append(arg.split("=", 1)[1])
        elif arg in ("-v", "--set"):
            i += 1
        elif arg.startswith("-") or arg.startswith("$") or "://" in arg or "=" in arg:
            pass
        else:
            raise SetupError(f"{step.where}: psql argument {arg!r} not understood in `{step}`")
        i += 1
    if not files and not commands:
        raise SetupError(f"{step.where}: psql without -f or -c: `{step}`")
    return files, commands


def _sql_file(step: Step, name: str, root: Path) -> str:
    path = (root / name).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise SetupError(f"{step.where}: {name} is not a file of this repository")
    text = path.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("\\"):
            raise SetupError(f"{name}:{number}: psql meta-command {line.strip()!r} is not supported here")
    return text


def apply_database_steps(
    steps: Sequence[Step],
    execute: Callable[[str], None],
    set_password: Callable[[str, str], None],
    *,
    known_passwords: Mapping[str, str] | None = None,
    root: Path = REPO_ROOT,
) -> DatabaseOutcome:
    """Carry out psql steps through ``execute(sql)`` and ``set_password(role, password)``.

    A role's password is the one in ``known_passwords`` when given (a second run keeps it), else a fresh
    random one. The SQL text comes from the repository's files, never from here.
    """
    outcome = DatabaseOutcome()
    known = dict(known_passwords or {})
    for step in steps:
        if step.argv[0] != "psql":
            raise SetupError(f"{step.where}: only psql commands are understood in the database steps: `{step}`")
        files, commands = _psql_parts(step)
        for name in files:
            execute(_sql_file(step, name, root))
        for command in commands:
            match = _PASSWORD.match(command.strip())
            if match:
                role = match.group(1).strip('"')
                password = known.get(role) or secrets.token_urlsafe(24)
                set_password(role, password)
                outcome.passwords[role] = password
            elif command.strip().startswith("\\"):
                raise SetupError(f"{step.where}: psql meta-command {command!r} is not supported here")
            else:
                execute(command)
    return outcome


# -- Vault ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRequest:
    """What a ``vault token create`` step asks for."""

    policies: tuple[str, ...] = ()
    no_default_policy: bool = False
    orphan: bool = False
    period: str | None = None
    ttl: str | None = None
    display_name: str | None = None
    renewable: bool | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body of ``POST auth/token/create`` (or ``create-orphan``)."""
        body: dict[str, Any] = {"policies": list(self.policies), "no_default_policy": self.no_default_policy}
        for key in ("period", "ttl", "display_name", "renewable"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        return body


@dataclass
class VaultOutcome:
    """What the Vault steps produced: the tokens issued (or kept), in README order."""

    tokens: list[tuple[TokenRequest, str]] = field(default_factory=list)


def _flags(step: Step, args: Sequence[str], allowed: set[str]) -> tuple[dict[str, list[str]], list[str]]:
    """``-name=value`` / ``-name value`` / ``-name`` flags (one or two dashes) and the positional words."""
    flags: dict[str, list[str]] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-"):
            name, has_value, value = arg.lstrip("-").partition("=")
            if name not in allowed:
                raise SetupError(f"{step.where}: flag -{name} not understood in `{step}`")
            if not has_value and name in _VALUE_FLAGS:
                if i + 1 >= len(args):
                    raise SetupError(f"{step.where}: flag -{name} needs a value in `{step}`")
                value, i = args[i + 1], i + 1
            elif not has_value:
                value = "true"
            flags.setdefault(name, []).append(value)
        else:
            positional.append(arg)
        i += 1
    return flags, positional


_VALUE_FLAGS = {"policy", "period", "ttl", "display-name", "path", "version", "description", "format", "field"}
_BOOL = {"true": True, "1": True, "false": False, "0": False}


def parse_token_request(step: Step) -> TokenRequest:
    """The token a ``vault token create`` step asks for."""
    flags, positional = _flags(
        step,
        step.argv[3:],
        {"policy", "no-default-policy", "orphan", "period", "ttl", "display-name", "renewable", "format", "field"},
    )
    if positional:
        raise SetupError(f"{step.where}: unexpected {positional[0]!r} in `{step}`")

    def boolean(name: str) -> bool | None:
        if name not in flags:
            return None
        value = flags[name][-1].lower()
        if value not in _BOOL:
            raise SetupError(f"{step.where}: -{name}={value} is not a boolean in `{step}`")
        return _BOOL[value]

    return TokenRequest(
        policies=tuple(flags.get("policy", [])),
        no_default_policy=bool(boolean("no-default-policy")),
        orphan=bool(boolean("orphan")),
        period=flags["period"][-1] if "period" in flags else None,
        ttl=flags["ttl"][-1] if "ttl" in flags else None,
        display_name=flags["display-name"][-1] if "display-name" in flags else None,
        renewable=boolean("renewable"),
    )


class VaultAdmin:
    """The Vault calls the steps need, as a token that may make them (the root token locally)."""

    def __init__(self, address: str, token: str, *, timeout: float = 10.0) -> None:
        import requests

        self._session = requests.Session()
        self._address = address.rstrip("/")
        self._token = token
        self._timeout = timeout

    def request(self, method: str, path: str, *, token: str | None = None, json: object = None) -> Any:
        answer = self._session.request(
            method,
            f"{self._address}/v1/{path}",
            headers={"X-Vault-Token": token or self._token},
            json=json,
            timeout=self._timeout,
        )
        if answer.status_code >= 400:
            errors = answer.json().get("errors") if answer.headers.get("content-type", "").startswith(
                "application/json"
            ) else None
            raise SetupError(f"vault {method} /v1/{path} answered {answer.status_code}: {errors or answer.reason}")
        return answer.json() if answer.content else None

    def mounts(self, kind: str) -> dict[str, Any]:
        """``sys/mounts`` (kind "secrets") or ``sys/auth`` (kind "auth"), keyed by path with a slash."""
        data = self.request("GET", "sys/mounts" if kind == "secrets" else "sys/auth")
        return dict(data.get("data") or data)

    def token_policies(self, token: str) -> list[str] | None:
        """The policies of ``token``, looked up (and renewed when periodic) by the administrator; None when
        the token is no longer valid."""
        try:
            data = self.request("POST", "auth/token/lookup", json={"token": token})["data"]
        except SetupError:
            return None
        if data.get("period"):
            self.request("POST", "auth/token/renew", json={"token": token})
        return sorted(data.get("policies") or [])


def _enable(admin: VaultAdmin, step: Step, kind: str) -> None:
    flags, positional = _flags(step, step.argv[3:], {"path", "version", "description"})
    if len(positional) != 1:
        raise SetupError(f"{step.where}: expected one {'engine' if kind == 'secrets' else 'method'} in `{step}`")
    engine = positional[0]
    options: dict[str, str] = {}
    if engine == "kv-v2":
        engine, options = "kv", {"version": "2"}
    if "version" in flags:
        options["version"] = flags["version"][-1]
    path = flags.get("path", [positional[0] if kind == "auth" or engine != "kv" else engine])[-1].strip("/")
    if f"{path}/" in admin.mounts(kind):
        return
    body: dict[str, Any] = {"type": engine}
    if options:
        body["options"] = options
    admin.request("POST", f"sys/mounts/{path}" if kind == "secrets" else f"sys/auth/{path}", json=body)


def apply_vault_steps(
    steps: Sequence[Step],
    admin: VaultAdmin,
    *,
    known_tokens: Sequence[str] = (),
    root: Path = REPO_ROOT,
) -> VaultOutcome:
    """Carry out vault steps as ``admin``. A token create step keeps the first of ``known_tokens`` that is
    still valid and carries exactly the policies asked for (renewing it), else issues a new token."""
    outcome = VaultOutcome()
    for step in steps:
        words = step.argv
        if words[0] != "vault" or len(words) < 3:
            raise SetupError(f"{step.where}: only vault commands are understood in the Vault steps: `{step}`")
        verb = (words[1], words[2])
        if verb == ("policy", "write"):
            if len(words) != 5:
                raise SetupError(f"{step.where}: expected `vault policy write NAME FILE`, got `{step}`")
            path = (root / words[4]).resolve()
            if not path.is_relative_to(root.resolve()) or not path.is_file():
                raise SetupError(f"{step.where}: {words[4]} is not a file of this repository")
            admin.request(
                "PUT", f"sys/policies/acl/{words[3]}", json={"policy": path.read_text(encoding="utf-8")}
            )
        elif verb in (("secrets", "enable"), ("auth", "enable")):
            _enable(admin, step, words[1])
        elif verb == ("token", "create"):
            request = parse_token_request(step)
            wanted = sorted(request.policies if request.no_default_policy else {*request.policies, "default"})
            token = next((t for t in known_tokens if admin.token_policies(t) == wanted), None)
            if token is None:
                created = admin.request(
                    "POST", "auth/token/create-orphan" if request.orphan else "auth/token/create", json=request.body()
                )
                token = str(created["auth"]["client_token"])
            outcome.tokens.append((request, token))
        else:
            raise SetupError(f"{step.where}: vault command not understood: `{step}`")
    return outcome
