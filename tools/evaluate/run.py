"""One evaluation from end to end, and the command line of the ``components/evaluate`` job (``main``): score the
candidate and the champion on the same gate rows, compute every measurable metric for both, the paired bootstrap
interval of each difference, the verdict, and write ``report.json``, ``report.md`` and ``report.png``.

Exit codes of ``main``: 0 the report is written (the verdict is in it; with ``--fail-on-refuse`` a refused
candidate exits 1), 2 bad input (one line: an empty gate set, a row without an assistant turn, a folder that is
not an MLflow chat model, an endpoint whose requests all fail, a bad policy).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .gate import GateError, GateSet, read_gate
from .metrics import METRICS, RowScore, row_terms, value
from .models import EndpointChatModel, LocalChatModel, ModelError, inspect_model, scoring_client
from .plot import HistoryError, history_from_json, history_from_mlflow, write_plot
from .report import REPORT_PNG, SCHEMA, ReportError, text_table, write_report
from .stats import paired_interval, resample_indices
from .verdict import PolicyError, check_policy, decide

LIBRARIES = ("torch", "transformers", "torchmetrics", "numpy", "mlflow")
JUDGE_METRICS = ("coherence", "groundedness", "safety")
INPUT_ERRORS = (GateError, ModelError, PolicyError, HistoryError, ReportError)


class InputError(ValueError):
    """An option that cannot be used; one line."""


def libraries() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def score_all(model: Any, gate: GateSet, label: str, progress: bool) -> list[RowScore]:
    from tqdm import tqdm

    return [model.score(example) for example in tqdm(gate.examples, desc=label, unit=" rows", leave=False,
                                                     file=sys.stderr, disable=not progress)]  # fmt: skip


def build_report(
    candidate: list[RowScore], champion: list[RowScore], gate: GateSet, policy: dict[str, Any], seed: int,
    resamples: int, ids: tuple[str, str], settings: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The report of two models' row scores on ``gate`` (pure: no model, no file)."""
    references = [example.reference for example in gate.examples]
    terms_c, terms_h = row_terms(candidate, references), row_terms(champion, references)
    indices = resample_indices(len(references), resamples, seed)
    values: dict[str, dict[str, Any]] = {}
    for name in METRICS:
        if name in terms_c and name in terms_h:
            c, h = value(name, *terms_c[name]), value(name, *terms_h[name])
            ci = paired_interval(name, terms_c[name], terms_h[name], indices)
            values[name] = {"candidate": c, "champion": h, "delta": c - h, "ci95": ci}
    metrics, verdict, reasons = decide(values, policy, len(references))
    unmeasured = sorted(set(policy["metrics"]) - set(values))
    return {
        "schema": SCHEMA,
        "candidate": {"id": ids[0]},
        "champion": {"id": ids[1]},
        "gate": {"path": gate.path, "sha256": gate.sha256, "rows": len(references)},
        "seed": seed,
        "libraries": libraries(),
        "metrics": metrics,
        "verdict": verdict,
        "reasons": reasons,
        "settings": {**settings, "resamples": resamples, "min_rows": policy["min_rows"], "not_measured": unmeasured},
    }


def open_model(where: str, deployment: str | None, key: str | None, options: argparse.Namespace) -> Any:
    """A folder is an MLflow chat model; an http(s) URI is a running endpoint."""
    if where.startswith(("http://", "https://")):
        return EndpointChatModel(where, key, deployment, options.max_new_tokens, timeout=options.timeout)
    return LocalChatModel(inspect_model(where), options.max_length, options.max_new_tokens,
                          generate=not options.no_generation)  # fmt: skip


def evaluate(options: argparse.Namespace, key: str | None = None,
             say: Callable[[str], None] = print) -> dict[str, Any]:  # fmt: skip
    """Check every input before the slow part, score both models, write the report folder; return the report."""
    if options.judge_deployment:
        raise InputError(f"--judge-deployment {options.judge_deployment}: judge-model metrics "
                         f"({', '.join(JUDGE_METRICS)}) are a seam for later and not wired yet; leave it unset")
    policy = check_policy(options.policy)
    if options.seed < 0 or options.resamples < 100:
        raise InputError("--seed must be >= 0 and --resamples >= 100")
    gate = read_gate(options.gate_data, limit=options.rows)
    history = None
    if options.training_metrics:
        history = history_from_json(options.training_metrics)
    elif options.training_run_id:
        history = history_from_mlflow(options.training_run_id)
    import torch

    torch.manual_seed(options.seed)
    candidate = open_model(options.candidate_model, options.candidate_deployment, key, options)
    champion = open_model(options.champion_model, options.champion_deployment, key, options)
    ids = (options.candidate_id or _model_id(options.candidate_model, options.candidate_deployment),
           options.champion_id or _model_id(options.champion_model, options.champion_deployment))  # fmt: skip
    say(f"scoring {len(gate.examples)} gate rows of {gate.path}: candidate {ids[0]}, champion {ids[1]}")
    scores_c = score_all(candidate, gate, "candidate", options.progress)
    scores_h = score_all(champion, gate, "champion", options.progress)
    settings = {"max_new_tokens": options.max_new_tokens, "max_length": options.max_length, "do_sample": False}
    report = build_report(scores_c, scores_h, gate, policy, options.seed, options.resamples, ids, settings)
    out = Path(options.output)
    write_report(out, report)
    write_plot(report, out / REPORT_PNG, history)
    return report


def _model_id(where: str, deployment: str | None) -> str:
    if where.startswith(("http://", "https://")):
        return where + (f"#{deployment}" if deployment else "")
    return Path(where).name or where


def _policy(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object {min_rows, metrics}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options the component and ``python -m tools evaluate`` share."""
    parser.add_argument("--candidate-model", "--candidate", dest="candidate_model", required=True,
                        help="the candidate: an MLflow chat model folder, or a scoring URI")
    parser.add_argument("--champion-model", "--champion", dest="champion_model", required=True,
                        help="the champion (what prod serves, or the base model): a folder or a scoring URI")
    parser.add_argument("--gate-data", "--data", dest="gate_data", required=True,
                        help="the gate set: chat JSONL (or a folder holding one .jsonl)")
    parser.add_argument("--candidate-deployment", default=None, help="deployment of a scoring URI to score")
    parser.add_argument("--champion-deployment", default=None, help="deployment of a scoring URI to score")
    parser.add_argument("--candidate-id", default=None, help="the candidate's id in the report (default: its name)")
    parser.add_argument("--champion-id", default=None, help="the champion's id in the report (default: its name)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap and torch seed (default: %(default)s)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default: %(default)s)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="greedy answer length (default: %(default)s)")
    parser.add_argument("--max-length", type=int, default=2048, help="tokens scored per row (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=None, help="score only the first N gate rows")
    parser.add_argument("--no-generation", action="store_true", help="local models: reference NLL only")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per endpoint request")
    parser.add_argument("--training-metrics", default=None, help="fine_tune.py --metrics-json file (loss plot)")
    parser.add_argument("--training-run-id", default=None, help="MLflow run of the fine-tune (loss plot)")
    parser.add_argument("--judge-deployment", default=None,
                        help="judge-model metrics (coherence, groundedness, safety): a seam, off by default")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def main(argv: Sequence[str] | None = None) -> int:
    """The job's command line: ``--policy JSON``, ``--output DIR``; one line and exit 2 on bad input."""
    parser = argparse.ArgumentParser(prog="evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_arguments(parser)
    parser.add_argument("--policy", type=_policy, default={}, help="JSON: {min_rows, metrics: {name: rule}}")
    parser.add_argument("--output", required=True, help="folder for report.json, report.md, report.png")
    parser.add_argument("--fail-on-refuse", action="store_true", help="exit 1 when the verdict is fail")
    options = parser.parse_args(argv)
    try:
        report = evaluate(options, key=os.environ.get(scoring_client().ENDPOINT_KEY_ENV) or None)
    except (InputError, *INPUT_ERRORS) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(text_table(report))
    return 1 if options.fail_on_refuse and report["verdict"] == "fail" else 0
