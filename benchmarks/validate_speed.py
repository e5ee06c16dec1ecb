"""Validation speed: specs per second through layers A, C and D (one core, SDK already imported), layer B alone
(the azure-ai-ml loaders, i.e. what `az ml` itself spends), a naive layer C (plain jsonschema, no compiled fast
path) as the in-run baseline, and the wall time of `make check` on a warm venv.

    .venv/bin/python benchmarks/validate_speed.py [--seconds 3] [--skip-make]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from tools.core.offline import apply_offline_env  # noqa: E402

apply_offline_env()


def corpus() -> list[tuple[Path, str, str]]:
    from tools.render.values import workspace_names
    from tools.validate.cli import spec_paths_of_workspace

    files = []
    for workspace in workspace_names(ROOT):
        for path, display in spec_paths_of_workspace(workspace, ROOT):
            files.append((path, display, path.read_text()))
    return files


def kinds_seen(files: list[tuple[Path, str, str]]) -> set[str | None]:
    from tools.validate.document import parse_spec

    return {parse_spec(path, display, text).kind for path, display, text in files}


def rate(fn, items: list, seconds: float) -> tuple[float, int]:
    """Items per second of ``fn`` over ``items``, repeated for at least ``seconds``."""
    done = 0
    start = time.perf_counter()
    while True:
        for item in items:
            fn(item)
        done += len(items)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum time per measurement")
    parser.add_argument("--skip-make", action="store_true", help="do not time `make check`")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    from tools.core.yamlio import plain
    from tools.validate.cli import validate_specs
    from tools.validate.document import parse_spec
    from tools.validate.findings import ERROR

    files = corpus()
    import_start = time.perf_counter()
    import azure.ai.ml  # noqa: F401  (the one-off cost every `validate` process pays once)

    sdk_import = time.perf_counter() - import_start

    def acd(item: tuple[Path, str, str]) -> None:
        report = validate_specs([parse_spec(item[0], item[1], item[2])], layers="ACD")
        assert not any(f.severity == ERROR and f.layer != "D" for f in report.findings)

    def b_only(item: tuple[Path, str, str]) -> None:
        validate_specs([parse_spec(item[0], item[1], item[2])], layers="B")

    import json

    from jsonschema import Draft7Validator

    from tools.validate.schema import schema_path

    naive = {}

    def naive_c(item: tuple[Path, str, str]) -> None:
        spec = parse_spec(item[0], item[1], item[2])
        if spec.kind not in naive:
            naive[spec.kind] = Draft7Validator(json.loads(schema_path(spec.kind).read_text()))
        list(naive[spec.kind].iter_errors(plain(spec.data)))

    for fn in (acd, naive_c, b_only):  # warm caches (compiled schemas, SDK schema classes)
        for item in files:
            fn(item)
    acd_rate, _ = rate(acd, files, args.seconds)
    naive_rate, _ = rate(naive_c, files, args.seconds)
    b_rate, _ = rate(b_only, files, args.seconds)

    print(f"corpus: {len(files)} rendered specs of every workspace, {len({k for k in kinds_seen(files)})} kinds")
    print(f"azure.ai.ml import (once per process): {sdk_import:.2f} s")
    print()
    print(f"{'measurement (one core)':46} {'specs/s':>10} {'ratio':>8}")
    print(f"{'layers A+C+D (fast path)':46} {acd_rate:10.0f} {acd_rate / b_rate:7.1f}x")
    print(f"{'layer C alone, plain jsonschema (naive C)':46} {naive_rate:10.0f} {naive_rate / b_rate:7.1f}x")
    print(f"{'layer B alone, azure-ai-ml loaders (baseline)':46} {b_rate:10.0f} {1.0:7.1f}x")
    print(f"target: >= 1000 specs/s through A+C+D: {'met' if acd_rate >= 1000 else 'NOT met'}")
    if not args.skip_make:
        env = dict(os.environ)
        start = time.perf_counter()
        result = subprocess.run(["make", "-s", "check"], cwd=ROOT, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        status = "ok" if result.returncode == 0 else f"FAILED ({result.returncode})"
        print(f"make check (warm venv): {wall:.2f} s wall, {status}; target < 5 s: {'met' if wall < 5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
