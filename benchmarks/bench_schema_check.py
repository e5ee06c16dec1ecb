"""Layer C throughput: valid specs per second through ``validate_against_schema``, per kind, on one core.

Uses the valid fixture specs under tests/validate/fixtures/valid. Prints figures; asserts nothing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent

from tools.validate.schema import kind_from_schema_url, validate_against_schema, warm  # noqa: E402

FIXTURES = REPO_ROOT / "tests" / "validate" / "fixtures" / "valid"


def main() -> int:
    specs = []
    for path in sorted(FIXTURES.rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        kind = kind_from_schema_url(data.get("$schema", "")) if isinstance(data, dict) else None
        if kind:
            specs.append((path.relative_to(FIXTURES), kind, data))
    started = time.perf_counter()
    warm({kind for _, kind, _ in specs})
    print(f"compile/load fast validators: {time.perf_counter() - started:.3f} s")
    for rel, kind, data in specs:
        assert validate_against_schema(kind, data) == [], rel
        n, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < 0.3:
            for _ in range(100):
                validate_against_schema(kind, data)
            n += 100
        print(f"{kind:24s} {str(rel):40s} {n / elapsed:10.0f} valid specs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
