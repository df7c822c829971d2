"""Which files are tenant files: one function, used by ``validate`` and by the program alike.

A stack names its tenant files with glob patterns (``smarteros:tenantFiles``); ``validate`` takes files,
folders or patterns. Either way :func:`select_tenant_files` decides, and it decides the same way:

- a tenant file is a regular file whose name ends in ``.yaml`` (exactly), found directly in a folder
  given or matched by a pattern; it is never followed through a symbolic link;
- anything else a folder or a pattern yields is an error that names it: a folder named ``*.yaml`` (the
  files inside it are not tenant files, even when a pattern reaches them), a symbolic link, a device or
  pipe, and a ``.yml`` / ``.YAML`` file beside the tenant files (it would otherwise be silently ignored);
- a folder or pattern that selects no tenant file is an error, unless the stack says
  ``smarteros:allowEmpty: true``: an empty selection would plan to delete every tenant.

Nothing here follows a link or reads a file's content, so selection cannot loop or hang.
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from .problems import Problem

SUFFIX = ".yaml"


@dataclass
class Selection:
    """The tenant files selected, in order, and every problem with what was selected."""

    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _kind_problem(path: str) -> str | None:
    """Why ``path`` (not followed if it is a link) is not a tenant file, or ``None`` when it is one."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        return f"cannot read: {(exc.strerror or 'unreadable').lower()}"
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link; tenant files must be regular files (copy the file instead)"
    if stat.S_ISDIR(info.st_mode):
        return "is a folder, not a tenant file; tenant files are not looked for inside it"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    folders = os.path.normpath(os.path.dirname(path)).split(os.sep)
    if any(part.lower().endswith((".yaml", ".yml")) for part in folders):
        return "is inside a folder named like a tenant file; tenant files are not nested"
    name = os.path.basename(path)
    if not name.endswith(SUFFIX):
        if name.lower().endswith((".yaml", ".yml")):
            return f"tenant files end in '{SUFFIX}' exactly; rename it to {name.rsplit('.', 1)[0]}{SUFFIX}"
        return f"is not a tenant file: tenant files end in '{SUFFIX}'"
    return None


def _looks_like_tenant_file(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith((".yaml", ".yml"))


def select_tenant_files(paths: Sequence[str | os.PathLike[str]], *, allow_empty: bool = False) -> Selection:
    """Tenant files named by ``paths`` (files, folders, glob patterns), sorted per entry, without repeats."""
    selection = Selection()
    seen: set[str] = set()
    chosen: set[str] = set()
    folders: set[str] = set()

    def take(path: str) -> bool:
        """Select ``path`` if it is a tenant file; whether it is one (selected now or before)."""
        key = os.path.abspath(path)
        if key in seen:
            return key in chosen
        seen.add(key)
        problem = _kind_problem(path)
        if problem:
            selection.problems.append(Problem(path, 0, 0, "", problem))
            return False
        chosen.add(key)
        selection.files.append(path)
        folders.add(os.path.dirname(os.path.normpath(path)))
        return True

    for raw in paths:
        given = os.fspath(raw)
        named_like_a_file = os.path.basename(os.path.normpath(given)).lower().endswith((".yaml", ".yml"))
        if os.path.isdir(given) and not os.path.islink(given) and not named_like_a_file:
            try:
                names = sorted(e.name for e in os.scandir(given) if _looks_like_tenant_file(e.name))
            except OSError as exc:
                selection.problems.append(Problem(given, 0, 0, "", f"cannot read: {(exc.strerror or '').lower()}"))
                continue
            folders.add(os.path.normpath(given))
            found = [take(os.path.join(given, name)) for name in names]
            if not any(found) and not allow_empty:
                selection.problems.append(Problem(given, 0, 0, "", f"no tenant files (*{SUFFIX}) in this folder"))
        elif glob.has_magic(given):
            matches = sorted(glob.glob(given))
            found = [take(name) for name in matches]
            if not any(found) and not allow_empty:
                message = "no files match this pattern" if not matches else "this pattern selects no tenant file"
                selection.problems.append(Problem(given, 0, 0, "", message))
        elif os.path.lexists(given):
            take(given)
        else:
            selection.problems.append(Problem(given, 0, 0, "", "cannot read: no such file or folder"))

    # A .yml or .YAML file next to tenant files would be ignored without a word: name it.
    for folder in sorted(folders):
        try:
            names = sorted(e.name for e in os.scandir(folder or "."))
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name) if folder else name
            if _looks_like_tenant_file(name) and not name.endswith(SUFFIX) and os.path.abspath(path) not in seen:
                seen.add(os.path.abspath(path))
                selection.problems.append(Problem(path, 0, 0, "", _kind_problem(path) or "not a tenant file"))
    return selection
