#!/usr/bin/env bash
# benchmarks/train_throughput.py on a GPU machine that has PyTorch but no network (the `device` tool's H200, whose
# image has torch 2.11 + CUDA, transformers 5.17, accelerate, no TRL): carry the pinned training stack as wheels.
#
#   here (PyPI reachable), once:  bash benchmarks/train_throughput_device.sh fetch     # -> build/device-wheels/
#   there, one call, carry build/device-wheels:
#                                 bash benchmarks/train_throughput_device.sh run       # table -> $OUT/throughput.*
#
# `run` trains 6 configurations (walkthrough / ours / ours with sdpa, LoRA and full) of the Phi-3-mini shape for
# 2 warmup + 6 measured steps each (about 40 s each on an H200, model build included): about 5 minutes. The hub
# flash-attention kernel cannot be fetched there (no network), so `auto` measures its fallback, flex_attention.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=build/device-wheels
# Versions from requirements/lock.txt (the training stack and what the device image lacks or has too old).
PINS=(transformers==5.25.0 kernels==0.19.1 tomlkit==0.15.3 huggingface_hub==2.4.0 hf-xet==1.8.0 tokenizers==0.23.3
      safetensors==0.8.0 trl==1.16.0 peft==0.21.2 accelerate==1.15.0 datasets==5.2.0 dill==0.4.1
      multiprocess==0.70.19 fsspec==2026.9.0 xxhash==4.1.0)

case "${1:-}" in
  fetch)
    mkdir -p "$WHEELS"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEELS" "${PINS[@]}"
    du -sh "$WHEELS"
    ;;
  run)
    out="${OUT:-build/device-out}"
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$WHEELS"/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
      HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
    python3 -c "import torch, transformers, trl, peft; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__)" | tee -a "$out/gpu.txt"
    python3 benchmarks/train_throughput.py --steps 6 --warmup-steps 2 --json "$out/throughput.json" 2>&1 \
      | tee "$out/throughput.log"
    ;;
  *)
    echo "usage: bash benchmarks/train_throughput_device.sh fetch|run" >&2
    exit 2
    ;;
esac
