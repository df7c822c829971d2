"""The project's stack files (``Pulumi.<stack>.yaml``) as ``validate`` sees them.

Two things come from them: the policy every tenant file must satisfy (reserved slugs, public mail
domains, the platform's own hostnames; see :mod:`components.policy`), and problems of their own. A
credential in clear is refused: a key that names a credential (``vaultToken``, ``...Password``,
``...ApiKey``) must hold Pulumi's encrypted ``secure:`` form, and none may be there at all in a stack
whose ``smarteros:credentials`` is ``environment``, nor any encrypted value under whatever key; no value
or comment may look like a credential.
Messages name the file, line and key, never the value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .config import PROJECT, SECRET_KEYS, ConfigError, stack_config_from_raw
from .policy import Policy, policy_from_config
from .problems import Problem
from .spec import read_text_file
from .tenant_yaml import _FileChecker, comment_problems

CREDENTIAL_KEY_RE = re.compile(r"(?i)(password|passwd|secret|token|api_?key|private_?key|credential)")
"""Config key names that hold credentials, beyond the project's own :data:`components.config.SECRET_KEYS`."""


def credential_key(key: str) -> bool:
    """Whether a config key (``smarteros:vaultToken``, ``aws:secretKey``) names a credential."""
    name = key.rsplit(":", 1)[-1]
    if key in (f"{PROJECT}:credentials", "credentials"):
        return False  # where credentials come from, not one
    return name in SECRET_KEYS or CREDENTIAL_KEY_RE.search(name) is not None


def _encrypted(value: object) -> bool:
    """Whether a config value holds Pulumi's encrypted ``secure:`` form anywhere (``--path`` sets nest)."""
    if isinstance(value, dict):
        return "secure" in value or any(_encrypted(v) for v in value.values())
    if isinstance(value, list):
        return any(_encrypted(v) for v in value)
    return False


def check_stack_file(path: Path) -> tuple[Policy | None, list[Problem]]:
    """The policy of one stack file and every problem in it (``None`` when the file cannot be used)."""
    shown = str(path)
    unreadable: list[Problem] = []
    text = read_text_file(shown, unreadable)  # never through a link, never more than a megabyte
    if text is None:
        return None, unreadable
    checker = _FileChecker(shown, opaque_keys=frozenset({"secure"}), random_tokens=False)
    for line, col, message in comment_problems(text, random_tokens=False):
        checker.problems.append(Problem(shown, line, col, "", message))
    doc = checker.parse(text)
    if doc is None:
        return None, checker.problems
    config = doc.data.get("config") if isinstance(doc.data, dict) else None
    if not isinstance(config, dict):
        return Policy(), checker.problems
    from_environment = config.get(f"{PROJECT}:credentials", config.get("credentials")) == "environment"
    for key, value in config.items():
        if ("config", key) in doc.reported:
            continue  # already reported as a credential, once is enough
        if from_environment and (credential_key(key) or _encrypted(value)):
            variable = SECRET_KEYS.get(key.rsplit(":", 1)[-1])
            checker.add(
                doc.values.get(("config", key)),
                ("config", key),
                f"a credential in a stack whose credentials come from the environment "
                f"(`{PROJECT}:credentials: environment`); remove it"
                + (f" and give it to `pulumi up` as {variable}" if variable else ""),
            )
        elif credential_key(key) and not (isinstance(value, dict) and set(value) == {"secure"}):
            node = doc.values.get(("config", key))
            name = key if ":" in key else f"{PROJECT}:{key}"
            checker.add(
                node,
                ("config", key),
                f"a credential in clear; remove it and store it encrypted with "
                f"`pulumi config set --secret {name.removeprefix(PROJECT + ':')}`",
            )
    values = {
        (key if ":" in key else f"{PROJECT}:{key}"): value
        for key, value in config.items()
        if not credential_key(key)
    }
    try:
        policy = policy_from_config(stack_config_from_raw(values), shown)
    except ConfigError as error:
        for reason in str(error).splitlines():
            checker.problems.append(Problem(shown, 0, 0, "", f"stack config is not valid: {reason}"))
        return None, sorted(checker.problems, key=lambda p: (p.line, p.col))
    return policy, sorted(checker.problems, key=lambda p: (p.line, p.col))


def check_project(root: Path) -> tuple[Policy, list[Problem]]:
    """The policy of every stack in ``root`` together (``validate`` serves them all) and their problems."""
    policy = Policy()
    problems: list[Problem] = []
    for path in sorted(root.glob("Pulumi.*.yaml")):
        relative = os.path.relpath(path)
        stack_policy, stack_problems = check_stack_file(path if relative.startswith("..") else Path(relative))
        problems += stack_problems
        if stack_policy is not None:
            policy = policy.merged(stack_policy)
    return policy, problems
