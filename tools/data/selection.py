"""Which rows go where: the seeded percent sample of each split, or a slice split into train/test, as
:class:`Plan` objects (a bool mask or bounds per source split, and the :class:`Output` each selected row goes to).

Three roles come out: training (``train*``), validation (``test*``: the training jobs' own eval loss) and the gate
set (``gate*``: held out of each test output by ``--gate-size``, seeded; only the evaluation reads it). A plan's
``test_mask`` routes each row by its index into ``outputs`` (0, 1 or 2)."""

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
    test_mask: Any = None  # int8 over [start, stop) (percent mode: the whole split): the index into outputs


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


def gate_name(test_name: str) -> str:
    """The gate output held out of a test output: test_sft -> gate_sft; rows -> gate_rows."""
    return "gate" + test_name[4:] if test_name.startswith("test") else f"gate_{test_name}"


def role(name: str) -> str:
    """training, validation or gate: what an output is for (manifest.json)."""
    return "gate" if name.startswith("gate") else "validation" if name.startswith("test") else "training"


def gate_count(options: Options, rows: int, split: str) -> int:
    """Rows of ``rows`` test rows held out as the gate set; at least one row must stay for validation."""
    size = options.gate_size
    if not size or not rows:
        return 0
    count = math.ceil(size * rows) if isinstance(size, float) else size
    if count >= rows:
        raise UserError(f"--gate-size {options.gate_size_text}: leaves no validation rows out of {rows} in {split}")
    return count


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
    gates: dict[str, Output] = {}
    # train splits first, so a test split's rows can be checked against its train split while streaming
    for name in sorted(names, key=lambda n: (0 if n.startswith("train") else 1, names.index(n))):
        dataset = datasets[name]
        length = split_length(dataset, name)
        step = Plan(name, [outputs[name]], length)
        assert options.percent is not None
        gated = options.gate_size and pair_name(name) is not None
        if (options.percent < 100 or gated) and length is None:
            length = step.length = count_rows(dataset, options.batch_size, source, name, stop)
        selected = range(length or 0)
        if options.percent < 100:
            k = math.floor(length * options.percent / 100 + 0.5)
            selected = sorted(seeded_rng(options.seed, "percent", name).sample(range(length), k))
            mask = np.zeros(length, dtype=bool)
            mask[selected] = True
            step.selected_rows = mask
        if gated:
            test = outputs[name]
            gate = Output(gate_name(name), name, test.sft, test.seen, partner=test.partner)  # one id set: no overlap
            gates[name] = gate
            step.outputs.append(gate)
            step.test_mask = np.zeros(length, dtype=np.int8)
            held = seeded_rng(options.seed, "gate", name).sample(selected, gate_count(options, len(selected), name))
            step.test_mask[held] = 1
        plans.append(step)
    return plans, [out for name in names for out in (outputs[name], gates.get(name)) if out is not None]


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
    test_mask = np.zeros(size, dtype=np.int8)
    tested = seeded_rng(options.seed, "test", spec.name).sample(range(size), n_test if size else 0)
    test_mask[tested] = 1
    n_gate = gate_count(options, len(tested), options.split_text or spec.name)
    test_mask[seeded_rng(options.seed, "gate", spec.name).sample(sorted(tested), n_gate)] = 2
    seen = SeenIds()  # one source split: duplicates are caught across the outputs, so no leakage by construction
    train_name, test_name = slice_output_names(spec.name)
    sft = is_sft_split(spec.name)
    outputs = [Output(train_name, spec.name, sft, seen), Output(test_name, spec.name, sft, seen)]
    if n_gate:
        outputs.append(Output(gate_name(test_name), spec.name, sft, seen))
    return [Plan(spec.name, outputs, length, None, start, end, test_mask)], outputs
