"""The deployment step: all traffic at once on a new endpoint, blue/green beside a live deployment.

The documented safe rollout (azureml-operations.md "Traffic and safe rollout", from learn.microsoft.com
`how-to-safely-rollout-online-endpoints`):
  1. keep the live deployment; create the new one beside it *without* `--all-traffic` (it starts at 0 %), named
     with the other colour (blue <-> green),
  2. wait until `provisioning_state` is Succeeded,
  3. invoke it directly (`invoke --deployment-name`),
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
from pathlib import Path
from typing import Any

from tools.core.errors import CloudRefused, UserError
from tools.operate import quota
from tools.operate.az import Az
from tools.operate.bluegreen import partner
from tools.operate.compare import differing_keys
from tools.operate.stages import get_logs_commands, invoke_argv
from tools.operate.steps import SAMPLE_REQUEST, SAMPLE_REQUEST_HINT, Step, shell_command
from tools.operate.workspace import Workspace

IN_PLACE = frozenset(
    {"instance_count", "request_settings", "liveness_probe", "readiness_probe", "description", "app_insights_enabled"}
)
NOT_UPDATABLE = frozenset({"tags"})  # online-deployment update cannot change tags (Azure/azure-cli#33834)
WAIT_SECONDS = 20
WAIT_TRIES = 90
PENDING = ("Creating", "Updating", "Provisioning", "Scaling")


def traffic_word(shares: dict[str, int]) -> str:
    return " ".join(f"{name}={pct}" for name, pct in shares.items())


class Endpoint:
    """Reads and changes one endpoint's traffic and deployments through ``Az``."""

    def __init__(self, az: Az, ws: Workspace, name: str) -> None:
        self.az, self.ws, self.name = az, ws, name

    def show(self) -> dict[str, Any]:
        data = self.az.show(["az", "ml", "online-endpoint", "show", "--name", self.name, *self.ws.scope()])
        if data is None:
            raise CloudRefused(f"endpoint {self.name} does not exist (the deploy stage creates it first)")
        return data

    def traffic(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in (self.show().get("traffic") or {}).items()}

    def mirror(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in (self.show().get("mirror_traffic") or {}).items()}

    def deployments(self) -> dict[str, dict[str, Any]]:
        rows = self.az.json(
            ["az", "ml", "online-deployment", "list", "--endpoint-name", self.name, *self.ws.scope()],
            f"list the deployments of {self.name}",
        )
        return {str(row["name"]): row for row in rows or [] if isinstance(row, dict) and "name" in row}

    def deployment(self, name: str) -> dict[str, Any] | None:
        return self.az.show(
            ["az", "ml", "online-deployment", "show", "--name", name, "--endpoint-name", self.name, *self.ws.scope()]
        )

    def set_traffic(self, shares: dict[str, int]) -> None:
        self.az.run(["az", "ml", "online-endpoint", "update", "--name", self.name, "--traffic", traffic_word(shares),
                     *self.ws.scope()], f"traffic {traffic_word(shares)} on {self.name}")  # fmt: skip

    def set_mirror(self, name: str, pct: int) -> None:
        self.az.run(["az", "ml", "online-endpoint", "update", "--name", self.name, "--mirror-traffic",
                     f"{name}={pct}", *self.ws.scope()], f"mirror {pct} % to {name}")  # fmt: skip

    def delete(self, name: str) -> None:
        self.az.run(["az", "ml", "online-deployment", "delete", "--name", name, "--endpoint-name", self.name,
                     *self.ws.scope(), "--yes"], f"delete deployment {name}")  # fmt: skip

    def invoke(self, deployment: str | None = None) -> None:
        target = f"deployment {deployment}" if deployment else f"endpoint {self.name}"
        self.az.run(invoke_argv(self.ws, self.name, deployment), f"smoke test of {target}")

    def wait_succeeded(self, name: str) -> None:
        for _ in range(WAIT_TRIES):
            state = str((self.deployment(name) or {}).get("provisioning_state", "missing"))
            if state == "Succeeded":
                print(f"    deployment {name}: Succeeded", flush=True)
                return
            if state not in PENDING:
                raise CloudRefused(f"deployment {name} is {state}, expected Succeeded")
            time.sleep(WAIT_SECONDS)
        raise CloudRefused(f"deployment {name} did not reach Succeeded in {WAIT_SECONDS * WAIT_TRIES} s")


def _print_logs(ws: Workspace, deployment: str, endpoint: str) -> None:
    for hint in get_logs_commands(ws, deployment, endpoint):
        print(f"hint: {shell_command(hint)}", file=sys.stderr)


def set_words(step: Step) -> list[str]:
    """`--set key=value` for each override of the spec (the model a finetuning job registered)."""
    return [word for pair in step.sets for word in ("--set", pair)]


def _create(az: Az, ws: Workspace, step: Step, name: str, all_traffic: bool, endpoint: str) -> None:
    quota.check(az, ws, quota.deployment_need(name, step.data))
    argv = ["az", "ml", "online-deployment", "create", "-f", str(step.spec), "--name", name, *scope_of(step)]
    if all_traffic:
        argv.append("--all-traffic")
    az.run([*argv, *set_words(step)], f"create deployment {name} on {endpoint}")


def _update(az: Az, step: Step, name: str, what: str) -> None:
    argv = ["az", "ml", "online-deployment", "update", "-f", str(step.spec), "--name", name, *scope_of(step)]
    az.run([*argv, *set_words(step)], what)


def scope_of(step: Step) -> list[str]:
    """The `-g -w --subscription` words of a step (its argv carries them after `-f FILE`)."""
    argv = list(step.argv)
    start = argv.index("-g")
    return argv[start : start + 6]


def deploy(az: Az, ws: Workspace, step: Step, root: Path) -> str:
    """Bring the endpoint to serve ``step.spec``; returns what happened (created / updated / unchanged / rolled out)."""
    spec = step.data
    spec_name = str(spec["name"])
    endpoint = Endpoint(az, ws, str(spec["endpoint_name"]))
    traffic = endpoint.traffic()
    existing = endpoint.deployments()
    live = sorted((pct, name) for name, pct in traffic.items() if pct > 0 and name in existing)
    if not live:  # a new endpoint (nothing serves yet): this deployment takes all traffic at once
        if spec_name not in existing:
            _create(az, ws, step, spec_name, True, endpoint.name)
            return f"created {spec_name} with all traffic (first deployment of {endpoint.name})"
        _update(az, step, spec_name, f"update deployment {spec_name}")
        endpoint.set_traffic({spec_name: 100})
        return f"updated {spec_name} and gave it all traffic"
    old = live[-1][1]
    differs = [k for k in differing_keys("managedOnlineDeployment", spec, existing[old]) if k not in NOT_UPDATABLE]
    if not differs:
        if traffic.get(old) != 100:
            endpoint.set_traffic({name: (100 if name == old else 0) for name in existing if name in traffic})
        return f"unchanged ({old} serves {spec.get('model')} as the spec says)"
    if set(differs) <= IN_PLACE:
        _update(az, step, old, f"update deployment {old} ({', '.join(differs)})")
        return f"updated {old} in place ({', '.join(differs)})"
    return blue_green(az, ws, step, endpoint, old, existing, root, differs)


def blue_green(
    az: Az, ws: Workspace, step: Step, endpoint: Endpoint, old: str, existing: dict[str, dict[str, Any]], root: Path,
    differs: list[str],
) -> str:
    settings = ws.rollout
    if not (root / SAMPLE_REQUEST).is_file():
        raise UserError(f"step {step.name}: {SAMPLE_REQUEST} does not exist (write it with: {SAMPLE_REQUEST_HINT}); "
                        "a rollout smoke-tests the new deployment before it takes traffic")  # fmt: skip
    new = partner(old, str(step.data["name"]))
    print(f"    blue/green: {old} is live; {', '.join(differs)} differ: rolling out {new} beside it", flush=True)
    if new in existing:  # a deployment at 0 % left by an earlier rollout (keep_old or a failed attempt)
        if endpoint.mirror().get(new):
            endpoint.set_mirror(new, 0)
        endpoint.delete(new)
    shifted = mirrored = False
    try:
        _create(az, ws, step, new, False, endpoint.name)
        endpoint.wait_succeeded(new)
        endpoint.invoke(new)  # directly, before it takes any live traffic
        if settings.get("mirror"):
            endpoint.set_mirror(new, int(settings["mirror"]))
            mirrored = True
            endpoint.invoke()
            endpoint.set_mirror(new, 0)  # mirror and live traffic on one deployment are refused
            mirrored = False
        for pct in settings["steps"]:
            endpoint.set_traffic({old: 100 - int(pct), new: int(pct)})
            shifted = True
            endpoint.invoke(new)
            endpoint.invoke()
    except (CloudRefused, UserError) as error:
        _restore(endpoint, old, new, shifted, mirrored)
        _print_logs(ws, new, endpoint.name)
        raise CloudRefused(f"rollout of {new} on {endpoint.name} failed ({error}); all traffic is on {old}") from None
    if settings.get("keep_old"):
        return f"rolled out {new}: all traffic on {new}; {old} kept at 0 % (python -m tools rollback)"
    endpoint.delete(old)
    return f"rolled out {new}: all traffic on {new}; {old} deleted"


def _restore(endpoint: Endpoint, old: str, new: str, shifted: bool, mirrored: bool) -> None:
    """Best effort: all traffic back on the old deployment (each command is still checked and reported)."""
    try:
        if mirrored:
            endpoint.set_mirror(new, 0)
        if shifted:
            endpoint.set_traffic({old: 100, new: 0})
    except CloudRefused as error:
        print(f"error: restoring traffic to {old} failed too: {error}", file=sys.stderr)
