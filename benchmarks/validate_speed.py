"""Validation speed over a corpus of public specs (default ../shared/corpus/): the whole tree through every layer
cold (empty result cache, a fresh process: what a first `python -m tools validate` costs, SDK import included)
and warm (the same tree again, unchanged: served from build/cache/validate/), and layers A+C+D on one core in
this process (specs per second, SDK not involved), against a naive in-run baseline for layer C (plain
jsonschema without the compiled fast path).

    .venv/bin/python benchmarks/validate_speed.py [CORPUS_DIR ...] [--skip-cli]

Targets (issue 10, the 2-core machine): all layers <= 10 s cold, <= 2 s warm; A+C+D >= 2,000 specs/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from tools.core.offline import apply_offline_env  # noqa: E402

apply_offline_env()


def _cli(paths: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "tools", "validate", *paths, "--format", "json", "--output",
                             os.devnull], cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    return time.perf_counter() - start, result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="*", default=[str(ROOT.parent / "shared" / "corpus")])
    parser.add_argument("--skip-cli", action="store_true", help="only the in-process A+C+D figure")
    args = parser.parse_args()
    from tools.validate.cli import expand_paths
    from tools.validate.core import checkable
    from tools.validate.document import parse_spec

    files = expand_paths(args.corpus)
    print(f"corpus: {len(files)} spec files under {', '.join(args.corpus)}")
    if not args.skip_cli:
        cache = ROOT / "build" / "cache" / "validate"
        shutil.rmtree(cache, ignore_errors=True)
        env = dict(os.environ)
        cold, summary = _cli(args.corpus, env)
        warm, _ = _cli(args.corpus, env)
        print(f"all layers, cold (empty cache, fresh process): {cold:6.2f} s   target <= 10 s")
        print(f"all layers, warm (unchanged tree, cached):     {warm:6.2f} s   target <= 2 s   ({cold / warm:.0f}x)")
        print(f"  {summary}")

    # A + C + D in this process, one core: parse, schema check, repo rules (the pre-commit fast path)
    texts = [(path, path.read_text(errors="replace")) for path in files]
    from tools.validate.core import layer_c
    from tools.validate.rules import RuleContext, check_spec
    from tools.validate.schema import warm as warm_schemas

    warm_schemas()
    specs = [parse_spec(path, str(path), text) for path, text in texts]
    start = time.perf_counter()
    specs = [parse_spec(path, str(path), text) for path, text in texts]
    context = RuleContext(specs)
    for spec in specs:
        if checkable(spec):
            layer_c(spec)
            check_spec(spec, context)
    fast = len(specs) / (time.perf_counter() - start)
    print(f"layers A+C+D, one core: {fast:8.0f} specs/s   target >= 2,000")

    # baseline: layer C with plain jsonschema (no compiled fast path), same specs
    from tools.core.yamlio import plain
    from tools.validate.schema import _slow_validator

    start = time.perf_counter()
    for spec in specs:
        if checkable(spec):
            list(_slow_validator(spec.kind).iter_errors(plain(spec.data)))
    naive = len(specs) / (time.perf_counter() - start)
    print(f"baseline, layer C alone with plain jsonschema: {naive:8.0f} specs/s (A+C+D is {fast / naive:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
