"""Keyless endpoints end to end: prod's endpoint is `auth_mode: aad_token`; `score invoke` against it takes the token
`az ml online-endpoint get-credentials` returns for that mode (`accessToken`) at run time, sends it as
`Authorization: Bearer` to the scoring URI, and neither prints nor writes it. A local scoring server on 127.0.0.1
stands in for the endpoint's scoring URI; the stand-in `az` (tests/operate/standin_az) holds the endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.operate.cloud import SUB, Cloud
from tools.core.repo import REPO_ROOT

SCOPE = ("-g", "rg-ultrachat-prod", "-w", "mlw-ultrachat-prod", "--subscription", SUB)


class Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        type(self).seen.append(self.headers.get("Authorization", ""))
        body = json.dumps({"output": "hello from the keyless endpoint"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture()
def scoring_server():
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/score"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def prod_endpoint(cloud: Cloud, tmp_path: Path) -> str:
    """Prod's rendered endpoint spec, created in the stand-in as `apply --stage deploy` would."""
    from tools.render.engine import render

    rendered = render("prod", REPO_ROOT, tmp_path / "render")
    spec = rendered.file("endpoints/endpoint.yml")
    assert yaml.safe_load(spec.text)["auth_mode"] == "aad_token"
    path = tmp_path / "endpoint.yml"
    path.write_text(spec.text)
    cloud.az("ml", "online-endpoint", "create", "-f", str(path), *SCOPE)
    return yaml.safe_load(spec.text)["name"]


def test_prod_endpoint_is_smoke_tested_with_an_entra_token(cloud, tmp_path, scoring_server) -> None:
    endpoint = prod_endpoint(cloud, tmp_path)
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"input_data": {"input_string": [{"role": "user", "content": "Hi"}],
                                                  "parameters": {}}}))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("AZUREML_ENDPOINT_KEY", "AZUREML_ENDPOINT_URL")}
    env.update(cloud.env())
    result = subprocess.run(
        [sys.executable, "-m", "tools", "score", "invoke", "--endpoint-url", scoring_server, "--endpoint", endpoint,
         "-g", SCOPE[1], "-w", SCOPE[3], "--request-file", str(request)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello from the keyless endpoint" in result.stdout
    assert len(Recorder.seen) == 1 and Recorder.seen[0].startswith("Bearer eyJ0eXAiOiJKV1Qi.")
    token = Recorder.seen[0].removeprefix("Bearer ")
    assert token not in result.stdout + result.stderr  # never printed
    asked = [c["argv"] for c in cloud.calls() if c["argv"][:3] == ["ml", "online-endpoint", "get-credentials"]]
    assert asked and asked[0][-3:] == ["accessToken", "-o", "tsv"]
    for path in (cloud.state, cloud.log, *tmp_path.rglob("*")):  # never written
        if Path(path).is_file():
            assert token not in Path(path).read_text(errors="replace")


def test_a_key_endpoint_still_takes_its_key(cloud, tmp_path, scoring_server, monkeypatch) -> None:
    from tools.serve.score import resolve_endpoint

    spec = tmp_path / "endpoint.yml"
    spec.write_text(yaml.safe_dump({"name": "ep-key", "auth_mode": "key"}))
    cloud.az("ml", "online-endpoint", "create", "-f", str(spec), *SCOPE)
    monkeypatch.delenv("AZUREML_ENDPOINT_KEY", raising=False)
    url, key = resolve_endpoint(scoring_server, "ep-key", SCOPE[1], SCOPE[3])
    assert url == scoring_server and key and not key.startswith("eyJ")
    asked = [c["argv"] for c in cloud.calls() if c["argv"][:3] == ["ml", "online-endpoint", "get-credentials"]]
    assert asked[-1][-3:] == ["primaryKey", "-o", "tsv"]
