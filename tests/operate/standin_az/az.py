"""A stand-in for the Azure CLI (`az` + the `ml` extension) that keeps Azure ML's documented semantics, stateful
across calls through a JSON file ($AZ_STATE). It is a test double with rules, not a recorder: every rule below
names its source. Facts: learn.microsoft.com
`how-to-safely-rollout-online-endpoints`, `reference-yaml-deployment-managed-online`, `how-to-manage-quotas`,
`how-to-troubleshoot-online-endpoints` and Azure/azure-cli#23496.

Test controls live under state["control"] (set through tests/operate/cloud.py, never by the code under test):
  job_outcomes        statuses the next submitted jobs end in, in order (default Completed)
  failing_invokes     deployment names whose scoring fails (HTTP 424 from the model)
  failing_live        deployment names whose scoring fails only for requests routed by live traffic (a model
                      that answers a direct test and fails under real requests)
  failing_deployments deployment names whose provisioning ends Failed
  usage               {family: {"current": n, "limit": m}} for `az ml compute list-usage` / `az vm list-usage`
  ml_usage_missing    true: `az ml compute list-usage` is not a command (an `ml` extension without it)
  scoring_base        http://127.0.0.1:PORT of the loopback scoring server (tests/operate/standin_az/scoring.py)
                      that answers the endpoints created after it is set; without it a scoring URI reaches nothing
  scoring_faults      what that server does per deployment (slow answers, failed requests): scoring.py
Job outcomes and other bookkeeping stay under "control" too, so that `show` prints only what Azure would.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from pathlib import Path
from typing import Any

import ground  # the platform half (tests/operate/standin_az/ground.py), beside this script
import scoring  # the data plane: the endpoints' keys and scoring URIs (tests/operate/standin_az/scoring.py)
import verdicts  # model tags and evaluation jobs (tests/operate/standin_az/verdicts.py)
import yaml
from query import query  # the JMESPath subset of --query (tests/operate/standin_az/query.py)

SUB_DEFAULT = "00000000-0000-0000-0000-000000000000"
TERMINAL = ("Completed", "Failed", "Canceled")


class Refused(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def not_found(what: str) -> Refused:
    # `show` of a missing resource exits non-zero with ResourceNotFound (`az ml ... show`: ResourceNotFound).
    return Refused(f"ERROR: (ResourceNotFound) {what} could not be found.\nCode: ResourceNotFound")


class Args:
    def __init__(self, argv: list[str]) -> None:
        self.words: list[str] = []
        self.options: dict[str, str | bool] = {}
        self.sets: list[str] = []  # `--set path=value` may repeat (the CLI's generic update arguments)
        alias = {"-g": "--resource-group", "-w": "--workspace-name", "-n": "--name", "-e": "--endpoint-name",
                 "-f": "--file", "-o": "--output"}  # fmt: skip
        flags = {"--all-traffic", "--yes", "-y", "--no-wait"}
        i = 0
        while i < len(argv):
            word = argv[i]
            if word.startswith("-"):
                key = alias.get(word, word)
                if word in flags:
                    self.options[key] = True
                    i += 1
                    continue
                if word == "--set":
                    self.sets.append(argv[i + 1] if i + 1 < len(argv) else "")
                    i += 2
                    continue
                self.options[key] = argv[i + 1] if i + 1 < len(argv) else ""
                i += 2
                continue
            self.words.append(word)
            i += 1

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def need(self, key: str) -> str:
        value = self.options.get(key)
        if not isinstance(value, str) or not value:
            raise Refused(f"ERROR: the following arguments are required: {key}", 2)
        return value


def arm(sub: str, rg: str, ws: str, noun: str, name: str, version: str | None = None) -> str:
    base = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
    return f"{base}/{noun}/{name}" + (f"/versions/{version}" if version is not None else "")


class Cloud:
    def __init__(self, state: dict[str, Any], args: Args) -> None:
        self.state = state
        self.args = args
        self.control = state.setdefault("control", {})

    # scope -------------------------------------------------------------------------------------------------
    def ws(self) -> dict[str, Any]:
        name = self.args.need("--workspace-name")
        return self.state.setdefault("workspaces", {}).setdefault(name, {})

    def table(self, noun: str) -> dict[str, Any]:
        return self.ws().setdefault(noun, {})

    def arm(self, noun: str, name: str, version: str | None = None) -> str:
        sub = str(self.args.get("--subscription", SUB_DEFAULT))
        return arm(sub, str(self.args.get("--resource-group", "rg")), self.args.need("--workspace-name"), noun, name,
                   version)  # fmt: skip

    def spec(self) -> dict[str, Any]:
        path = Path(self.args.need("--file"))
        if not path.is_file():
            raise Refused(f"ERROR: Could not find file {path}", 2)
        data = yaml.safe_load(path.read_text()) or {}
        data.pop("$schema", None)
        if isinstance(self.args.get("--name"), str):
            data["name"] = self.args.get("--name")  # --name overrides the file's name (az ml ... create --name)
        for pair in self.args.sets:
            # --set a.b=value updates the object before it is sent (`az ml online-deployment create --set`:
            # "Update an object by specifying a property path and value to set"); the value is JSON or a string.
            path, sep, text = pair.partition("=")
            if not sep or not path:
                raise Refused(f"ERROR: --set expects PATH=VALUE, got {pair!r}", 2)
            try:
                value = json.loads(text)
            except ValueError:
                value = text
            *parents, last = path.split(".")
            node = data
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
        return data

    # versioned assets ----------------------------------------------------------------------------------------
    def asset_create(self, noun: str) -> dict[str, Any]:
        data = self.spec()
        if noun == "models":
            for key in ("--name", "--version", "--path", "--type"):
                if isinstance(self.args.get(key), str):
                    data[key[2:]] = self.args.get(key)
        name, version = str(data["name"]), str(data.get("version", "1"))
        versions = self.table(noun).setdefault(name, {})
        if version in versions:
            # Versions are immutable: create of an existing name:version fails (learn.microsoft.com
            # `how-to-manage-models`).
            raise Refused(f"ERROR: (UserError) {noun[:-1]} {name}:{version} already exists; versions are immutable")
        data["version"] = version
        data["id"] = self.arm(noun, name, version)
        versions[version] = data
        return data

    def asset_show(self, noun: str) -> dict[str, Any]:
        name, version = self.args.need("--name"), str(self.args.get("--version", ""))
        if isinstance(self.args.get("--registry-name"), str):
            table = self.state.setdefault("registries", {}).setdefault(self.args.get("--registry-name"), {})
            found = table.get(noun, {}).get(name, {}).get(version)
        else:
            found = self.table(noun).get(name, {}).get(version)
        if found is None:
            raise not_found(f"{noun[:-1]} {name}:{version}")
        return found

    def model_list(self) -> list[dict[str, Any]]:
        name = self.args.get("--name")
        return [v for n, versions in self.table("models").items() if name in (None, n) for v in versions.values()]

    def model_share(self) -> dict[str, Any]:
        source_name, source_version = self.args.need("--name"), str(self.args.need("--version"))
        found = self.table("models").get(source_name, {}).get(source_version)  # from the workspace (-w)
        if found is None:
            raise not_found(f"model {source_name}:{source_version}")
        registry = self.args.need("--registry-name")
        name = str(self.args.get("--share-with-name", found["name"]))
        version = str(self.args.get("--share-with-version", found["version"]))
        models = self.state.setdefault("registries", {}).setdefault(registry, {}).setdefault("models", {})
        if version in models.setdefault(name, {}):
            # `az ml model share` fails when the registry already holds that name and version (learn.microsoft.com
            # `how-to-share-models-pipelines-across-workspaces-with-registries`).
            raise Refused(f"ERROR: (UserError) model {name}:{version} already exists in registry {registry}")
        shared = {**found, "name": name, "version": version,
                  "id": f"azureml://registries/{registry}/models/{name}/versions/{version}"}  # fmt: skip
        models[name][version] = shared
        return shared

    def model_exists(self, ref: str) -> bool:
        if ref.startswith("azureml://registries/"):
            parts = ref.split("/")  # azureml://registries/R/models/N/versions/V
            registry, name, version = parts[3], parts[5], parts[7]
            return version in self.state.get("registries", {}).get(registry, {}).get("models", {}).get(name, {})
        if ref.startswith("azureml:"):
            name, _, version = ref[len("azureml:"):].partition(":")
            return version in self.table("models").get(name, {})
        return True  # an inline local model folder

    # compute -----------------------------------------------------------------------------------------------
    def compute_create(self) -> dict[str, Any]:
        data = self.spec()
        computes = self.table("computes")
        old = computes.get(data["name"])
        # `az ml compute create -f` is the SDK's create-or-update: an existing cluster's scale settings change;
        # size cannot (unverified against the service: plan for it).
        if old is not None and str(old["size"]).lower() != str(data.get("size", "")).lower():
            raise Refused(f"ERROR: (BadRequest) the size of compute {data['name']} cannot be changed")
        data["size"] = str(data.get("size", "")).upper()  # the service returns VM sizes upper-cased
        data.update(id=self.arm("computes", data["name"]), provisioning_state="Succeeded",
                    location=self.state.get("location", "eastus2"))  # fmt: skip
        computes[data["name"]] = data
        return data

    def usage(self, camel: bool) -> list[dict[str, Any]]:
        rows = []
        for family, row in sorted(self.control.get("usage", {}).items()):
            if camel:  # az vm list-usage (Microsoft.Compute usages)
                rows.append({"currentValue": row["current"], "limit": row["limit"],
                             "name": {"value": family, "localizedValue": family}})  # fmt: skip
            else:  # az ml compute list-usage (Microsoft.MachineLearningServices usages)
                rows.append({"current_value": row["current"], "limit": row["limit"], "unit": "Count",
                             "name": {"value": family, "localized_value": family}})  # fmt: skip
        return rows

    # jobs --------------------------------------------------------------------------------------------------
    def job_create(self) -> dict[str, Any]:
        data = self.spec()
        jobs = self.table("jobs")
        name = f"job_{len(self.state.setdefault('job_counter', [])) + 1:04d}"
        self.state["job_counter"].append(name)
        outcomes = self.control.setdefault("job_outcomes", [])
        self.control.setdefault("job_finals", {})[name] = outcomes.pop(0) if outcomes else "Completed"
        data.update(name=name, status="Starting", id=self.arm("jobs", name))
        jobs[name] = data
        verdicts.on_job_create(self, name, data, self.args.need("--file"))
        return data

    def job(self) -> dict[str, Any]:
        found = self.table("jobs").get(self.args.need("--name"))
        if found is None:
            raise not_found(f"job {self.args.get('--name')}")
        return found

    def job_advance(self, to_end: bool) -> dict[str, Any]:
        """Jobs move Starting -> Running -> Completed | Failed | Canceled; `stream` follows the job to its end."""
        job = self.job()
        if job["status"] not in TERMINAL:
            final = self.control.get("job_finals", {}).get(job["name"], "Completed")
            job["status"] = final if to_end or job["status"] == "Running" else "Running"
            if job["status"] == "Completed" and job.get("type") == "finetuning":
                self.register_output(job)
        return job

    def register_output(self, job: dict[str, Any]) -> None:
        # A finetuning job registers its outputs.registered_model itself (azureml-examples cli/jobs/finetuning).
        output = (job.get("outputs") or {}).get("registered_model") or {}
        name = output.get("name")
        if not name:
            return
        # Without a version the service registers the next free one; `az ml job show` then reports it on the
        # output (azure-ai-ml reads `assetName`/`assetVersion` of a job output back into `outputs.<name>`).
        versions = self.table("models").setdefault(name, {})
        version = str(output.get("version") or (max([int(v) for v in versions if v.isdigit()], default=0) + 1))
        versions.setdefault(version, {"name": name, "version": version, "type": "mlflow_model",
                                      "path": f"azureml://jobs/{job['name']}/outputs/registered_model",
                                      "job_name": job["name"], "id": self.arm("models", name, version)})  # fmt: skip
        output["version"] = version

    # endpoints and deployments -----------------------------------------------------------------------------
    def endpoint(self, name: str | None = None) -> dict[str, Any]:
        name = name or self.args.get("--endpoint-name") or self.args.need("--name")
        found = self.table("endpoints").get(name)
        if found is None:
            raise not_found(f"online endpoint {name}")
        return found

    def deployments(self, endpoint: str) -> dict[str, Any]:
        return self.table("deployments").setdefault(endpoint, {})

    def endpoint_create(self) -> dict[str, Any]:
        data = self.spec()
        if data["name"] in self.table("endpoints"):
            # create fails when the endpoint exists (Azure/azure-cli#23496, open; the docs say "over-written").
            raise Refused("ERROR: Met error <class 'Exception'>:Endpoint already exists")
        data["auth_mode"] = str(data.get("auth_mode", "key")).capitalize()  # enum casing as the service returns it
        data.update(traffic={}, mirror_traffic={}, provisioning_state="Succeeded",
                    id=self.arm("onlineEndpoints", data["name"]),
                    scoring_uri=scoring.scoring_uri(self.control.get("scoring_base"), data["name"]))
        self.table("endpoints")[data["name"]] = data
        return data

    def endpoint_update(self) -> dict[str, Any]:
        if isinstance(self.args.get("--file"), str):
            data = self.spec()
            found = self.endpoint(data["name"])  # update needs the resource to exist
            keep = {k: found[k] for k in ("traffic", "mirror_traffic", "id", "scoring_uri", "provisioning_state")}
            data["auth_mode"] = str(data.get("auth_mode", "key")).capitalize()
            found.clear()
            found.update(data, **keep)
        else:
            found = self.endpoint()
        if isinstance(self.args.get("--traffic"), str):
            self.set_traffic(found, self.args.get("--traffic"), "traffic")
        if isinstance(self.args.get("--mirror-traffic"), str):
            self.set_traffic(found, self.args.get("--mirror-traffic"), "mirror_traffic")
        return found

    def set_traffic(self, endpoint: dict[str, Any], text: str, key: str) -> None:
        shares: dict[str, int] = {}
        for pair in text.split():
            name, _, pct = pair.partition("=")
            # Traffic values are integers 0-100 over existing deployments (how-to-safely-rollout-online-endpoints).
            if not pct.isdigit() or not 0 <= int(pct) <= 100:
                raise Refused(f"ERROR: (BadRequest) traffic for {name} must be an integer 0-100, got {pct!r}")
            if name not in self.deployments(endpoint["name"]):
                raise Refused(f"ERROR: (BadRequest) deployment {name} does not exist on endpoint {endpoint['name']}")
            shares[name] = int(pct)
        if key == "traffic":
            # Live traffic adds up to 100 across the named deployments (how-to-safely-rollout-online-endpoints).
            if sum(shares.values()) != 100:
                raise Refused(f"ERROR: (BadRequest) traffic must add up to 100, got {sum(shares.values())}")
            clash = [n for n, p in shares.items() if p and endpoint["mirror_traffic"].get(n)]
            merged = shares
        else:
            merged = {**endpoint["mirror_traffic"], **shares}
            # Mirror traffic: at most 50 %, and not to a deployment that takes live traffic (same source).
            if sum(merged.values()) > 50:
                raise Refused("ERROR: (BadRequest) mirror traffic may not exceed 50 %")
            clash = [n for n, p in merged.items() if p and endpoint["traffic"].get(n)]
        if clash:
            raise Refused(f"ERROR: (BadRequest) {', '.join(clash)} cannot take both live and mirrored traffic")
        endpoint[key] = {n: p for n, p in merged.items() if p or key == "traffic"}

    def deployment_create(self) -> dict[str, Any]:
        data = self.spec()
        endpoint = self.endpoint(data["endpoint_name"])
        table = self.deployments(endpoint["name"])
        if data["name"] in table:
            # create fails when the deployment exists (Azure/azure-cli#23496).
            raise Refused("ERROR: Met error <class 'Exception'>:Deployment already exists")
        self.check_model(data)
        self.fill(data)
        table[data["name"]] = data
        if data["name"] in self.control.get("failing_deployments", []):
            data["provisioning_state"] = "Failed"
            raise Refused(f"ERROR: (ResourceNotReady) deployment {data['name']} failed: the container crashed")
        if self.args.get("--all-traffic"):
            endpoint["traffic"] = {n: (100 if n == data["name"] else 0) for n in table}
        return data

    def check_model(self, data: dict[str, Any]) -> None:
        if not self.model_exists(str(data.get("model", ""))):
            raise Refused(f"ERROR: (UserError) model {data.get('model')} not found")

    def fill(self, data: dict[str, Any]) -> None:
        """Server fields and defaults `show` returns (`az ml online-deployment show` output)."""
        ref = str(data.get("model", ""))
        if ref.startswith("azureml:") and not ref.startswith("azureml://"):
            name, _, version = ref[len("azureml:"):].partition(":")
            data["model"] = self.arm("models", name, version)  # resolved to the long ARM id
        data.setdefault("request_settings", {}).setdefault("request_timeout_ms", 5000)
        data["request_settings"].setdefault("max_concurrent_requests_per_instance", 1)
        data.setdefault("type", "managed")
        data.update(provisioning_state="Succeeded", id=self.arm("onlineEndpoints", data["endpoint_name"]) +
                    f"/deployments/{data['name']}")  # fmt: skip

    def deployment(self) -> dict[str, Any]:
        endpoint = self.endpoint(self.args.need("--endpoint-name"))
        found = self.deployments(endpoint["name"]).get(self.args.need("--name"))
        if found is None:
            raise not_found(f"online deployment {self.args.get('--name')}")
        return found

    def deployment_update(self) -> dict[str, Any]:
        data = self.spec()
        endpoint = self.endpoint(data["endpoint_name"])
        table = self.deployments(endpoint["name"])
        if data["name"] not in table:
            raise not_found(f"online deployment {data['name']}")  # update needs the resource to exist
        self.check_model(data)
        old_tags = table[data["name"]].get("tags")
        self.fill(data)
        data["tags"] = old_tags  # online-deployment update cannot change tags (Azure/azure-cli#33834)
        table[data["name"]] = {k: v for k, v in data.items() if v is not None}
        return table[data["name"]]

    def deployment_delete(self) -> None:
        endpoint = self.endpoint(self.args.need("--endpoint-name"))
        name = self.args.need("--name")
        self.deployment()
        # A deployment that receives traffic cannot be deleted: move its traffic first (safe-rollout docs).
        if endpoint["traffic"].get(name) or endpoint["mirror_traffic"].get(name):
            raise Refused(f"ERROR: (BadRequest) deployment {name} receives traffic; set its traffic to 0 first")
        del self.deployments(endpoint["name"])[name]
        endpoint["traffic"].pop(name, None)

    def invoke(self) -> Any:
        endpoint = self.endpoint(self.args.need("--name"))
        target = self.args.get("--deployment-name")
        if isinstance(target, str):
            if target not in self.deployments(endpoint["name"]):
                raise Refused(f"ERROR: (NotFound) deployment {target} not found on {endpoint['name']}")
        else:
            live = sorted((p, n) for n, p in endpoint["traffic"].items() if p)
            if not live:
                raise Refused("ERROR: (NoHealthyUpstream) no deployment receives traffic")
            target = live[-1][1]
        request = Path(self.args.need("--request-file"))
        if not request.is_file():
            raise Refused(f"ERROR: request file {request} not found", 2)
        self.state.setdefault("invocations", []).append({"endpoint": endpoint["name"], "deployment": target})
        routed = not isinstance(self.args.get("--deployment-name"), str)
        if target in self.control.get("failing_invokes", []) or (routed and target in self.control.get(
                "failing_live", [])):  # fmt: skip
            raise Refused("ERROR: (424) model error: the scoring script raised an exception")
        return [f"answer from {target}"]


def emit(data: Any, args: Args) -> None:
    data = query(data, args.get("--query"))
    output = args.get("--output", "json")
    if data is None:
        return
    if output == "tsv":  # --query X -o tsv prints the bare value (az CLI `--query`, JMESPath)
        if isinstance(data, dict):
            print("\t".join(str(v) for v in data.values()))
        elif isinstance(data, list):
            print("\n".join(str(v) for v in data))
        else:
            print(data)
    elif output == "yaml":
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    else:
        print(json.dumps(data, indent=2))


def dispatch(cloud: Cloud, words: list[str]) -> Any:
    args = cloud.args
    key = " ".join(words[:3]) if words[:1] == ["ml"] else " ".join(words[:2])
    assets = {"environment": "environments", "component": "components", "data": "data", "model": "models"}
    mine = ground.dispatch(cloud, words, Refused, not_found)  # workspaces, registries, identities, roles
    if mine is not ground.NOT_MINE:
        return mine
    if key == "vm list-usage":
        args.need("--location")  # `az vm list-usage` is per region: --location is required
        return cloud.usage(camel=True)
    noun, verb = (words[1], words[2]) if len(words) >= 3 else ("", "")
    if noun in assets:
        table = assets[noun]
        if verb == "create":
            return cloud.asset_create(table)
        if verb == "show":
            return cloud.asset_show(table)
        if verb == "update" and noun == "model":
            return verdicts.model_update(cloud, Refused, not_found)
        if verb == "list" and noun == "model":
            return cloud.model_list()
        if verb == "share" and noun == "model":
            return cloud.model_share()
    if noun == "compute":
        if verb == "create":
            return cloud.compute_create()
        if verb == "show":
            found = cloud.table("computes").get(args.need("--name"))
            if found is None:
                raise not_found(f"compute {args.get('--name')}")
            return found
        if verb == "list-usage":
            if cloud.control.get("ml_usage_missing"):
                # what the CLI answers for a command its installed extension lacks (exit 2)
                raise Refused("ERROR: 'list-usage' is misspelled or not recognized by the system.", 2)
            return cloud.usage(camel=False)
    if noun == "job":
        if verb == "create":
            return cloud.job_create()
        if verb == "stream":
            job = cloud.job_advance(to_end=True)
            print(f"RunId: {job['name']}\nExecution Summary\n=================\nStatus: {job['status']}")
            return None
        if verb == "show":
            return cloud.job_advance(to_end=False)
        if verb == "download":
            return verdicts.job_download(cloud, Refused, not_found)
    if noun == "online-endpoint":
        if verb == "create":
            return cloud.endpoint_create()
        if verb == "show":
            return cloud.endpoint()
        if verb == "update":
            return cloud.endpoint_update()
        if verb == "invoke":
            return cloud.invoke()
        if verb == "delete":
            endpoint = cloud.endpoint()
            del cloud.table("endpoints")[endpoint["name"]]
            cloud.table("deployments").pop(endpoint["name"], None)
            return None
    if noun == "online-deployment":
        if verb == "create":
            return cloud.deployment_create()
        if verb == "show":
            return cloud.deployment()
        if verb == "update":
            return cloud.deployment_update()
        if verb == "delete":
            return cloud.deployment_delete()
        if verb == "list":
            return list(cloud.deployments(cloud.endpoint(args.need("--endpoint-name"))["name"]).values())
        if verb == "get-logs":
            cloud.deployment()
            return f"logs of {args.get('--name')} ({args.get('--container', 'inference-server')})"
    raise Refused(f"ERROR: 'az {' '.join(words)}' is not a command this stand-in knows", 2)


def main(argv: list[str]) -> int:
    state_path = Path(os.environ["AZ_STATE"])
    with open(state_path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(state_path.read_text()) if state_path.is_file() else {}
        args = Args(argv)
        cloud = Cloud(state, args)
        try:
            result = dispatch(cloud, args.words)
        except Refused as error:
            state_path.write_text(json.dumps(state, indent=1))  # a failed create can leave a Failed deployment
            sys.stderr.write(f"{error}\n")
            return error.code
        state_path.write_text(json.dumps(state, indent=1))
    emit(result, args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
