"""The bootstrap stage: the ground under the model, from an empty subscription, idempotently.

Order (each step shows first, then creates, updates or leaves alone, and says which):
  preflight   show the registry and the workspace; a change Azure refuses on an existing one (region, registry
              primary region, a looser managed network: ``tools.validate.rules.immutable``) stops the run here,
              before any create or update
  groups      the registry's and the workspace's resource groups (`az group show` / `create`: a workspace or
              registry needs its resource group first, how-to-manage-registries / how-to-managed-network)
  registry    `az ml registry create -f registry/registry.yml` (long-running: the CLI waits), else
              `az ml registry update -f` when the spec's keys differ from `az ml registry show`
  workspace   `az ml workspace create -f workspace/workspace.yml`, else `update -f` when it differs
  network     `az ml workspace provision-network` unless `managed_network.status.status` is Active: "To create
              an online deployment, you must manually provision the managed network, or create a compute
              instance first" (learn.microsoft.com/azure/machine-learning/how-to-managed-network, "Manually
              provision a managed VNet")
  identity    the endpoint's user-assigned identity (`az identity show` / `create`); its principal id is captured
  roles       every role assignment in ``ROLES``, each with its scope and the docs page that requires it:
              `az role assignment list` first, `create` only what is missing (assigning roles needs Owner or
              User Access Administrator on the scope)

Argv builders here are pure; ``run_step`` is the edge that `apply` calls for the ``platform-*`` actions.
Every command and flag was checked against the CLI's argument tables: azure-cli-extensions
src/machinelearningservices/azext_mlv2/manual/_params/_workspace_params.py and _registry_params.py (`--file`,
`--name`, `--resource-group`; `provision-network`), azure-cli src/azure-cli/azure/cli/command_modules/role/
_params.py (`--assignee-object-id`, `--assignee-principal-type`, `--role`, `--scope`, `--assignee`) and
.../identity/_params.py, .../resource/_params.py (`az group`): docs/platform.md lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tools.core import arm
from tools.core.errors import CloudRefused
from tools.operate.az import Az
from tools.operate.compare import differing_keys
from tools.operate.steps import VARIABLE, Step, shell_command
from tools.operate.workspace import RenderedSpec, Workspace
from tools.validate.rules.immutable import refused_changes

STAGE = "bootstrap"
PRINCIPAL_VAR = "PRINCIPAL_ID"
STORAGE_VAR, ACR_VAR = "STORAGE_ID", "ACR_ID"
ACTIONS = ("platform-preflight", "platform-ensure", "platform-network", "platform-identity", "platform-role")
DOCS = "https://learn.microsoft.com/azure/"


@dataclass(frozen=True)
class Role:
    """One role assignment: who (endpoint identity or CI principal), the role, the scope (a resource id form), the
    docs page that requires it and why."""

    principal: str  # "endpoint" | "ci"
    role: str
    scope: str  # "storage" | "acr" | "workspace" | "registry" | "identity"
    docs: str
    why: str


# The least that works (the walkthrough's Contributor on the resource group is not needed: an endpoint's
# user-assigned identity gets exactly what a system-assigned one gets automatically).
ROLES: tuple[Role, ...] = (
    Role("endpoint", "Storage Blob Data Reader", "storage",
         DOCS + "machine-learning/concept-endpoints-online-auth#automatic-role-assignment-for-endpoint-identity",
         "read the model files from the workspace storage (a user-assigned identity gets no automatic roles)"),
    Role("endpoint", "AcrPull", "acr",
         DOCS + "machine-learning/concept-endpoints-online-auth#automatic-role-assignment-for-endpoint-identity",
         "pull the serving image from the workspace container registry"),
    Role("endpoint", "AzureML Metrics Writer (preview)", "workspace",
         DOCS + "machine-learning/concept-endpoints-online-auth#automatic-role-assignment-for-endpoint-identity",
         "write the deployment's metrics to the workspace"),
    Role("endpoint", "Reader", "registry",
         DOCS + "machine-learning/how-to-manage-registries#allow-users-to-use-assets-from-the-registry",
         "read the promoted model versions the deployment serves from the registry"),
    Role("ci", "AzureML Data Scientist", "workspace",
         DOCS + "machine-learning/how-to-assign-roles#default-roles",
         "submit jobs, register models, create endpoints and score aad_token endpoints (score/action); no "
         "compute or workspace changes"),
    Role("ci", "AzureML Compute Operator", "workspace",
         DOCS + "machine-learning/how-to-assign-roles#default-roles",
         "create and scale the training cluster (AzureML Data Scientist cannot)"),
    Role("ci", "Managed Identity Operator", "identity",
         DOCS + "role-based-access-control/built-in-roles/identity#managed-identity-operator",
         "attach the endpoint's user-assigned identity to the endpoints it creates (assign action)"),
    Role("ci", "AzureML Registry User", "registry",
         DOCS + "machine-learning/how-to-registry-network-isolation#create-assets-in-registry-from-local-files",
         "share promoted model versions into the registry (az ml model share) and read them"),
)  # fmt: skip


# ------------------------------------------------------------------------------------------------ facts of a ws


@dataclass(frozen=True)
class Ground:
    """Where everything lives, from a workspace's values."""

    subscription: str
    resource_group: str
    location: str
    workspace: str
    identity: str
    registry: str
    registry_subscription: str
    registry_group: str
    registry_location: str
    ci_principal: str
    ci_type: str

    def scopes(self) -> dict[str, str]:
        return {
            "storage": "${" + STORAGE_VAR + "}",
            "acr": "${" + ACR_VAR + "}",
            "workspace": arm.workspace_id(self.subscription, self.resource_group, self.workspace),
            "registry": arm.registry_id(self.registry_subscription, self.registry_group, self.registry),
            "identity": arm.identity_id(self.subscription, self.resource_group, self.identity),
        }


def ground(ws: Workspace) -> Ground:
    values = ws.values
    registry = values.get("registry") or {}
    ci = values.get("ci") or {}
    return Ground(
        subscription=ws.subscription, resource_group=ws.resource_group, location=str(ws.location or ""),
        workspace=ws.ml_workspace, identity=ws.identity, registry=str(registry.get("name", "")),
        registry_subscription=str(registry.get("subscription_id", ws.subscription)),
        registry_group=str(registry.get("resource_group", ws.resource_group)),
        registry_location=str(registry.get("location", ws.location or "")),
        ci_principal=str(ci.get("principal_object_id", "")), ci_type=str(ci.get("principal_type", "ServicePrincipal")),
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------ argv builders


def sub(subscription: str) -> tuple[str, ...]:
    return ("--subscription", subscription)


def group_show(name: str, subscription: str) -> tuple[str, ...]:
    return ("az", "group", "show", "--name", name, *sub(subscription))


def group_create(name: str, location: str, subscription: str) -> tuple[str, ...]:
    return ("az", "group", "create", "--name", name, "--location", location, *sub(subscription))


def registry_show(g: Ground) -> tuple[str, ...]:
    return ("az", "ml", "registry", "show", "--name", g.registry, "--resource-group", g.registry_group,
            *sub(g.registry_subscription))  # fmt: skip


def registry_write(verb: str, g: Ground, spec: str) -> tuple[str, ...]:
    name = ("--name", g.registry) if verb == "update" else ()
    return ("az", "ml", "registry", verb, "--file", spec, *name, "--resource-group", g.registry_group,
            *sub(g.registry_subscription))  # fmt: skip


def workspace_show(g: Ground, query: str | None = None) -> tuple[str, ...]:
    tail = ("--query", query, "-o", "tsv") if query else ()
    return ("az", "ml", "workspace", "show", "--name", g.workspace, "--resource-group", g.resource_group,
            *sub(g.subscription), *tail)  # fmt: skip


def workspace_write(verb: str, g: Ground, spec: str) -> tuple[str, ...]:
    name = ("--name", g.workspace) if verb == "update" else ()
    return ("az", "ml", "workspace", verb, "--file", spec, *name, "--resource-group", g.resource_group,
            *sub(g.subscription))  # fmt: skip


def provision_network(g: Ground) -> tuple[str, ...]:
    return ("az", "ml", "workspace", "provision-network", "--name", g.workspace, "--resource-group", g.resource_group,
            *sub(g.subscription))  # fmt: skip


def identity_show(g: Ground) -> tuple[str, ...]:
    return ("az", "identity", "show", "--name", g.identity, "--resource-group", g.resource_group, *sub(g.subscription))


def identity_create(g: Ground) -> tuple[str, ...]:
    return ("az", "identity", "create", "--name", g.identity, "--resource-group", g.resource_group,
            "--location", g.location, *sub(g.subscription))  # fmt: skip


def role_list(assignee: str, role: str, scope: str, subscription: str) -> tuple[str, ...]:
    return ("az", "role", "assignment", "list", "--assignee", assignee, "--role", role, "--scope", scope,
            *sub(subscription))  # fmt: skip


def role_create(assignee: str, principal_type: str, role: str, scope: str, subscription: str) -> tuple[str, ...]:
    return ("az", "role", "assignment", "create", "--assignee-object-id", assignee, "--assignee-principal-type",
            principal_type, "--role", role, "--scope", scope, *sub(subscription))  # fmt: skip


# ------------------------------------------------------------------------------------------------ the steps


def _spec(ws: Workspace, kind: str) -> RenderedSpec | None:
    found = ws.of_kind(kind)
    return found[0] if found else None


def _ensure_script(show: tuple[str, ...], update: tuple[str, ...] | None, create: tuple[str, ...]) -> str:
    if update is None:
        return f"{shell_command(show)} >/dev/null 2>&1 || \\\n  {shell_command(create)}"
    return (f"if {shell_command(show)} >/dev/null 2>&1; then\n  {shell_command(update)}\nelse\n"
            f"  {shell_command(create)}\nfi")  # fmt: skip


def bootstrap_steps(ws: Workspace) -> list[Step]:
    """The bootstrap stage of ``ws`` (pure)."""
    g = ground(ws)
    registry, workspace = _spec(ws, "registry"), _spec(ws, "workspace")
    steps: list[Step] = []
    guarded = [s for s in (registry, workspace) if s is not None]
    if guarded:
        shows = [registry_show(g)] * (registry is not None) + [workspace_show(g)] * (workspace is not None)
        steps.append(Step(
            f"{STAGE}.preflight", STAGE, shows[0],
            "show the registry and the workspace: a change Azure refuses on an existing one (region, registry "
            "primary region, a looser managed network) stops here, before any create or update",
            action="platform-preflight", data={"specs": [(s.kind, s.data) for s in guarded], "shows": shows},
            script="\n".join(f"{shell_command(show)} -o yaml || true  # apply compares: region, isolation mode"
                             for show in shows)))  # fmt: skip
    groups = [(g.registry_group, g.registry_location, g.registry_subscription)] if registry is not None else []
    if (g.resource_group, g.subscription) not in [(name, s) for name, _, s in groups]:
        groups.append((g.resource_group, g.location, g.subscription))
    for name, location, subscription in groups:
        show, create = group_show(name, subscription), group_create(name, location, subscription)
        steps.append(Step(f"{STAGE}.group-{name}", STAGE, create, f"resource group {name} in {location}",
                          action="platform-ensure", show=show, kind="resourceGroup",
                          script=_ensure_script(show, None, create)))  # fmt: skip
    for spec, show, write, label in (
        (registry, registry_show(g), registry_write, f"registry {g.registry} (primary region {g.registry_location})"),
        (workspace, workspace_show(g), workspace_write, f"workspace {g.workspace} in {g.location}"),
    ):
        if spec is None:
            continue
        create, update = write("create", g, spec.path), write("update", g, spec.path)
        steps.append(Step(f"{STAGE}.{spec.kind}-{spec.data.get('name')}", STAGE, create,
                          f"{label}: create when missing (long-running: the CLI waits), update when it differs",
                          action="platform-ensure", show=show, update=update, spec=spec.path, kind=spec.kind,
                          data=spec.data, script=_ensure_script(show, update, create)))  # fmt: skip
    network = (workspace.data.get("managed_network") or {}) if workspace is not None else {}
    mode = str(network.get("isolation_mode", "disabled")).lower()
    provision = bool(((ws.values.get("workspace") or {}).get("managed_network") or {}).get("provision", True))
    if workspace is not None and mode != "disabled" and provision:
        argv = provision_network(g)
        steps.append(Step(f"{STAGE}.network", STAGE, argv,
                          f"provision {g.workspace}'s managed network ({mode}) unless it is Active: an online "
                          "deployment needs it provisioned (how-to-managed-network)",
                          action="platform-network", show=workspace_show(g), script=shell_command(argv)))  # fmt: skip
    show_id, create_id = identity_show(g), identity_create(g)
    steps.append(Step(f"{STAGE}.identity", STAGE, create_id,
                      f"user-assigned managed identity {g.identity} for the endpoint (show, else create)",
                      action="platform-identity", show=show_id, captures=PRINCIPAL_VAR,
                      script=(f"{PRINCIPAL_VAR}=$({shell_command((*show_id, '--query', 'principalId', '-o', 'tsv'))}"
                              f" 2>/dev/null || {shell_command((*create_id, '--query', 'principalId', '-o', 'tsv'))})"
                              f'\ntest -n "${PRINCIPAL_VAR}"')))  # fmt: skip
    for var, field_name in ((STORAGE_VAR, "storage_account"), (ACR_VAR, "container_registry")):
        steps.append(Step(f"{STAGE}.{field_name.replace('_', '-')}", STAGE, workspace_show(g, field_name),
                          f"resource id of the workspace {field_name.replace('_', ' ')}", captures=var))  # fmt: skip
    scopes = g.scopes()
    for role in ROLES:
        if role.scope == "registry" and registry is None:
            continue
        who = "${" + PRINCIPAL_VAR + "}" if role.principal == "endpoint" else g.ci_principal
        kind = "ServicePrincipal" if role.principal == "endpoint" else g.ci_type
        holder = g.identity if role.principal == "endpoint" else "the CI principal"
        scope = scopes[role.scope]
        listing = role_list(who, role.role, scope, g.subscription)
        create = role_create(who, kind, role.role, scope, g.subscription)
        slug = role.role.lower().replace(" ", "-").replace("(", "").replace(")", "")
        steps.append(Step(f"{STAGE}.role-{role.principal}-{slug}", STAGE, create,
                          f"{role.role} for {holder} on the {role.scope}: {role.why}", action="platform-role",
                          show=listing, notes=(f"required by {role.docs}",),
                          script=(f'test -n "$({shell_command((*listing, "--query", "[].id", "-o", "tsv"))})" || '
                                  f"\\\n  {shell_command(create)}")))  # fmt: skip
    return steps


# ------------------------------------------------------------------------------------------------ the edge: apply


def run_step(az: Az, ws: Workspace, step: Step, argv: list[str], variables: dict[str, str]) -> str:
    """Run one ``platform-*`` step (``argv``: its command, variables substituted); returns what it did (created /
    updated / unchanged / provisioned / the captured value)."""
    if step.action == "platform-preflight":
        return preflight(az, step)
    show = [VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), word) for word in step.show or ()]
    if step.action == "platform-ensure":
        live = az.show(show)
        if live is None:
            az.run(argv, step.name)
            return "created"
        if step.update is None or step.kind is None:
            return "unchanged (exists)"
        differs = differing(step.kind, step.data, live)
        if not differs:
            return "unchanged"
        az.run(list(step.update), step.name)
        return f"updated ({', '.join(differs)})"
    if step.action == "platform-network":
        live = az.show(show) or {}
        status = ((live.get("managed_network") or {}).get("status") or {}).get("status")
        if str(status).lower() == "active":
            return "unchanged (managed network Active)"
        az.run(argv, step.name)
        return "provisioned"
    if step.action == "platform-identity":
        live = az.show(show)
        outcome = "unchanged"
        if live is None:
            az.capture(argv, f"step {step.name}")
            live, outcome = az.show(show), "created"
        principal = str((live or {}).get("principalId") or "")
        if not principal:
            raise CloudRefused(f"step {step.name}: {' '.join(show)} printed no principalId")
        variables[PRINCIPAL_VAR] = principal
        return f"{outcome} ({PRINCIPAL_VAR}={principal})"
    if step.action == "platform-role":
        existing = az.json(show, f"step {step.name}")
        if existing:
            return "unchanged (assigned)"
        az.capture(argv, f"step {step.name}")
        return "created"
    raise CloudRefused(f"step {step.name}: unknown action {step.action}")


def preflight(az: Az, step: Step) -> str:
    """Show what exists; refuse (nothing changed) when the specs ask for a change Azure refuses."""
    lines: list[str] = []
    seen: list[str] = []
    for (kind, data), show in zip(step.data["specs"], step.data["shows"], strict=True):
        live = az.show(show)
        if live is None:
            seen.append(f"{kind} missing")
            continue
        seen.append(f"{kind} exists")
        lines += [f"{kind} {data.get('name')}: {r.message}" for r in refused_changes(kind, live, data)]
    if lines:
        raise CloudRefused("; ".join(lines) + " (nothing was created or updated)")
    return ", ".join(seen)


def differing(kind: str, spec: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """The spec's top-level keys whose values differ from the live resource's. Azure adds its own required outbound
    rules to a managed network (how-to-managed-network, "List of required rules"): only the rules the spec names
    are compared, by name."""
    if kind == "workspace" and isinstance(spec.get("managed_network"), dict):
        network = dict(live.get("managed_network") or {})
        wanted = [r.get("name") for r in spec["managed_network"].get("outbound_rules") or []]
        by_name = {r.get("name"): r for r in network.get("outbound_rules") or [] if isinstance(r, dict)}
        network["outbound_rules"] = [by_name[name] for name in wanted if name in by_name]
        if "outbound_rules" not in spec["managed_network"]:
            network.pop("outbound_rules")
        mode = str(network.get("isolation_mode", "")).replace("_", "").lower()
        network["isolation_mode"] = next(
            (m for m in ("disabled", "allow_internet_outbound", "allow_only_approved_outbound")
             if m.replace("_", "") == mode), network.get("isolation_mode"))  # fmt: skip
        live = {**live, "managed_network": network}
    return differing_keys(kind, spec, live)
