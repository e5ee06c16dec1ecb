"""The deployment step of `apply`: all traffic at once on a new endpoint, blue/green beside a live deployment.

The documented safe rollout (learn.microsoft.com `how-to-safely-rollout-online-endpoints`), the moves of
``tools.operate.bluegreen.moves`` (the same list the printed plan shows):
  1. keep the live deployment; create the new one beside it *without* `--all-traffic` (it starts at 0 %), named
     with the other colour (blue <-> green),
  2. wait until `provisioning_state` is Succeeded,
  3. invoke it directly (`invoke --deployment-name`), then, with `rollout.online_check.enabled`, send the first K
     gate rows to it and to the live deployment and stop when it is worse (``tools.operate.online``),
  4. optionally mirror a share of live traffic to it (`--mirror-traffic`, at most 50 %, cleared before it takes
     live traffic: both on one deployment are refused),
  5. shift live traffic in the steps of `rollout.steps` (integers adding up to 100), a smoke test between,
  6. delete the old deployment (`rollout.keep_old: false`) or leave it at 0 % for `python -m tools rollback`.
On any failure all traffic goes back to (or stays on) the old deployment, the new one's get-logs commands are
printed and the step fails. `create` of an existing deployment fails (Azure/azure-cli#23496), so every case
starts from `show`/`list`: a deployment equal to the spec is left alone, one that differs only in settings Azure
updates in place (instance count, request settings, probes) is updated, anything else rolls out beside it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tools.core.errors import CloudRefused, UserError
from tools.core.repo import active
from tools.operate import bluegreen, commands, online, quota
from tools.operate.az import Az
from tools.operate.bluegreen import RolloutTarget, partner
from tools.operate.compare import differing_keys
from tools.operate.steps import SAMPLE_REQUEST, SAMPLE_REQUEST_HINT, Step, shell_command
from tools.operate.workspace import Workspace

IN_PLACE = frozenset(
    {"instance_count", "request_settings", "liveness_probe", "readiness_probe", "description", "app_insights_enabled"}
)
NOT_UPDATABLE = frozenset({"tags"})  # online-deployment update cannot change tags (Azure/azure-cli#33834)
WAIT_SECONDS = 20
WAIT_TRIES = 90
PENDING = ("Creating", "Updating", "Provisioning", "Scaling")


class AzureEndpoint:
    """One online endpoint as Azure holds it: reads and changes its traffic and deployments through ``Az``."""

    def __init__(self, az: Az, ws: Workspace, name: str) -> None:
        self.az, self.ws, self.name = az, ws, name
        self.scope = tuple(ws.scope())

    def show(self) -> dict[str, Any]:
        data = self.az.show(commands.endpoint_show(self.name, self.scope))
        if data is None:
            raise CloudRefused(f"endpoint {self.name} does not exist (the deploy stage creates it first)")
        return data

    def traffic(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in (self.show().get("traffic") or {}).items()}

    def mirror(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in (self.show().get("mirror_traffic") or {}).items()}

    def deployments(self) -> dict[str, dict[str, Any]]:
        rows = self.az.json(commands.deployment_list(self.name, self.scope), f"list the deployments of {self.name}")
        return {str(row["name"]): row for row in rows or [] if isinstance(row, dict) and "name" in row}

    def deployment(self, name: str) -> dict[str, Any] | None:
        return self.az.show(commands.deployment_show(name, self.name, self.scope))

    def set_traffic(self, shares: dict[str, int]) -> None:
        word = commands.traffic_word(shares)
        self.az.run(commands.endpoint_traffic(self.name, word, self.scope), f"traffic {word} on {self.name}")

    def set_mirror(self, name: str, pct: int) -> None:
        word = commands.traffic_word({name: pct})
        self.az.run(commands.endpoint_mirror(self.name, word, self.scope), f"mirror {pct} % to {name}")

    def delete(self, name: str) -> None:
        self.az.run(commands.deployment_delete(name, self.name, self.scope), f"delete deployment {name}")

    def wait_succeeded(self, argv: commands.Argv, name: str) -> None:
        """Ask for ``provisioning_state`` (``argv``: `show --query provisioning_state -o tsv`) until Succeeded."""
        for _ in range(WAIT_TRIES):
            state = self.az.capture(argv, f"provisioning state of deployment {name}") or "missing"
            if state == "Succeeded":
                return
            if state not in PENDING:
                raise CloudRefused(f"deployment {name} is {state}, expected Succeeded")
            print(f"    deployment {name}: {state}", flush=True)
            time.sleep(WAIT_SECONDS)
        raise CloudRefused(f"deployment {name} did not reach Succeeded in {WAIT_SECONDS * WAIT_TRIES} s")


def target_of(ws: Workspace, step: Step) -> RolloutTarget:
    """The rollout a deployment step describes (its spec, endpoint, `--set` words and the rollout values)."""
    return RolloutTarget(
        spec_path=str(step.spec), spec_name=str(step.data["name"]), endpoint=str(step.data["endpoint_name"]),
        scope=tuple(ws.scope()), sets=commands.set_words(step.sets), rollout=ws.rollout, request_file=SAMPLE_REQUEST,
        workspace=ws.values_name,
    )  # fmt: skip


def _print_logs(target: RolloutTarget, deployment: str) -> None:
    for hint in commands.deployment_logs(deployment, target.endpoint, target.scope):
        print(f"hint: {shell_command(hint)}", file=sys.stderr)


def _create(az: Az, ws: Workspace, step: Step, argv: commands.Argv, name: str) -> None:
    quota.check(az, ws, quota.deployment_need(name, step.data))
    az.run(argv, f"create deployment {name} on {step.data['endpoint_name']}")


def deploy(az: Az, ws: Workspace, step: Step) -> str:
    """Bring the endpoint to serve ``step.spec``; returns what happened (created / updated / unchanged / rolled out)."""
    spec = step.data
    target = target_of(ws, step)
    endpoint = AzureEndpoint(az, ws, target.endpoint)
    traffic = endpoint.traffic()
    existing = endpoint.deployments()
    live = sorted((pct, name) for name, pct in traffic.items() if pct > 0 and name in existing)
    if not live:  # a new endpoint (nothing serves yet): this deployment takes all traffic at once
        name = target.spec_name
        if name not in existing:
            _create(az, ws, step, bluegreen.first_deployment(target, name), name)
            return f"created {name} with all traffic (first deployment of {endpoint.name})"
        az.run(commands.deployment_update(target.spec_path, name, target.scope, target.sets),
               f"update deployment {name}")  # fmt: skip
        endpoint.set_traffic({name: 100})
        return f"updated {name} and gave it all traffic"
    old = live[-1][1]
    differs = [k for k in differing_keys("managedOnlineDeployment", spec, existing[old]) if k not in NOT_UPDATABLE]
    if not differs:
        if traffic.get(old) != 100:
            endpoint.set_traffic({name: (100 if name == old else 0) for name in existing if name in traffic})
        return f"unchanged ({old} serves {spec.get('model')} as the spec says)"
    if set(differs) <= IN_PLACE:
        az.run(commands.deployment_update(target.spec_path, old, target.scope, target.sets),
               f"update deployment {old} ({', '.join(differs)})")  # fmt: skip
        return f"updated {old} in place ({', '.join(differs)})"
    return blue_green(az, ws, step, endpoint, old, existing, differs)


def blue_green(
    az: Az, ws: Workspace, step: Step, endpoint: AzureEndpoint, old: str, existing: dict[str, dict[str, Any]],
    differs: list[str],
) -> str:
    target = target_of(ws, step)
    if not (active().root / SAMPLE_REQUEST).is_file():
        raise UserError(f"step {step.name}: {SAMPLE_REQUEST} does not exist (write it with: {SAMPLE_REQUEST_HINT}); "
                        "a rollout smoke-tests the new deployment before it takes traffic")  # fmt: skip
    check = target.rollout.get("online_check") or {}
    if online.enabled(target.rollout) and not (active().root / str(check["data"])).is_file():
        raise UserError(f"step {step.name}: rollout.online_check.data {check['data']} does not exist (a local JSONL "
                        "of gate rows: python -m tools data prepare writes one)")  # fmt: skip
    new = partner(old, target.spec_name)
    print(f"    blue/green: {old} is live; {', '.join(differs)} differ: rolling out {new} beside it", flush=True)
    if new in existing:  # a deployment at 0 % left by an earlier rollout (keep_old or a failed attempt)
        if endpoint.mirror().get(new):
            endpoint.set_mirror(new, 0)
        endpoint.delete(new)
    planned = bluegreen.moves(target, old, new)
    before_delete = [m for m in planned if m.what != "delete"]
    shifted = mirrored = False
    try:
        for move in before_delete:
            if move.what == "create":
                _create(az, ws, step, move.argv, new)
            elif move.what == "wait":
                endpoint.wait_succeeded(move.argv, new)
            elif move.what == "check":
                online.run(az, move.argv, endpoint.name, target.scope, old, new)
            else:
                az.run(move.argv, _what(move, endpoint.name, new))
            shifted = shifted or move.what == "traffic"
            mirrored = (mirrored or move.what == "mirror") and move.what != "unmirror"
    except (CloudRefused, UserError) as error:
        _restore(az, target, old, new, shifted, mirrored)
        _print_logs(target, new)
        if str(error).startswith(online.REFUSED_BY):  # nothing moved: it says so, and how to remove the new one
            raise CloudRefused(f"rollout of {new} on {endpoint.name} stopped: {error}") from None
        raise CloudRefused(f"rollout of {new} on {endpoint.name} failed ({error}); all traffic is on {old}") from None
    if len(before_delete) == len(planned):
        return f"rolled out {new}: all traffic on {new}; {old} kept at 0 % (python -m tools rollback)"
    endpoint.delete(old)
    return f"rolled out {new}: all traffic on {new}; {old} deleted"


def _what(move: bluegreen.Move, endpoint: str, new: str) -> str:
    """The failure text of a move (``Az`` adds the command itself)."""
    if move.what == "invoke":
        return f"smoke test of deployment {new}" if "--deployment-name" in move.argv else f"smoke test of {endpoint}"
    if move.what in ("mirror", "unmirror", "traffic"):
        option = "--traffic" if move.what == "traffic" else "--mirror-traffic"
        return f"{move.what} {move.argv[move.argv.index(option) + 1]} on {endpoint}"
    return f"{move.what} {new}"


def _restore(az: Az, target: RolloutTarget, old: str, new: str, shifted: bool, mirrored: bool) -> None:
    """Best effort: all traffic back on the old deployment (each command is still checked and reported)."""
    try:
        if mirrored:
            az.run(commands.endpoint_mirror(target.endpoint, commands.traffic_word({new: 0}), target.scope),
                   f"mirror 0 % to {new}")  # fmt: skip
        if shifted:
            az.run(bluegreen.restore(target, old, new), f"traffic back to {old}")
    except CloudRefused as error:
        print(f"error: restoring traffic to {old} failed too: {error}", file=sys.stderr)
