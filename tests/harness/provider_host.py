"""Drive the real dynamic-provider host (``python -m pulumi.dynamic``) over gRPC, the way the engine does.

A :class:`ProviderHost` starts the host as a subprocess (cwd = repository root, ``PYTHONPATH`` = repository
root, ``PULUMI_PROJECT=smarteros``), reads the port it announces on stdout, and calls Configure, Check, Diff,
Create, Read, Update and Delete with the provider serialised exactly as ``pulumi.dynamic.Resource`` does
(``serialize_provider`` -> base64 dill under ``__provider``). Everything the host prints is captured for
:meth:`ProviderHost.logs`. A host dies with the test process that started it, however that process ends: each
host has a lifeline directory and watchdog (:mod:`tests.harness.lifeline`, kind ``process``).

What the host really does (learned from ``pulumi/dynamic/__main__.py`` in the pinned SDK); contract tests and
providers must live with these facts:

* Configure is called once per host. The host keeps the config and calls ``provider.configure(req)`` the first
  time it deserialises a given ``__provider`` string; the configured object is cached per process, keyed by
  that string. A test that needs a different config starts another host (see ``start_provider_host`` and the
  ``provider_host_factory`` fixture).
* Config arrives as the engine sends stack config: ``req.config.get("smarteros:<key>")`` returns a *string*;
  objects are JSON text (decode with ``components.config.section_from_raw``). Secret config values are sent
  wrapped as secrets and the host unwraps them, so ``configure`` sees plain strings. Dicts passed to
  :meth:`ProviderHost.configure` are JSON-encoded for you.
* The host answers ``acceptSecrets: false``, so the engine strips secret wrappers before calling the provider:
  inputs reach the provider as plain values, and anything a provider returns as an output comes back plain too
  (``Output.secret`` inside a provider does not survive). Secret outputs must therefore be declared by the
  component with ``ResourceOptions(additional_secret_outputs=[...])``; a contract test cannot see secretness.
* Create returns ``(id, outputs)``; the engine stores only those outputs. Diff and Update receive the *old
  outputs* as ``olds`` (not the old inputs), so create/update/read must copy every input into their outputs.
* Diff through the host carries only ``changes``, ``replaces`` and ``deleteBeforeReplace``: ``stables`` and
  ``diffs`` are always empty here whatever the provider sets on ``DiffResult``.
* Read receives the old outputs as ``props`` (on refresh) and must return the live state. When the engine
  sends no old outputs (adopting with the ``import_`` option) the host passes the resource's *inputs* as
  ``props`` instead; emulate it with ``read(provider, id, urn, {}, inputs)``. To report a
  resource as gone return ``ReadResult(id_="", outs={})`` — ``outs=None`` crashes the host (it writes
  ``__provider`` into the dict). ``ReadResult(inputs=...)`` comes back as the third element of
  :meth:`ProviderHost.read` (``{}`` when the provider returned none).
* Returning ``Output.secret(...)`` (or any Output) from a provider method fails the call with
  ``RuntimeError: There is no current event loop in thread ...``: return plain values.
* Keep error messages short: the whole traceback travels as gRPC status details. This harness accepts up
  to 4 MiB of them; a default gRPC client drops anything over 16 KiB.
* Check gets ``olds`` = old inputs (empty on first creation) and must return a dict of inputs; failures come
  back as ``(property, reason)`` pairs, not exceptions.
* Values unknown during a preview: pass the sentinel :data:`UNKNOWN` in ``news``. Inside ``check`` and
  ``diff`` the provider then sees a ``pulumi.output.Unknown`` *instance* (a fresh one, not the singleton:
  test with ``isinstance``), never the string; returned inputs come back here as :data:`UNKNOWN` again.
  Create/Update never see unknowns (the engine resolves them first).
* Numbers travel as protobuf doubles: an ``int`` input comes back as a ``float`` (``5 -> 5.0``). Equality
  with ints still holds, but ``isinstance(x, int)`` in a provider fails; coerce with ``int(...)``.
* ``None`` values are dropped from property maps both ways: a key set to None is absent for the provider.
* Any exception in a provider method is reported as gRPC status UNKNOWN whose details are the whole
  traceback; :class:`ProviderCallError` exposes the last non-empty line as ``.message`` (for example
  ``ValueError: tenant 76953480-6: vault PUT ... -> 403 permission denied``) and the bare text after the
  exception type as ``.reason``. That is why error messages must stand on the last line.
* The host runs four worker threads; calls from several Python threads against one host are allowed.
* The host inherits this process's environment minus the credential fallbacks the providers read
  (``VAULT_*``, ``PG*``, ``DATABASE_URL``, ``METABASE_*``, ``CLOUDFLARE_API_TOKEN``) and the read-only switch
  ``SMARTEROS_READ_ONLY``, so a test only sees the credentials it passes on purpose through ``config`` or
  ``env``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import grpc
from google.protobuf import struct_pb2
from pulumi.dynamic import Resource as DynamicResource
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from components.config import PROJECT, SECRET_KEYS
from components.providers.base import reset_sdk_pickler
from tests.harness.lifeline import PROCESS, Lifeline, claim

REPO_ROOT = Path(__file__).resolve().parents[2]
PROVIDER_KEY = "__provider"
UNKNOWN: str = rpc.UNKNOWN
"""The sentinel the engine sends for values not known until apply (previews)."""

STACK = "test"
START_TIMEOUT = 30.0
CALL_TIMEOUT = 60.0

# Environment variables the providers may fall back to; never inherited by a host implicitly.
_CREDENTIAL_ENV = re.compile(
    r"^(VAULT_.*|PG[A-Z]*|DATABASE_URL|METABASE_.*|CLOUDFLARE_.*|PULUMI_CONFIG.*|SMARTEROS_READ_ONLY)$"
)
_SECRET_NAME = re.compile(r"(token|password|secret|apikey|key)$", re.IGNORECASE)

# The engine accepts long error reports (whole tracebacks travel as gRPC status details); gRPC's Python
# client would otherwise drop any report over 16 KiB and show "received metadata size exceeds hard limit".
_CHANNEL_OPTIONS = [
    ("grpc.max_metadata_size", 4 * 1024 * 1024),
    ("grpc.absolute_max_metadata_size", 4 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]

_CHANGES = {
    provider_pb2.DiffResponse.DIFF_UNKNOWN: None,
    provider_pb2.DiffResponse.DIFF_NONE: False,
    provider_pb2.DiffResponse.DIFF_SOME: True,
}


class ProviderHostError(RuntimeError):
    """The host process could not be started or died."""


class ProviderCallError(Exception):
    """A provider method failed inside the host.

    ``message`` is the last non-empty line of the host's report (the exception line of the traceback),
    ``reason`` the same line without the exception type, ``details`` the whole report, ``code`` the gRPC
    status.
    """

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        lines = [line for line in details.splitlines() if line.strip()]
        self.method = method
        self.code = code
        self.details = details
        self.message = lines[-1].strip() if lines else f"{code.name} with no details"
        match = re.match(r"^[\w.]+(?:Error|Exception|Warning|Exit|Interrupt)?: (.*)$", self.message)
        self.reason = match.group(1) if match else self.message
        super().__init__(f"{method} failed: {self.message}")


@dataclass(frozen=True)
class CheckOutcome:
    """What Check answered: the inputs the engine would use and the field-level failures."""

    inputs: dict[str, Any]
    failures: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class DiffOutcome:
    """What Diff answered. ``changes`` is None when the provider could not tell."""

    changes: bool | None
    replaces: list[str] = field(default_factory=list)
    stables: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    diffs: list[str] = field(default_factory=list)


def urn(type_token: str | type[DynamicResource], name: str, *, parent_type: str | None = None) -> str:
    """A resource URN in the ``test`` stack of this project.

    ``type_token`` is a token such as ``pulumi-python:dynamic/postgres:TenantRole`` or a
    ``pulumi.dynamic.Resource`` subclass, whose token is derived the way the SDK does.
    """
    if isinstance(type_token, type) and issubclass(type_token, DynamicResource):
        type_token = f"pulumi-python:{type_token._resource_type_name}"
    qualified = f"{parent_type}${type_token}" if parent_type else type_token
    return f"urn:pulumi:{STACK}::{PROJECT}::{qualified}::{name}"


def secret_leaks(secret: str, serialized: str) -> list[str]:
    """Where ``secret`` shows up in a serialised provider: ``"text"`` (the base64 string itself) and/or
    ``"pickle"`` (the decoded dill bytes, as UTF-8, UTF-16 or Latin-1). Empty when it does not."""
    if not secret:
        raise ValueError("an empty secret matches everything; generate one with secrets.token_urlsafe()")
    found = []
    if secret in serialized:
        found.append("text")
    raw = base64.b64decode(serialized)
    needles = {secret.encode("utf-8"), secret.encode("utf-16-le"), secret.encode("latin-1", "replace")}
    if any(needle in raw for needle in needles):
        found.append("pickle")
    return found


def _run(coro: Any) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def _to_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    """Serialise a property map with the SDK's own rules (None values dropped, as the SDK does)."""
    return _run(rpc.serialize_properties(dict(props), {}))


def _unwrap(value: Any) -> Any:
    if isinstance(value, Unknown):
        return UNKNOWN
    if rpc.is_rpc_secret(value):
        return _unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """Deserialise a property map: unknowns as :data:`UNKNOWN`, secrets unwrapped, ``__provider`` dropped."""
    props = _unwrap(rpc.deserialize_properties(struct, keep_unknowns=True))
    props.pop(PROVIDER_KEY, None)
    return props


def _config_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)


def _is_secret_key(key: str) -> bool:
    short = key.split(":", 1)[-1]
    return short in SECRET_KEYS or bool(_SECRET_NAME.search(short))


def _host_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _CREDENTIAL_ENV.match(k)}
    pythonpath = [str(REPO_ROOT)]
    if os.environ.get("PYTHONPATH"):
        pythonpath.append(os.environ["PYTHONPATH"])
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(pythonpath),
            "PULUMI_PROJECT": PROJECT,
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update(extra or {})
    return env


class ProviderHost:
    """One ``python -m pulumi.dynamic`` process and a gRPC client for it.

    Use as a context manager (or call :meth:`start` / :meth:`close`). Call :meth:`configure` once before any
    other call, as the engine does.
    """

    def __init__(self, *, env: Mapping[str, str] | None = None, call_timeout: float = CALL_TIMEOUT) -> None:
        self._env = _host_env(env)
        self._call_timeout = call_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._lifeline: Lifeline | None = None
        self._channel: grpc.Channel | None = None
        self._stub: provider_pb2_grpc.ResourceProviderStub | None = None
        self._log: list[str] = []
        self._log_lock = threading.Lock()
        self._readers: list[threading.Thread] = []
        self._configured = False
        self.port: int | None = None
        self.start_seconds: float | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> ProviderHost:
        """Start the host and wait until its gRPC server answers."""
        began = time.perf_counter()
        self._lifeline = claim(PROCESS, "smarteros-host-")
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-u", "-m", "pulumi.dynamic"],
                cwd=REPO_ROOT,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            self._lifeline.record_process(self._process.pid)
        except BaseException:
            self.close()
            raise
        assert self._process.stdout is not None and self._process.stderr is not None
        port_line: list[str] = []
        announced = threading.Event()
        self._readers = [
            threading.Thread(
                target=self._pump, args=(self._process.stdout, port_line, announced), daemon=True
            ),
            threading.Thread(target=self._pump, args=(self._process.stderr, None, None), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if not announced.wait(timeout) or not port_line:
            self.close()
            raise ProviderHostError(
                f"the provider host announced no port within {timeout:.0f}s; it printed:\n{self.logs()}"
            )
        try:
            self.port = int(port_line[0])
        except ValueError:
            self.close()
            raise ProviderHostError(
                f"the provider host announced {port_line[0]!r} instead of a port; it printed:\n{self.logs()}"
            ) from None
        self._channel = grpc.insecure_channel(f"127.0.0.1:{self.port}", options=_CHANNEL_OPTIONS)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            self.close()
            raise ProviderHostError(
                f"the provider host on port {self.port} never accepted a connection"
            ) from None
        self._stub = provider_pb2_grpc.ResourceProviderStub(self._channel)
        self.start_seconds = time.perf_counter() - began
        return self

    def _pump(
        self,
        stream: IO[bytes],
        port_line: list[str] | None,
        announced: threading.Event | None,
    ) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace")
            if announced is not None and port_line is not None and not announced.is_set():
                port_line.append(line.strip())
                announced.set()
                continue
            with self._log_lock:
                self._log.append(line)
        if announced is not None:
            announced.set()

    def close(self) -> None:
        """Stop the host (terminate, then kill), close the channel and dismiss the host's watchdog. Safe to
        call twice."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self._stub = None
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for reader in self._readers:
            reader.join(timeout=5)
        self._readers = []
        if process is not None:
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        lifeline, self._lifeline = self._lifeline, None
        if lifeline is not None:
            lifeline.close()

    def __enter__(self) -> ProviderHost:
        if self._process is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The host process's pid while it runs under this object."""
        return self._process.pid if self._process is not None else None

    @property
    def lifeline(self) -> Lifeline | None:
        """The host's directory and watchdog (:mod:`tests.harness.lifeline`), which stop the host should this
        process die without closing it."""
        return self._lifeline

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def logs(self) -> str:
        """Everything the host printed so far (stdout after the port line, and stderr)."""
        with self._log_lock:
            return "".join(self._log)

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """The logs once they contain ``text``; the host's output reaches them through a reader thread."""
        deadline = time.monotonic() + timeout
        while text not in (logs := self.logs()):
            if time.monotonic() > deadline:
                raise AssertionError(f"the provider host did not print {text!r} within {timeout:.0f} s")
            time.sleep(0.02)
        return logs

    # -- calls -----------------------------------------------------------------------------------

    def _call(self, method: str, request: Any) -> Any:
        if self._stub is None:
            raise ProviderHostError("the provider host is not running; start it first")
        try:
            return getattr(self._stub, method)(request, timeout=self._call_timeout)
        except grpc.RpcError as error:
            code = error.code()
            details = error.details() or ""
            if code == grpc.StatusCode.UNAVAILABLE and not self.running:
                raise ProviderHostError(
                    f"the provider host died during {method}; it printed:\n{self.logs()}"
                ) from None
            raise ProviderCallError(method, code, details) from None

    @staticmethod
    def serialized(provider: Any) -> str:
        """The provider exactly as ``pulumi.dynamic.Resource`` stores it under ``__provider`` (a string is taken
        as already serialised, e.g. a provider from an older state file).

        The SDK wraps its pickler once more on every call (see ``components.providers.base``); the layers are
        dropped first, so one test process may serialise providers any number of times."""
        if isinstance(provider, str):
            return provider
        reset_sdk_pickler()
        return serialize_provider(provider)

    def _props(self, provider: Any, props: Mapping[str, Any]) -> struct_pb2.Struct:
        if PROVIDER_KEY in props:
            raise ValueError("pass plain property maps; the harness adds __provider itself")
        return _to_struct({**props, PROVIDER_KEY: self.serialized(provider)})

    def configure(
        self, config: Mapping[str, Any], *, secret_keys: frozenset[str] | set[str] | None = None
    ) -> None:
        """Send the stack config, as the engine does, before any other call.

        Keys are ``"smarteros:<key>"``; non-string values are JSON-encoded. Keys named in ``secret_keys``
        (default: the credential keys of ``components.config`` and names ending in token, password, secret or
        key) travel wrapped as secrets.
        """
        if self._configured:
            raise ProviderHostError("the host caches configured providers; start another host for new config")
        args: dict[str, Any] = {}
        variables: dict[str, str] = {}
        for key, value in config.items():
            if ":" not in key:
                raise ValueError(f"config key {key!r} needs a namespace, e.g. '{PROJECT}:{key}'")
            text = _config_text(value)
            variables[key] = text
            is_secret = key in secret_keys if secret_keys is not None else _is_secret_key(key)
            args[key] = rpc.wrap_rpc_secret(text) if is_secret else text
        self._call(
            "Configure",
            provider_pb2.ConfigureRequest(
                variables=variables, args=_to_struct(args), acceptSecrets=True, acceptResources=True
            ),
        )
        self._configured = True

    def check(
        self, provider: Any, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any]
    ) -> CheckOutcome:
        """Check: validate ``news`` against ``olds`` (the old inputs; empty for a new resource)."""
        response = self._call(
            "Check",
            provider_pb2.CheckRequest(
                urn=urn,
                olds=self._props(provider, olds) if olds else struct_pb2.Struct(),
                news=self._props(provider, news),
                randomSeed=os.urandom(32),
            ),
        )
        return CheckOutcome(
            inputs=_from_struct(response.inputs),
            failures=[(f.property, f.reason) for f in response.failures],
        )

    def diff(
        self, provider: Any, id: str, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any]
    ) -> DiffOutcome:
        """Diff: ``olds`` are the old *outputs*, ``news`` the new inputs."""
        response = self._call(
            "Diff",
            provider_pb2.DiffRequest(
                id=id, urn=urn, olds=self._props(provider, olds), news=self._props(provider, news)
            ),
        )
        return DiffOutcome(
            changes=_CHANGES[response.changes],
            replaces=list(response.replaces),
            stables=list(response.stables),
            delete_before_replace=response.deleteBeforeReplace,
            diffs=list(response.diffs),
        )

    def create(self, provider: Any, urn: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """Create: returns ``(id, outputs)``."""
        response = self._call(
            "Create",
            provider_pb2.CreateRequest(
                urn=urn, properties=self._props(provider, inputs), timeout=CALL_TIMEOUT
            ),
        )
        return response.id, _from_struct(response.properties)

    def read(
        self,
        provider: Any,
        id: str,
        urn: str,
        props: Mapping[str, Any],
        inputs: Mapping[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """Read: returns ``(id, outputs, inputs)``; id ``''`` means gone.

        Refresh: ``props`` = the last outputs. Adoption with the ``import_`` option: ``props={}`` and
        ``inputs`` = the program's inputs (the host then hands the inputs to ``provider.read`` as props).
        """
        response = self._call(
            "Read",
            provider_pb2.ReadRequest(
                id=id,
                urn=urn,
                properties=self._props(provider, props) if props else struct_pb2.Struct(),
                inputs=self._props(provider, inputs) if inputs is not None else None,
            ),
        )
        return response.id, _from_struct(response.properties), _from_struct(response.inputs)

    def update(
        self, provider: Any, id: str, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Update: ``olds`` are the old outputs, ``news`` the new inputs; returns the new outputs."""
        response = self._call(
            "Update",
            provider_pb2.UpdateRequest(
                id=id,
                urn=urn,
                olds=self._props(provider, olds),
                news=self._props(provider, news),
                timeout=CALL_TIMEOUT,
            ),
        )
        return _from_struct(response.properties)

    def delete(self, provider: Any, id: str, urn: str, props: Mapping[str, Any]) -> None:
        """Delete: ``props`` are the last outputs."""
        self._call(
            "Delete",
            provider_pb2.DeleteRequest(
                id=id, urn=urn, properties=self._props(provider, props), timeout=CALL_TIMEOUT
            ),
        )


class ProviderHostFactory(Protocol):
    """The ``provider_host_factory`` fixture: a configured host per ``(config, env)``, cached per session."""

    def __call__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        fresh: bool = False,
    ) -> ProviderHost: ...


@contextmanager
def start_provider_host(
    config: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None
) -> Iterator[ProviderHost]:
    """A started host, configured with ``config`` (an empty config when None), stopped on exit."""
    host = ProviderHost(env=env).start()
    try:
        host.configure(config or {})
        yield host
    finally:
        host.close()
