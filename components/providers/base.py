"""What every dynamic resource of this project shares.

``DynamicResource`` is the base of every resource class in ``components/providers``. The SDK's
``serialize_provider`` wraps ``pickle._Pickler._batch_setitems`` in one more sorting closure on every
call and never restores it, so a program registering about a thousand dynamic resources in one process
would exceed Python's recursion limit. The base drops the accumulated layers before each registration;
the sorting itself stays in force, because the SDK wraps again on its next call.
"""

from __future__ import annotations

import pickle
from typing import Any

import pulumi
from pulumi.dynamic import Resource, ResourceProvider

from ..config import PROJECT


def reset_sdk_pickler() -> None:
    """Unwrap ``pickle._Pickler._batch_setitems`` down to the standard library's own method."""
    pickler: Any = pickle._Pickler
    method = pickler._batch_setitems
    while getattr(method, "__qualname__", "") != "_Pickler._batch_setitems" and getattr(method, "__closure__", None):
        inner = [cell.cell_contents for cell in method.__closure__ if callable(cell.cell_contents)]
        if not inner:
            break
        method = inner[0]
    pickler._batch_setitems = method


class DynamicResource(Resource):
    """A dynamic resource whose registration stays safe however many a program creates."""

    def __init__(
        self,
        provider: ResourceProvider,
        name: str,
        props: dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        reset_sdk_pickler()
        super().__init__(provider, name, props, opts)


def stack_marker() -> str:
    """``<project>/<stack>``: written into the ownership marker of every object this stack manages."""
    return f"{pulumi.get_project() or PROJECT}/{pulumi.get_stack()}"
