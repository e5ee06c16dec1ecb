"""``python -m tools evaluate``: judge a candidate chat model against a champion on the gate set, locally (MLflow
model folders, CPU, a progress bar) or against a running endpoint (a scoring URI, or ``--endpoint NAME`` with
``deployment:NAME`` for each side). The same code as the ``components/evaluate`` job (``tools/evaluate/run.py``).

The policy (per metric: direction, floor, non-inferiority margin; minimum rows) and the decoding settings come from
the workspace's ``evaluation:`` values; options override the decoding. Writes report.json, report.md and report.png
to --out and prints the table and the verdict.

``--online-check`` is the blue/green rollout's check (``tools/operate/online.py`` prints and runs it): two
deployments of one endpoint on the first ``--rows`` gate rows, decided on error rate and latency only, each with the
same non-inferiority rule (``tools.evaluate.verdict``) and an absolute margin: ``--error-rate-margin`` (a share) and
``--latency-margin-ms`` (milliseconds; the report's latency_s is in seconds). Defaults: the workspace's
``rollout.online_check`` values. The other metrics are reported only.

Exit codes: 0 the candidate passes, 1 it is refused (the failing metric, both values and the interval on stderr),
2 the evaluation could not run (one line: the gate set, a model folder, an endpoint, an option).
"""

from __future__ import annotations

import argparse
import os
import sys

from tools.core.errors import UserError
from tools.evaluate import run as core
from tools.evaluate.report import REPORT_JSON, REPORT_MD, REPORT_PNG, text_table
from tools.serve.scoring_client import ENDPOINT_KEY_ENV

DEFAULT_OUT = ".runs/evaluate"
DEPLOYMENT = "deployment:"
DECODING = ("seed", "resamples", "max_new_tokens", "max_length")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    core.add_arguments(parser)
    parser.set_defaults(**dict.fromkeys(DECODING))  # None: the workspace's evaluation values decide
    parser.add_argument("--workspace", default="dev", help="values whose evaluation: policy applies (default: dev)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="report folder (default: %(default)s)")
    parser.add_argument("--endpoint", default=None, help="an online endpoint by name (its URI and key come from az)")
    parser.add_argument("--endpoint-url", default=None, help="a scoring URI; with --endpoint*, deployment:NAME sides")
    parser.add_argument("-g", "--resource-group", default=None, help="resource group of --endpoint")
    parser.add_argument("-w", "--workspace-name", default=None, help="Azure ML workspace of --endpoint")
    parser.add_argument("--subscription", default=None, help="subscription of --endpoint (default: az's)")
    parser.add_argument("--online-check", action="store_true",
                        help="a rollout's check of two deployments: decide on error rate and latency only")
    parser.add_argument("--error-rate-margin", type=float, default=None,
                        help="--online-check: error-rate margin, a share (default: rollout.online_check)")
    parser.add_argument("--latency-margin-ms", type=float, default=None,
                        help="--online-check: latency margin in ms (default: rollout.online_check)")


def evaluation_values(workspace: str) -> dict:
    from tools.render.values import load_values

    return dict(load_values(workspace).data.get("evaluation") or {})


def online_policy(error_rate_margin: float, latency_margin_ms: float) -> dict:
    """The online check's policy: error rate and latency decide, each by its non-inferiority margin (pure)."""
    return {"min_rows": 1, "metrics": {
        "error_rate": {"direction": "lower", "margin": error_rate_margin},
        "latency_s": {"direction": "lower", "margin": latency_margin_ms / 1000.0},
    }}  # fmt: skip


def _online(args: argparse.Namespace) -> dict:
    """Check the --online-check options, fill them from ``rollout.online_check``; return the policy."""
    from tools.render.values import load_values

    sides = [side for side in ("candidate", "champion") if not getattr(args, f"{side}_model").startswith(DEPLOYMENT)]
    if sides:
        raise UserError(f"--online-check compares two deployments of one endpoint: --{sides[0]} "
                        f"{getattr(args, f'{sides[0]}_model')} should be deployment:NAME")  # fmt: skip
    values = dict((load_values(args.workspace).data.get("rollout") or {}).get("online_check") or {})
    for option, key in (("error_rate_margin", "error_rate_margin"), ("latency_margin_ms", "latency_margin_ms"),
                        ("rows", "rows")):  # fmt: skip
        if getattr(args, option) is None:
            setattr(args, option, values.get(key))
    for option in ("error_rate_margin", "latency_margin_ms", "rows"):
        value = getattr(args, option)
        if value is None or value < 0 or (option == "rows" and value < 1):
            flag = "--" + option.replace("_", "-")
            raise UserError(f"--online-check: {flag} {value}: expected a number >= {1 if option == 'rows' else 0}")
    return online_policy(args.error_rate_margin, args.latency_margin_ms)


def _resolve_sides(args: argparse.Namespace) -> str | None:
    """Turn ``deployment:NAME`` sides into the endpoint's URI and deployment; return the key (None: keyless)."""
    sides = [side for side in ("candidate", "champion") if getattr(args, f"{side}_model").startswith(DEPLOYMENT)]
    if not sides:
        return os.environ.get(ENDPOINT_KEY_ENV) or None
    if not (args.endpoint or args.endpoint_url):
        raise UserError(f"--{sides[0]} {getattr(args, f'{sides[0]}_model')}: deployment:NAME needs --endpoint NAME "
                        "or --endpoint-url URI")  # fmt: skip
    from tools.serve.score import resolve_endpoint

    url, key = resolve_endpoint(args.endpoint_url, args.endpoint, args.resource_group, args.workspace_name,
                                args.subscription)
    for side in sides:
        setattr(args, f"{side}_deployment", getattr(args, f"{side}_model")[len(DEPLOYMENT):])
        setattr(args, f"{side}_model", url)
    return key


def run(args: argparse.Namespace) -> int:
    values = evaluation_values(args.workspace)
    for name in DECODING:
        if getattr(args, name) is None:
            setattr(args, name, values.get(name, {"seed": 0, "resamples": 1000, "max_new_tokens": 64,
                                                  "max_length": 2048}[name]))  # fmt: skip
    args.policy = {"min_rows": values.get("min_rows", 1), "metrics": values.get("metrics") or {}}
    if args.online_check:
        args.policy = _online(args)
    if args.judge_deployment is None:
        args.judge_deployment = values.get("judge_deployment")
    args.output = args.out
    key = _resolve_sides(args)
    try:
        report = core.evaluate(args, key=key, say=lambda line: print(line, flush=True))
    except (core.InputError, *core.INPUT_ERRORS) as error:
        raise UserError(str(error)) from None
    print(text_table(report))
    print(f"wrote {args.out}/{REPORT_JSON}, {REPORT_MD}, {REPORT_PNG}")
    if report["verdict"] == "fail":
        for reason in report["reasons"]:
            print(f"refused: {reason}", file=sys.stderr)
        return 1
    return 0
