"""The blue/green rollout as one ordered list of moves, which the printed plan renders as shell and `apply` runs.

  no live deployment   the deployment takes all traffic at once (`create --all-traffic`): a new endpoint
  a live deployment    the documented safe rollout (learn.microsoft.com `how-to-safely-rollout-online-endpoints`):
                       create the other colour beside it at 0 %, check `provisioning_state` is Succeeded, invoke it
                       directly (`--deployment-name`), optionally check it against the live one on the first
                       gate rows (`rollout.online_check`, ``tools.operate.online``), optionally mirror a share of
                       live traffic to it and clear the mirror (mirror and live traffic on one deployment are
                       refused), shift live traffic in the values' steps with a smoke test between, then delete the
                       old deployment or keep it at 0 % (`rollout.keep_old`)
``moves`` is the one source of that sequence: ``script`` prints it with ``${LIVE}`` / ``${NEW}`` for the names the
shell finds out, ``tools.operate.rollout`` runs it with the names it read from Azure (and restores traffic on a
failure). ``partner`` is the one source of the colour a new deployment takes. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tools.operate import commands, online
from tools.operate.commands import Argv
from tools.operate.steps import shell_command

COLOURS = ("blue", "green")
LIVE, NEW = "${LIVE}", "${NEW}"  # the names as the printed plan holds them


def partner(name: str, spec_name: str) -> str:
    """The colour a new deployment takes beside ``name`` (blue <-> green; another name alternates with NAME-next)."""
    if name in COLOURS:
        return COLOURS[1 - COLOURS.index(name)]
    return spec_name if name != spec_name else f"{spec_name}-next"


@dataclass(frozen=True)
class RolloutTarget:
    """What a rollout deploys and where: the deployment spec, its endpoint, the rollout values."""

    spec_path: str
    spec_name: str
    endpoint: str
    scope: tuple[str, ...]
    sets: tuple[str, ...]  # `--set model=...` words (a finetuning job's registered model), or none
    rollout: dict[str, Any]  # ``Workspace.rollout``: online_check.data resolved to a local file
    request_file: str
    workspace: str = "dev"  # the values' name (the online check's decoding settings)


@dataclass(frozen=True)
class Move:
    """One command of a rollout. ``what``: create, wait (provisioning_state must become Succeeded), invoke, mirror,
    unmirror, traffic (live traffic shifts), delete (the old deployment). ``note``: a comment the plan prints first."""

    what: str
    argv: Argv
    note: str = ""
    # what: ... check (the online check of the new deployment against the live one; ``tools.operate.online``)


def invoke(target: RolloutTarget, deployment: str | None) -> Argv:
    return commands.endpoint_invoke(target.endpoint, target.request_file, target.scope, deployment)


def first_deployment(target: RolloutTarget, name: str) -> Argv:
    """Nothing serves yet (a new endpoint): the deployment takes all traffic at once."""
    return commands.deployment_create(target.spec_path, name, target.scope, all_traffic=True, sets=target.sets)


def moves(target: RolloutTarget, live: str, new: str) -> list[Move]:
    """The rollout of ``new`` beside the ``live`` deployment, in order."""
    scope, endpoint = target.scope, target.endpoint
    out = [
        Move("create", commands.deployment_create(target.spec_path, new, scope, sets=target.sets)),
        Move("wait", commands.deployment_state(new, endpoint, scope)),
        Move("invoke", invoke(target, new)),
    ]
    check = target.rollout.get("online_check") or {}
    if online.enabled(target.rollout):
        out.append(Move("check", online.argv(endpoint, scope, target.workspace, check, live, new), online.note(check)))
    mirror = int(target.rollout.get("mirror") or 0)
    if mirror:
        out += [
            Move("mirror", commands.endpoint_mirror(endpoint, commands.traffic_word({new: mirror}), scope)),
            Move("invoke", invoke(target, None)),
            Move("unmirror", commands.endpoint_mirror(endpoint, commands.traffic_word({new: 0}), scope),
                 "the mirror is cleared before the deployment takes live traffic (both on one deployment are refused)"),
        ]  # fmt: skip
    for pct in target.rollout.get("steps") or [100]:
        shares = commands.traffic_word({live: 100 - int(pct), new: int(pct)})
        out += [Move("traffic", commands.endpoint_traffic(endpoint, shares, scope)),
                Move("invoke", invoke(target, new)), Move("invoke", invoke(target, None))]  # fmt: skip
    if not target.rollout.get("keep_old"):
        out.append(Move("delete", commands.deployment_delete(live, endpoint, scope)))
    return out


def restore(target: RolloutTarget, live: str, new: str) -> Argv:
    """All live traffic back on the old deployment."""
    return commands.endpoint_traffic(target.endpoint, commands.traffic_word({live: 100, new: 0}), target.scope)


def live_query(first: str, second: str) -> str:
    """JMESPath for `online-endpoint show`: the one of two deployments that receives live traffic, else ""
    (`traffic` is a mapping of deployment name to percent)."""
    return (f'traffic."{first}" > `0` && `"{first}"` || traffic."{second}" > `0` && `"{second}"` || `""`')


def script(target: RolloutTarget) -> str:
    """The branch as shell (``${LIVE}`` / ``${NEW}``: the live deployment and the one rolled out beside it)."""
    a, b = target.spec_name, partner(target.spec_name, target.spec_name)
    show = (*commands.endpoint_show(target.endpoint, target.scope), *commands.tsv(live_query(b, a)))
    quoted_a = shell_command([a])

    def cmd(move: Move) -> str:
        line = shell_command(move.argv)
        return f'  test "$({line})" = Succeeded' if move.what == "wait" else f"  {line}"

    lines = [
        f"LIVE=$({shell_command(show)})",
        'if [ -z "${LIVE}" ]; then',
        "  # nothing serves yet (a new endpoint): the deployment takes all traffic at once",
        "  " + shell_command(first_deployment(target, a)),
        "else",
        "  # blue/green beside the live deployment (apply leaves an equal one alone and updates instance_count,",
        "  # request settings and probes in place); on any failure: traffic back with",
        f"  #   {shell_command(restore(target, LIVE, NEW))}",
        f'  if [ "${{LIVE}}" = {quoted_a} ]; then NEW={shell_command([b])}; else NEW={quoted_a}; fi',
    ]
    for move in moves(target, LIVE, NEW):
        if move.note:
            lines.append(f"  # {move.note}")
        lines.append(cmd(move))
    if target.rollout.get("keep_old"):
        lines.append("  # the old deployment stays at 0 %: python -m tools rollback moves traffic back to it")
    lines.append("fi")
    return "\n".join(lines)
