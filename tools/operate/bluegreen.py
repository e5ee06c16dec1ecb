"""The deployment step as the printed plan shows it: a shell branch on whether the endpoint already serves a model.

  no live deployment   the deployment takes all traffic at once (`create --all-traffic`): a new endpoint
  a live deployment    the documented safe rollout (azureml-operations.md "Traffic and safe rollout"): create the
                       other colour beside it at 0 %, check `provisioning_state` is Succeeded, invoke it directly
                       (`--deployment-name`), optionally mirror a share of live traffic to it and clear the mirror,
                       shift live traffic in the values' steps with a smoke test between, then delete the old
                       deployment or keep it at 0 % (`rollout.keep_old`)
Pure: ``script`` returns text; ``tools.operate.rollout`` runs the same path with `show` first (an equal live
deployment is left alone, in-place settings are updated) and restores traffic on failure. ``partner`` is the one
source of the colour a new deployment takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tools.operate.steps import shell_command, shell_word

COLOURS = ("blue", "green")


def partner(name: str, spec_name: str) -> str:
    """The colour a new deployment takes beside ``name`` (blue <-> green; another name alternates with NAME-next)."""
    if name in COLOURS:
        return COLOURS[1 - COLOURS.index(name)]
    return spec_name if name != spec_name else f"{spec_name}-next"


@dataclass(frozen=True)
class Plan:
    spec_path: str
    spec_name: str
    endpoint: str
    scope: tuple[str, ...]
    sets: tuple[str, ...]  # `--set model=...` words (a finetuning job's registered model), or none
    rollout: dict[str, Any]
    request_file: str


def live_query(first: str, second: str) -> str:
    """JMESPath for `online-endpoint show`: the one of two deployments that receives live traffic, else ""
    (`traffic` is a mapping of deployment name to percent)."""
    return (f'traffic."{first}" > `0` && `"{first}"` || traffic."{second}" > `0` && `"{second}"` || `""`')


def script(plan: Plan) -> str:
    """The branch as shell (``${LIVE}`` / ``${NEW}``: the live deployment and the one rolled out beside it)."""
    a, b = plan.spec_name, partner(plan.spec_name, plan.spec_name)
    scope = list(plan.scope)
    endpoint = ["--endpoint-name", plan.endpoint]

    def cmd(*words: str) -> str:
        return "  " + shell_command(list(words))

    def invoke(deployment: str | None) -> str:
        target = ["--deployment-name", deployment] if deployment else []
        return cmd("az", "ml", "online-endpoint", "invoke", "--name", plan.endpoint, *target, "--request-file",
                   plan.request_file, *scope)  # fmt: skip

    def traffic(live: int) -> str:
        return cmd("az", "ml", "online-endpoint", "update", "--name", plan.endpoint, "--traffic",
                   f"${{LIVE}}={100 - live} ${{NEW}}={live}", *scope)  # fmt: skip

    show = ["az", "ml", "online-endpoint", "show", "--name", plan.endpoint, *scope, "--query", live_query(b, a),
            "-o", "tsv"]  # fmt: skip
    create = ["az", "ml", "online-deployment", "create", "-f", plan.spec_path]
    state = ["az", "ml", "online-deployment", "show", "--name", "${NEW}", *endpoint, *scope, "--query",
             "provisioning_state", "-o", "tsv"]  # fmt: skip
    lines = [
        f"LIVE=$({shell_command(show)})",
        'if [ -z "${LIVE}" ]; then',
        "  # nothing serves yet (a new endpoint): the deployment takes all traffic at once",
        cmd(*create, "--name", a, *scope, "--all-traffic", *plan.sets),
        "else",
        "  # blue/green beside the live deployment (apply leaves an equal one alone and updates instance_count,",
        "  # request settings and probes in place); on any failure: traffic back with",
        f"  #   az ml online-endpoint update --name {shell_word(plan.endpoint)} --traffic \"${{LIVE}}=100 ${{NEW}}=0\" "
        + shell_command(scope),
        f'  if [ "${{LIVE}}" = {shell_word(a)} ]; then NEW={shell_word(b)}; else NEW={shell_word(a)}; fi',
        cmd(*create, "--name", "${NEW}", *scope, *plan.sets),
        f'  test "$({shell_command(state)})" = Succeeded',
        invoke("${NEW}"),
    ]  # fmt: skip
    mirror = int(plan.rollout.get("mirror") or 0)
    if mirror:
        lines += [
            cmd("az", "ml", "online-endpoint", "update", "--name", plan.endpoint, "--mirror-traffic",
                f"${{NEW}}={mirror}", *scope),
            invoke(None),
            "  # the mirror is cleared before the deployment takes live traffic (both on one deployment are refused)",
            cmd("az", "ml", "online-endpoint", "update", "--name", plan.endpoint, "--mirror-traffic", "${NEW}=0",
                *scope),
        ]  # fmt: skip
    for pct in plan.rollout.get("steps") or [100]:
        lines += [traffic(int(pct)), invoke("${NEW}"), invoke(None)]
    if plan.rollout.get("keep_old"):
        lines.append("  # the old deployment stays at 0 %: python -m tools rollback moves traffic back to it")
    else:
        lines.append(cmd("az", "ml", "online-deployment", "delete", "--name", "${LIVE}", *endpoint, *scope, "--yes"))
    lines.append("fi")
    return "\n".join(lines)
