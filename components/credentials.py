"""Values that look like credentials: PEM blocks, passwords in URLs or connection strings, well-known token
prefixes, long random-looking tokens. Used on every value, key and comment of a tenant file, and on
stack files, so that a credential is refused where it is written and never repeated in a message."""

from __future__ import annotations

import math
import re
from collections import Counter

# Every pattern runs in time linear in the value's length, whatever the value: a variable-length part is
# possessive (``*+``, ``{n,}+``: no backtracking into it), and a pattern that needs something after such
# a part may only start where a run of its characters starts (the look-behind), so no character is
# scanned from more than one starting point. A tenant file of a megabyte validates in about a second.
_RUN = r"A-Za-z0-9_\-"
_START = rf"(?<![{_RUN}.])"
_PEM_RE = re.compile(r"-----BEGIN [A-Z0-9 ]*+-----")
_URL_PASSWORD_RE = re.compile(r"://[^\s/:@]*+:[^\s/@]++@")
_KV_PASSWORD_RE = re.compile(r"(?i)(?:^|[\s;])(?:password|passwd|pwd)\s*+=\s*+\S")
_PREFIXES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20}"), "a GitHub token"),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20}"), "a GitHub token"),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{16}"), "a GitLab token"),
    (re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10}"), "a Stripe secret key"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10}"), "a Slack token"),
    (re.compile(r"\bxapp-[A-Za-z0-9-]{10}"), "a Slack token"),
    (re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"), "an AWS access key"),
    (re.compile(r"\bAIza[A-Za-z0-9_-]{35}"), "a Google API key"),
    (re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20}"), "an API secret key"),
    (re.compile(r"\bhv[sbr]\.[A-Za-z0-9_-]{20}"), "a Vault token"),
    (re.compile(r"\bnpm_[A-Za-z0-9]{30}"), "an npm token"),
    (re.compile(rf"{_START}SG\.[{_RUN}]{{16,}}+\.[{_RUN}]{{16}}"), "a SendGrid key"),
    (re.compile(rf"{_START}eyJ[{_RUN}]{{8,}}+\.eyJ[{_RUN}]{{8,}}+\.[{_RUN}]{{8}}"), "a JSON Web Token"),
)
_TOKEN_RE = re.compile(r"[A-Za-z0-9+/_=-]{24,}+")
_HEX_RE = re.compile(r"[0-9a-fA-F]{32,}+")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_WORDY_RE = re.compile(
    r"[A-Z]?+[a-z]++(?:[A-Z][a-z]++)*+[0-9]{0,4}+|[A-Z]{1,8}+[0-9]{0,4}+|[0-9]{1,8}+|[a-z]{1,3}+[0-9]{1,3}+"
)
_SEPARATORS_RE = re.compile(r"[-_/+=.]++")


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _random_looking(token: str) -> str | None:
    if _UUID_RE.fullmatch(token):
        return None
    digit, lower, upper = (re.search(c, token) is not None for c in ("[0-9]", "[a-z]", "[A-Z]"))
    if _HEX_RE.fullmatch(token) and digit and (lower or upper):
        return "a long hexadecimal token"
    parts = [p for p in _SEPARATORS_RE.split(token) if p]
    if all(_WORDY_RE.fullmatch(p) for p in parts):
        return None  # identifiers made of words, such as query-builder-and-native
    classes = sum((lower, upper, digit))
    if classes >= 2 and _entropy(token) >= 3.5:
        return "a long random-looking token"
    return None


def credential_kind(value: str, *, random_tokens: bool = True) -> str | None:
    """What kind of credential a text value looks like, or ``None`` when it looks harmless.

    ``random_tokens=False`` keeps only the unambiguous signs (PEM blocks, passwords in URLs or connection
    strings, well-known token prefixes), for files such as stack config that hold hexadecimal account ids.
    """
    if _PEM_RE.search(value):
        return "a PEM block"
    if _URL_PASSWORD_RE.search(value):
        return "a URL with a password"
    if _KV_PASSWORD_RE.search(value):
        return "a connection string with a password"
    for pattern, kind in _PREFIXES:
        if pattern.search(value):
            return kind
    if not random_tokens:
        return None
    for token in _TOKEN_RE.findall(value):
        looks = _random_looking(token)
        if looks:
            return looks
    return None
