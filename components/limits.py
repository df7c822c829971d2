"""Every limit a provider or a server enforces on what a tenant file turns into, defined once.

``python -m components validate`` checks tenant files against these definitions, and the dynamic
providers' ``check`` functions use the same ones, so a file that validates never fails at preview or
apply for its own content. Each limit names where it comes from.

This module imports nothing but the standard library: validation stays fast and needs no credentials.
"""

from __future__ import annotations

import re
import unicodedata

# -- lengths ---------------------------------------------------------------------------------------

NAME_MAX_LENGTH = 200
"""Characters in a tenant's display name (the registry's ``tenants.name``, Metabase names built from it)."""

PLAN_MAX_LENGTH = 100
"""Characters in a tenant's plan (the registry's ``tenants.plan``)."""

METABASE_NAME_MAX_LENGTH = 254
"""Characters in a Metabase collection, group or database name: Metabase stores them in ``VARCHAR(254)``
columns (``collection.name``, ``metabase_database.name``)."""

KEY_MAX_LENGTH = 64
"""Characters in any key of a tenant file; the longest real key (``trial_expires_at``) has 16."""

SLUG_PATTERN = r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$"
"""A slug: one DNS label with room for the longest product suffix (``-automation``) under 63 characters."""

# -- integer ranges --------------------------------------------------------------------------------

CONNECTION_LIMIT_MIN = 1
CONNECTION_LIMIT_MAX = 1000
"""Range of a tenant role's ``CONNECTION LIMIT`` (PostgreSQL accepts -1 to 2^31-1; the platform allows this)."""

ROTATE_MAX = 2**53 - 1
"""Largest ``rotate``: Pulumi carries numbers as IEEE doubles, exact for whole numbers up to 2^53 - 1;
beyond that two values compare equal (a rotation is missed) and past 10^308 serialisation overflows."""

PG_INT_MAX = 2_147_483_647
"""PostgreSQL's largest integer setting; ``statement_timeout`` is an integer number of milliseconds."""

# -- statement_timeout as PostgreSQL reads it ------------------------------------------------------

PG_TIMEOUT_UNITS_MS: dict[str, int] = {"ms": 1, "s": 1_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
"""Time units PostgreSQL accepts for a setting stored in milliseconds (case-sensitive, ``guc.c``)."""

PG_TIMEOUT_RE = re.compile(r"^[ \t]*([0-9]{1,12})[ \t]*(ms|s|min|h|d)?[ \t]*$", re.ASCII)
"""What PostgreSQL's ``parse_int`` accepts for ``statement_timeout`` and this project sends: ASCII digits,
ASCII blanks and a unit. ``str.isdigit`` or ``\\s`` would also let through Arabic-Indic digits and
no-break spaces, which the server refuses with SQLSTATE 22023."""


def statement_timeout_ms(value: str, *, unit_required: bool = False) -> int:
    """``statement_timeout`` in milliseconds (a bare number means milliseconds, as in PostgreSQL).

    Raises :class:`ValueError` when PostgreSQL would refuse the value or read it differently: anything but
    ASCII digits, blanks and a unit, or more than :data:`PG_INT_MAX` milliseconds.
    """
    match = PG_TIMEOUT_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None or (unit_required and match.group(2) is None):
        raise ValueError("not a duration such as 500ms, 30s, 5min or 1h")
    milliseconds = int(match.group(1)) * PG_TIMEOUT_UNITS_MS[match.group(2) or "ms"]
    if milliseconds > PG_INT_MAX:
        raise ValueError("longer than PostgreSQL allows (about 24 days)")
    return milliseconds


# -- characters ------------------------------------------------------------------------------------

_INVISIBLE_CATEGORIES = frozenset({"Cf", "Zl", "Zp", "Co", "Cs", "Cn"})
"""Format characters (bidirectional controls, zero-width characters), line and paragraph separators,
private-use, surrogate and unassigned code points."""

_INVISIBLE_EXTRA_RE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180e\u2800\u3164\uffa0\ufe00-\ufe0f\U000e0100-\U000e01ef]"
)
"""Letters and marks that render as nothing: Hangul fillers, the combining grapheme joiner, variation
selectors, the braille blank, Khmer inherent vowels."""


def forbidden_character(text: str) -> tuple[int, str, str] | None:
    """The first character no tenant text may hold: ``(index, 'U+202E', why)``, or ``None``.

    Control characters (NUL included: PostgreSQL text cannot hold it) and invisible or bidirectional
    characters, which make a name read differently from what it is.
    """
    if text.isprintable() and not _INVISIBLE_EXTRA_RE.search(text):
        return None  # the common case, at C speed; spaces other than U+0020 take the slow path
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category == "Cc":
            return index, f"U+{ord(char):04X}", "a control character"
        if category in _INVISIBLE_CATEGORIES or _INVISIBLE_EXTRA_RE.match(char):
            return index, f"U+{ord(char):04X}", "an invisible or bidirectional-control character"
    return None


def escape_invisible(text: str) -> str:
    """``text`` with every control, invisible or bidirectional character written as ``\\u202e``, so a
    message printed to a terminal shows exactly what the file holds."""
    if text.isprintable() and not _INVISIBLE_EXTRA_RE.search(text):
        return text
    return "".join(
        f"\\u{ord(ch):04x}" if not ch.isprintable() or _INVISIBLE_EXTRA_RE.match(ch) else ch for ch in text
    )


# -- ownership markers -----------------------------------------------------------------------------

METABASE_TAG_PREFIX = "[managed by smarteros: "
"""The tag the Metabase provider appends to descriptions it owns (``components.providers.metabase``);
a description that already holds it is refused by the provider's check."""

POSTGRES_MARKER_PREFIX = "managed by pulumi stack "
"""The ``COMMENT ON ROLE`` / ``tenants.managed_by`` prefix of the PostgreSQL provider."""

VAULT_MARKER = "managed-by: smarteros"
"""The first-line comment of every Vault policy the Vault provider writes."""

OWNERSHIP_MARKERS: tuple[str, ...] = (METABASE_TAG_PREFIX.strip(), POSTGRES_MARKER_PREFIX.strip(), VAULT_MARKER)


def ownership_marker_in(text: str) -> str | None:
    """The ownership marker ``text`` contains (compared case-insensitively), or ``None``."""
    folded = text.casefold()
    for marker in OWNERSHIP_MARKERS:
        if marker.casefold() in folded:
            return marker
    return None
