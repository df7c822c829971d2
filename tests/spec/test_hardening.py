"""Hostile inputs that need the file system or the program: links, folders named like files, huge values,
empty fleets and credentials in stack config. Each asserts the exact message a user sees."""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pulumi
import pytest

from components.__main__ import main
from components.config import plaintext_credentials
from components.fleet import select_files
from components.spec import SpecError
from tests.harness.mocks import execute, stack_config

ACME = "rut: 76.953.480-6\nslug: acme\nname: Acme SpA\nstatus: active\nplan: pro\n"
BETA = "rut: 10000013-K\nslug: beta\nname: Beta\nstatus: active\nplan: pro\n"


def validate(*args: str) -> tuple[int, str, str]:
    """``python -m components validate`` in-process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["validate", *args])
    return code, out.getvalue(), err.getvalue()


def test_a_symlink_to_a_system_file_is_named_and_its_content_never_shown(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(ACME)
    (tmp_path / "passwd.yaml").symlink_to("/etc/passwd")
    code, _, err = validate(str(tmp_path))
    assert code == 1
    assert err == (
        f"{tmp_path}/passwd.yaml: is a symbolic link; tenant files must be regular files (copy the file instead)\n"
        f"1 problem in 0 of 1 tenant files and 1 other file ({tmp_path})\n"
    )
    assert "root:" not in err


def test_a_symlink_loop_in_the_tenant_folder_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(ACME)
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    code, _, err = validate(str(tmp_path))
    assert code == 1
    assert err.splitlines()[0] == (
        f"{tmp_path}/loop.yaml: is a symbolic link; tenant files must be regular files (copy the file instead)"
    )
    assert "Traceback" not in err


def test_a_folder_named_like_a_tenant_file_is_refused_by_validate_and_by_the_program_alike(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(ACME)
    (tmp_path / "evil.yaml").mkdir()
    (tmp_path / "evil.yaml" / "beta.yaml").write_text(BETA)
    message = f"{tmp_path}/evil.yaml: is a folder, not a tenant file; tenant files are not looked for inside it"
    code, _, err = validate(str(tmp_path))
    assert code == 1
    assert err.splitlines()[0] == message
    with pytest.raises(SpecError) as raised:
        select_files([str(tmp_path / "*.yaml")])
    assert str(raised.value) == message
    with pytest.raises(pulumi.RunError, match="is a folder, not a tenant file"):
        execute(config=stack_config("dev", tenantFiles=[str(tmp_path / "*.yaml")]), stack="dev")


def test_validate_and_the_program_select_the_same_files(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(ACME)
    (tmp_path / "beta.yaml").write_text(BETA)
    (tmp_path / "notes.txt").write_text("not a tenant")
    selected = select_files([str(tmp_path / "*.yaml")])
    assert selected == [tmp_path / "acme.yaml", tmp_path / "beta.yaml"]
    code, out, _ = validate(str(tmp_path))
    assert (code, out) == (0, f"2 tenant files valid ({tmp_path})\n")
    run = execute(config=stack_config("dev", tenantFiles=[str(tmp_path / "*.yaml")]), stack="dev")
    assert sorted(run.stack_outputs["tenants"]) == ["10000013-K", "76953480-6"]


def test_a_stack_that_selects_no_tenant_file_refuses_to_run(tmp_path: Path) -> None:
    pattern = str(tmp_path / "*.yaml")
    with pytest.raises(pulumi.RunError) as raised:
        execute(config=stack_config("dev", tenantFiles=[pattern]), stack="dev")
    assert str(raised.value) == f"tenant files are not valid:\n{pattern}: no files match this pattern"


def test_allow_empty_lets_a_stack_converge_no_tenant(tmp_path: Path) -> None:
    pattern = str(tmp_path / "*.yaml")
    run = execute(config=stack_config("dev", tenantFiles=[pattern], allowEmpty=True), stack="dev")
    assert run.stack_outputs["tenants"] == {}
    assert not [r for r in run.resources if r.type == "smarteros:tenant:Tenant"]


def test_a_credential_in_clear_in_stack_config_stops_the_program(tmp_path: Path) -> None:
    token = "hvs.CAESIJ8sZLkqN3xR2mVt7YwPq4HbUe9FgKd"
    config = stack_config("dev", vaultToken=token)
    with pytest.raises(pulumi.RunError) as raised:
        execute(config=config, stack="dev")
    assert str(raised.value) == (
        "stack config is not valid:\nsmarteros:vaultToken: a credential in clear; "
        "store it with `pulumi config set --secret`"
    )
    assert token not in str(raised.value)
    # Set with --secret, the same value is accepted.
    execute(config=config, secret_keys=["smarteros:vaultToken"], stack="dev")


def test_plaintext_credentials_names_only_keys_set_in_clear() -> None:
    values = {"vaultToken": "x", "postgresPassword": "y", "metabaseApiKey": None}
    found = plaintext_credentials(values.get, lambda key: key == "smarteros:postgresPassword")
    assert found == ["smarteros:vaultToken"]


def test_a_200_kb_name_is_refused_at_once_without_repeating_it(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(ACME.replace("name: Acme SpA", "name: " + "a" * 200_000))
    code, _, err = validate(str(tmp_path))
    assert code == 1
    assert err == (
        f"{tmp_path}/acme.yaml:3:7: name: is 200000 characters long; at most 200 are allowed\n"
        f"1 problem in 1 of 1 tenant files ({tmp_path})\n"
    )


def test_a_fifo_is_named_and_never_read(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(ACME)
    os.mkfifo(tmp_path / "pipe.yaml")
    code, _, err = validate(str(tmp_path))
    assert code == 1
    assert err.splitlines()[0] == f"{tmp_path}/pipe.yaml: is not a regular file"


def test_an_unexpected_failure_is_one_line_without_traceback_or_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "postgres://admin:S3cr3tPassw0rd@db.internal:5432/prod"

    def broken(*_args: object, **_kwargs: object) -> None:
        raise KeyError(secret)

    monkeypatch.setattr("components.spec.check_selected", broken)
    code, out, err = validate(str(tmp_path))
    assert (code, out) == (2, "")
    assert err == (
        "validate stopped on an internal error (KeyError); no file content is shown. "
        "Please report it with the file that caused it.\n"
    )


def test_the_program_refuses_a_slug_naming_one_of_the_stacks_own_hosts(tmp_path: Path) -> None:
    # This stack puts Metabase on tableros.smarterbot.cl: a tenant "tableros" would take over that hostname.
    (tmp_path / "tableros.yaml").write_text(ACME.replace("slug: acme", "slug: tableros"))
    config = stack_config("prod", tenantFiles=[str(tmp_path / "*.yaml")])
    config["smarteros:metabase"] = {**config["smarteros:metabase"], "url": "https://tableros.smarterbot.cl"}
    with pytest.raises(pulumi.RunError) as raised:
        execute(config=config, stack="prod")
    assert str(raised.value) == (
        f"tenant files are not valid:\n{tmp_path}/tableros.yaml:2:7: slug: 'tableros' is a hostname the platform "
        "keeps for itself (reserved: stack config smarteros:reservedSlugs and the platform's own hosts); "
        "choose another slug"
    )


def test_a_stack_extends_the_public_mail_domains_the_program_refuses(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(ACME + "access:\n  email_domains: [correo.example]\n")
    config = stack_config("dev", tenantFiles=[str(tmp_path / "*.yaml")])
    execute(config=config, stack="dev")  # not a public provider by default
    with pytest.raises(pulumi.RunError, match=r"'correo\.example' is a public mail provider"):
        execute(config={**config, "smarteros:publicMailDomains": ["correo.example"]}, stack="dev")


def test_the_platform_hosts_of_a_stack_are_reserved_labels() -> None:
    from components.config import stack_config_from_raw
    from components.policy import labels_under_zone, policy_from_config

    policy = policy_from_config(stack_config_from_raw(stack_config("prod")))
    assert {"vault", "ingress", "www", "api", "kpi"} <= policy.reserved_labels
    hosts = ["https://vault.smarterbot.cl", "chat.ingress.smarterbot.cl", "db.elsewhere.co", "smarterbot.cl"]
    assert labels_under_zone(hosts, "smarterbot.cl") == {"vault", "ingress"}


def test_a_yml_file_beside_the_files_a_pattern_selects_stops_the_program(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(ACME)
    (tmp_path / "beta.yml").write_text(BETA)
    pattern = str(tmp_path / "*.yaml")
    with pytest.raises(pulumi.RunError) as raised:
        execute(config=stack_config("dev", tenantFiles=[pattern]), stack="dev")
    assert str(raised.value) == (
        f"tenant files are not valid:\n{tmp_path}/beta.yml: tenant files end in '.yaml' exactly; rename it to beta.yaml"
    )


def test_a_file_inside_a_folder_named_like_a_tenant_file_is_never_a_tenant(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(ACME)
    (tmp_path / "evil.yaml").mkdir()
    (tmp_path / "evil.yaml" / "beta.yaml").write_text(BETA)
    with pytest.raises(SpecError) as raised:
        select_files([str(tmp_path / "*.yaml"), str(tmp_path / "*" / "*.yaml")])
    assert str(raised.value).splitlines() == [
        f"{tmp_path}/evil.yaml: is a folder, not a tenant file; tenant files are not looked for inside it",
        f"{tmp_path}/evil.yaml/beta.yaml: is inside a folder named like a tenant file; tenant files are not nested",
        f"{tmp_path}/*/*.yaml: this pattern selects no tenant file",
    ]


def test_a_stack_file_that_is_a_link_is_named_and_never_read(tmp_path: Path) -> None:
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "acme.yaml").write_text(ACME)
    (tmp_path / "Pulumi.evil.yaml").symlink_to("/etc/passwd")
    code, _, err = validate("--project", str(tmp_path), str(tmp_path / "tenants"))
    assert code == 1
    assert err == (
        f"{tmp_path}/Pulumi.evil.yaml: cannot read: too many levels of symbolic links\n"
        f"1 problem in 0 of 1 tenant files and 1 other file ({tmp_path}/tenants)\n"
    )


def test_a_folder_named_like_a_tenant_file_is_refused_even_when_named_explicitly(tmp_path: Path) -> None:
    (tmp_path / "evil.yaml").mkdir()
    (tmp_path / "evil.yaml" / "acme.yaml").write_text(ACME)
    with pytest.raises(SpecError) as raised:
        select_files([str(tmp_path / "evil.yaml")])
    assert str(raised.value) == (
        f"{tmp_path}/evil.yaml: is a folder, not a tenant file; tenant files are not looked for inside it"
    )
