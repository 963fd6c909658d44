#!/usr/bin/env bash
# The Countdown path on one CUDA GPU: the TRL step benchmark, pass@k evaluation of the base, AGPO training at
# the precondition study's settings (TRL picks the GPU and bf16 by itself) and evaluation of what it trained.
# docs/results/gpu_check.md records what it printed on an H200; deploy/gpu_check_summary.py sums it up.
#   pip install torch==2.13.0 && pip install -e .        # a CUDA build of torch on a GPU machine
#   bash deploy/gpu_check.sh [OUT_DIR]                   # STEPS=300 for the study's full budget
# AGPO names the CLI (default: agpo); DEVICE=cpu, STEPS, PROBLEMS and N make it a quick CPU trial. Each stage
# prints its wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-runs/gpu_check}
AGPO=${AGPO:-agpo}
STEPS=${STEPS:-40}
TRAIN_LIMIT_S=${TRAIN_LIMIT_S:-240}
PROBLEMS=${PROBLEMS:-100}
N=${N:-256}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT_DIR"

timed() {
  local name=$1 start=$SECONDS
  shift
  "$@"
  echo "== $name: $((SECONDS - start)) s"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
python3 -c 'import torch, transformers, trl
print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available(),
      "transformers", transformers.__version__, "trl", trl.__version__)'

timed "bench trl-step (3 steps, median of 3)" $AGPO bench trl-step --device "$DEVICE" --steps 3 --repeats 3
timed "eval base (test_hard, $PROBLEMS problems, n=$N)" $AGPO eval --model models/countdown-base --label base \
  --split test_hard --problems "$PROBLEMS" --n "$N" --out "$OUT_DIR/eval_base.json"
# The precondition study's AGPO arm (configs/study_precondition.yaml), cut to STEPS steps.
timed "train agpo ($STEPS steps x 16 prompts x 8 samples)" timeout "$TRAIN_LIMIT_S" $AGPO train \
  --estimator agpo --lr 3e-5 --steps "$STEPS" --seed 0 --set logging_steps=10 --output-dir "$OUT_DIR/agpo"
timed "eval agpo (test_hard, $PROBLEMS problems, n=$N)" $AGPO eval --model "$OUT_DIR/agpo" \
  --label "agpo $STEPS steps" --split test_hard --problems "$PROBLEMS" --n "$N" --out "$OUT_DIR/eval_agpo.json"
cp "$OUT_DIR/agpo/agpo_run.json" "$OUT_DIR/"
python3 deploy/gpu_check_summary.py "$OUT_DIR"
