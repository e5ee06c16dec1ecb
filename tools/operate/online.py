"""The online check of a blue/green rollout: before the new deployment takes any traffic (live or mirrored), the
first K gate rows go to it and to the live deployment through the endpoint's scoring URI, each request routed by the
`azureml-model-deployment` header (learn.microsoft.com `how-to-safely-rollout-online-endpoints`, "Test the new
deployment": a deployment at 0 % is reached by that header), and the rollout stops, traffic untouched, when the new
one's error rate or latency is worse beyond its margin.

The check is one command of the rollout (``tools.operate.bluegreen.moves``), ``python -m tools evaluate
--online-check``: the evaluation's own code calls both deployments and decides with its verdict rule (the paired
bootstrap interval of new - live against an absolute non-inferiority margin; ``tools.evaluate.verdict``). Its values
are ``rollout.online_check`` (enabled, rows, error_rate_margin, latency_margin_ms, data); the printed plan shows
them as options, so the command a reviewer reads is the command apply runs. Exit 0 passes; 1 (refused) or 2 (the
endpoint could not be scored) stops the rollout; the new deployment stays at 0 % for inspection.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tools.core.errors import CloudRefused
from tools.core.repo import REPO_ROOT
from tools.operate import commands
from tools.operate.az import Az
from tools.operate.commands import Argv
from tools.operate.steps import shell_command
from tools.serve.scoring_client import ENDPOINT_KEY_ENV, ENDPOINT_URL_ENV

COMMAND = ("python", "-m", "tools", "evaluate", "--online-check")
OUT = ".runs/online-check"
REFUSED = "refused: "  # the evaluation's refusal lines on stderr
REFUSED_BY = "online check refused"


def enabled(rollout: dict[str, Any]) -> bool:
    return bool((rollout.get("online_check") or {}).get("enabled"))


def number(value: Any) -> str:
    """``0.05`` -> ``0.05``, ``500.0`` -> ``500`` (as the values file writes it)."""
    return f"{float(value):g}"


def argv(endpoint: str, scope: tuple[str, ...], workspace: str, check: dict[str, Any], live: str, new: str) -> Argv:
    """The check of ``new`` against ``live`` on ``endpoint`` (``scope``: `-g RG -w WS --subscription SUB`);
    ``check``: the ``rollout.online_check`` values, ``data`` resolved to a local file (``Workspace.rollout``)."""
    return (*COMMAND, "--workspace", workspace, "--endpoint", endpoint, *scope,
            "--candidate", f"deployment:{new}", "--champion", f"deployment:{live}", "--data", str(check["data"]),
            "--rows", str(check["rows"]), "--error-rate-margin", number(check["error_rate_margin"]),
            "--latency-margin-ms", number(check["latency_margin_ms"]), "--out", f"{OUT}/{endpoint}",
            "--no-progress")  # fmt: skip


def note(check: dict[str, Any]) -> str:
    return (f"online check: the first {check['rows']} gate rows to ${{NEW}} and ${{LIVE}} (azureml-model-deployment "
            f"header); an error rate worse by more than {number(check['error_rate_margin'])} or a latency worse by "
            f"more than {number(check['latency_margin_ms'])} ms stops here, before any traffic moves")  # fmt: skip


def run(az: Az, argv_: Argv, endpoint: str, scope: tuple[str, ...], live: str, new: str) -> None:
    """Run the check with this interpreter (the plan's ``python``), its output in the run's log; CloudRefused with
    the refusal lines (metric, both values, interval, margin) when it does not pass. The endpoint's URI and key come
    from `az` inside the check (never printed); the scoring client's URL/key variables are not passed to it, so
    the check scores the endpoint the plan names."""
    env = {k: v for k, v in os.environ.items() if k not in (ENDPOINT_URL_ENV, ENDPOINT_KEY_ENV)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    runnable = (sys.executable, *argv_[1:]) if argv_[0] == "python" else argv_
    result = az.call(runnable, env=env)
    if result.code == 0:
        print(f"    online check: {new} is not worse than {live} (error rate, latency; report in {OUT}/{endpoint})",
              flush=True)  # fmt: skip
        return
    refused = [line.removeprefix(REFUSED) for line in result.stderr.splitlines() if line.startswith(REFUSED)]
    why = "; ".join(refused) if refused else (result.said() or f"exit {result.code}")
    delete = shell_command(commands.deployment_delete(new, endpoint, scope))
    raise CloudRefused(
        f"{REFUSED_BY} {new} against {live} ({why}); report in {OUT}/{endpoint}; traffic untouched, {new} "
        f"stays at 0 % for inspection: delete it with `{delete}` (the next apply replaces it)"
    )
