"""README.md's set-up steps as the local platform reads them: what it understands and what it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.local.steps import (
    REPO_ROOT,
    SetupError,
    Step,
    apply_database_steps,
    parse_token_request,
    readme_steps,
)


def write_readme(tmp_path: Path, database_block: str, vault_block: str = "vault policy write p vault/x.hcl") -> Path:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# t\n\nOnce per database, an administrator runs:\n\n```sh\n"
        f"{database_block}\n```\n\nOnce per Vault, install:\n\n```sh\n{vault_block}\n```\n\n## Next\n\n"
        "```sh\nrm -rf /\n```\n"
    )
    return readme


def test_the_readme_steps_name_only_files_of_the_repository_and_every_step_is_understood() -> None:
    steps = readme_steps()
    assert steps.database and steps.vault
    executed: list[str] = []
    passwords: list[str] = []
    outcome = apply_database_steps(
        steps.database, executed.append, lambda role, _pw: passwords.append(role), known_passwords={}
    )
    # The SQL comes from the repository's files, byte for byte.
    assert (REPO_ROOT / "sql/provisioner.sql").read_text(encoding="utf-8") in executed
    assert "smarteros_provisioner" in outcome.passwords and passwords == list(outcome.passwords)
    for step in steps.vault:
        if step.argv[1:3] == ("policy", "write"):
            assert (REPO_ROOT / step.argv[4]).is_file()
        elif step.argv[1:3] == ("token", "create"):
            assert parse_token_request(step).policies


def test_blocks_after_the_next_heading_are_not_read(tmp_path: Path) -> None:
    readme = write_readme(tmp_path, "psql \"$ADMIN_URL\" -c 'SELECT 1'")
    steps = readme_steps(readme)
    assert [s.argv[0] for s in (*steps.database, *steps.vault)] == ["psql", "vault"]
    assert steps.database[0].where == "README.md:6"


def test_a_command_it_does_not_understand_is_refused_with_its_line(tmp_path: Path) -> None:
    readme = write_readme(tmp_path, "psql \"$ADMIN_URL\" -c 'SELECT 1'\ncurl http://example.invalid | sh")
    with pytest.raises(SetupError, match=r"README\.md:7: only psql commands .*curl"):
        apply_database_steps(readme_steps(readme).database, lambda _s: None, lambda _r, _p: None)


def test_a_file_outside_the_repository_is_refused(tmp_path: Path) -> None:
    readme = write_readme(tmp_path, 'psql "$ADMIN_URL" -f ../../etc/passwd')
    executed: list[Any] = []
    with pytest.raises(SetupError, match="is not a file of this repository"):
        apply_database_steps(readme_steps(readme).database, executed.append, lambda _r, _p: None)
    assert executed == []


def test_psql_meta_commands_are_refused_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "x.sql").write_text("SELECT 1;\n\\gexec\n")
    readme = write_readme(tmp_path, 'psql "$ADMIN_URL" -f sql/x.sql')
    executed: list[Any] = []
    with pytest.raises(SetupError, match=r"x\.sql:2: psql meta-command"):
        apply_database_steps(readme_steps(readme).database, executed.append, lambda _r, _p: None, root=tmp_path)
    assert executed == []


def test_a_kept_password_is_set_again_rather_than_a_new_one() -> None:
    step = Step(("psql", "$ADMIN_URL", "-c", "\\password smarteros_provisioner"), 1)
    set_to: list[tuple[str, str]] = []
    outcome = apply_database_steps(
        [step], lambda _s: None, lambda r, p: set_to.append((r, p)), known_passwords={"smarteros_provisioner": "kept"}
    )
    assert set_to == [("smarteros_provisioner", "kept")] and outcome.passwords == {"smarteros_provisioner": "kept"}
    fresh = apply_database_steps([step], lambda _s: None, lambda r, p: set_to.append((r, p)))
    assert len(fresh.passwords["smarteros_provisioner"]) >= 32


def test_token_create_flags_become_the_api_body() -> None:
    words = "vault token create -policy=a -policy b -no-default-policy -orphan -period=24h"
    step = Step(tuple(words.split(" ")), 3)
    request = parse_token_request(step)
    assert request.orphan is True
    assert request.body() == {"policies": ["a", "b"], "no_default_policy": True, "period": "24h"}
    with pytest.raises(SetupError, match=r"README\.md:3: flag -wrap-ttl not understood"):
        parse_token_request(Step(("vault", "token", "create", "-wrap-ttl=60s"), 3))


def test_a_taken_port_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    import socket

    from components import local

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        directory = tmp_path / "platform"
        with pytest.raises(local.LocalPlatformError, match=rf"PostgreSQL: port {port} on 127\.0\.0\.1 is taken"):
            local.start(directory, postgres_port=port, vault_port=0)
    assert list(directory.iterdir()) == []  # no state, no cluster: the next start may choose other ports
