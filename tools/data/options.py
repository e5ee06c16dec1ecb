"""The options of ``data prepare``: the argparse definition, the pure parsers of each value, and :class:`Options`,
the checked, typed settings that the rest of ``tools.data`` takes (nothing below the CLI reads the namespace)."""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path

from tools.core.errors import UserError
from tools.core.offline import add_online_argument

DEFAULT_SOURCE = "HuggingFaceH4/ultrachat_200k"
DEFAULT_SPLITS = "train_sft,test_sft,train_gen,test_gen"
DEFAULT_OUT = "data/prepared"
DEFAULT_PERCENT = "5"
DEFAULT_TEST_SIZE = "0.2"
DEFAULT_GATE_SIZE = "0.5"

SPLIT_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?:\[(?P<start>\d+%?)?:(?P<stop>\d+%?)?\])?$")


@dataclass(frozen=True)
class SliceSpec:
    """``name[start:stop]`` with each bound an absolute row number or a percentage (None = open)."""

    name: str
    start: tuple[int, bool] | None = None  # (value, is_percent)
    stop: tuple[int, bool] | None = None

    @property
    def needs_length(self) -> bool:
        return any(bound is not None and bound[1] for bound in (self.start, self.stop))

    def bounds(self, length: int | None) -> tuple[int, int | None]:
        """Absolute [start, stop); percentages round like ``datasets`` (``round(pct * n / 100)``)."""

        def absolute(bound: tuple[int, bool] | None, default: int | None) -> int | None:
            if bound is None:
                return default
            value, is_percent = bound
            if is_percent:
                assert length is not None
                return int(round(value * length / 100.0))
            return value if length is None else min(value, length)

        start = absolute(self.start, 0) or 0
        stop = absolute(self.stop, length)
        if stop is not None and stop < start:
            stop = start
        return start, stop


def parse_split(text: str) -> SliceSpec:
    """Parse ``train_sft``, ``train_sft[:1%]``, ``train_sft[100:200]``; raise UserError on bad syntax."""
    match = SPLIT_RE.match(text.strip())
    if not match:
        raise UserError(f"--split: {text!r} is not 'NAME' or 'NAME[START:STOP]' (e.g. 'train_sft[:1%]')")

    def bound(raw: str | None) -> tuple[int, bool] | None:
        if raw is None:
            return None
        is_percent = raw.endswith("%")
        value = int(raw.rstrip("%"))
        if is_percent and value > 100:
            raise UserError(f"--split: {text!r}: {raw} is more than 100%")
        return value, is_percent

    return SliceSpec(match["name"], bound(match["start"]), bound(match["stop"]))


def parse_percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--percent: {text!r} is not a number") from None
    if not (0 < value <= 100) or math.isnan(value):
        raise UserError(f"--percent: {text} is out of range (0, 100]")
    return value


def parse_test_size(text: str) -> float | int:
    """A fraction in (0, 1) or a whole number of rows >= 1."""
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--test-size: {text!r} is not a number") from None
    if 0 < value < 1:
        return value
    if value >= 1 and value.is_integer():
        return int(value)
    raise UserError(f"--test-size: {text} must be a fraction in (0, 1) or a whole number of rows")


def parse_gate_size(text: str) -> float | int:
    """The share of each test output held out as the gate set: a fraction in (0, 1), a whole number of rows, or 0
    (no gate set)."""
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--gate-size: {text!r} is not a number") from None
    if value == 0:
        return 0
    if 0 < value < 1:
        return value
    if value >= 1 and value.is_integer():
        return int(value)
    raise UserError(f"--gate-size: {text} must be 0, a fraction in (0, 1) or a whole number of rows")


def parse_seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--seed: {text!r} is not an integer") from None


def parse_splits(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UserError("--splits: no split names given")
    for name in names:
        if not SPLIT_RE.match(name) or "[" in name:
            raise UserError(f"--splits: {name!r} is not a split name (use --split for slices)")
    if len(set(names)) != len(names):
        raise UserError(f"--splits: {text!r} names a split twice")
    return names


@dataclass(frozen=True)
class Options:
    """Everything ``prepare`` needs, parsed and checked once."""

    source: str
    out: Path
    mode: str  # "percent" | "slice"
    seed: int
    splits: tuple[str, ...]  # percent mode: the splits; slice mode: the one split
    percent: float | None = None
    slice: SliceSpec | None = None
    split_text: str | None = None  # slice mode: --split as given (manifest)
    test_size: float | int | None = None
    test_size_text: str | None = None
    gate_size: float | int = 0
    gate_size_text: str = "0"
    revision: str | None = None
    batch_size: int = 1000
    on_bad_row: str = "skip"
    on_leak: str = "report"
    progress: bool = True
    fast: bool = True


def options_from_args(args: argparse.Namespace) -> Options:
    """Check the combination and every value; raise UserError (one line) for the first problem."""
    seed = parse_seed(args.seed)
    gate_text = args.gate_size if args.gate_size is not None else DEFAULT_GATE_SIZE
    common = dict(
        source=args.source, out=Path(args.out), seed=seed, revision=args.revision, batch_size=args.batch_size,
        gate_size=parse_gate_size(gate_text), gate_size_text=gate_text,
        on_bad_row=args.on_bad_row, on_leak=args.on_leak, progress=args.progress, fast=args.fast,
    )  # fmt: skip
    if args.batch_size < 1:
        raise UserError(f"--batch-size: {args.batch_size} must be at least 1")
    if args.split is not None:
        if args.splits is not None or args.percent is not None:
            raise UserError("--split (slice + train/test split) cannot be combined with --splits/--percent")
        spec = parse_split(args.split)
        test_size_text = args.test_size if args.test_size is not None else DEFAULT_TEST_SIZE
        options = Options(
            mode="slice", splits=(spec.name,), slice=spec, split_text=args.split,
            test_size=parse_test_size(test_size_text), test_size_text=test_size_text, **common,
        )  # fmt: skip
    else:
        if args.test_size is not None:
            raise UserError("--test-size only applies with --split")
        percent = parse_percent(args.percent if args.percent is not None else DEFAULT_PERCENT)
        splits = parse_splits(args.splits if args.splits is not None else DEFAULT_SPLITS)
        options = Options(mode="percent", splits=tuple(splits), percent=percent, **common)
    if options.out.exists() and not options.out.is_dir():
        raise UserError(f"--out {args.out}: exists and is not a folder")
    return options


def add_arguments(parser: argparse.ArgumentParser, description: str | None) -> None:
    """``data prepare`` and ``data sample`` (``description``: the prepare help text, the command's docstring)."""
    sub = parser.add_subparsers(dest="data_command", metavar="<subcommand>")
    prep = sub.add_parser(
        "prepare",
        help="stream, sample, check and write chat JSONL + manifest.json",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prep.add_argument(
        "--source",
        default=DEFAULT_SOURCE,
        help="Hugging Face dataset id, hub-layout folder, or .jsonl/.parquet file(s) (default: %(default)s)",
    )
    prep.add_argument(
        "--splits", default=None, help=f"percent mode: comma-separated splits (default: {DEFAULT_SPLITS})"
    )
    prep.add_argument(
        "--percent", default=None, help="percent mode: share of each split to keep, (0, 100] (default: 5)"
    )
    prep.add_argument("--split", default=None, help="slice mode: one split slice, e.g. 'train_sft[:1%%]'")
    prep.add_argument("--test-size", default=None, help="slice mode: test share in (0, 1) or a row count (default 0.2)")
    prep.add_argument(
        "--gate-size",
        default=None,
        help="share of each test output held out as the gate set (gate_*.jsonl), a fraction in (0, 1), a row count, "
        "or 0 for none (default 0.5); the rest of it is the training jobs' validation split",
    )
    prep.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    prep.add_argument("--seed", default="42", help="sampling seed (default: %(default)s)")
    prep.add_argument(
        "--on-bad-row",
        choices=("skip", "fail"),
        default="skip",
        help="skip (report and count) or fail on the first bad row (default: %(default)s)",
    )
    prep.add_argument(
        "--on-leak",
        choices=("report", "drop", "fail"),
        default="report",
        help="a test row whose prompt_id is in the paired train split (default: %(default)s)",
    )
    prep.add_argument("--revision", default=None, help="hub revision (branch, tag or commit) to load")
    prep.add_argument("--batch-size", type=int, default=1000, help="Arrow batch size (default: %(default)s)")
    prep.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_online_argument(prep)  # --online: tools/core/offline.py, acted on by tools/__main__.py
    prep.add_argument("--no-fast", dest="fast", action="store_false", help=argparse.SUPPRESS)  # per-row path only

    sample = sub.add_parser("sample", help="write the bundled synthetic hub-layout sample (deterministic)")
    sample.add_argument("--out", default="data/hub-sample", help="output folder (default: %(default)s)")
    sample.add_argument("--seed", default="0", help="generator seed (default: %(default)s)")
    parser.set_defaults(_data_parser=parser)
