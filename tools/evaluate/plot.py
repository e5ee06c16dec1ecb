"""``report.png``: training and validation loss by step (when the training run's metrics are given) beside candidate
against champion for every metric, the candidate bar carrying the 95 % interval of the difference. matplotlib with
the Agg backend (no display)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

LOSS_KEYS = {"train": ("train_loss", "loss"), "validation": ("eval_loss", "validation_loss")}


class HistoryError(ValueError):
    """Training metrics that cannot be read; one line."""


def history_from_json(path: str | os.PathLike[str]) -> dict[str, list[tuple[int, float]]]:
    """Loss curves from a ``--metrics-json`` file of components/finetune-sft (``{"history": [{step, ...}]}``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise HistoryError(f"{path}: cannot read training metrics ({error})") from None
    rows = data.get("history") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise HistoryError(f"{path}: history: expected a list of {{step, train_loss, eval_loss}}")
    curves: dict[str, list[tuple[int, float]]] = {"train": [], "validation": []}
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            continue
        for curve, keys in LOSS_KEYS.items():
            value = next((row[k] for k in keys if isinstance(row.get(k), int | float)), None)
            if value is not None:
                curves[curve].append((row["step"], float(value)))
    return curves


def history_from_mlflow(run_id: str) -> dict[str, list[tuple[int, float]]]:
    """Loss curves of an MLflow run (the tracking URI of the environment: inside Azure ML, the workspace)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    curves: dict[str, list[tuple[int, float]]] = {}
    for curve, keys in LOSS_KEYS.items():
        points: list[tuple[int, float]] = []
        for key in keys:
            try:
                points = [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
            except Exception as error:  # noqa: BLE001 - any tracking failure is one line
                raise HistoryError(f"training run {run_id}: cannot read metric {key} ({error})") from None
            if points:
                break
        curves[curve] = sorted(points)
    return curves


def write_plot(report: dict[str, Any], path: str | os.PathLike[str],
               history: dict[str, list[tuple[int, float]]] | None = None) -> Path:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = report["metrics"]
    panels = 1 + len(metrics)
    cols = min(panels, 4)
    rows = (panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    loss = flat[0]
    if history and any(history.values()):
        for curve, points in history.items():
            if points:
                loss.plot([p[0] for p in points], [p[1] for p in points], label=curve, marker="." if len(points) < 30
                          else None)  # fmt: skip
        loss.set_xlabel("step")
        loss.set_ylabel("loss")
        loss.legend(fontsize=7)
    else:
        loss.text(0.5, 0.5, "no training metrics given", ha="center", va="center", fontsize=8)
        loss.set_xticks([])
        loss.set_yticks([])
    loss.set_title("training / validation loss", fontsize=9)
    for ax, (name, m) in zip(flat[1:], metrics.items(), strict=False):
        champion, candidate = m["champion"], m["candidate"]
        low, high = m["ci95"]
        ax.bar([0, 1], [champion, candidate], color=["#9aa5b1", "#2f7ed8" if m["passed"] else "#d8452f"])
        ax.errorbar([1], [champion + m["delta"]], yerr=[[m["delta"] - low], [high - m["delta"]]], fmt="none",
                    ecolor="black", capsize=4)  # fmt: skip
        ax.set_xticks([0, 1], ["champion", "candidate"], fontsize=8)
        ax.set_title(f"{name} ({m['direction']} better)", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    for ax in flat[panels:]:
        ax.axis("off")
    fig.suptitle(f"evaluation: {report['verdict'].upper()}", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
