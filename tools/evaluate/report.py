"""The evaluation report: ``report.json`` (schema ``evaluation-report/1``), its Markdown table ``report.md`` and the
one-line reasons of a verdict. The single reader and writer of the format: the evaluate job writes it, ``plan``/
``apply``/``promote`` read it.

Shape::

    {"schema": "evaluation-report/1", "candidate": {"id": str}, "champion": {"id": str},
     "gate": {"path": str, "sha256": str, "rows": int}, "seed": int, "libraries": {name: version},
     "metrics": {NAME: {"candidate": float, "champion": float, "delta": float, "ci95": [lo, hi],
                        "direction": "higher"|"lower", "floor": float|null, "margin": float|null,
                        "passed": bool, "why": str}},
     "verdict": "pass"|"fail", "reasons": [str]}

Extra keys (``settings``, ``training``) may appear; readers ignore what they do not know.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEMA = "evaluation-report/1"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_PNG = "report.png"
DIRECTIONS = ("higher", "lower")
VERDICTS = ("pass", "fail")


class ReportError(ValueError):
    """A report that is not ``evaluation-report/1``; ``str(error)`` is one line naming the file and key."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _need(ok: bool, where: str, key: str, expected: str) -> None:
    if not ok:
        raise ReportError(f"{where}: {key}: expected {expected}")


def check_report(data: Any, where: str = REPORT_JSON) -> dict[str, Any]:
    """Return ``data`` when it has the agreed shape; raise ReportError naming the first key that does not."""
    _need(isinstance(data, dict), where, "(top)", "a JSON object")
    _need(data.get("schema") == SCHEMA, where, "schema", repr(SCHEMA))
    for role in ("candidate", "champion"):
        _need(isinstance(data.get(role), dict) and isinstance(data[role].get("id"), str), where, f"{role}.id",
              "a string")  # fmt: skip
    gate = data.get("gate")
    _need(isinstance(gate, dict), where, "gate", "an object")
    _need(isinstance(gate.get("path"), str), where, "gate.path", "a string")
    _need(isinstance(gate.get("sha256"), str) and len(gate["sha256"]) == 64, where, "gate.sha256", "64 hex digits")
    _need(isinstance(gate.get("rows"), int) and not isinstance(gate["rows"], bool), where, "gate.rows", "an integer")
    _need(isinstance(data.get("seed"), int) and not isinstance(data["seed"], bool), where, "seed", "an integer")
    _need(isinstance(data.get("libraries"), dict), where, "libraries", "an object")
    metrics = data.get("metrics")
    _need(isinstance(metrics, dict) and bool(metrics), where, "metrics", "a non-empty object")
    for name, m in metrics.items():
        key = f"metrics.{name}"
        _need(isinstance(m, dict), where, key, "an object")
        for field in ("candidate", "champion", "delta"):
            _need(_number(m.get(field)), where, f"{key}.{field}", "a finite number")
        ci = m.get("ci95")
        _need(isinstance(ci, list) and len(ci) == 2 and all(_number(x) for x in ci) and ci[0] <= ci[1], where,
              f"{key}.ci95", "[lo, hi] with lo <= hi")  # fmt: skip
        _need(m.get("direction") in DIRECTIONS, where, f"{key}.direction", "'higher' or 'lower'")
        for field in ("floor", "margin"):
            _need(m.get(field) is None or _number(m[field]), where, f"{key}.{field}", "a number or null")
        _need(isinstance(m.get("passed"), bool), where, f"{key}.passed", "true or false")
        _need(isinstance(m.get("why"), str), where, f"{key}.why", "a string")
    _need(data.get("verdict") in VERDICTS, where, "verdict", "'pass' or 'fail'")
    reasons = data.get("reasons")
    _need(isinstance(reasons, list) and all(isinstance(r, str) for r in reasons), where, "reasons", "a list of strings")
    return data


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``report.json`` (a file, or a folder holding one)."""
    source = Path(path)
    if source.is_dir():
        source = source / REPORT_JSON
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as error:
        raise ReportError(f"{source}: cannot read the evaluation report ({error.strerror or error})") from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ReportError(f"{source}: not JSON ({error})") from None
    return check_report(data, str(source))


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_report(folder: str | os.PathLike[str], report: dict[str, Any]) -> Path:
    """Check and write ``report.json`` and ``report.md`` into ``folder``; return the JSON's path."""
    check_report(report, "report")
    out = Path(folder)
    _atomic_write(out / REPORT_JSON, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    _atomic_write(out / REPORT_MD, markdown(report))
    return out / REPORT_JSON


# ------------------------------------------------------------------------------------------------ presentation


def fmt(value: float | None) -> str:
    """A metric value for tables and messages: 4 significant digits, or '-'."""
    if value is None:
        return "-"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"


def fmt_delta(value: float) -> str:
    return ("+" if value >= 0 else "") + fmt(value)


def fmt_ci(ci: list[float]) -> str:
    return f"[{fmt_delta(ci[0])}, {fmt_delta(ci[1])}]"


def _rule(m: dict[str, Any]) -> str:
    parts = [f"{m['direction']} is better"]
    if m.get("floor") is not None:
        parts.append(f"floor {fmt(m['floor'])}")
    if m.get("margin") is not None:
        parts.append(f"margin {fmt(m['margin'])}")
    return ", ".join(parts)


def rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    """The table's rows: a header, then one row per metric."""
    table = [("metric", "candidate", "champion", "delta", "95% CI", "rule", "result")]
    for name, m in report["metrics"].items():
        result = "pass" if m["passed"] else "FAIL"
        table.append((name, fmt(m["candidate"]), fmt(m["champion"]), fmt_delta(m["delta"]), fmt_ci(m["ci95"]),
                      _rule(m), result))  # fmt: skip
    return table


def text_table(report: dict[str, Any]) -> str:
    """The metrics as an aligned plain-text table plus the verdict line (what a terminal shows)."""
    table = rows(report)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    return "\n".join([*lines, verdict_line(report)])


def verdict_line(report: dict[str, Any]) -> str:
    head = (f"verdict: {report['verdict'].upper()} (candidate {report['candidate']['id']} vs champion "
            f"{report['champion']['id']}, {report['gate']['rows']} gate rows, seed {report['seed']})")  # fmt: skip
    return head if not report["reasons"] else head + ": " + "; ".join(report["reasons"])


def markdown(report: dict[str, Any]) -> str:
    """``report.md``: what the workflows put in the job summary."""
    table = rows(report)
    lines = [
        f"## Evaluation: {report['verdict'].upper()}",
        "",
        f"Candidate `{report['candidate']['id']}` against champion `{report['champion']['id']}` on the gate set "
        f"`{report['gate']['path']}` ({report['gate']['rows']} rows, sha256 `{report['gate']['sha256'][:12]}`), "
        f"paired bootstrap 95 % intervals of candidate - champion (seed {report['seed']}).",
        "",
        "| " + " | ".join(table[0]) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(table[0]) - 2)) + "|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table[1:]]
    lines.append("")
    if report["reasons"]:
        lines += ["Why:", ""] + [f"- {reason}" for reason in report["reasons"]] + [""]
    libraries = ", ".join(f"{k} {v}" for k, v in sorted(report["libraries"].items()))
    lines += [f"Libraries: {libraries}", ""]
    return "\n".join(lines)
