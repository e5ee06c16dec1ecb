"""`python -m tools demo` (what `make demo` runs): the whole chain on embedded defaults, locally, as a story.

render + validate every workspace → prepare the bundled ultrachat sample → build a tiny Phi-3-architecture model
→ fine-tune it with the real SFT code (components/finetune-sft) → MLflow model → evaluate it against its untrained
base on the gate set (table, verdict, report + plot) → serve it on 127.0.0.1 → send the
sample scoring request → ask the Prompt flow chat → stop the server → print the `az ml` plan for the dev workspace.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.core.errors import UserError
from tools.core.offline import apply_offline_env
from tools.core.repo import REPO_ROOT, active, kinds
from tools.core.text import counted
from tools.demo.mlflow_base import save_mlflow_chat_model
from tools.demo.tiny_model import build_tiny_model
from tools.operate.plan import title
from tools.operate.stages import build_plan, parse_stages
from tools.operate.steps import format_plan
from tools.operate.workspace import load_workspace
from tools.render.engine import render
from tools.render.values import DEFAULT_WORKSPACE, load_values, workspace_names
from tools.serve.process import is_listening, local_endpoint
from tools.serve.score import build_sample_request, generation_parameters, invoke, write_request
from tools.validate.cli import rendered_specs
from tools.validate.layers import validate_specs

SAMPLE_SOURCE = "data/hub-sample"
FINETUNE_SCRIPT = "components/finetune-sft/src/fine_tune.py"
EVAL_NEW_TOKENS = 32  # greedy answer length of the demo's evaluation (the tiny model's answers are short anyway)
QUESTION = "Can you give me three tips for writing clear documentation?"

WHAT = {
    "pipelineJob": "pipeline job",
    "commandJob": "command job",
    "commandComponent": "command component",
    "amlCompute": "GPU cluster",
    "environment": "environment",
    "data": "data asset",
    "model": "model registration",
    "managedOnlineEndpoint": "online endpoint",
    "managedOnlineDeployment": "online deployment",
}


class Story:
    """Numbered steps with timings, printed as they happen."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.number = 0
        self.started = time.perf_counter()

    def step(self, title: str, action: Callable[[], Any]) -> Any:
        self.number += 1
        print(f"\n[{self.number}/{self.total}] {title}", flush=True)
        begin = time.perf_counter()
        result = action()
        print(f"      done in {time.perf_counter() - begin:.1f} s", flush=True)
        return result

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def _python(*args: str, quiet: bool = False, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, text=True, capture_output=quiet)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip().splitlines()[-3:] if quiet else []
        raise UserError(f"demo step failed: python {' '.join(args)} (exit {result.returncode}) {' | '.join(detail)}")
    return result


def render_and_validate() -> Any:
    """Render every workspace once, bring its files up to date, validate the in-memory specs; return dev's render
    (the plan of the last step reuses it)."""

    rows: list[tuple[str, str, str]] = []
    errors = 0
    default = None
    for name in workspace_names():
        rendered = render(name)
        rendered.write()
        specs, policy = rendered_specs(name, rendered=rendered)
        report = validate_specs(specs, "ABCD", policy)
        for finding in report.findings:
            print(f"      {finding.text()}")
        errors += report.errors
        if name == DEFAULT_WORKSPACE:
            default = rendered
            for spec in report.specs:
                kind = spec.kind or "?"
                rows.append((spec.display, WHAT.get(kind, kind), kinds().get(kind, {}).get("az", "")))
        print(f"      {name}: {counted(len(report.specs), 'spec')}, {counted(report.errors, 'error')}, "
              f"{counted(report.warnings, 'warning')}")
    if errors:
        raise UserError(f"validation found {errors} errors (see above)")
    width = max(len(r[0]) for r in rows)
    print(f"\n      {'spec (dev, committed)':{width}}  {'what':18}  applied with")
    for path, what, az in rows:
        print(f"      {path:{width}}  {what:18}  {az} -f {path}")
    return default


def prepare_sample(run: Path) -> Path:
    out = run / "data"
    _python(
        "-m",
        "tools",
        "data",
        "prepare",
        "--source",
        SAMPLE_SOURCE,
        "--splits",
        "train_sft,test_sft",
        "--percent",
        "100",
        "--out",
        str(out),
    )
    return out


def build_base_model(run: Path) -> Path:

    path = build_tiny_model(run / "base-model", seed=0)
    print(
        f"      {path.relative_to(REPO_ROOT)}: Phi3ForCausalLM (random weights) + byte-level BPE tokenizer "
        "with the Phi-3 chat template"
    )
    return path


def fine_tune(run: Path, data: Path, base: Path, steps: int) -> Path:
    out = run / "model"
    metrics = run / "metrics.json"
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{(run / 'mlflow.db').resolve()}")
    _python(
        FINETUNE_SCRIPT,
        "--train-file",
        str(data / "train_sft.jsonl"),
        "--eval-file",
        str(data / "test_sft.jsonl"),
        "--model-name-or-path",
        str(base),
        "--output-dir",
        str(out),
        "--max-steps",
        str(steps),
        "--learning-rate",
        "1e-2",
        "--warmup",
        "0.05",
        "--max-length",
        "256",
        "--per-device-train-batch-size",
        "8",
        "--gradient-accumulation-steps",
        "1",
        "--no-lora",
        "--logging-steps",
        "25",
        "--seed",
        "0",
        "--metrics-json",
        str(metrics),
        env=env,
    )
    history = json.loads(metrics.read_text()) if metrics.exists() else {}
    losses = [row["train_loss"] for row in history.get("history", []) if "train_loss" in row]
    eval_loss = history.get("final", {}).get("eval_loss")
    if losses:
        held_out = f", held-out loss {eval_loss:.3f}" if eval_loss is not None else ""
        print(
            f"      training loss {losses[0]:.3f} → {losses[-1]:.3f} over {steps} steps{held_out}; MLflow model: "
            f"{out.relative_to(REPO_ROOT)}/MLmodel"
        )
    return out


def evaluate_finetune(run: Path, model: Path, base: Path, data: Path) -> Path:
    """The fine-tune (candidate) against its untrained base (champion: what a first promotion compares with) on the
    bundled gate set, with the real `python -m tools evaluate`: the table, the verdict, report + plot."""

    champion = save_mlflow_chat_model(base, run / "base-mlflow")
    out = run / "evaluation"
    _python("-m", "tools", "evaluate", "--candidate", str(model), "--champion", str(champion),
            "--data", str(data / "gate_sft.jsonl"), "--out", str(out), "--training-metrics", str(run / "metrics.json"),
            "--candidate-id", "fine-tuned tiny model", "--champion-id", "untrained base", "--max-new-tokens",
            str(EVAL_NEW_TOKENS), "--no-progress")  # fmt: skip
    return out


def score_and_chat(run: Path, model: Path, data: Path) -> dict[str, str]:

    scoring = load_values("dev").data["scoring"]
    params = generation_parameters(scoring["temperature"], scoring["top_p"], False, 48)
    request = write_request(
        build_sample_request(data / "test_sft.jsonl", n=1, seed=0, parameters=params), run / "sample_score.json"
    )
    answers: dict[str, str] = {}
    with local_endpoint(model) as url:
        port = int(url.split(":")[2].split("/")[0])
        print(f"      serving {model.relative_to(REPO_ROOT)} at {url} (MLflow scoring server + Azure-body adapter)")
        body = json.loads(request.read_text())
        last_user = body["input_data"]["input_string"][0][-1]["content"]
        answers["request"] = invoke(url, None, body)
        print(f"      sample request ({request.relative_to(REPO_ROOT)}, Azure foundation-model body)")
        print(f"        user:      {last_user[:110]}")
        print(f"        assistant: {answers['request'][:200]!r}")
        # the local endpoint takes no key: never forward one from the caller's shell
        env = dict(
            os.environ,
            AZUREML_ENDPOINT_URL=url,
            AZUREML_ENDPOINT_KEY="",
            PF_HOME_DIRECTORY=str((run / "pf-home").resolve()),
        )
        pf = str(Path(sys.executable).parent / "pf")
        result = subprocess.run(
            [
                pf,
                "flow",
                "test",
                "--flow",
                str(active().chat_flow_dir),
                "--inputs",
                f"question={QUESTION}",
                "do_sample=false",
                "max_new_tokens=48",
            ],
            cwd=REPO_ROOT,
            env=env,
            text=True,
            capture_output=True,
        )
        if result.returncode != 0:
            raise UserError(f"pf flow test failed (exit {result.returncode}): {result.stderr.strip()[-300:]}")
        answers["flow"] = _flow_answer(result.stdout)
        print("      Prompt flow (pf flow test --flow flows/chat)")
        print(f"        user:      {QUESTION}")
        print(f"        assistant: {answers['flow'][:200]!r}")
    if is_listening(port):
        raise UserError(f"the local endpoint still listens on 127.0.0.1:{port} after stop")
    print(f"      server stopped; nothing listens on 127.0.0.1:{port}")
    return answers


def _flow_answer(stdout: str) -> str:
    start = stdout.find("{")
    try:
        return str(json.loads(stdout[start:])["answer"])
    except (ValueError, KeyError):
        raise UserError(f"pf flow test printed no answer: {stdout.strip()[-300:]}") from None


def print_plan(rendered: Any) -> None:
    """The dev plan from the render step 1 made and validated (no second render, no second validation)."""

    workspace = load_workspace("dev", REPO_ROOT, layers="A", rendered=rendered)  # B, C, D ran in step 1
    stages = parse_stages("all")
    steps = build_plan(workspace, stages)
    text = format_plan(title(workspace, stages), "python -m tools plan --workspace dev --stage all", steps)
    print("\n".join(f"      {line}" for line in text.splitlines()))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=150, help="fine-tuning steps for the tiny model (default 150)")
    parser.add_argument(
        "--keep", action="store_true", help="keep .runs/demo/ from a previous run (default: start clean)"
    )


def run(args: argparse.Namespace) -> int:
    apply_offline_env()
    run_dir = active().demo_run_dir
    if run_dir.exists() and not args.keep:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    print(
        "Demo: the whole chain on embedded defaults, locally and offline (the dev workspace's specs, a bundled "
        "ultrachat-shaped sample, a tiny Phi-3-architecture model)."
    )
    story = Story(total=7)
    rendered = story.step("Render and validate every workspace (layers A B C D)", render_and_validate)
    data = story.step(
        f"Prepare the bundled sample ({SAMPLE_SOURCE}, hub layout) with `python -m tools data prepare`",
        lambda: prepare_sample(run_dir),
    )
    base = story.step("Build a tiny Phi-3-architecture base model offline", lambda: build_base_model(run_dir))
    model = story.step(
        f"Fine-tune it with the real SFT code ({FINETUNE_SCRIPT}) → MLflow model",
        lambda: fine_tune(run_dir, data, base, args.steps),
    )
    story.step(
        "Evaluate it against its untrained base on the bundled gate set (python -m tools evaluate)",
        lambda: evaluate_finetune(run_dir, model, base, data),
    )
    answers = story.step(
        "Serve it on 127.0.0.1, send the sample request, ask the Prompt flow, stop the server",
        lambda: score_and_chat(run_dir, model, data),
    )
    story.step("The same in Azure: the plan for the dev workspace (python -m tools plan --workspace dev)",
               lambda: print_plan(rendered))
    print(f"\nDemo finished in {story.elapsed():.0f} s. Prompt flow answered: {answers['flow'][:120]!r}")
    print("Chat with the fine-tuned model in a browser: `make chat`, then open the URL it prints (Ctrl-C stops it).")
    return 0
