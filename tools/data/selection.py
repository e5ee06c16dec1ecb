"""Which rows go where: the seeded percent sample of each split, or a slice split into train/test, as
:class:`Plan` objects (a bool mask or bounds per source split, and the :class:`Output` each selected row goes to)."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass
from typing import Any

from tools.core.errors import UserError
from tools.data.options import Options
from tools.data.outputs import Output
from tools.data.rows import SeenIds, is_sft_split
from tools.data.sources import Source, count_rows, split_length


@dataclass
class Plan:
    """What to read from one source split and where each selected row goes."""

    split: str
    outputs: list[Output]
    length: int | None  # rows in the source split, when known
    selected_rows: Any = None  # numpy bool mask over the split (None = all rows)
    start: int = 0
    stop: int | None = None
    test_mask: Any = None  # slice mode: bool mask over [start, stop), True = second output


def pair_name(split: str) -> str | None:
    """The train split a test split is checked against for leakage (test_sft -> train_sft)."""
    return "train" + split[4:] if split.startswith("test") else None


def slice_output_names(split: str) -> tuple[str, str]:
    """Output names for ``--split``: train_sft -> (train_sft, test_sft); rows -> (train_rows, test_rows)."""
    for prefix in ("train", "test"):
        if split.startswith(prefix):
            stem = split[len(prefix) :]
            return f"train{stem}", f"test{stem}"
    return f"train_{split}", f"test_{split}"


def seeded_rng(seed: int, *parts: str) -> random.Random:
    return random.Random(":".join([str(seed), *parts]))


def plan(
    options: Options, datasets: Any, source: Source, stop: threading.Event
) -> tuple[list[Plan], list[Output]]:
    """The plans in reading order and the outputs in manifest order."""
    return (_percent if options.mode == "percent" else _slice)(options, datasets, source, stop)


def _percent(options: Options, datasets: Any, source: Source, stop: threading.Event) -> tuple[list[Plan], list[Output]]:
    import numpy as np

    names = list(options.splits)
    outputs = {name: Output(name, name, is_sft_split(name), SeenIds()) for name in names}
    for name, out in outputs.items():
        partner = pair_name(name)
        out.partner = outputs.get(partner) if partner else None
    plans = []
    # train splits first, so a test split's rows can be checked against its train split while streaming
    for name in sorted(names, key=lambda n: (0 if n.startswith("train") else 1, names.index(n))):
        dataset = datasets[name]
        length = split_length(dataset, name)
        step = Plan(name, [outputs[name]], length)
        assert options.percent is not None
        if options.percent < 100:
            if length is None:
                length = step.length = count_rows(dataset, options.batch_size, source, name, stop)
            k = math.floor(length * options.percent / 100 + 0.5)
            mask = np.zeros(length, dtype=bool)
            mask[seeded_rng(options.seed, "percent", name).sample(range(length), k)] = True
            step.selected_rows = mask
        plans.append(step)
    return plans, [outputs[name] for name in names]


def _slice(options: Options, datasets: Any, source: Source, stop: threading.Event) -> tuple[list[Plan], list[Output]]:
    import numpy as np

    spec = options.slice
    assert spec is not None and options.test_size is not None
    dataset = datasets[spec.name]
    length = split_length(dataset, spec.name)
    if spec.needs_length and length is None:
        length = count_rows(dataset, options.batch_size, source, spec.name, stop)
    start, end = spec.bounds(length)
    if end is None:  # open-ended absolute slice on a split of unknown length
        length = count_rows(dataset, options.batch_size, source, spec.name, stop)
        start, end = spec.bounds(length)
    size = end - start
    test_size = options.test_size
    n_test = math.ceil(test_size * size) if isinstance(test_size, float) else test_size
    if size and n_test >= size:
        raise UserError(
            f"--test-size {options.test_size_text}: leaves no training rows out of {size} in {options.split_text}"
        )
    test_mask = np.zeros(size, dtype=bool)
    test_mask[seeded_rng(options.seed, "test", spec.name).sample(range(size), n_test if size else 0)] = True
    seen = SeenIds()  # one source split: duplicates are caught across both outputs, so no leakage by construction
    train_name, test_name = slice_output_names(spec.name)
    sft = is_sft_split(spec.name)
    outputs = [Output(train_name, spec.name, sft, seen), Output(test_name, spec.name, sft, seen)]
    return [Plan(spec.name, outputs, length, None, start, end, test_mask)], outputs
