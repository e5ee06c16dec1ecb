"""What a run of ``data prepare`` says about itself: ``manifest.json`` (everything reproducible about the run and
each output: counts by reason, leakage, size, hash, turn and length distributions) and the summary table printed at
the end (plus the first issues on stderr)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tools.data.options import Options
from tools.data.outputs import ISSUES, BadRowLog, Output
from tools.data.rows import REASONS, distribution
from tools.data.selection import role
from tools.data.sources import Source, display_path

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 2  # 2: outputs carry their role (training, validation, gate); gate_size


def build_manifest(
    options: Options,
    source: Source,
    outputs: list[Output],
    source_rows: dict[str, int | None],
    issue_count: int,
) -> dict[str, Any]:
    """Everything about a run that is reproducible: no timestamps, no absolute paths inside the checkout."""
    mode = options.mode
    selection: dict[str, Any]
    if mode == "percent":
        selection = {"percent": options.percent}
    else:
        selection = {"split": options.split_text, "test_size": options.test_size}
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "tool": "python -m tools data prepare",
        "source": source.display,
        "source_kind": source.kind,
        "revision": options.revision if source.kind == "hub" else None,
        "mode": mode,
        **selection,
        "gate_size": options.gate_size,
        "seed": options.seed,
        "on_bad_row": options.on_bad_row,
        "on_leak": options.on_leak,
        "row_format": ["prompt", "prompt_id", "messages"],
        "outputs": {},
        "skipped_total": sum(sum(out.skipped.values()) for out in outputs),
        "leaked_total": sum(out.leaked for out in outputs),
        "issues_file": ISSUES if issue_count else None,
    }
    for out in outputs:
        entry: dict[str, Any] = {
            "file": out.file,
            "role": role(out.name),
            "source_split": out.source_split,
            "source_rows": source_rows.get(out.source_split),
            "sft_rules": out.sft,
            "selected": out.selected,
            "written": out.written,
            "skipped": {reason: out.skipped[reason] for reason in REASONS if out.skipped[reason]},
            "leakage": None,
            "bytes": out.bytes,
            "sha256": out.sha256.hexdigest(),
            "turns": distribution(out.turns),
            "chars_per_conversation": distribution(out.chars),
        }
        if out.partner is not None:
            entry["leakage"] = {"checked_against": out.partner.name, "rows": out.leaked, "action": options.on_leak}
        elif mode == "slice" and out is not outputs[0]:
            entry["leakage"] = {
                "checked_against": outputs[0].name,
                "rows": 0,
                "action": "impossible: one source split, duplicate prompt_ids skipped across all outputs",
            }
        manifest["outputs"][out.name] = entry
    return manifest


def _fmt_dist(dist: dict[str, Any]) -> str:
    if dist["min"] is None:
        return "-"
    median = dist["median"]
    median_text = f"{median:g}" if isinstance(median, float) else str(median)
    return f"{dist['min']}/{median_text}/{dist['p95']}/{dist['max']}"


def report(out_dir: Path, manifest: dict[str, Any], issues: BadRowLog) -> None:
    if issues.count:
        for line in issues.shown:
            print(line, file=sys.stderr)
        rest = issues.count - len(issues.shown)
        where = display_path(out_dir / ISSUES)
        more = f"... and {rest} more; " if rest else ""
        print(f"{more}{issues.count} row issue(s) in total, full list in {where}", file=sys.stderr)
    header = ("file", "selected", "written", "skipped", "leaked", "turns min/med/p95/max", "chars min/med/p95/max")
    table = [header]
    for entry in manifest["outputs"].values():
        leaked = entry["leakage"]["rows"] if entry["leakage"] else 0
        table.append(
            (
                entry["file"],
                str(entry["selected"]),
                str(entry["written"]),
                str(sum(entry["skipped"].values())),
                str(leaked),
                _fmt_dist(entry["turns"]),
                _fmt_dist(entry["chars_per_conversation"]),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print(f"prepared {display_path(out_dir)} from {manifest['source']} ({manifest['mode']}, seed {manifest['seed']})")
    for row in table:
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
