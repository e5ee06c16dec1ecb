"""Planted mistakes in corpus specs that are valid as-is: how many each kind catches, per mutation (issue 10).

    .venv/bin/python benchmarks/corpus_mutations.py [CORPUS_DIR ...] [--layers ABCD] [--limit N]

Each spec of the corpus (default ``../shared/corpus``) that validates with no error gets, one at a time, an unknown
key at depth (a near-miss of a key beside it), a wrong type (an integer made a word), a bad name, an out-of-range
count (0) and a dangling binding (where it has one). Nothing is written: the mutant text is parsed with the original's
path, so its local references still resolve (the corpus stays read-only). A mutation is caught when an error names
its key path (or a key below it). Prints a table of catches per kind and mutation; asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from collections import defaultdict
from typing import Any

import yaml

from tools.core.offline import apply_offline_env
from tools.core.repo import REPO_ROOT
from tools.validate.cli import expand_paths
from tools.validate.document import parse_spec
from tools.validate.findings import ERROR
from tools.validate.layers import validate_specs

FREE = {"tags", "properties", "environment_variables", "conf", "inputs", "outputs", "description", "identity",
        "system_metadata", "spark_configuration"}  # free-form maps (registry facts, Spark's own settings)
STRING_OR_INT = {"version"}  # Azure takes a word there too: "abc" is no wrong type
COUNTS = {"instance_count", "max_instances", "max_total_trials", "max_concurrent_trials", "max_trials",
          "max_concurrency_per_instance", "request_timeout_ms", "process_count_per_instance"}
BINDING = re.compile(r"\$\{\{\s*(parent\.)?inputs\.([A-Za-z_][\w]*)\s*\}\}")
MUTATIONS = ("unknown-key", "wrong-type", "bad-name", "out-of-range", "dangling-binding")


def _nodes(data: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    out = [(path, data)]
    if isinstance(data, dict):
        for key, value in data.items():
            if not (isinstance(key, str) and key in FREE):  # free-form maps: any key is allowed there
                out += _nodes(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out += _nodes(value, (*path, index))
    return out


def plantings(data: dict) -> dict[str, tuple[tuple, Any]]:
    """mutation -> (key path, value) for the mutations this spec can take."""
    nodes = _nodes(data)
    found: dict[str, tuple[tuple, Any]] = {}
    deep = [(p, n) for p, n in nodes if isinstance(n, dict) and any(isinstance(k, str) and len(k) > 4 and k != "$schema"
                                                                    for k in n)]  # fmt: skip
    if deep:
        path, node = max(deep, key=lambda item: len(item[0]))
        key = next(k for k in node if isinstance(k, str) and len(k) > 4 and k != "$schema")
        found["unknown-key"] = ((*path, key[:-2] + key[-1] + key[-2]), node[key])
    ints = [(p, v) for p, v in nodes if isinstance(v, int) and not isinstance(v, bool) and p
            and p[-1] not in STRING_OR_INT]
    if ints:
        found["wrong-type"] = (ints[0][0], "abc")
    if isinstance(data.get("name"), str):
        found["bad-name"] = (("name",), "bad name!")
    counts = [p for p, v in nodes if p and p[-1] in COUNTS and isinstance(v, int)]
    if counts:
        found["out-of-range"] = (counts[0], 0)  # not -1: Azure's own parallel components ship it (a warning)
    for path, value in nodes:
        match = BINDING.search(value) if isinstance(value, str) else None
        if match:
            found["dangling-binding"] = (path, value.replace(match.group(0), match.group(0).replace(
                match.group(2), match.group(2) + "_missing")))
            break
    return found


def _plant(data: dict, key_path: tuple, value: Any) -> dict:
    data = copy.deepcopy(data)
    node: Any = data
    for part in key_path[:-1]:
        node = node[part]
    node[key_path[-1]] = value
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="*", default=[str(REPO_ROOT.parent / "shared" / "corpus")])
    parser.add_argument("--layers", default="ABCD")
    parser.add_argument("--limit", type=int, default=0, help="at most N valid specs per kind (0: all)")
    args = parser.parse_args(argv)
    apply_offline_env()
    specs = [parse_spec(p, str(p)) for p in expand_paths(args.corpus)]
    report = validate_specs(specs, args.layers)
    bad = {f.path for f in report.findings if f.severity == ERROR}
    valid = [s for s in specs if s.kind and s.data is not None and not s.skipped and s.display not in bad]
    per_kind: dict[str, int] = defaultdict(int)
    mutants, expected = [], {}
    for spec in valid:
        if args.limit and per_kind[spec.kind] >= args.limit:
            continue
        per_kind[spec.kind] += 1
        head = "".join(line + "\n" for line in spec.text.splitlines() if line.startswith("$schema:"))
        plain = yaml.safe_load(spec.text)
        for label, (key_path, value) in plantings(plain).items():
            mutant = _plant(plain, key_path, value)
            mutant.pop("$schema", None)
            display = f"{spec.display}#{label}"
            mutants.append(parse_spec(spec.path, display, head + yaml.safe_dump(mutant, sort_keys=False)))
            expected[display] = (spec.kind, label, key_path)
    caught: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    errors = defaultdict(list)
    for finding in validate_specs(mutants, args.layers).findings:
        if finding.severity == ERROR:
            errors[finding.path].append(tuple(finding.key_path))
    for display, (kind, label, key_path) in expected.items():
        cell = caught[(kind, label)]
        cell[1] += 1
        cell[0] += any(found[: len(key_path)] == key_path for found in errors[display])
    print(f"{len(valid)} specs valid as-is; {len(mutants)} mutants [layers {args.layers}]")
    print(f"{'kind':34}" + "".join(f"{m:>18}" for m in MUTATIONS))
    totals = [0, 0]
    for kind in sorted({k for k, _ in caught}):
        cells = []
        for label in MUTATIONS:
            hit, n = caught.get((kind, label), (0, 0))
            totals[0] += hit
            totals[1] += n
            cells.append(f"{hit}/{n}" if n else "-")
        print(f"{kind:34}" + "".join(f"{c:>18}" for c in cells))
    print(f"caught {totals[0]} of {totals[1]} planted mistakes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
