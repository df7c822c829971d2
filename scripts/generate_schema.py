"""Write tenants/tenant.schema.json from the tenant model, the schema editors use to check tenant files.

Run after changing components/spec.py:  .venv/bin/python scripts/generate_schema.py
With --check it writes nothing and exits 1 when the committed file is out of date.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "tenants" / "tenant.schema.json"


def render() -> str:
    """The schema file's exact text."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from components.spec import tenant_json_schema

    return json.dumps(tenant_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when the file is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"{SCHEMA_PATH.relative_to(ROOT)} is out of date; run scripts/generate_schema.py", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
