"""The stand-in's data plane: a loopback scoring server (127.0.0.1) that answers the scoring URIs of the stand-in's
online endpoints, so a rollout's online check can call them as it calls Azure. Standard library only: the stand-in
`az` imports ``credentials`` and ``scoring_uri`` from here as a sibling script, the tests import the server.

Azure's semantics it keeps (learn.microsoft.com `how-to-safely-rollout-online-endpoints`, "Test the new
deployment"; `how-to-authenticate-online-endpoint`): a request carries `Authorization: Bearer <key or token>` (what
`az ml online-endpoint get-credentials` gives); the `azureml-model-deployment` header routes it to one deployment
whatever its traffic share, else live traffic routes it (here: to the deployment with the largest share); an unknown
deployment is 404, a wrong key 401. It reads the stand-in's state file (under its lock) per request.

Controls (state["control"], set through tests/operate/cloud.py): failing_invokes (HTTP 424 from the model, as the
stand-in's `invoke`), failing_live (424 for requests routed by live traffic) and scoring_faults, which only this
data plane sees (a deployment that answers the one smoke request and misbehaves under more):
  scoring_faults  {deployment: {"delay_s": seconds before each answer, "fail_every": every Nth request is a 424}}
"""

from __future__ import annotations

import fcntl
import hashlib
import http.server
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

DEPLOYMENT_HEADER = "azureml-model-deployment"


def _secret(endpoint_id: str, which: str) -> str:
    return hashlib.sha256(f"standin-{which}:{endpoint_id}".encode()).hexdigest()[:32]


def credentials(endpoint_id: str, auth_mode: str) -> dict[str, Any]:
    """What `az ml online-endpoint get-credentials` answers per auth mode: primaryKey/secondaryKey for key,
    accessToken and expiryTimeUtc otherwise. Derived from the endpoint's id (never stored): az and this server agree."""
    if auth_mode.lower() == "key":
        return {"primaryKey": _secret(endpoint_id, "primary"), "secondaryKey": _secret(endpoint_id, "secondary")}
    return {"accessToken": "eyJ0eXAiOiJKV1Qi." + _secret(endpoint_id, "token"), "tokenType": "Bearer",
            "expiryTimeUtc": 4102444800}  # fmt: skip


def accepted(endpoint: dict[str, Any]) -> set[str]:
    """The Authorization headers the endpoint accepts (its two keys, or its token)."""
    found = credentials(str(endpoint.get("id")), str(endpoint.get("auth_mode", "key")))
    return {f"Bearer {found[k]}" for k in ("primaryKey", "secondaryKey", "accessToken") if k in found}


def scoring_uri(base: str | None, name: str) -> str:
    """``base``: this server's http://127.0.0.1:PORT when it runs, else the URI form Azure gives."""
    return f"{base}/{name}/score" if base else f"https://{name}.eastus2.inference.ml.azure.com/score"


def read_state(path: Path) -> dict[str, Any]:
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        return json.loads(path.read_text()) if path.is_file() else {}


class _Handler(http.server.BaseHTTPRequestHandler):
    server: ScoringServer

    def _answer(self, code: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        state = read_state(self.server.state_path)
        name = self.path.strip("/").split("/")[0]
        # an endpoint's name is unique in its region (its URI is https://NAME.REGION.inference.ml.azure.com/score)
        tables = [ws for ws in (state.get("workspaces") or {}).values() if name in (ws.get("endpoints") or {})]
        if not tables:
            return self._answer(404, {"error": f"no endpoint {name}"})
        endpoint = tables[0]["endpoints"][name]
        if self.headers.get("Authorization") not in accepted(endpoint):
            return self._answer(401, {"error": "Unauthorized: key or token missing or wrong"})
        deployments = (tables[0].get("deployments") or {}).get(name) or {}
        target = self.headers.get(DEPLOYMENT_HEADER)
        routed = not target
        if routed:
            live = sorted((pct, dep) for dep, pct in (endpoint.get("traffic") or {}).items() if pct)
            if not live:
                return self._answer(503, {"error": "NoHealthyUpstream: no deployment receives traffic"})
            target = live[-1][1]
        if target not in deployments:
            return self._answer(404, {"error": f"deployment {target} not found on {name}"})
        control = state.get("control") or {}
        fault = (control.get("scoring_faults") or {}).get(target) or {}
        with self.server.lock:
            self.server.counts[target] += 1
            count = self.server.counts[target]
        time.sleep(float(fault.get("delay_s") or 0))
        every = int(fault.get("fail_every") or 0)
        failing = target in control.get("failing_invokes", []) or (routed and target in control.get("failing_live", []))
        if failing or (every and count % every == 0):
            return self._answer(424, {"error": "model error: the scoring script raised an exception"})
        return self._answer(200, {"output": f"answer from {target}"})

    def log_message(self, *args: object) -> None:
        return


class ScoringServer(http.server.ThreadingHTTPServer):
    """Serves every endpoint of the stand-in state at ``state_path`` on 127.0.0.1 (a free port); ``base`` is the
    URI prefix the stand-in gives its endpoints (``scoring_uri``). ``start`` and ``stop`` run it in a thread."""

    daemon_threads = True

    def __init__(self, state_path: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state_path = state_path
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> ScoringServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=10)
