"""Which credentials a pull request's code can reach, read from the shipped workflows.

On ``pull_request`` GitHub runs the workflow file of the pull request's own branch: a branch of this
repository can rewrite any job, so every GitHub environment a pull-request job deploys to hands all of its
secrets to that branch's code, whatever the shipped workflows pass to which step. README promises that a
hostile branch gets nothing that can write ("Previews with credentials that cannot write"): such an
environment may hold only read-only identities and the state passphrase.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from components.access import read_only

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
READ_ONLY_SECRETS = {
    "PULUMI_BACKEND_URL",
    "PULUMI_CONFIG_PASSPHRASE",
    "CLOUDFLARE_READ_TOKEN",  # Zone DNS Read, Access Read
    "VAULT_PREVIEW_TOKEN",  # vault/preview.hcl: read and list only
    "POSTGRES_PREVIEW_PASSWORD",  # sql/preview.sql: owns nothing, writes nothing
}
SECRET = re.compile(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)")


def workflows() -> dict[str, dict[Any, Any]]:
    return {path.name: yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(WORKFLOWS.glob("*.yml"))}


def environment(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    return env.get("name") if isinstance(env, dict) else env


def branch_environments() -> set[str]:
    """Environments some job deploys to on ``pull_request`` (the branch's workflow file decides the rest)."""
    found: set[str] = set()
    for flow in workflows().values():
        triggers = flow.get(True, flow.get("on"))  # PyYAML reads the key `on` as True
        if "pull_request" not in (triggers or {}):
            continue
        for job in flow["jobs"].values():
            name = environment(job)
            if name and "push" not in str(job.get("if", "")):
                found.add(name)
    return found


def test_the_preview_environment_is_the_one_pull_requests_reach() -> None:
    assert branch_environments() == {"preview"}


def test_no_environment_a_pull_request_reaches_holds_a_credential_that_can_write() -> None:
    reachable = branch_environments()
    held: dict[str, set[str]] = {}
    for name, flow in workflows().items():
        for job_name, job in flow["jobs"].items():
            if environment(job) in reachable:
                for secret in SECRET.findall(yaml.safe_dump(job)):
                    held.setdefault(secret, set()).add(f"{name}:{job_name}")
    assert {secret: jobs for secret, jobs in held.items() if secret not in READ_ONLY_SECRETS} == {}


def test_every_job_in_an_environment_a_pull_request_reaches_runs_read_only() -> None:
    """A misspelt switch would leave a run writing without a word: each such job sets it, readably."""
    reachable = branch_environments()
    for name, flow in workflows().items():
        for job_name, job in flow["jobs"].items():
            if environment(job) in reachable:
                envs = [
                    step.get("env") or {}
                    for step in job["steps"]
                    if step.get("uses", "").startswith("pulumi/") and (step.get("with") or {}).get("command")
                ]
                envs += [step.get("env") or {} for step in job["steps"] if "pulumi " in str(step.get("run", ""))]
                assert envs, f"{name}:{job_name} runs no pulumi command"
                for env in envs:
                    assert read_only(env) is True, f"{name}:{job_name}"


def jobs_holding(secret: str) -> set[str]:
    return {
        f"{name}:{job_name}"
        for name, flow in workflows().items()
        for job_name, job in flow["jobs"].items()
        if secret in SECRET.findall(yaml.safe_dump(job))
    }


def test_metabase_keys_reach_only_the_converge_and_the_drift_check() -> None:
    """Metabase has no read-only key: only `pulumi up` (production) and the scheduled drift check (its own
    environment, which no pull request deploys to) hold one."""
    flows = workflows()
    assert environment(flows["tenants.yml"]["jobs"]["up"]) == "production"
    assert environment(flows["drift.yml"]["jobs"]["drift"]) == "drift"
    assert "drift" not in branch_environments()
    assert jobs_holding("METABASE_API_KEY") == {"tenants.yml:up"}
    assert jobs_holding("METABASE_DRIFT_API_KEY") == {"drift.yml:drift"}
    held = {s for name, flow in flows.items() for job in flow["jobs"].values() for s in SECRET.findall(str(job))}
    assert not {s for s in held if s.startswith("METABASE")} - {"METABASE_API_KEY", "METABASE_DRIFT_API_KEY"}


def test_the_drift_check_runs_read_only() -> None:
    [step] = [s for s in workflows()["drift.yml"]["jobs"]["drift"]["steps"] if "pulumi preview" in str(s.get("run"))]
    assert read_only(step["env"]) is True
    assert step["env"]["PGUSER"] == "smarteros_preview"
