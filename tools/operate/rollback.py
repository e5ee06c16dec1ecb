"""`python -m tools rollback --workspace W`: the emergency rollback. All live traffic goes back to the previous
deployment of the workspace's endpoint while it still exists (a rollout kept it at 0 %: `rollout.keep_old`), with
`az ml online-endpoint update --traffic "old=100 new=0"` (learn.microsoft.com `how-to-safely-rollout-online-endpoints`,
"Rollback"). A dry
run (prints the command) unless --execute. Once the old deployment is deleted, rollback is a new rollout of the old
model version: revert the promotion commit and `python -m tools apply --stage deploy,smoke --execute`.
"""

from __future__ import annotations

import argparse

from tools.core.errors import CloudRefused
from tools.core.repo import active
from tools.operate import commands
from tools.operate.az import Az
from tools.operate.options import add_workspace_arguments, workspace_from_args
from tools.operate.rollout import AzureEndpoint
from tools.operate.stages import endpoint_spec
from tools.operate.steps import shell_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_workspace_arguments(parser)
    parser.add_argument("--execute", action="store_true", help="move the traffic (default: print the command)")


def run(args: argparse.Namespace) -> int:
    ws = workspace_from_args(args)
    Az.require()
    az = Az(active().root)
    endpoint = AzureEndpoint(az, ws, str(endpoint_spec(ws).data["name"]))
    traffic = endpoint.traffic()
    existing = endpoint.deployments()
    live = sorted((pct, name) for name, pct in traffic.items() if pct > 0)
    if not live:
        raise CloudRefused(f"endpoint {endpoint.name} has no live deployment to roll back from")
    current = live[-1][1]
    previous = sorted(name for name in existing if name != current)
    if not previous:
        raise CloudRefused(
            f"endpoint {endpoint.name}: {current} is the only deployment (the previous one was deleted after the "
            f"rollout): revert the promotion commit and run python -m tools apply --workspace {ws.values_name} "
            "--stage deploy,smoke --execute"
        )
    target = previous[0]
    shares = {target: 100, **{name: 0 for name in traffic if name != target}}
    argv = commands.endpoint_traffic(endpoint.name, commands.traffic_word(shares), ws.scope())
    if not args.execute:
        print(f"# dry run: all traffic of {endpoint.name} from {current} back to {target} (run it with --execute)")
        print(shell_command(argv))
        return 0
    az.run(argv, f"rollback of {endpoint.name} to {target}")
    print(f"rollback: {endpoint.name}: all traffic on {target} "
          f"(serving {existing[target].get('model')}); {current} kept at 0 %")  # fmt: skip
    return 0
