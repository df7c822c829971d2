"""A fleet-sized program: registering thousands of dynamic resources in one process stays possible."""

from __future__ import annotations

import sys

from components.providers.vault import VaultPolicy
from tests.harness.mocks import by_type, run_program


def test_more_dynamic_resources_than_the_recursion_limit_register_in_one_program() -> None:
    count = sys.getrecursionlimit() + 200

    def program() -> None:
        for body in range(count):
            VaultPolicy(f"{body}-policy", rut=f"{body}-0", mount="secret", stack="smarteros/test")

    resources = run_program(program)
    policies = by_type(resources, "pulumi-python:dynamic/vault:AclPolicy")
    assert len(policies) == count
    assert len({r.inputs["__provider"] for r in policies}) == 1
