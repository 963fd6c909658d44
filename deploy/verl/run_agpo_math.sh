#!/usr/bin/env bash
# Multi-node AGPO training with verl (Ray + FSDP + vLLM rollouts) in the paper's setting:
# Qwen2.5-Math (1.5B or 7B), MATH-style data, math-verify reward, 8 samples per prompt.
#
# Every node: pip install torch==2.13.0 && pip install -e '.[verl,gpu]'   (this package registers
#   algorithm.adv_estimator=agpo with verl through its 'verl.plugins' entry point)
# Head node:   ray start --head --port=6379
# Other nodes: ray start --address=$HEAD_IP:6379
# Then, on the head node:  NNODES=2 MODEL=Qwen/Qwen2.5-Math-7B bash deploy/verl/run_agpo_math.sh
#
# Swap the estimator to compare: ESTIMATOR=grpo (verl's own), nsr, psr, w_reinforce.
set -euo pipefail
cd "$(dirname "$0")/../.."

MODEL=${MODEL:-Qwen/Qwen2.5-Math-1.5B}
NNODES=${NNODES:-1}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
DATA=${DATA:-data/math}
ESTIMATOR=${ESTIMATOR:-agpo}
LAMBDA_POS=${LAMBDA_POS:-0.1}
LAMBDA_NEG=${LAMBDA_NEG:-1.0}
N=${N:-8}

# verl logs plugin load failures only at debug level: fail here instead of training with the wrong estimator.
python -c "import verl; from agpo.verl_plugin import ensure_registered; ensure_registered()"

EXTRA=()
if [ "$ESTIMATOR" != grpo ]; then
  EXTRA+=("+algorithm.${ESTIMATOR}.lambda_pos=${LAMBDA_POS}" "+algorithm.${ESTIMATOR}.lambda_neg=${LAMBDA_NEG}")
fi

python -m verl.trainer.main_ppo \
  algorithm.adv_estimator="$ESTIMATOR" "${EXTRA[@]}" \
  algorithm.use_kl_in_reward=False \
  data.train_files="$DATA/train.parquet" data.val_files="$DATA/test.parquet" \
  data.train_batch_size=256 data.max_prompt_length=1024 data.max_response_length=3072 \
  data.filter_overlong_prompts=True \
  actor_rollout_ref.model.path="$MODEL" \
  actor_rollout_ref.model.use_remove_padding=True \
  actor_rollout_ref.model.enable_gradient_checkpointing=True \
  actor_rollout_ref.actor.optim.lr=1e-6 \
  actor_rollout_ref.actor.ppo_mini_batch_size=64 \
  actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8 \
  actor_rollout_ref.actor.use_kl_loss=False \
  actor_rollout_ref.actor.entropy_coeff=0 \
  actor_rollout_ref.actor.loss_agg_mode=token-mean \
  actor_rollout_ref.actor.clip_ratio_low=0.2 actor_rollout_ref.actor.clip_ratio_high=0.28 \
  actor_rollout_ref.actor.fsdp_config.param_offload=False \
  actor_rollout_ref.rollout.name=vllm \
  actor_rollout_ref.rollout.n="$N" \
  actor_rollout_ref.rollout.temperature=1.0 \
  actor_rollout_ref.rollout.tensor_model_parallel_size=1 \
  actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
  actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=16 \
  actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=16 \
  custom_reward_function.path=deploy/verl/math_reward.py \
  custom_reward_function.name=compute_score \
  trainer.nnodes="$NNODES" trainer.n_gpus_per_node="$GPUS_PER_NODE" \
  trainer.total_epochs=10 trainer.save_freq=50 trainer.test_freq=25 \
  trainer.project_name=agpo trainer.experiment_name="$(basename "$MODEL")-$ESTIMATOR" \
  trainer.logger='[console]' "$@"
