"""Build the sample scoring request from test conversations, and invoke an online endpoint (Azure or local).

  score sample-request --from data/prepared/test.jsonl [--n 1] [--seed 0] [--out endpoints/sample_score.json]
  score invoke [--endpoint-url URL | --endpoint NAME -g RG -w WS] [--request-file F] [--format azure|mlflow]

The scoring URI and key come from AZUREML_ENDPOINT_URL / AZUREML_ENDPOINT_KEY or, with --endpoint, from
`az ml online-endpoint show` / `get-credentials` at run time; never from a file. The key is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tools.core.errors import UserError, location
from tools.core.files import atomic_write_text
from tools.render.values import DEFAULT_WORKSPACE, load_values
from tools.serve import scoring_client
from tools.serve.scoring_client import ENDPOINT_KEY_ENV, ENDPOINT_URL_ENV

DEFAULT_REQUEST = Path("endpoints/sample_score.json")


# --------------------------------------------------------------------------------------------- sample request


def generation_parameters(
    temperature: float | None = None, top_p: float | None = None, do_sample: bool | None = None,
    max_new_tokens: int | None = None,
) -> dict[str, Any]:
    """The foundation-model ``parameters`` block; what is not given comes from the scoring client's defaults
    (``scoring_client.DEFAULT_PARAMETERS``, kept equal to the workspace `scoring:` values by a test)."""
    given = {"temperature": temperature, "top_p": top_p, "do_sample": do_sample, "max_new_tokens": max_new_tokens}
    chosen = {key: scoring_client.DEFAULT_PARAMETERS[key] if value is None else value for key, value in given.items()}
    temperature, top_p = chosen["temperature"], chosen["top_p"]
    do_sample, max_new_tokens = chosen["do_sample"], chosen["max_new_tokens"]
    if not 0 <= temperature <= 2:
        raise UserError(f"temperature must be in [0, 2], got {temperature}")
    if not 0 < top_p <= 1:
        raise UserError(f"top_p must be in (0, 1], got {top_p}")
    if max_new_tokens < 1:
        raise UserError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    return {"temperature": temperature, "top_p": top_p, "do_sample": bool(do_sample), "max_new_tokens": max_new_tokens}


def read_conversations(path: str | os.PathLike[str]) -> list[list[dict[str, str]]]:
    """Read a chat JSONL file; each row's ``messages`` cut after its last user turn. Errors name file:line."""
    source = Path(path)
    if not source.is_file():
        raise UserError(f"{source}: no such file (prepare the data first: python -m tools data ...)")
    conversations: list[list[dict[str, str]]] = []
    with source.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise UserError(f"{location(str(source), number)}: not valid JSON ({error.msg})") from error
            messages = row.get("messages") if isinstance(row, dict) else None
            users = [i for i, m in enumerate(messages or []) if isinstance(m, dict) and m.get("role") == "user"]
            if not isinstance(messages, list) or not users:
                raise UserError(f"{location(str(source), number, 'messages')}: expected a list with a user turn")
            try:
                conversations.append(scoring_client.check_messages(messages[: users[-1] + 1]))
            except scoring_client.ScoringError as error:
                raise UserError(f"{location(str(source), number)}: {error}") from error
    if not conversations:
        raise UserError(f"{source}: no conversations")
    return conversations


def build_sample_request(
    test_path: str | os.PathLike[str], n: int = 1, seed: int = 0, parameters: dict[str, Any] | None = None
) -> dict:
    """The foundation-model body for ``n`` conversations drawn from ``test_path`` with ``seed`` (deterministic)."""
    conversations = read_conversations(test_path)
    if not 1 <= n <= len(conversations):
        raise UserError(f"--n must be between 1 and {len(conversations)} (rows in {test_path}), got {n}")
    picked = random.Random(seed).sample(range(len(conversations)), n)
    return scoring_client.azure_body([conversations[i] for i in picked], parameters or generation_parameters())


def write_request(body: dict, out: str | os.PathLike[str]) -> Path:
    """Write a request body atomically as stable, readable JSON."""
    target = Path(out)
    atomic_write_text(target, json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    return target


# --------------------------------------------------------------------------------------------- invoke


def _az(*args: str) -> str:
    """Run one `az` query and return its single-line output; errors never include secrets."""
    if shutil.which("az") is None:
        raise UserError(
            f"`az` is not installed; set {ENDPOINT_URL_ENV} and {ENDPOINT_KEY_ENV} instead, or install azure-cli with "
            "the ml extension"
        )
    try:
        done = subprocess.run(["az", *args], capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired as error:
        raise UserError(f"`az {' '.join(args[:3])}` did not answer within 120 s") from error
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"`az {' '.join(args[:3])}` failed: {last}")
    return done.stdout.strip()


def resolve_endpoint(
    endpoint_url: str | None = None,
    endpoint: str | None = None,
    resource_group: str | None = None,
    workspace: str | None = None,
    subscription: str | None = None,
) -> tuple[str, str | None]:
    """Return (scoring URI, key or None) from flags, the environment, or `az` at run time."""
    scope: list[str] = []
    if resource_group:
        scope += ["-g", resource_group]
    if workspace:
        scope += ["-w", workspace]
    if subscription:
        scope += ["--subscription", subscription]
    url = endpoint_url or os.environ.get(ENDPOINT_URL_ENV)
    if not url:
        if not endpoint:
            raise UserError(f"no endpoint: pass --endpoint-url, set {ENDPOINT_URL_ENV}, or name it with --endpoint -g "
                            "-w")
        url = _az("ml", "online-endpoint", "show", "-n", endpoint, *scope, "--query", "scoring_uri", "-o", "tsv")
    key = os.environ.get(ENDPOINT_KEY_ENV) or None
    if key is None and endpoint:
        # `get-credentials` answers per auth mode: primaryKey for key, accessToken (a Microsoft Entra token for
        # aad_token, an Azure ML token for aml_token) otherwise (learn.microsoft.com/azure/machine-learning/
        # how-to-authenticate-online-endpoint, "Get the key or token for data plane operations"). Either goes
        # into `Authorization: Bearer`, in memory only: never printed, never written.
        mode = _az("ml", "online-endpoint", "show", "-n", endpoint, *scope, "--query", "auth_mode", "-o", "tsv")
        field = "primaryKey" if mode.strip().lower() in ("", "key") else "accessToken"
        credentials = ("ml", "online-endpoint", "get-credentials", "-n", endpoint, *scope)
        key = _az(*credentials, "--query", field, "-o", "tsv")
    return url, key


def load_request(path: str | os.PathLike[str]) -> dict:
    source = Path(path)
    if not source.is_file():
        raise UserError(f"{source}: no such request file (write one with: python -m tools score sample-request)")
    try:
        body = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserError(f"{location(str(source), error.lineno)}: not valid JSON ({error.msg})") from error
    try:
        scoring_client.detect_format(body)
    except scoring_client.ScoringError as error:
        raise UserError(f"{source}: {error}") from error
    return body


def invoke(url: str, key: str | None, body: dict, **options: Any) -> str:
    """`scoring_client.invoke` (same options: fmt, timeout, retries, endpoint, deployment, ...) for the CLI: the
    answer text, or a UserError with the client's one-line reason."""
    try:
        return scoring_client.invoke(url, key, body, **options)
    except scoring_client.ScoringError as error:
        raise UserError(str(error)) from error


# --------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="score_command", metavar="<subcommand>")
    sample = sub.add_parser("sample-request", help="write the foundation-model scoring body from test conversations")
    sample.add_argument("--from", dest="source", required=True, help="chat JSONL with a `messages` list per row")
    sample.add_argument("--n", type=int, default=1, help="conversations in the request (default 1)")
    sample.add_argument("--seed", type=int, default=0, help="which rows are drawn (default 0)")
    sample.add_argument("--out", default=str(DEFAULT_REQUEST), help=f"output file (default {DEFAULT_REQUEST})")
    sample.add_argument(
        "--workspace",
        default=None,
        metavar="NAME",
        help="take the generation parameters from this workspace's `scoring:` values (default: dev)",
    )
    _add_generation_flags(sample)

    call = sub.add_parser("invoke", help="send a request file to an endpoint and print the answer")
    call.add_argument("--endpoint-url", help=f"scoring URI (default: ${ENDPOINT_URL_ENV}, or `az` with --endpoint)")
    call.add_argument(
        "--workspace",
        metavar="NAME",
        help="endpoint, deployment, -g and -w from this workspace's values (URI and key via `az`)",
    )
    call.add_argument("--endpoint", help="endpoint name: URI and key come from `az ml online-endpoint` at run time")
    call.add_argument("-g", "--resource-group", help="resource group for `az`")
    call.add_argument("-w", "--workspace-name", help="Azure ML workspace for `az`")
    call.add_argument("--deployment", help="route to this deployment (azureml-model-deployment header)")
    call.add_argument("--request-file", default=str(DEFAULT_REQUEST), help=f"request body (default {DEFAULT_REQUEST})")
    call.add_argument(
        "--format",
        choices=scoring_client.FORMATS,
        default=None,
        help="send the body in this format (converted if needed; default: as written)",
    )
    call.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the answer (default 90)")
    call.add_argument("--retries", type=int, default=3, help="retries on 429/502/503/504 and resets (default 3)")
    call.add_argument("--raw", action="store_true", help="print the whole JSON response, not just the answer")


def _add_generation_flags(parser: argparse.ArgumentParser) -> None:
    """Each flag overrides the workspace's `scoring:` value of the same name."""
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--do-sample", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)


def _workspace_scoring(workspace: str | None) -> dict[str, Any]:

    return load_values(workspace or DEFAULT_WORKSPACE).data["scoring"]


def run(args: argparse.Namespace) -> int:
    if args.score_command == "sample-request":
        scoring = _workspace_scoring(args.workspace)
        params = generation_parameters(
            scoring["temperature"] if args.temperature is None else args.temperature,
            scoring["top_p"] if args.top_p is None else args.top_p,
            scoring["do_sample"] if args.do_sample is None else args.do_sample,
            scoring["max_new_tokens"] if args.max_new_tokens is None else args.max_new_tokens,
        )
        body = build_sample_request(args.source, n=args.n, seed=args.seed, parameters=params)
        out = write_request(body, args.out)
        print(f"wrote {out} ({args.n} conversation(s), seed {args.seed})")
        return 0
    if args.score_command == "invoke":
        return _run_invoke(args)
    raise UserError("score: choose a subcommand: sample-request or invoke (see --help)")


def _run_invoke(args: argparse.Namespace) -> int:
    if args.workspace:

        values = load_values(args.workspace).data
        args.endpoint = args.endpoint or values["endpoint"]["name"]
        args.deployment = args.deployment or values["deployment"]["name"]
        args.resource_group = args.resource_group or values["workspace"]["resource_group"]
        args.workspace_name = args.workspace_name or values["workspace"]["name"]
    body = load_request(args.request_file)
    url, key = resolve_endpoint(args.endpoint_url, args.endpoint, args.resource_group, args.workspace_name)
    if key is None:
        print(f"note: no key ({ENDPOINT_KEY_ENV} unset): sending no Authorization header", file=sys.stderr)
    scope = " ".join(
        part
        for flag, value in (("-g", args.resource_group), ("-w", args.workspace_name))
        if value
        for part in (flag, value)
    )
    common = {
        "fmt": args.format,
        "timeout": args.timeout,
        "retries": args.retries,
        "endpoint": args.endpoint,
        "deployment": args.deployment,
        "scope": scope,
    }
    if args.raw:
        try:
            response = scoring_client.post_score(url, key, body, **common)
        except scoring_client.ScoringError as error:
            raise UserError(str(error)) from error
        print(json.dumps(response, indent=2, ensure_ascii=False))
    else:
        print(invoke(url, key, body, **common))
    return 0
