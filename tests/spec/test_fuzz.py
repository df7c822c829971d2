"""A fuzzer over tenant files: whatever the YAML, ``validate`` answers with messages, quickly, and never
repeats a credential planted anywhere in the file (a value, a key, a tag, a comment, the whole file).

Deterministic (``derandomize``, no example database) and bounded to a few seconds, so it runs in the
default suite; raise ``FUZZ_EXAMPLES`` to search longer.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from components.__main__ import main

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
SECONDS_PER_FILE = 2.0

# (credential, a fragment of it that must never appear in any message)
CREDENTIALS: list[tuple[str, str]] = [
    ("postgres://admin:S3cr3tPassw0rd@db.internal:5432/prod", "S3cr3tPassw0rd"),
    ("ghp_Z3x9Qw8Rt5Yu2Io4Pa6Sd7Fg1Hj0Kl3Mn5Bv", "Z3x9Qw8Rt5Yu2Io4"),
    ("sk_live_abcdefghijklmnop1234", "abcdefghijklmnop1234"),
    ("hvs.CAESIJ8sZLkqN3xR2mVt7YwPq4HbUe9FgKd", "CAESIJ8sZLkqN3xR2"),
    ("AKIAIOSFODNN7EXAMPLE", "IOSFODNN7EXAMPLE"),
    ("host=db user=app password=Hunter2Hunter2", "Hunter2Hunter2"),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXk",
    ),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlc2lnbmF0dXJl", "eyJzdWIiOiJhZG1pbiJ9"),
    ("Qm9vTmV3U2VjcmV0S2V5MTIzNDU2Nzg5MGFiY2RlZg", "Qm9vTmV3U2VjcmV0S2V5"),
]
FRAGMENTS = [fragment for _, fragment in CREDENTIALS]

BASE: dict[str, Any] = {
    "rut": "76.953.480-6",
    "slug": "acme",
    "name": "Acme SpA",
    "status": "active",
    "plan": "pro",
    "products": ["chat"],
    "access": {"emails": ["ana@acme.cl"], "email_domains": ["acme.cl"]},
    "database": {"tables": ["orders"], "statement_timeout": "30s", "connection_limit": 5},
    "secrets": {"odoo": {"generate": ["admin_password"], "rotate": 1}},
    "analytics": {"collection": "Ventas", "queries": "no"},
}
FIELDS = [
    ("rut",), ("slug",), ("name",), ("plan",), ("status",), ("trial_expires_at",), ("products",),
    ("access", "emails"), ("access", "email_domains"), ("access", "session_duration"),
    ("database", "statement_timeout"), ("database", "connection_limit"), ("database", "tables"),
    ("secrets", "odoo", "rotate"), ("secrets", "odoo", "generate"), ("analytics", "collection"),
    ("analytics", "enabled"), ("analytics", "queries"),
]  # fmt: skip

credential = st.sampled_from([c for c, _ in CREDENTIALS])
odd_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
        st.sampled_from(list("\u202e\u200b\u00a0\x00\t\n#:&*!|>'\"{}[],-?%@`\u0663")),
    ),
    max_size=24,
)
scalar = st.one_of(
    odd_text,
    credential,
    st.integers(min_value=-(10**450), max_value=10**450),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.dates().map(str),
    st.sampled_from(["30\u00a0s", "\u0663\u0660s", "[managed by smarteros: x]", "vault", "gmail.com", "a" * 300]),
)
long_value = st.sampled_from(["a" * 100_000, "eyJ-SG.-" * 12_500, "a://b:c" * 14_000, "-----BEGIN " + "A" * 100_000])
"""Values that made a backtracking credential scan take quadratic time (100 kB: 18 s)."""
value = st.recursive(
    scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3), max_leaves=4
)


def _set(data: dict[str, Any], path: tuple[str, ...], new: Any) -> None:
    for key in path[:-1]:
        child = data.get(key)
        if not isinstance(child, dict):
            child = data[key] = {}
        data = child
    data[path[-1]] = new


PIECES = [
    "fuzz_timestamp: !!timestamp soon", "fuzz_bool: {enabled: !!bool maybe}", "fuzz_int: !!int 0x_",
    "fuzz_float: !!float nope", "fuzz_null: !!null x", "<<: {a: 1}", "x: &a [*a]", "---",
    "a: !!python/object:os.system ls", "\tname: tab", "'", "[[[[", "{", "? [a]\n: b", "%YAML 1.1",
    "rut: 76953480-6 # " + CREDENTIALS[1][0],
]  # fmt: skip
"""Raw YAML spliced into a document: bad tags, merge keys, recursive aliases, syntax errors."""


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A tenant file: the base with some fields replaced, keys added, and raw YAML spliced in."""
    data: dict[str, Any] = yaml.safe_load(yaml.safe_dump(BASE))
    for path in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        _set(data, path, draw(value))
    if draw(st.integers(0, 11)) == 0:
        _set(data, draw(st.sampled_from(FIELDS)), draw(long_value))
    if draw(st.booleans()):
        parent: tuple[str, ...] = draw(st.sampled_from([("secrets",), ("access",), ()]))
        _set(data, (*parent, draw(st.one_of(odd_text, credential))), draw(value))
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(data, Dumper=dumper, allow_unicode=draw(st.booleans()), sort_keys=False, width=10**6)
    lines = text.splitlines()
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.sampled_from([len(lines), 0, draw(st.integers(0, len(lines)))]))
        piece = draw(
            st.one_of(
                st.sampled_from(PIECES),
                st.builds(lambda c: "# " + c.replace("\n", " "), credential),
                st.builds(lambda c: "name: !!int " + repr(c.replace("\n", " ")), credential),
                st.builds(lambda c: "plan: !" + c.replace("\n", "").replace(" ", "") + " x", credential),
                odd_text,
            )
        )
        lines.insert(at, piece)
    if draw(st.integers(0, 9)) == 0:
        return draw(credential)  # the whole file is a credential
    return "\n".join(lines) + "\n"


def _validate(folder: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["validate", "--project", str(folder), str(folder / "acme.yaml")])
    return code, out.getvalue() + err.getvalue()


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a slow failure is reported as found
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(documents())
# The inputs of the review that found these failures, so every run starts with them.
@example(CREDENTIALS[0][0] + "\n")
@example(f"rut: 76.953.480-6\nslug: acme\nname: !!int {CREDENTIALS[0][0]!r}\n")
@example("rut: 76.953.480-6\nsecrets:\n  sk_live_abcdefghijklmnop1234: {generate: [a]}\n")
@example("rut: 76.953.480-6\nstatus: trial\ntrial_expires_at: !!timestamp soon\n")
@example("rut: 76.953.480-6\nanalytics: {enabled: !!bool maybe}\n")
@example("rut: 76.953.480-6\nname: " + "a" * 200_000 + "\n")
@example("root:x:0:0:root:/root:/bin/bash\n")
def test_validate_never_crashes_hangs_or_echoes_a_credential(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "acme.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        start = time.perf_counter()
        code, output = _validate(Path(folder))
        elapsed = time.perf_counter() - start
    assert code in (0, 1), output
    assert "Traceback" not in output
    assert elapsed < SECONDS_PER_FILE
    for fragment in FRAGMENTS:
        assert fragment not in output, output


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
@given(st.binary(max_size=400))
def test_validate_answers_any_bytes_with_messages(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "acme.yaml").write_bytes(raw)
        code, output = _validate(Path(folder))
    assert code in (0, 1), output
    assert "Traceback" not in output
