"""The stand-in `az`'s platform half: resource groups, Azure ML registries and workspaces (create / show / update /
provision-network), user-assigned identities, role assignments, and endpoint credentials, with Azure's documented
semantics. Imported by az.py (same folder); state lives under state["platform"], beside az.py's.

Rules and their sources:
  names        workspace: 3-33 characters, a letter or digit first, then letters, digits, '-' or '_' (REST API
               `workspaceName` pattern ^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$, learn.microsoft.com/rest/api/azureml);
               registry: 2-32 characters, alphanumerics, '_' and '-', starting alphanumeric (how-to-manage-registries,
               "Choose a name")
  groups       a workspace, registry or identity needs its resource group first ("before creating a new workspace,
               you must create an Azure Resource Group", how-to-managed-network); `az group create` of an existing
               group in another location fails
  long-running `create` waits for the operation (the CLI's default); with --no-wait the resource shows Creating
               until it is next shown
  immutable    a workspace's region ("Workspace move doesn't support migration across Azure regions",
               how-to-move-workspace); its managed network never loosens (how-to-managed-network, note and
               Limitations); a registry's primary region ("The primary region can't be changed after registry
               creation, but the other regions can be updated", how-to-manage-registries)
  network      Azure adds its own required outbound rules (how-to-managed-network, "List of required rules"); the
               managed network is Inactive until provisioned (`az ml workspace provision-network`)
  identity     `az identity create` is ARM's create-or-update: the principal id stays
  roles        `az role assignment create` of an existing assignment returns it (idempotent); --scope is
               /subscriptions/<id>[/resourceGroups/<rg>[/providers/<resource>]] (learn.microsoft.com/azure/
               role-based-access-control/scope-overview); a resource scope must exist
  credentials  `az ml online-endpoint get-credentials`: primaryKey/secondaryKey for key, accessToken and
               expiryTimeUtc for aml_token and aad_token (how-to-authenticate-online-endpoint); never stored: derived
               from the endpoint's id (scoring.py), so the loopback scoring server checks them
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import scoring  # the data plane's credentials (tests/operate/standin_az/scoring.py), beside this script
import yaml

NOT_MINE = object()
SUB_DEFAULT = "00000000-0000-0000-0000-000000000000"
WORKSPACE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$")
REGISTRY_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{1,31}$")
SCOPE = re.compile(r"^/subscriptions/[0-9a-fA-F-]{36}(/resourceGroups/[^/]+(/providers/[^/]+/[^/]+/[^/]+(/.+)?)?)?$")
ISOLATION = ("disabled", "allow_internet_outbound", "allow_only_approved_outbound")
BUILT_IN_ROLES = frozenset({
    "Owner", "Contributor", "Reader", "User Access Administrator", "AcrPull", "Storage Blob Data Reader",
    "Storage Blob Data Contributor", "AzureML Data Scientist", "AzureML Compute Operator", "AzureML Registry User",
    "AzureML Metrics Writer (preview)", "Managed Identity Operator",
})  # fmt: skip


def _snake(mode: Any) -> str:
    text = str(mode or "disabled")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in text).lstrip("_")


class Ground:
    def __init__(self, cloud: Any, refused: type[Exception], not_found: Any) -> None:
        self.cloud = cloud
        self.args = cloud.args
        self.Refused = refused
        self.not_found = not_found
        self.state = cloud.state.setdefault("platform", {})

    # scope ------------------------------------------------------------------------------------------------------
    def sub(self) -> str:
        return str(self.args.get("--subscription", SUB_DEFAULT))

    def rg(self) -> str:
        return self.args.need("--resource-group")

    def table(self, name: str) -> dict[str, Any]:
        return self.state.setdefault(name, {})

    def group_key(self, rg: str | None = None) -> str:
        return f"{self.sub()}/{(rg or self.rg()).lower()}"

    def need_group(self) -> dict[str, Any]:
        found = self.table("groups").get(self.group_key())
        if found is None:
            raise self.Refused(f"ERROR: (ResourceGroupNotFound) Resource group '{self.rg()}' could not be found.")
        return found

    def spec(self) -> dict[str, Any]:
        path = Path(self.args.need("--file"))
        if not path.is_file():
            raise self.Refused(f"ERROR: Could not find file {path}", 2)
        data = yaml.safe_load(path.read_text()) or {}
        data.pop("$schema", None)
        if isinstance(self.args.get("--name"), str):
            data["name"] = self.args.get("--name")
        return data

    def arm(self, provider: str, name: str) -> str:
        return f"/subscriptions/{self.sub()}/resourceGroups/{self.rg()}/providers/{provider}/{name}"

    def created(self, data: dict[str, Any]) -> None:
        data["provisioning_state"] = "Creating" if self.args.get("--no-wait") else "Succeeded"

    @staticmethod
    def shown(data: dict[str, Any]) -> dict[str, Any]:
        if data.get("provisioning_state") == "Creating":
            data["provisioning_state"] = "Succeeded"  # the long-running create has finished by the next look
        return data

    # resource groups --------------------------------------------------------------------------------------------
    def group_show(self) -> dict[str, Any]:
        found = self.table("groups").get(self.group_key(self.args.need("--name")))
        if found is None:
            raise self.Refused(f"ERROR: (ResourceGroupNotFound) Resource group '{self.args.get('--name')}' could "
                               "not be found.")  # fmt: skip
        return found

    def group_create(self) -> dict[str, Any]:
        name, location = self.args.need("--name"), self.args.need("--location")
        key = self.group_key(name)
        old = self.table("groups").get(key)
        if old is not None and old["location"] != location.lower():
            raise self.Refused(f"ERROR: (InvalidResourceGroupLocation) Invalid resource group location "
                               f"'{location}'. The Resource group already exists in location '{old['location']}'.")
        group = {"id": f"/subscriptions/{self.sub()}/resourceGroups/{name}", "name": name,
                 "location": location.lower(), "properties": {"provisioningState": "Succeeded"}}  # fmt: skip
        self.table("groups")[key] = group
        return group

    # registries -------------------------------------------------------------------------------------------------
    def registry_key(self, name: str) -> str:
        return f"{self.group_key()}/{name.lower()}"

    def registry(self, name: str | None = None) -> dict[str, Any]:
        name = name or self.args.need("--name")
        found = self.table("registries").get(self.registry_key(name))
        if found is None:
            raise self.not_found(f"registry {name}")
        return self.shown(found)

    def registry_create(self) -> dict[str, Any]:
        data = self.spec()
        name = str(data.get("name", ""))
        if not REGISTRY_NAME.match(name):
            raise self.Refused(f"ERROR: (InvalidRegistryName) registry name '{name}': 2-32 characters, alphanumerics, "
                               "'_' or '-', starting with an alphanumeric", 1)  # fmt: skip
        self.need_group()
        key = self.registry_key(name)
        if key in self.table("registries"):
            return self.registry_write(data, self.table("registries")[key])
        registry = self.registry_body(data)
        self.created(registry)
        self.table("registries")[key] = registry
        return registry

    def registry_update(self) -> dict[str, Any]:
        data = self.spec()
        self.need_group()
        return self.registry_write(data, self.registry(str(data.get("name"))))

    def registry_write(self, data: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
        if str(data.get("location", "")).lower() != old["location"]:
            raise self.Refused(f"ERROR: (BadRequest) the primary region of registry {old['name']} ({old['location']}) "
                               "cannot be changed")  # fmt: skip
        new = self.registry_body(data)
        new["provisioning_state"] = "Succeeded"
        old.clear()
        old.update(new)
        return old

    def registry_body(self, data: dict[str, Any]) -> dict[str, Any]:
        body = dict(data)
        body["location"] = str(data.get("location", "")).lower()
        pna = str(data.get("public_network_access", "Enabled"))
        body["public_network_access"] = pna[:1].upper() + pna[1:].lower()
        body["id"] = self.arm("Microsoft.MachineLearningServices/registries", str(data["name"]))
        body["mlflow_registry_uri"] = f"azureml://{body['location']}.api.azureml.ms/mlflow/v1.0"
        return body

    # workspaces -------------------------------------------------------------------------------------------------
    def workspace_key(self, name: str) -> str:
        return f"{self.group_key()}/{name.lower()}"

    def workspace(self, name: str | None = None) -> dict[str, Any]:
        name = name or self.args.need("--name")
        found = self.table("workspaces").get(self.workspace_key(name))
        if found is None:
            raise self.not_found(f"workspace {name}")
        return self.shown(found)

    def workspace_create(self) -> dict[str, Any]:
        data = self.spec()
        name = str(data.get("name", ""))
        if not WORKSPACE_NAME.match(name):
            raise self.Refused(f"ERROR: (InvalidWorkspaceName) workspace name '{name}' must match "
                               f"{WORKSPACE_NAME.pattern}")  # fmt: skip
        group = self.need_group()
        key = self.workspace_key(name)
        if key in self.table("workspaces"):
            raise self.Refused(f"ERROR: (Conflict) workspace {name} already exists: use az ml workspace update")
        workspace = self.workspace_body(data, group)
        workspace["managed_network"]["status"] = {"status": "Inactive", "spark_ready": False}
        self.created(workspace)
        self.table("workspaces")[key] = workspace
        return workspace

    def workspace_update(self) -> dict[str, Any]:
        data = self.spec()
        old = self.workspace(str(data.get("name")))
        if data.get("location") and str(data["location"]).lower() != old["location"]:
            raise self.Refused(f"ERROR: (BadRequest) workspace {old['name']} is in {old['location']}: its location "
                               "cannot be changed")  # fmt: skip
        before = old["managed_network"]["isolation_mode"]
        after = _snake((data.get("managed_network") or {}).get("isolation_mode", before))
        if ISOLATION.index(after) < ISOLATION.index(before):
            raise self.Refused(f"ERROR: (BadRequest) the managed network of {old['name']} is {before}; it cannot be "
                               f"reconfigured to {after}")  # fmt: skip
        new = self.workspace_body({**data, "location": old["location"]}, self.need_group())
        new["managed_network"]["status"] = old["managed_network"]["status"]
        for key in ("id", "storage_account", "container_registry", "key_vault", "application_insights"):
            new[key] = old[key]
        old.clear()
        old.update(new, provisioning_state="Succeeded")
        return old

    def workspace_body(self, data: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
        body = dict(data)
        name = str(data["name"])
        body["location"] = str(data.get("location") or group["location"]).lower()
        mode = _snake((data.get("managed_network") or {}).get("isolation_mode"))
        rules = [dict(rule) for rule in (data.get("managed_network") or {}).get("outbound_rules") or []]
        if mode != "disabled":
            required = {"service_tag": "AzureMachineLearning", "protocol": "TCP", "port_ranges": "443"}
            rules.append({"name": "required-servicetag-azuremachinelearning", "type": "service_tag",
                          "category": "required", "destination": required})  # fmt: skip
        body["managed_network"] = {"isolation_mode": mode, "outbound_rules": rules}
        stem = re.sub(r"[^a-z0-9]", "", name.lower())[:16]
        body.update(
            id=self.arm("Microsoft.MachineLearningServices/workspaces", name),
            display_name=data.get("display_name", name),
            storage_account=self.arm("Microsoft.Storage/storageAccounts", f"st{stem}"),
            container_registry=self.arm("Microsoft.ContainerRegistry/registries", f"cr{stem}"),
            key_vault=self.arm("Microsoft.KeyVault/vaults", f"kv{stem}"),
            application_insights=self.arm("Microsoft.Insights/components", f"ai{stem}"),
            public_network_access=str(data.get("public_network_access", "Enabled")),
        )
        return body

    def provision_network(self) -> dict[str, Any]:
        workspace = self.workspace()
        network = workspace["managed_network"]
        if network["isolation_mode"] == "disabled":
            raise self.Refused(f"ERROR: (BadRequest) workspace {workspace['name']} has no managed network to provision")
        network["status"] = {"status": "Active", "spark_ready": bool(self.args.get("--include-spark"))}
        return network["status"]

    # identities -------------------------------------------------------------------------------------------------
    def identity_key(self, name: str) -> str:
        return f"{self.group_key()}/{name.lower()}"

    def identity_show(self) -> dict[str, Any]:
        found = self.table("identities").get(self.identity_key(self.args.need("--name")))
        if found is None:
            raise self.not_found(f"identity {self.args.get('--name')}")
        return found

    def identity_create(self) -> dict[str, Any]:
        name = self.args.need("--name")
        group = self.need_group()
        key = self.identity_key(name)
        found = self.table("identities").get(key)
        if found is None:  # ARM create-or-update: an existing identity keeps its principal
            principal = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.sub()}/{self.rg()}/{name}".lower()))
            found = {"name": name, "location": str(self.args.get("--location") or group["location"]).lower(),
                     "principalId": principal, "clientId": str(uuid.uuid5(uuid.NAMESPACE_DNS, principal)),
                     "id": self.arm("Microsoft.ManagedIdentity/userAssignedIdentities", name)}  # fmt: skip
            self.table("identities")[key] = found
        return found

    # role assignments -------------------------------------------------------------------------------------------
    def known_resource(self, scope: str) -> bool | None:
        """Whether a resource scope this stand-in tracks exists (None: a resource it does not track)."""
        lowered = scope.lower()
        for table in ("workspaces", "registries", "identities"):
            if any(str(item.get("id", "")).lower() == lowered for item in self.table(table).values()):
                return True
        tracked = ("/microsoft.machinelearningservices/workspaces/", "/microsoft.machinelearningservices/registries/",
                   "/microsoft.managedidentity/userassignedidentities/")  # fmt: skip
        return False if any(t in lowered for t in tracked) else None

    def role_create(self) -> dict[str, Any]:
        assignee = self.args.get("--assignee-object-id") or self.args.need("--assignee")
        role, scope = self.args.need("--role"), self.args.need("--scope")
        if not SCOPE.match(scope):
            raise self.Refused(f"ERROR: (InvalidRoleAssignmentScope) invalid scope '{scope}': expected "
                               "/subscriptions/<id>[/resourceGroups/<rg>[/providers/<type>/<name>]]", 1)  # fmt: skip
        if role not in BUILT_IN_ROLES:
            raise self.Refused(f"ERROR: Role '{role}' doesn't exist.")
        if "/resourceGroups/" in scope:
            rg = scope.split("/resourceGroups/")[1].split("/")[0]
            sub = scope.split("/")[2]
            if f"{sub}/{rg.lower()}" not in self.table("groups"):
                raise self.Refused(f"ERROR: (ResourceGroupNotFound) Resource group '{rg}' could not be found.")
        if self.known_resource(scope) is False:
            raise self.Refused(f"ERROR: (ResourceNotFound) the resource {scope} could not be found.")
        assignments = self.state.setdefault("role_assignments", [])
        for existing in assignments:
            if (existing["principalId"], existing["roleDefinitionName"], existing["scope"].lower()) == (
                    assignee, role, scope.lower()):
                return existing  # idempotent: the existing assignment
        made = {"principalId": assignee, "principalType": self.args.get("--assignee-principal-type", "User"),
                "roleDefinitionName": role, "scope": scope,
                "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"}  # fmt: skip
        assignments.append(made)
        return made

    def role_list(self) -> list[dict[str, Any]]:
        assignee, role, scope = self.args.get("--assignee"), self.args.get("--role"), self.args.get("--scope")
        return [a for a in self.state.get("role_assignments", [])
                if assignee in (None, a["principalId"]) and role in (None, a["roleDefinitionName"])
                and (scope is None or a["scope"].lower() == str(scope).lower())]  # fmt: skip

    # endpoint credentials ---------------------------------------------------------------------------------------
    def credentials(self) -> dict[str, Any]:
        endpoint = self.cloud.endpoint(self.args.need("--name"))
        return scoring.credentials(str(endpoint["id"]), str(endpoint.get("auth_mode", "key")))


def dispatch(cloud: Any, words: list[str], refused: type[Exception], not_found: Any) -> Any:
    """The platform commands; NOT_MINE for anything else."""
    ground = Ground(cloud, refused, not_found)
    head = " ".join(words[:4])
    table = {
        "group show": ground.group_show, "group create": ground.group_create,
        "ml registry show": ground.registry, "ml registry create": ground.registry_create,
        "ml registry update": ground.registry_update,
        "ml workspace show": ground.workspace, "ml workspace create": ground.workspace_create,
        "ml workspace update": ground.workspace_update, "ml workspace provision-network": ground.provision_network,
        "identity show": ground.identity_show, "identity create": ground.identity_create,
        "role assignment create": ground.role_create, "role assignment list": ground.role_list,
        "ml online-endpoint get-credentials": ground.credentials,
    }  # fmt: skip
    for words_of, handler in table.items():
        if head == words_of or head.startswith(words_of + " "):
            return handler()
    return NOT_MINE
