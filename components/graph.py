"""Run the real program under Pulumi mocks and report what it registers, without credentials.

``python -m components graph [--tenants DIR] [--stack NAME]`` prints, as JSON on stdout, one object per
resource the program registers: ``urn``, ``type``, ``name``, ``parent`` (the parent's URN, or null for a
resource at the top of the stack), and ``inputs`` with every secret value replaced by ``"[secret]"``.
Reviewers use it to see what a tenant file turns into; the tests use :func:`run_program` to assert the
resource graph, including the resource options the engine would act on.

This module imports nothing else from ``components``, so ``plan`` can load it on its own and run the
program of another checkout (whose ``components`` package is that checkout's) under the same recorder.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROJECT = "smarteros"  # the name in Pulumi.yaml, used when a folder has none
SECRET = "[secret]"  # noqa: S105 (the placeholder shown instead of a secret)
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class RecordedOptions:
    """The resource options the engine receives with a registration."""

    protect: bool = False
    retain_on_delete: bool = False
    additional_secret_outputs: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    depends_on: list[str] = field(default_factory=list)
    ignore_changes: list[str] = field(default_factory=list)
    import_id: str | None = None
    provider: str | None = None


@dataclass
class ProgramRun:
    """What one run of a program registered, and the outputs it exported per resource URN."""

    resources: list[Registered]
    outputs: dict[str, dict[str, Any]]
    stack_urn: str | None

    @property
    def stack_outputs(self) -> dict[str, Any]:
        return self.outputs.get(self.stack_urn or "", {})


@dataclass(frozen=True)
class Registered:
    """One resource the program registered."""

    urn: str
    type: str
    name: str
    parent: str | None
    inputs: dict[str, Any]
    options: RecordedOptions
    custom: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "inputs": self.inputs,
        }


def _plain(value: Any, redact: bool) -> Any:
    """Turn deserialised RPC values into JSON-able data; secrets become ``[secret]`` when redacting."""
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return SECRET if redact else _plain(rpc.unwrap_rpc_secret(value), redact)
    if isinstance(value, dict):
        return {k: _plain(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, redact) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _mock_classes() -> tuple[type, type]:
    """Build the mocks lazily so importing this module stays free of Pulumi."""
    import pulumi
    from pulumi.runtime import rpc
    from pulumi.runtime.mocks import MockMonitor

    class ProgramMocks(pulumi.runtime.Mocks):
        """Every resource echoes its inputs; ids are derived from the logical name."""

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            return f"{args.name}-id", dict(args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
            return {}, []

    class RecordingMonitor(MockMonitor):
        """The SDK's mock monitor, also recording each registration with its options."""

        def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
            super().__init__(mocks)
            self.registered: list[Registered] = []
            self.stack_urn: str | None = None
            self.outputs: dict[str, dict[str, Any]] = {}

        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)
            if request.type == STACK_TYPE:
                self.stack_urn = response.urn
                return response
            parent = request.parent or None
            if parent is not None and parent == self.stack_urn:
                parent = None
            self.registered.append(
                Registered(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=parent,
                    inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                    options=RecordedOptions(
                        protect=bool(request.protect),
                        retain_on_delete=bool(request.retainOnDelete),
                        additional_secret_outputs=list(request.additionalSecretOutputs),
                        delete_before_replace=bool(request.deleteBeforeReplace),
                        depends_on=list(request.dependencies),
                        ignore_changes=list(request.ignoreChanges),
                        import_id=request.importId or None,
                        provider=request.provider or None,
                    ),
                    custom=bool(request.custom),
                )
            )
            return response

        def RegisterResourceOutputs(self, request: Any) -> Any:
            self.outputs[request.urn] = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
            return super().RegisterResourceOutputs(request)

    return ProgramMocks, RecordingMonitor


def project_name(root: Path = ROOT) -> str:
    """The project's name from ``Pulumi.yaml`` (config keys without a namespace belong to it)."""
    path = root / "Pulumi.yaml"
    if not path.is_file():
        return DEFAULT_PROJECT
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return str(data.get("name") or DEFAULT_PROJECT)


def load_stack_file(stack: str, root: Path = ROOT) -> tuple[dict[str, Any], list[str]]:
    """Config of ``Pulumi.<stack>.yaml`` as ``(values, secret_keys)``; ``secure:`` values become ``[secret]``."""
    path = root / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    project = project_name(root)
    values: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, value in (data.get("config") or {}).items():
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[full] = SECRET
            secret_keys.append(full)
        else:
            values[full] = value
    return values, secret_keys


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def execute(
    program: Callable[[], None] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    secret_keys: Sequence[str] = (),
    stack: str = "test",
    root: Path = ROOT,
) -> ProgramRun:
    """Run ``program`` (default: the project's ``__main__.py``) under mocks and return what it registered.

    ``config`` maps ``smarteros:<key>`` to a value (objects may be given as dicts). Resource inputs keep
    secrets wrapped as the SDK sends them; :func:`redacted` turns them into ``[secret]``.
    """
    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_in_stack
    from pulumi.runtime.sync_await import _sync_await

    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()}
    pulumi.runtime.set_all_config(raw, list(secret_keys))
    program_mocks, recording_monitor = _mock_classes()
    mocks = program_mocks()
    monitor = recording_monitor(mocks)
    settings.ROOT.set(None)
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_mocks(mocks, project=project_name(root), stack=stack, preview=False, monitor=monitor)
    settings.ROOT.set(None)  # the program runs in its own stack, which registers its exports

    def main() -> None:
        runpy.run_path(str(root / "__main__.py"), run_name="__main__")

    with _working_directory(root):
        _sync_await(run_in_stack(program or main))
    return ProgramRun(list(monitor.registered), dict(monitor.outputs), monitor.stack_urn)


def run_program(
    program: Callable[[], None] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    secret_keys: Sequence[str] = (),
    stack: str = "test",
    root: Path = ROOT,
) -> list[Registered]:
    """The registrations of :func:`execute`, in order."""
    return execute(program, config=config, secret_keys=secret_keys, stack=stack, root=root).resources


def redacted(resources: Sequence[Registered]) -> list[dict[str, Any]]:
    """JSON-ready view of the registrations with secret values replaced by ``[secret]``."""
    return [{**r.as_json(), "inputs": _plain(r.inputs, redact=True)} for r in resources]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components graph",
        description="Print, as JSON, every resource the program registers, without credentials.",
    )
    parser.add_argument("--tenants", metavar="DIR", help="tenant folder to use instead of the stack's")
    parser.add_argument("--stack", default="prod", help="stack whose Pulumi.<stack>.yaml config is used")
    args = parser.parse_args(argv)

    stack_file = ROOT / f"Pulumi.{args.stack}.yaml"
    if not stack_file.is_file():
        print(f"{stack_file.name}: no such stack file", file=sys.stderr)
        return 1
    values, secret_keys = load_stack_file(args.stack)
    if args.tenants:
        folder = os.path.relpath(Path(args.tenants).resolve(), ROOT)
        values[f"{project_name()}:tenantFiles"] = [os.path.join(folder, "*.yaml")]

    import pulumi

    try:
        resources = run_program(config=values, secret_keys=secret_keys, stack=args.stack)
    except pulumi.RunError as error:
        print(error, file=sys.stderr)
        return 1
    json.dump(redacted(resources), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
