"""A tenant's lifecycle as of a given day: what status it converges with, and when a trial needs attention.

A trial lasts up to and including ``trial_expires_at``, a day in the stack's time zone (stack config
``smarteros:timeZone``, default America/Santiago). From the next day on the tenant converges as
``suspended`` although its file still says ``trial``: nothing is deleted, and changing the file to
``active`` (the customer signed) or ``cancelled`` settles it. ``validate`` warns
:data:`TRIAL_WARNING_DAYS` days ahead, and ``plan`` shows the date.

Pure decisions only; nothing here imports Pulumi.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

from .spec import TenantSpec

TRIAL_WARNING_DAYS = 14

OPEN_STATUSES = frozenset({"trial", "active"})
"""Statuses whose people use the tenant's systems; ``suspended`` and ``cancelled`` keep everything closed."""


def is_open(status: str) -> bool:
    """Whether a tenant converging with ``status`` may log in, read its secrets and query its data."""
    return status in OPEN_STATUSES


def is_archived(status: str) -> bool:
    """Whether the tenant's Metabase collection is archived: a cancelled tenant's is (unarchived on return)."""
    return status == "cancelled"


def today_in(time_zone: str | tzinfo, now: datetime | None = None) -> date:
    """The calendar day it is in ``time_zone`` (``now`` defaults to the current instant)."""
    zone = ZoneInfo(time_zone) if isinstance(time_zone, str) else time_zone
    return (now or datetime.now(tz=zone)).astimezone(zone).date()


def trial_expired(tenant: TenantSpec, today: date) -> bool:
    """Whether the tenant is on a trial whose last day is before ``today``."""
    return tenant.status == "trial" and tenant.trial_expires_at is not None and tenant.trial_expires_at < today


def converging_status(tenant: TenantSpec, today: date) -> str:
    """The status the tenant converges with: its file's, except an expired trial, which is ``suspended``."""
    return "suspended" if trial_expired(tenant, today) else tenant.status


def as_of(tenant: TenantSpec, today: date) -> TenantSpec:
    """The tenant as the program registers it on ``today``: an expired trial becomes ``suspended``.

    The trial date is kept, so the registry still shows when the trial ended.
    """
    if not trial_expired(tenant, today):
        return tenant
    return tenant.model_copy(update={"status": "suspended"})


def trial_notice(tenant: TenantSpec, today: date) -> str | None:
    """A warning when the trial ends within :data:`TRIAL_WARNING_DAYS` days or has ended; else ``None``."""
    if tenant.status != "trial" or tenant.trial_expires_at is None:
        return None
    last_day = tenant.trial_expires_at
    left = (last_day - today).days
    if left < 0:
        return f"trial ended on {last_day.isoformat()}; the tenant converges as suspended until its status changes"
    if left > TRIAL_WARNING_DAYS:
        return None
    when = "today" if left == 0 else "tomorrow" if left == 1 else f"in {left} days"
    return (
        f"trial ends on {last_day.isoformat()} ({when}); from the day after, the tenant converges as suspended "
        "unless its status changes"
    )
