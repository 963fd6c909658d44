"""RL training runs: a YAML config plus overrides in, an ``AGPOTrainer`` run and a checkpoint out.

The config names a task (its prompts, references and reward), a base model directory, the estimator and its
settings, and the usual optimisation knobs. ``load_config`` merges a file with ``key=value`` overrides and
rejects unknown keys by name, so a typo fails before any compute is spent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rlvr import config as config_loader

TaskFactory = Callable[["TrainConfig"], tuple[list[Any], list[str], Any]]
_TASKS: dict[str, TaskFactory] = {}


def register_task(name: str, factory: TaskFactory) -> None:
    """Make ``task: <name>`` available to RL runs; ``factory(config)`` returns (prompts, references, reward).

    This is how a domain outside ``agpo`` (which must not import it) plugs its task in: the domain's side
    registers at import. Prompts are plain strings or chat message lists; the reward follows the reward protocol.
    """
    if not name or name in ("countdown", "math"):
        raise ValueError(f"task name {name!r} is empty or built in")
    _TASKS[name] = factory


def registered_tasks() -> list[str]:
    return sorted(["countdown", "math", *_TASKS])


@dataclass
class TrainConfig:
    """One RL run. Every field can be set in the YAML file or with ``--set key=value``."""

    base_model: str = "models/countdown-base"
    output_dir: str = "runs/countdown/agpo"
    task: str = "countdown"
    estimator: str = "agpo"
    lambda_pos: float | None = None
    lambda_neg: float | None = None
    pos_term: str | None = None
    neg_term: str | None = None
    tau: float | None = None
    protect_shared_prefix: bool = False  # agpo.shared_prefix: spare the opening a wrong answer shares with a right one
    mask_truncated_completions: bool = False  # TRL's option: completions cut at the length limit stay out of the loss
    learning_rate: float = 2e-5
    group_size: int = 8
    prompts_per_step: int = 16
    steps: int = 100
    max_completion_length: int = 128
    temperature: float = 1.0
    beta: float = 0.0
    epsilon: float = 0.2
    epsilon_high: float | None = None
    loss_type: str = "dapo"
    seed: int = 0
    save_steps: int = 0  # 0: only the final model
    logging_steps: int = 5
    data_seed: int = 0  # the task's split seed (which problems exist), separate from the run's seed
    data_path: str | None = None  # task "math": a local MATH/GSM8K-style JSONL file
    use_vllm: bool = False  # TRL's vLLM rollouts (GPU); colocate or server
    vllm_mode: str = "colocate"
    template: str | None = None  # the task's prompt template, for tasks that have several (relevance)
    bf16: bool = False  # bf16 autocast on CPU too (always on a GPU)

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise ValueError(f"group_size must be at least 2 (a group needs a spread), got {self.group_size}")
        for name in ("prompts_per_step", "steps", "max_completion_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """A config from a YAML file (optional) and ``key=value`` overrides, unknown keys rejected by name."""
    return config_loader.load_config(TrainConfig, path, overrides or ())


def _task(config: TrainConfig) -> tuple[list[str], list[str], Any]:
    """Prompts, references and reward of the configured task's RL split."""
    if config.task in _TASKS:
        return _TASKS[config.task](config)
    if config.task == "countdown":
        from rlvr.tasks.countdown import CountdownReward, make_splits

        problems = make_splits(seed=config.data_seed).rl
        return [p.prompt for p in problems], [p.reference for p in problems], CountdownReward()
    if config.task == "math":
        from agpo.rewards import MathAnswerReward
        from rlvr.tasks.math import PROMPT_SUFFIX, read_math_jsonl

        if not config.data_path:
            raise ValueError("task 'math' needs data_path: a local JSONL file of problem/answer rows")
        rows = read_math_jsonl(Path(config.data_path))
        prompts = [[{"role": "user", "content": r.problem + PROMPT_SUFFIX}] for r in rows]
        return prompts, [r.answer for r in rows], MathAnswerReward()
    raise ValueError(f"unknown task {config.task!r}; known: {', '.join(registered_tasks())}")


def trl_config(config: TrainConfig) -> Any:
    """The ``AGPOConfig`` (TRL ``GRPOConfig`` subclass) for a run: one generation batch per optimizer step."""
    import torch

    from agpo.trainer import AGPOConfig

    on_gpu = torch.cuda.is_available()
    return AGPOConfig(
        output_dir=config.output_dir,
        advantage_estimator=config.estimator,
        lambda_pos=config.lambda_pos,
        lambda_neg=config.lambda_neg,
        pos_term=config.pos_term,
        neg_term=config.neg_term,
        tau=config.tau,
        protect_shared_prefix=config.protect_shared_prefix,
        mask_truncated_completions=config.mask_truncated_completions,
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant",
        num_generations=config.group_size,
        per_device_train_batch_size=config.prompts_per_step * config.group_size,
        gradient_accumulation_steps=1,
        steps_per_generation=1,
        num_iterations=1,
        max_steps=config.steps,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        beta=config.beta,
        epsilon=config.epsilon,
        epsilon_high=config.epsilon_high,
        loss_type=config.loss_type,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=config.logging_steps,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        report_to="none",
        use_vllm=config.use_vllm,
        vllm_mode=config.vllm_mode,
        use_cpu=not on_gpu,
        bf16=on_gpu or config.bf16,
        disable_tqdm=os.environ.get("AGPO_NO_PROGRESS") == "1",
    )


def _tokenizer_dir(base_model: str) -> str:
    """Where the tokenizer is: the model's directory, or an adapter's base when the adapter carries none."""
    from llm.bases import adapter_base, is_adapter, resolve_base

    if is_adapter(base_model) and not (Path(base_model) / "tokenizer_config.json").is_file():
        return resolve_base(adapter_base(base_model))
    return resolve_base(base_model)


def _policy(base_model: str) -> Any:
    """The model RL starts from: a LoRA adapter directory stays an adapter and trains further (on its base);
    anything else (a model directory, a registered base, a hub id) is trained whole."""
    from transformers import AutoModelForCausalLM

    from llm.bases import BaseNotFoundError, adapter_base, is_adapter, resolve_base

    if is_adapter(base_model):
        from peft import PeftModel

        model = AutoModelForCausalLM.from_pretrained(resolve_base(adapter_base(base_model)))
        return PeftModel.from_pretrained(model, base_model, is_trainable=True)
    try:
        return AutoModelForCausalLM.from_pretrained(resolve_base(base_model))
    except BaseNotFoundError:
        raise FileNotFoundError(
            f"base model {base_model} not found: build it first (agpo base build --out {base_model})"
        ) from None


def train(config: TrainConfig) -> dict[str, Any]:
    """Run RL from ``config.base_model`` and save the final policy (a standard HF model dir) to ``output_dir``."""
    from datasets import Dataset
    from transformers import AutoTokenizer

    from agpo.rewards import as_trl_reward
    from agpo.trainer import AGPOTrainer

    prompts, references, reward = _task(config)
    model = _policy(config.base_model)
    tokenizer = AutoTokenizer.from_pretrained(_tokenizer_dir(config.base_model))
    tokenizer.padding_side = "left"
    trainer = AGPOTrainer(
        model=model,
        processing_class=tokenizer,
        reward_funcs=[as_trl_reward(reward)],
        args=trl_config(config),
        train_dataset=Dataset.from_dict({"prompt": prompts, "reference": references}),
    )
    result = trainer.train()
    out = Path(config.output_dir)
    trainer.save_model(str(out))
    tokenizer.save_pretrained(out)
    history = [row for row in trainer.state.log_history if "reward" in row]
    summary = {
        "config": asdict(config),
        "train_runtime_s": float(result.metrics.get("train_runtime", 0.0)),
        "steps": int(result.global_step),
        "reward_first": history[0]["reward"] if history else None,
        "reward_last": history[-1]["reward"] if history else None,
        "log_history": trainer.state.log_history,
    }
    (out / "agpo_run.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary
