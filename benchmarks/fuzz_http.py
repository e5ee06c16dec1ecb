"""HTTP fuzz, the long run: the test's seeded hostile requests (tests/fuzz/test_fuzz_http.py), many more of them.

  python benchmarks/fuzz_http.py [--requests 3000] [--seed 1313] [--bursts 10] [--burst-size 24]

Serves the same adapter + chat stand-in as the test, sends ``--requests`` hostile requests one after another, then
``--bursts`` bursts of ``--burst-size`` clients at once with bodies just under the size cap (issue 23, class 6), and
prints per class how many got each answer (status codes; "dropped" / "not-json" / "bad-status-5xx" break the
promise), the request rate, and the RSS before and after. Exits 1 when any request broke the promise or a normal
request fails at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tools.core.repo import REPO_ROOT


def _fuzz_module():  # noqa: ANN202 - the test module, loaded by path (tests/ is not a package)
    spec = importlib.util.spec_from_file_location("fuzz_http", REPO_ROOT / "tests" / "fuzz" / "test_fuzz_http.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_http"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1313)
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--burst-size", type=int, default=24)
    args = parser.parse_args(argv)
    fuzz = _fuzz_module()
    with tempfile.TemporaryDirectory() as tmp:
        endpoint_cm = fuzz.serve(fuzz.write_model(Path(tmp) / "model"))
        endpoint = next(endpoint_cm)
        try:
            before = fuzz.rss_mb()
            started = time.perf_counter()
            by_class: Counter = Counter()
            counts = fuzz.fuzz(endpoint.port, args.requests, args.seed, by_class=by_class)
            seconds = time.perf_counter() - started
            for n in range(args.bursts):
                for outcome, number in fuzz.burst(endpoint.port, args.burst_size, args.seed + n).items():
                    by_class[("burst", outcome)] += number
                    counts[outcome] += number
            after = fuzz.rss_mb()
            final = fuzz.verdict(fuzz.exchange(endpoint.port, fuzz._ok_request()))
        finally:
            endpoint_cm.close()
    broken = sum(n for k, n in counts.items() if k in fuzz.FAILURES or k.startswith("bad-status"))
    print(f"{args.requests} hostile requests (seed {args.seed}) in {seconds:.1f} s ({args.requests / seconds:.0f}/s)")
    for outcome, number in sorted(counts.items()):
        print(f"  {outcome:>18}: {number}")
    print("per class:")
    for kind in sorted({kind for kind, _ in by_class}):
        answers = ", ".join(f"{outcome} {n}" for (k, outcome), n in sorted(by_class.items()) if k == kind)
        print(f"  {kind:>14}: {answers}")
    print(f"broken promises: {broken}; normal request afterwards: {final}; RSS {before:.0f} -> {after:.0f} MB")
    return 0 if broken == 0 and final == "200" else 1


if __name__ == "__main__":
    sys.exit(main())
