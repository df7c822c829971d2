"""A trial past its last day converges as suspended; ``validate`` warns two weeks ahead."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from components.config import DEFAULT_TIME_ZONE, ConfigError, stack_config_from_raw
from components.lifecycle import as_of, converging_status, today_in, trial_notice
from components.spec import load_tenants
from tests.harness.mocks import execute, one, stack_config

ROOT = Path(__file__).resolve().parents[2]
POLICY = "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy"
RECORD = "pulumi-python:dynamic/postgres:TenantRecord"
ADMIN_GROUP = {"group": {"id": "2f6c8a1e-4b3d-4e5f-9a7b-0c1d2e3f4a5b"}}

TRIAL = """\
rut: 76.953.480-6
slug: acme
name: Acme
status: trial
plan: trial
trial_expires_at: {day}
access:
  emails: [ana@acme.cl]
analytics:
  enabled: false
"""


def acme(folder: Path, day: date) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "acme.yaml"
    path.write_text(TRIAL.format(day=day.isoformat()), encoding="utf-8")
    return path


def test_the_day_is_the_stacks_not_the_machines() -> None:
    # 02:00 UTC on 1 June is still 31 May in Santiago (UTC-4) and already 1 June in Madrid.
    instant = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
    assert today_in("America/Santiago", instant) == date(2026, 5, 31)
    assert today_in("Europe/Madrid", instant) == date(2026, 6, 1)


def test_a_trial_lasts_through_its_last_day(tmp_path: Path) -> None:
    (tenant,) = load_tenants([acme(tmp_path, date(2026, 5, 31))])
    assert converging_status(tenant, date(2026, 5, 31)) == "trial"
    assert as_of(tenant, date(2026, 5, 31)) is tenant
    expired = as_of(tenant, date(2026, 6, 1))
    assert expired.status == "suspended"
    assert expired.trial_expires_at == date(2026, 5, 31)
    assert tenant.status == "trial"  # the file's tenant is untouched


@pytest.mark.parametrize(
    ("days_left", "notice"),
    [
        (15, None),
        (14, "trial ends on 2026-06-15 (in 14 days); from the day after, the tenant converges as suspended "
             "unless its status changes"),
        (1, "trial ends on 2026-06-02 (tomorrow); from the day after, the tenant converges as suspended "
            "unless its status changes"),
        (0, "trial ends on 2026-06-01 (today); from the day after, the tenant converges as suspended "
            "unless its status changes"),
        (-1, "trial ended on 2026-05-31; the tenant converges as suspended until its status changes"),
    ],
)
def test_trial_notice_starts_fourteen_days_ahead(tmp_path: Path, days_left: int, notice: str | None) -> None:
    today = date(2026, 6, 1)
    (tenant,) = load_tenants([acme(tmp_path, today + timedelta(days=days_left))])
    assert trial_notice(tenant, today) == notice


def test_an_expired_trial_is_registered_as_suspended_and_admits_only_the_admins(tmp_path: Path) -> None:
    acme(tmp_path / "tenants", date(2020, 1, 31))
    run = execute(config=stack_config("prod", tenantFiles=[str(tmp_path / "tenants" / "*.yaml")]), stack="prod")
    record = one(run.resources, type=RECORD, name="76953480-6-record")
    assert record.inputs["status"] == "suspended"
    assert record.inputs["trial_expires_at"] == "2020-01-31"
    policy = one(run.resources, type=POLICY, name="76953480-6-access-allow")
    assert policy.inputs["includes"] == [ADMIN_GROUP]
    assert run.stack_outputs["tenants"]["76953480-6"]["status"] == "suspended"


def test_a_running_trial_is_registered_as_a_trial(tmp_path: Path) -> None:
    acme(tmp_path / "tenants", date(2099, 12, 31))
    run = execute(config=stack_config("prod", tenantFiles=[str(tmp_path / "tenants" / "*.yaml")]), stack="prod")
    assert one(run.resources, type=RECORD, name="76953480-6-record").inputs["status"] == "trial"
    policy = one(run.resources, type=POLICY, name="76953480-6-access-allow")
    assert policy.inputs["includes"] == [{"email": {"email": "ana@acme.cl"}}, ADMIN_GROUP]


def test_an_unknown_time_zone_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError) as error:
        stack_config_from_raw({"smarteros:timeZone": "Mars/Olympus", "smarteros:cloudflare": {"enabled": False}})
    assert str(error.value) == (
        "smarteros:timeZone: unknown time zone 'Mars/Olympus' (expected an IANA name such as 'America/Santiago')"
    )


def test_validate_warns_about_a_trial_ending_soon_and_still_passes(tmp_path: Path) -> None:
    today = today_in(DEFAULT_TIME_ZONE)
    path = acme(tmp_path, today + timedelta(days=3))
    result = subprocess.run(
        [sys.executable, "-m", "components", "validate", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout == f"1 tenant file valid ({tmp_path})\n"
    last_day = (today + timedelta(days=3)).isoformat()
    assert result.stderr == (
        f"{path}:6:19: trial_expires_at: warning: trial ends on {last_day} (in 3 days); from the day after, "
        "the tenant converges as suspended unless its status changes\n"
    )


def test_validate_is_silent_about_a_trial_far_from_its_end(tmp_path: Path) -> None:
    acme(tmp_path, today_in(DEFAULT_TIME_ZONE) + timedelta(days=15))
    result = subprocess.run(
        [sys.executable, "-m", "components", "validate", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
