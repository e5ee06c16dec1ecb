"""fine_tune.py under torch.distributed on this machine: two CPU processes (gloo) on 127.0.0.1.

What is proven, on the tiny model:
- torchrun with two processes trains data-parallel: world size 2, half the steps per epoch of one process with the
  same per-device batch, one MLflow model and one MLflow run, and a loss curve equal to one process with the same
  *global* batch. Equal curves are the proof of gradient sync and sharding: two unsynchronised ranks would each
  follow the one-process curve of their *per-device* batch, which the test shows is far off.
- two "nodes" (two torchrun launches, ``--nnodes 2``, NODE_RANK 0 and 1) do the same.
- FSDP is refused on CPU with one line (accelerate enables it only for GPU launches).
- a bad row seen by one rank only, and a killed rank (with and without a launcher), end every rank non-zero with
  one line, without a hang (the subprocess timeouts are hang guards, not speed assertions).

Tolerance of the loss comparison: 1e-3 absolute. Measured differences are ~1e-5 (fp32, the all-reduce sums the two
halves in a different order than one process does); the unsynchronised alternative is off by > 0.05 within the
first ten steps, i.e. 50x the tolerance.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

FINE_TUNE = Path(__file__).resolve().parents[2] / "components" / "finetune-sft" / "src" / "fine_tune.py"
TOLERANCE = 1e-3
# Two epochs, one log per step, no warm-up and a high learning rate, so that batch-size differences show.
CURVE_ARGS = ("--epochs", "2", "--logging-steps", "1", "--max-length", "128", "--gradient-accumulation-steps", "1",
              "--learning-rate", "1e-3", "--warmup", "0", "--seed", "0")  # fmt: skip
ERROR = "fine_tune.py: error: "


@dataclass
class Launch:
    returncode: int
    stdout: str
    stderr: str
    output_dir: Path
    metrics: dict | None
    tracking_uri: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tracking_uri: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            **extra}  # fmt: skip


def _torchrun(*launcher: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--master_addr", "127.0.0.1", *launcher, str(FINE_TUNE)]


def _losses(metrics: dict) -> list[float]:
    return [row["train_loss"] for row in metrics["history"] if "train_loss" in row]


def _steps_per_epoch(stdout: str) -> int:
    found = re.findall(r"steps per epoch: (\d+)", stdout)
    assert found, stdout[-2000:]
    return int(found[-1])


def _error_lines(*texts: str) -> list[str]:
    return [line for text in texts for line in text.splitlines() if line.startswith(ERROR)]


def _mlflow_runs(tracking_uri: str) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    return sum(len(client.search_runs([e.experiment_id])) for e in client.search_experiments())


@pytest.fixture(scope="module")
def launch(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Launch]:
    """One torchrun launch of fine_tune.py (own MLflow store, own folder); ``launcher`` are torchrun's options."""
    counter = iter(range(1000))

    def run(launcher: tuple[str, ...], *args: str, timeout: int = 240) -> Launch:
        root = tmp_path_factory.mktemp(f"ddp-{next(counter)}")
        uri = f"sqlite:///{root / 'mlflow.db'}"
        out, metrics = root / "model", root / "metrics.json"
        command = [*_torchrun(*launcher, "--master_port", str(_free_port())), "--output-dir", str(out),
                   "--metrics-json", str(metrics), *args]  # fmt: skip
        proc = subprocess.run(command, capture_output=True, text=True, env=_env(uri), cwd=root, timeout=timeout)
        loaded = json.loads(metrics.read_text()) if metrics.is_file() else None
        return Launch(proc.returncode, proc.stdout, proc.stderr, out, loaded, uri)

    return run


@pytest.fixture(scope="module")
def single(call_main, tiny_model: Path, chat_data: dict[str, Path]) -> dict[int, object]:  # noqa: ANN001
    """One-process references, by per-device batch: 4 (the global batch of 2 x 2) and 2 (the per-device batch)."""
    runs = {}
    for batch in (4, 2):
        result = call_main("--train-file", str(chat_data["train"]), "--model-name-or-path", str(tiny_model),
                           "--per-device-train-batch-size", str(batch), *CURVE_ARGS)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        runs[batch] = result
    return runs


@pytest.fixture(scope="module")
def two_processes(launch, tiny_model: Path, chat_data: dict[str, Path]) -> Launch:  # noqa: ANN001
    result = launch(("--nproc_per_node", "2"), "--train-file", str(chat_data["train"]), "--model-name-or-path",
                    str(tiny_model), "--per-device-train-batch-size", "2", *CURVE_ARGS)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _assert_same_curve_as_global_batch(losses: list[float], single: dict) -> None:  # noqa: ANN001
    same_global, same_per_device = _losses(single[4].metrics), _losses(single[2].metrics)
    assert len(losses) == len(same_global) == 10, (losses, same_global)
    worst = max(abs(a - b) for a, b in zip(losses, same_global, strict=True))
    assert worst < TOLERANCE, (losses, same_global)
    # What N unsynchronised copies would log: the one-process curve of the per-device batch. Far off.
    apart = max(abs(a - b) for a, b in zip(losses, same_per_device[: len(losses)], strict=True))
    assert apart > 50 * TOLERANCE, (losses, same_per_device)


def test_torchrun_two_processes_is_data_parallel(two_processes: Launch, single: dict) -> None:
    out = two_processes.stdout
    assert "world size 2 (1 node(s) x 2 process(es); DISTRIBUTED, MULTI_CPU, backend gloo)" in out, out[-3000:]
    assert "per-device 2 x accumulation 1 x world size 2 = global batch 4 sequences" in out
    assert "parallelism: DDP" in out
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in two_processes.stderr
    per_device_steps = _steps_per_epoch(single[2].stdout)
    assert per_device_steps == 10  # 20 packed rows / 2
    assert _steps_per_epoch(out) == per_device_steps // 2
    assert _steps_per_epoch(single[4].stdout) == per_device_steps // 2
    assert two_processes.metrics["world_size"] == 2
    _assert_same_curve_as_global_batch(_losses(two_processes.metrics), single)


def test_torchrun_leaves_one_model_and_one_mlflow_run(two_processes: Launch) -> None:
    root = two_processes.output_dir.parent
    assert [p.parent for p in root.rglob("MLmodel")] == [two_processes.output_dir]
    assert _mlflow_runs(two_processes.tracking_uri) == 1
    assert out_lines(two_processes.stdout, "MLflow model (llm/v1/chat) written") == 1  # rank 0 only
    assert out_lines(two_processes.stdout, "summary: ") == 1


def out_lines(text: str, fragment: str) -> int:
    return sum(fragment in line for line in text.splitlines())


def _two_nodes(root: Path, uri: str, per_node_args: list[tuple[str, ...]], timeout: int = 240) -> list[Launch]:
    """Two torchrun launches on 127.0.0.1 as node 0 and node 1 (one process each), each with its own folders."""
    port = str(_free_port())
    procs, outs = [], []
    for node, extra in enumerate(per_node_args):
        out = root / f"node{node}" / "model"
        out.parent.mkdir(parents=True)
        launcher = ("--nnodes", "2", "--node_rank", str(node), "--nproc_per_node", "1", "--master_port", port)
        command = [*_torchrun(*launcher), "--output-dir", str(out), "--metrics-json", str(out.parent / "m.json"),
                   *extra]  # fmt: skip
        env = _env(uri, NODE_RANK=str(node))
        procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                      cwd=out.parent))  # fmt: skip
        outs.append(out)
    launches = []
    for proc, out in zip(procs, outs, strict=True):
        stdout, stderr = proc.communicate(timeout=timeout)
        metrics = out.parent / "m.json"
        loaded = json.loads(metrics.read_text()) if metrics.is_file() else None
        launches.append(Launch(proc.returncode, stdout, stderr, out, loaded, uri))
    return launches


def test_two_nodes(tmp_path: Path, tiny_model: Path, chat_data: dict[str, Path], single: dict) -> None:
    args = ("--train-file", str(chat_data["train"]), "--model-name-or-path", str(tiny_model),
            "--per-device-train-batch-size", "2", *CURVE_ARGS)  # fmt: skip
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    node0, node1 = _two_nodes(tmp_path, uri, [args, args])
    assert node0.returncode == 0, node0.stderr[-3000:]
    assert node1.returncode == 0, node1.stderr[-3000:]
    assert "world size 2 (2 node(s) x 1 process(es); DISTRIBUTED, MULTI_CPU, backend gloo)" in node0.stdout
    assert _steps_per_epoch(node0.stdout) == _steps_per_epoch(single[2].stdout) // 2
    assert "[fine_tune]" not in node1.stdout  # rank 1 trains silently
    assert (node0.output_dir / "MLmodel").is_file()
    assert not node1.output_dir.exists() or not any(node1.output_dir.iterdir())
    assert node1.metrics is None and _mlflow_runs(uri) == 1
    _assert_same_curve_as_global_batch(_losses(node0.metrics), single)


def test_fsdp_on_cpu_is_refused_with_one_line(launch, tiny_model: Path, chat_data: dict[str, Path]) -> None:  # noqa: ANN001
    """accelerate 1.x turns FSDP on only for GPU launches; on CPU it would silently train DDP. One line instead."""
    result = launch(("--nproc_per_node", "2"), "--train-file", str(chat_data["train"]), "--model-name-or-path",
                    str(tiny_model), "--max-steps", "2", "--max-length", "128",
                    "--fsdp", "full_shard auto_wrap")  # fmt: skip
    assert result.returncode != 0
    lines = _error_lines(result.stderr, result.stdout)
    assert len(lines) == 1, result.stderr[-3000:]
    assert "--fsdp 'full_shard auto_wrap': accelerate" in lines[0] and "(MULTI_CPU, world size 2)" in lines[0]
    assert "FSDP needs CUDA GPUs" in lines[0]
    assert not (result.output_dir / "MLmodel").exists()


def test_bad_row_seen_by_one_rank_stops_every_rank(
    tmp_path: Path, tiny_model: Path, chat_data: dict[str, Path], chat_row  # noqa: ANN001
) -> None:
    """Node 1's copy of the data (its own mount) has a bad row at line 37; node 0's is fine. Rank 0 says so once."""
    bad = tmp_path / "node1-train.jsonl"
    rows = [json.dumps(chat_row(i)) for i in range(64)]
    rows[36] = json.dumps({"messages": [{"role": "bot", "content": "x"}]})
    bad.write_text("\n".join(rows) + "\n", encoding="utf-8")
    common = ("--model-name-or-path", str(tiny_model), "--max-steps", "2", "--max-length", "128")
    node0, node1 = _two_nodes(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}",
                              [("--train-file", str(chat_data["train"]), *common), ("--train-file", str(bad), *common)],
                              timeout=120)  # fmt: skip
    assert node0.returncode != 0 and node1.returncode != 0
    assert _error_lines(node1.stderr, node1.stdout) == []
    [line] = _error_lines(node0.stderr, node0.stdout)
    assert line == f"{ERROR}{bad}:37: messages[0].role: expected one of system, user, assistant, got 'bot' " \
                   "(seen by rank 1 of 2)"  # fmt: skip
    assert "exitcode  : 2" in node0.stderr  # torchrun's report: our exit status for bad input
    assert 'fine_tune.py", line' not in node0.stderr + node1.stderr  # no traceback from our script


def _worker_pids(marker: str) -> dict[int, int]:
    """Workers of one launch, found by an environment marker: {RANK: pid}."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            pairs = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        env = dict(p.split(b"=", 1) for p in pairs if b"=" in p)
        if env.get(b"SFT_TEST_MARKER") == marker.encode() and b"RANK" in env and b"LOCAL_RANK" in env:
            found[int(env[b"RANK"])] = int(entry.name)
    return found


def _wait_for_training(proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if "step 2/" in line:
            return
    raise AssertionError("training never reached step 2")


LONG_RUN = ("--max-steps", "5000", "--logging-steps", "1", "--max-length", "128", "--per-device-train-batch-size", "2")


def test_killed_rank_under_torchrun_ends_the_run(tmp_path: Path, tiny_model: Path, chat_data: dict[str, Path]) -> None:
    marker = uuid.uuid4().hex
    command = [*_torchrun("--nproc_per_node", "2", "--master_port", str(_free_port())), "--train-file",
               str(chat_data["train"]), "--model-name-or-path", str(tiny_model), "--output-dir",
               str(tmp_path / "model"), *LONG_RUN]  # fmt: skip
    env = _env(f"sqlite:///{tmp_path / 'mlflow.db'}", SFT_TEST_MARKER=marker)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        _wait_for_training(proc)
        pids = _worker_pids(marker)
        assert sorted(pids) == [0, 1], pids
        os.kill(pids[1], signal.SIGKILL)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    [line] = _error_lines(stderr)
    assert line.startswith(f"{ERROR}rank 0 of 2: ")
    assert "Signal 9 (SIGKILL) received by PID" in stderr  # torchrun names the rank that died
    assert not (tmp_path / "model" / "MLmodel").exists()


def test_killed_rank_without_a_launcher_ends_the_others(
    tmp_path: Path, tiny_model: Path, chat_data: dict[str, Path]
) -> None:
    """Azure ML's distribution: pytorch starts the processes itself (env vars only): no agent stops the survivors,
    so rank 0 must notice the dead peer in its next collective and end with one line, exit 1."""
    port = str(_free_port())
    procs = []
    for rank in (0, 1):
        env = _env(f"sqlite:///{tmp_path / 'mlflow.db'}", RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                   LOCAL_WORLD_SIZE="2", NODE_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=port)  # fmt: skip
        command = [sys.executable, str(FINE_TUNE), "--train-file", str(chat_data["train"]), "--model-name-or-path",
                   str(tiny_model), "--output-dir", str(tmp_path / f"model{rank}"), *LONG_RUN]  # fmt: skip
        procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                      cwd=tmp_path))  # fmt: skip
    try:
        _wait_for_training(procs[0])
        procs[1].kill()
        _, stderr = procs[0].communicate(timeout=120)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert procs[0].returncode == 1, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].startswith(f"{ERROR}rank 0 of 2: lost the other ranks"), stderr[-3000:]
    assert len(_error_lines(stderr)) == 1 and "Traceback" not in stderr
    assert not (tmp_path / "model0" / "MLmodel").exists()


# ------------------------------------------------------------------------------------------------------ DeepSpeed


def _ds_args(fine_tune_module, config: Path, *extra: str):  # noqa: ANN001, ANN202
    base = ["--train-file", "t", "--model-name-or-path", "m", "--output-dir", "o", "--deepspeed", str(config)]
    return fine_tune_module.build_parser().parse_args(base + ["--per-device-train-batch-size", "2",
                                                             "--gradient-accumulation-steps", "4", *extra])  # fmt: skip


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('{"zero_optimization": {"stage": 4}}', "zero_optimization.stage: expected 0, 1, 2 or 3, got 4"),
        ('{"zero_optimization": {"stage": 2, "offload_param": {"device": "cpu"}}}',
         "zero_optimization.offload_param needs stage 3, got stage 2"),  # fmt: skip
        ('{"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "gpu"}}}',
         "offload_optimizer.device: expected none, cpu or nvme"),  # fmt: skip
        ('{"train_micro_batch_size_per_gpu": 4}', "train_micro_batch_size_per_gpu is 4 but --per-device-train"),
        ('{"gradient_accumulation_steps": 1}', "gradient_accumulation_steps is 1 but --gradient-accumulation-steps"),
        ('{"train_batch_size": 8}', "train_batch_size is 8 but per-device x accumulation x world size 2 gives 16"),
        ('{"bf16": {"enabled": true}}', "bf16.enabled is True but the precision is fp32"),
    ],
)
def test_deepspeed_config_must_agree_with_our_options(
    config: str, fragment: str, fine_tune_module, tmp_path: Path  # noqa: ANN001
) -> None:
    path = tmp_path / "ds.json"
    path.write_text(config, encoding="utf-8")
    with pytest.raises(fine_tune_module.UserInputError, match=re.escape(fragment)):
        fine_tune_module.check_deepspeed_config(path, _ds_args(fine_tune_module, path), 2, "fp32")


def test_consistent_deepspeed_config_needs_only_the_package(fine_tune_module, tmp_path: Path) -> None:  # noqa: ANN001
    """A ZeRO-3 offload config that agrees with our batch sizes passes every check; what is left is the package,
    which the pinned environment does not carry (README: add it to the conda file): one line, not an ImportError."""
    path = tmp_path / "zero3.json"
    path.write_text(json.dumps({
        "zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu"}, "offload_param": {"device": "cpu"}},
        "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 4, "train_batch_size": 16,
        "bf16": {"enabled": "auto"},
    }), encoding="utf-8")  # fmt: skip
    with pytest.raises(fine_tune_module.UserInputError, match="the deepspeed package is not installed"):
        fine_tune_module.check_deepspeed_config(path, _ds_args(fine_tune_module, path), 2, "bf16")


def test_deepspeed_input_renders_into_the_component() -> None:
    import yaml

    root = FINE_TUNE.parents[1]
    spec = yaml.safe_load((root / "spec.yml").read_text())
    assert spec["inputs"]["deepspeed"] == {"type": "uri_file", "optional": True,
                                           "description": spec["inputs"]["deepspeed"]["description"]}  # fmt: skip
    assert "$[[--deepspeed ${{inputs.deepspeed}}]]" in spec["command"]
    assert "--ddp-timeout ${{inputs.ddp_timeout}}" in spec["command"]


# -------------------------------------------------------------------------------------------------------- job spec


def test_job_scales_with_the_sku_and_the_node_count(tmp_path: Path) -> None:
    """process_count_per_instance = GPUs of the SKU, instance_count = nodes; multi-node runs get NCCL_DEBUG=INFO."""
    import shutil

    import yaml

    from tools.core.repo import sku_gpus
    from tools.render.engine import render_workspace

    repo = FINE_TUNE.parents[3]
    for folder in ("workspaces", "schemas", "templates", "components"):
        shutil.copytree(repo / folder, tmp_path / folder)

    def sft_job() -> dict:
        files = {f.relpath: f.text for f in render_workspace("dev", tmp_path, tmp_path)}
        return yaml.safe_load(files["jobs/finetune-sft.yml"])["jobs"]["sft"]

    one = sft_job()
    assert one["distribution"] == {"type": "pytorch", "process_count_per_instance": 1}
    assert one["resources"]["instance_count"] == 1
    assert one["environment_variables"] == {"NCCL_DEBUG": "WARN", "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1"}
    values = tmp_path / "workspaces" / "dev.yaml"
    text = values.read_text().replace("  save_total_limit: 1", "  save_total_limit: 1\n  num_nodes_finetune: 2")
    values.write_text(text + "\ncompute:\n  cluster:\n    size: Standard_NC96ads_A100_v4\n")
    many = sft_job()
    assert many["distribution"]["process_count_per_instance"] == sku_gpus("Standard_NC96ads_A100_v4") == 4
    assert many["resources"]["instance_count"] == 2
    assert many["environment_variables"]["NCCL_DEBUG"] == "INFO"
