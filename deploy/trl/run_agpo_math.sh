#!/usr/bin/env bash
# AGPO through TRL's GRPOTrainer (AGPOTrainer) on one node of GPUs, vLLM rollouts colocated.
#   pip install torch==2.13.0 && pip install -e '.[gpu]'
#   NUM_GPUS=8 bash deploy/trl/run_agpo_math.sh [--set key=value ...]
# then evaluate pass@k up to 256 with vLLM:
#   agpo eval --backend vllm ... (Countdown) or your own MATH evaluation on the saved checkpoints.
# prompts_per_step is per device: with N GPUs each optimizer step sees N x prompts_per_step x group_size samples.
set -euo pipefail
cd "$(dirname "$0")/../.."
NUM_GPUS=${NUM_GPUS:-8}
CONFIG=${CONFIG:-deploy/trl/qwen2.5-math-1.5b.yaml}
accelerate launch --num_processes "$NUM_GPUS" --mixed_precision bf16 \
  "$(command -v agpo)" train --config "$CONFIG" "$@"
