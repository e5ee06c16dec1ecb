"""Data preparation: ultrachat_200k (hub id, hub-layout folder, or JSONL/parquet files) into checked chat JSONL.

``python -m tools data prepare`` streams each split in batches (memory does not grow with the data): parquet and hub
sources through the real ``datasets.load_dataset(..., streaming=True)``, JSON Lines line by line (a bad line costs
its row, named by its file line). It samples deterministically for a seed, checks every selected row
(``tools.data.rows``), writes ``{prompt, prompt_id, messages}`` JSONL atomically, and describes the result in
``manifest.json`` (plus ``issues.jsonl`` listing every skipped or leaked row).
The command wires the modules of ``tools.data``: options, sources, selection, pipeline, outputs, manifest.
``python -m tools data sample`` writes the bundled synthetic hub-layout sample (``tools.data.sample``).

Two selection modes:
  ``--splits train_sft,test_sft --percent 5``   a seeded sample of 5 % of each split, in source order.
  ``--split 'train_sft[:1%]' --test-size 0.2``  the slice (same rounding as ``datasets`` split syntax), then a
                                              seeded train/test split -> ``train_sft.jsonl`` + ``test_sft.jsonl``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from tools.core.errors import UserError
from tools.core.files import atomic_write_text, atomic_writer
from tools.data import options as data_options
from tools.data.manifest import MANIFEST, build_manifest, report
from tools.data.options import Options, options_from_args, parse_seed
from tools.data.outputs import ISSUES, BadRowLog
from tools.data.pipeline import Pipeline
from tools.data.sample import write_hub_sample
from tools.data.selection import plan
from tools.data.sources import display_path, open_source, resolve_source, without_torch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data_options.add_arguments(parser, __doc__)


def _remove_stale_temps(out_dir: Path, names: list[str]) -> None:
    """Temp files of a killed earlier run (``.<name>.*.tmp``) are never outputs: clear them."""
    if not out_dir.is_dir():
        return
    for name in names:
        for stale in out_dir.glob(f".{name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()


def _progress(total: int | None, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=" rows",
        unit_scale=True,
        file=sys.stderr,
        leave=False,
        disable=None if enabled else True,
        dynamic_ncols=True,
    )


def prepare(options: Options, stop: threading.Event) -> int:
    """Stream, check and write every planned split; ``stop`` set (by a signal) ends the run at a batch boundary."""
    source = resolve_source(options.source)
    out_dir = options.out
    datasets = open_source(source, options.revision)
    available = list(datasets.keys())
    for name in options.splits:
        if name not in available:
            raise UserError(f"--source {source.display}: no split {name!r}; available: {', '.join(available)}")
    plans, output_list = plan(options, datasets, source, stop)

    names = [out.file for out in output_list] + [MANIFEST, ISSUES]
    _remove_stale_temps(out_dir, names)
    out_dir.mkdir(parents=True, exist_ok=True)
    issues = BadRowLog(out_dir)
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))
    pipeline = Pipeline(options, source, issues, encoder, stop)
    source_rows: dict[str, int | None] = {}
    try:
        with contextlib.ExitStack() as stack:
            for out in output_list:
                out.handle = stack.enter_context(atomic_writer(out_dir / out.file, "wb"))
                out.start_writer()
                stack.callback(out.stop_writer)  # runs before the atomic writer closes, renames or removes
            for step in plans:
                dataset = datasets[step.split]
                total = step.stop if step.stop is not None else step.length
                with _progress(total, step.split, options.progress) as bar:
                    read = pipeline.run_plan(dataset, step, bar)
                if step.stop is None and step.length is not None and read != step.length:
                    raise UserError(
                        f"--source {source.display}: split {step.split} declares {step.length} rows "
                        f"(README dataset_info) but holds {read}; fix or remove dataset_info",
                        1,
                    )
                known = step.length if step.length is not None else (read if step.stop is None else None)
                source_rows[step.split] = known
        # the JSONL files were renamed into place when the stack closed; the sidecar and the manifest follow
        issues.finish(out_dir / ISSUES)
    finally:
        issues.close()
    manifest = build_manifest(options, source, output_list, source_rows, issues.count)
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    report(out_dir, manifest, issues)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.data_command is None:
        args._data_parser.print_help()
        return 2
    if args.data_command == "sample":

        write_hub_sample(Path(args.out), seed=parse_seed(args.seed))
        print(f"wrote {display_path(args.out)}")
        return 0
    options = options_from_args(args)
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        """SIGTERM / Ctrl-C: stop at the next batch boundary (interrupting a library reader mid-call can hang its
        threads); a second signal interrupts at once."""
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.getsignal(signum) for signum in signals}
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:  # both unwind like Ctrl-C at a batch boundary, so the atomic writers remove their temp files
        for signum in signals:
            signal.signal(signum, request_stop)
    try:
        with without_torch():
            return prepare(options, stop)
    finally:
        if in_main:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
