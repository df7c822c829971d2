"""What validation reports: one :class:`Problem` per thing wrong, at a file position, and how values are
shown in messages (never a credential, never an invisible character as is)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from components import limits
from components.credentials import credential_kind


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file; ``line``/``col`` are 1-based, 0 when the file could not be read."""

    path: str
    line: int
    col: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}" if self.line else self.path
        text = f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        return limits.escape_invisible(text)


class SpecError(Exception):
    """Tenant files that cannot be deployed; ``str()`` gives one line per problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


Loc = tuple[str | int, ...]


def field_path(loc: Loc) -> str:
    """``('access', 'emails', 1)`` → ``access.emails[1]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def show(value: object, limit: int = 60) -> str:
    """A value as the user wrote it, quoted when it is text, shortened when long.

    Never the value itself when it looks like a credential, and control, invisible or bidirectional
    characters are written as escapes (``\\u202e``), so a message never leaks or disguises anything.
    """
    if isinstance(value, str):
        if credential_kind(value):
            return "a value that looks like a credential"
        text = value if len(value) <= limit else value[: limit - 1] + "…"
        return "'" + limits.escape_invisible(text.replace("\\", "\\\\").replace("'", "\\'")) + "'"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return f"a number of {len(str(abs(value)))} digits"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)
