"""Validation speed over a corpus of public specs (default ../shared/corpus/), with baselines measured in the same
run (the machine is shared: compare ratios, and read the load printed first):

The command-line runs use a snapshot of ``tools/`` and ``schemas/`` (with the compiled-schema cache) in a temporary
folder: in a shared checkout another engineer's edit to the validator's code would otherwise change the cache's
fingerprint between the cold and the warm run, and the warm run would be cold again.

- all layers, cold: empty result cache, a fresh process (what a first `python -m tools validate` costs, SDK import
  included), with the default worker processes; baseline: the same run with ``--jobs 1`` (one process);
- all layers, warm: the same tree again, unchanged (served from build/cache/validate/);
- layers A+C+D on one core in this process (specs per second, SDK not involved, no cache), and the same the
  straightforward way (PyYAML's composer and constructor, jsonschema's Draft 7 on every spec: the baseline);
  layer A (parsing) alone, which bounds the rest.

    .venv/bin/python benchmarks/validate_speed.py [CORPUS_DIR ...] [--skip-cli] [--no-baseline]

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


def _load() -> str:
    try:
        return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    except OSError:
        return "load average unknown"


def _snapshot(into: Path) -> Path:
    """A copy of the code and facts the validator runs on (and the compiled fast-path schemas), frozen for the run."""
    shutil.copytree(ROOT / "tools", into / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "schemas", into / "schemas")
    compiled = ROOT / "build" / "cache" / "schema_check"
    if compiled.is_dir():
        shutil.copytree(compiled, into / "build" / "cache" / "schema_check")
    return into


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the CLI and the workers it (or its forkserver) reaped
    return usage.ru_utime + usage.ru_stime


def _cli(root: Path, paths: list[str], *extra: str) -> tuple[float, str]:
    start, cpu = time.perf_counter(), _cpu()
    result = subprocess.run([sys.executable, "-m", "tools", "validate", *paths, "--format", "json", "--output",
                             os.devnull, *extra], cwd=root, capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - start
    # CPU as the CLI accounts for it: its own and its reaped children's (a forkserver's workers are not its own)
    print(f"  ({' '.join(extra) or 'defaults'}: {wall:.2f} s wall, {_cpu() - cpu:.2f} s CPU reaped by the CLI)")
    return wall, result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""


def _acd(texts: list[tuple[Path, str]], naive: bool = False) -> float:
    """Specs per second through parse (A), layer C and layer D, one after another in this process.

    ``naive``: the straightforward path, as a baseline: every file read by PyYAML's composer and constructor
    (no one-pass event builder), every spec checked by jsonschema's Draft 7 validator (no compiled fast path)."""
    from tools.core import yamlio
    from tools.validate import schema
    from tools.validate.document import parse_spec
    from tools.validate.layers import checkable, layer_c
    from tools.validate.rules.concerns import check_spec
    from tools.validate.rules.support import RuleContext

    saved = yamlio._build, schema._fast_validator
    if naive:
        def full_loader(text: str) -> None:
            raise yamlio._Unusual

        yamlio._build = full_loader  # type: ignore[assignment]
        schema._fast_validator = lambda kind: schema._no_fast_path  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        specs = [parse_spec(path, str(path), text) for path, text in texts]
        context = RuleContext(specs)
        for spec in specs:
            if checkable(spec):
                layer_c(spec)
                check_spec(spec, context)
        return len(specs) / (time.perf_counter() - start)
    finally:
        yamlio._build, schema._fast_validator = saved  # type: ignore[assignment]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="*", default=[str(ROOT.parent / "shared" / "corpus")])
    parser.add_argument("--skip-cli", action="store_true", help="only the in-process A+C+D figures")
    parser.add_argument("--no-baseline", action="store_true", help="skip the one-process cold baseline (~1 min)")
    args = parser.parse_args()
    from tools.validate.cli import expand_paths
    from tools.validate.document import parse_spec
    from tools.validate.layers import checkable, layer_c

    files = expand_paths(args.corpus)
    print(f"corpus: {len(files)} spec files under {', '.join(args.corpus)}")
    print(f"before: {_load()}")
    if not args.skip_cli:
        import tempfile

        corpus = [str(Path(path).resolve()) for path in args.corpus]
        with tempfile.TemporaryDirectory(prefix="validate-speed-") as temp:
            root = _snapshot(Path(temp))
            if not args.no_baseline:
                serial, _ = _cli(root, corpus, "--jobs", "1", "--no-cache")
            cold, summary = _cli(root, corpus)
            warm, _ = _cli(root, corpus)
        if not args.no_baseline:
            print(f"baseline, all layers, cold, one process (--jobs 1): {serial:6.2f} s")
        ratio = f"   ({serial / cold:.1f}x faster than one process)" if not args.no_baseline else ""
        print(f"all layers, cold (empty cache, fresh process): {cold:6.2f} s   target <= 10 s{ratio}")
        print(f"all layers, warm (unchanged tree, cached):     {warm:6.2f} s   target <= 2 s   ({cold / warm:.0f}x)")
        print(f"  {summary}")

    # A + C + D in this process, one core: parse, schema check, repo rules (the pre-commit fast path)
    texts = [(path, path.read_text(errors="replace")) for path in files]
    from tools.validate.schema import warm as warm_schemas

    warm_schemas()
    for spec in [parse_spec(path, str(path), text) for path, text in texts]:  # compile and import everything once
        if checkable(spec):
            layer_c(spec)
    start = time.perf_counter()
    for path, text in texts:
        parse_spec(path, str(path), text)
    parse_only = len(texts) / (time.perf_counter() - start)
    naive = _acd(texts, naive=True)
    fast = _acd(texts)
    print(f"baseline, A+C+D, PyYAML composer + Draft 7 on every spec: {naive:6.0f} specs/s")
    print(f"layers A+C+D, one core:                                 {fast:8.0f} specs/s   target >= 2,000 "
          f"({fast / naive:.1f}x the baseline)")  # fmt: skip
    print(f"  of which layer A (parsing) alone could do:            {parse_only:8.0f} specs/s")
    print(f"after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
