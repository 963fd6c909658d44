"""``agpo teacher build``: the embedded relevance teacher, from nothing to a standard HF model directory.

Stages: benchmark (generated with a seed, or read from a directory) -> byte-level BPE tokenizer in Qwen2's
pipeline with a ChatML template -> a small Qwen2 -> SFT on the gold reasoning traces (TRL ``SFTTrainer``) ->
AGPO on the label reward (``rlvr.train``, TRL ``GRPOTrainer`` subclass) -> a quick gold-test check -> the
model directory with its ``model_card.json``. Every setting comes from a :class:`TeacherConfig`.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from relevance.prompts import prompt_version
from teacher import task as relevance_task  # registers task "relevance" with rlvr.train
from teacher.config import RlSettings, TeacherConfig
from teacher.data import load_benchmark, messages, sft_examples, split_train, subset, write_jsonl
from teacher.evaluate import EvalSettings, evaluate_teacher, progress_enabled
from teacher.tokenizer import CHAT_TEMPLATE, IM_END, PAD, template_phrases, train_tokenizer

MODEL_FILES = ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json")
Log = Callable[[str], None]


@contextmanager
def stage(name: str, timings: dict[str, float], log: Log) -> Iterator[None]:
    log(f"[bold]{name}[/bold] ...")
    start = time.time()
    yield
    timings[name] = round(time.time() - start, 1)
    log(f"[bold]{name}[/bold] done in {timings[name]:.0f} s")


def tokenizer_corpus(records: list[dict[str, Any]], prompts_without_phrases: list[str]) -> Iterator[str]:
    """Prompt texts (fixed passages removed: they become whole tokens) followed by their gold traces."""
    for record, prompt in zip(records, prompts_without_phrases, strict=True):
        yield prompt + "\n" + record["meta"]["reasoning"]


def build_tokenizer(records: list[dict[str, Any]], config: TeacherConfig) -> Any:
    from jinja2 import Template

    phrases = template_phrases(config.template, config.schema) if config.tokenizer.phrase_tokens else []
    render = Template(CHAT_TEMPLATE).render
    prompts = []
    for r in records:
        text = render(messages=messages(r, config.schema, config.template), add_generation_prompt=True)
        for phrase in phrases:
            text = text.replace(phrase, "\n")
        prompts.append(text)
    return train_tokenizer(
        tokenizer_corpus(records, prompts),
        vocab_size=config.tokenizer.vocab_size,
        min_frequency=config.tokenizer.min_frequency,
        phrases=phrases,
    )


def generation_config(tokenizer: Any, max_new_tokens: int) -> Any:
    """Sampling at temperature 1 (the teacher votes over samples), stopping at the end of the assistant turn."""
    from transformers import GenerationConfig

    return GenerationConfig(
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        eos_token_id=[tokenizer.convert_tokens_to_ids(IM_END), tokenizer.convert_tokens_to_ids(PAD)],
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD),
    )


def export_model_dir(model_dir: Path, out_dir: Path, tokenizer: Any, max_new_tokens: int) -> None:
    """Write a clean HF model directory: weights and config, tokenizer (chat template in tokenizer_config.json)."""
    from transformers import AutoModelForCausalLM

    out_dir.mkdir(parents=True, exist_ok=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.generation_config = generation_config(tokenizer, max_new_tokens)
    model.save_pretrained(out_dir)
    # In tokenizer_config.json rather than chat_template.jinja: older transformers and other loaders read it there.
    tokenizer.save_pretrained(out_dir, save_jinja_files=False)
    stale = out_dir / "chat_template.jinja"
    if stale.exists():
        stale.unlink()


def verify_model_dir(model_dir: Path, probe: list[dict[str, str]], reference_prompt: str) -> dict[str, Any]:
    """Load the directory as any HF user would; check the chat template and tokenizer round trip."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    rendered = tokenizer.apply_chat_template(probe, add_generation_prompt=True, tokenize=False)
    if rendered != reference_prompt:
        raise RuntimeError(f"{model_dir}: the reloaded chat template renders differently")
    ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    if tokenizer.decode(ids) != rendered:
        raise RuntimeError(f"{model_dir}: the reloaded tokenizer does not round-trip the chat prompt")
    return {
        "tokenizer_class": type(tokenizer).__name__,
        "model_class": type(model).__name__,
        "prompt_tokens_probe": len(ids),
    }


def _parameters(model_dir: Path) -> int:
    from transformers import AutoModelForCausalLM

    return sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model_dir).parameters())


def _prompt_tokens(tokenizer: Any, examples: list[dict[str, str]]) -> dict[str, float]:
    lengths = [len(x) for x in tokenizer([e["prompt"] for e in examples], add_special_tokens=False)["input_ids"]]
    traces = [len(x) for x in tokenizer([e["completion"] for e in examples], add_special_tokens=False)["input_ids"]]
    return {
        "prompt_mean": round(sum(lengths) / len(lengths), 1),
        "prompt_max": max(lengths),
        "completion_mean": round(sum(traces) / len(traces), 1),
        "completion_max": max(traces),
    }


def plain_loss_sft_trainer() -> type:
    """TRL's ``SFTTrainer`` with the model's own token-mean loss instead of TRL's fused chunked-logprob head.

    On CPU with a tiny model the fused head's chunked backward costs more than the whole model's; the model's
    loss on the same labels (prompt tokens masked with -100 by TRL's collator) is the same number, and the step
    is about 40% faster. Data preparation, completion masks and the training loop stay TRL's.
    """
    from transformers import Trainer
    from trl import SFTTrainer

    class PlainLossSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[no-untyped-def]
            inputs["use_cache"] = False
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return PlainLossSFTTrainer


def sft_args(config: TeacherConfig, output_dir: Path, **settings: Any) -> Any:
    """TRL ``SFTConfig`` for both teacher recipes: ``config.sft``'s schedule on the CPU; ``settings`` add to it."""
    from trl import SFTConfig

    s = config.sft
    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=s.epochs,
        learning_rate=s.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=s.batch_size,
        max_length=s.max_length,
        # Batches of similar lengths: padding is wasted compute, and on CPU compute is the budget.
        train_sampling_strategy="group_by_length",
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=True,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=not progress_enabled(),
        **settings,
    )


def run_sft(config: TeacherConfig, tokenizer: Any, examples: list[dict[str, str]], sft_dir: Path) -> dict[str, Any]:
    """SFT of a fresh small Qwen2 on (chat prompt, gold trace) pairs, loss on the trace; saved to ``sft_dir``."""
    from datasets import Dataset

    from rlvr.tiny_lm import TinySize, build_model

    m = config.model
    size = TinySize(m.hidden, m.layers, m.heads, m.kv_heads, m.intermediate, m.max_positions)
    model = build_model(tokenizer, size, seed=config.seed)
    args = sft_args(config, sft_dir / "sft-checkpoints", bf16=False, save_strategy="no", logging_steps=25)
    trainer = plain_loss_sft_trainer()(
        model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tokenizer
    )
    result = trainer.train()
    shutil.rmtree(sft_dir / "sft-checkpoints", ignore_errors=True)
    model.save_pretrained(sft_dir)
    export_model_dir(sft_dir, sft_dir, tokenizer, config.eval.max_new_tokens)
    return sft_summary(trainer, result, len(examples))


def sft_summary(trainer: Any, result: Any, examples: int) -> dict[str, Any]:
    """What the model card records of an SFT run."""
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    return {
        "train_loss": float(result.training_loss),
        "final_logged_loss": float(losses[-1]) if losses else None,
        "steps": int(result.global_step),
        "examples": examples,
        "train_runtime_s": round(float(result.metrics.get("train_runtime", 0.0)), 1),
    }


def rl_train_config(rl: RlSettings, seed: int, base: Path, rl_pairs: Path, out: Path) -> Any:
    """The ``rlvr.train`` config of one RL stage: the recipe's, and every run of the GRPO/AGPO comparison."""
    from rlvr.train import TrainConfig

    return TrainConfig(
        base_model=str(base),
        output_dir=str(out),
        task=relevance_task.TASK_NAME,
        data_path=str(rl_pairs),
        estimator=rl.estimator,
        lambda_pos=rl.lambda_pos,
        lambda_neg=rl.lambda_neg,
        protect_shared_prefix=rl.protect_shared_prefix,
        learning_rate=rl.learning_rate,
        group_size=rl.group_size,
        prompts_per_step=rl.prompts_per_step,
        steps=rl.steps,
        max_completion_length=rl.max_completion_length,
        temperature=rl.temperature,
        seed=seed,
        logging_steps=5,
    )


def run_rl(config: TeacherConfig, base: Path, rl_records: list[dict[str, Any]], work: Path) -> dict[str, Any]:
    """RL on the label reward from ``base``; the policy lands in ``work / 'rl'``."""
    from rlvr.train import train

    rl_pairs = work / "rl_pairs.jsonl"
    needed = config.rl.steps * config.rl.prompts_per_step
    write_jsonl(rl_records[:needed], rl_pairs)
    summary = train(rl_train_config(config.rl, config.seed, base, rl_pairs, work / "rl"))
    rewards = [row["reward"] for row in summary["log_history"] if "reward" in row]
    return {
        "steps": summary["steps"],
        "prompts": min(needed, len(rl_records)),
        "rollouts": summary["steps"] * config.rl.prompts_per_step * config.rl.group_size,
        "reward_first": rewards[0] if rewards else None,
        "reward_last": rewards[-1] if rewards else None,
        "reward_mean_last_quarter": (
            sum(rewards[-max(1, len(rewards) // 4) :]) / max(1, len(rewards) // 4) if rewards else None
        ),
        "train_runtime_s": summary["train_runtime_s"],
    }


def eval_settings(config: TeacherConfig) -> EvalSettings:
    """The quick check's sampling settings, from the recipe's ``eval`` section."""
    e = config.eval
    return EvalSettings(
        n=e.n,
        max_new_tokens=e.max_new_tokens,
        temperature=e.temperature,
        batch_size=e.batch_size,
        seed=config.seed,
        schema=config.schema,
        template=config.template,
        dtype=e.dtype,
        method=e.method,
    )


def quick_eval(model_dir: Path, records: list[dict[str, Any]], config: TeacherConfig) -> dict[str, Any]:
    e = config.eval
    report, _ = evaluate_teacher(model_dir, subset(records, e.pairs, seed=config.seed), eval_settings(config))
    return {"split": e.split, **{k: report[k] for k in ("pairs", "n", "headline", "seconds")}}


def _size_on_disk(model_dir: Path) -> int:
    return sum(f.stat().st_size for f in model_dir.iterdir() if f.is_file())


def quiet_libraries() -> None:
    """With AGPO_NO_PROGRESS=1 (logs to a file), also silence the datasets and transformers progress bars."""
    if progress_enabled():
        return
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def _card(config: TeacherConfig, model_dir: Path, tokenizer: Any, source: dict[str, Any], **extra: Any) -> dict:
    """The model card fields every teacher directory (SFT-only or final) carries."""
    return {
        "name": "relevance-teacher",
        "task": "query-ad relevance (ESCI labels): brief reasoning, then a final line 'Label: <label>'",
        "architecture": "Qwen2ForCausalLM",
        "parameters": _parameters(model_dir),
        "size_bytes": _size_on_disk(model_dir),
        "vocab_size": len(tokenizer),
        **recipe_fields(config, source),
        **extra,
        "python": platform.python_version(),
        "versions": _versions(),
    }


def recipe_fields(config: TeacherConfig, source: dict[str, Any]) -> dict[str, Any]:
    """The card fields that say how a teacher was made and how to prompt it, for either recipe."""
    return {
        "label_schema": config.schema,
        "prompt_template": config.template,
        "prompt_version": prompt_version(config.template, config.schema),
        "data": source,
        "recipe": config.to_dict(),
        "seeds": {"recipe": config.seed, "data": config.data.seed},
    }


def _write_card(model_dir: Path, card: dict[str, Any]) -> None:
    (model_dir / "model_card.json").write_text(json.dumps(card, indent=1))
    (model_dir / "README.md").write_text(readme(card))


def readme(card: dict[str, Any]) -> str:
    """A short human-readable card next to ``model_card.json`` (which stays the source of truth)."""
    lines = [
        f"# {card['name']} ({card['stage']})",
        "",
        f"{card['task']}. A {card['parameters']:,}-parameter {card['architecture']} with a {card['vocab_size']}-token "
        "byte-level BPE (Qwen2 pipeline, ChatML template), built from nothing by the project's teacher recipe.",
        "",
        f"- Prompt: template `{card['prompt_template']}`, version `{card['prompt_version']}`, schema "
        f"`{card['label_schema']}`.",
        f"- Data: {json.dumps(card['data'])}.",
        f"- Rebuild: `{card.get('command') or 'agpo teacher build --config configs/teacher.yaml'}`.",
    ]
    quick = card.get("metrics", {}).get("gold_quick")
    if quick:
        head = quick["headline"]
        lines.append(
            f"- Quick check on {quick['pairs']} {quick['split']} pairs, majority of {quick['n']}: macro-F1 "
            f"{head['macro_f1']:.3f}, unparseable {head['unparseable_rate']:.2%} "
            "(full numbers: `agpo teacher eval --model <this dir>`)."
        )
    if "build_seconds" in card:
        lines.append(f"- Build time: {card['build_seconds'] / 60:.1f} min.")
    return "\n".join(lines) + "\n"


def build_teacher(
    config: TeacherConfig,
    out_dir: str | Path,
    *,
    work_dir: str | Path | None = None,
    sft_out: str | Path | None = None,
    command: str = "",
    log: Log = print,
    skip_eval: bool = False,
) -> dict[str, Any]:
    """Build the teacher into ``out_dir`` and return its model card (also written as ``model_card.json``).

    The SFT-only model stays in ``sft_out`` (default ``<work_dir>/sft``) with a card of its own, as the common
    base of RL comparisons.
    """
    start = time.time()
    quiet_libraries()
    out, work = Path(out_dir), Path(work_dir or f"{out_dir}.work")
    sft_dir = Path(sft_out) if sft_out else work / "sft"
    timings: dict[str, float] = {}
    with stage("data", timings, log):
        sizes = {"teacher_train": config.data.teacher_train, "dev": config.data.dev, "gold_test": config.data.gold_test}
        bench = load_benchmark(config.data.seed, sizes, config.data.dir)
        sft_records, rl_records = split_train(bench.splits["teacher_train"], config.sft.examples, config.seed)
    with stage("tokenizer", timings, log):
        tokenizer = build_tokenizer(bench.splits["teacher_train"], config)
        examples = sft_examples(sft_records, tokenizer, config.schema, config.template)
        lengths = _prompt_tokens(tokenizer, examples[:2000])
        log(f"vocabulary {len(tokenizer)} tokens; tokens per prompt {lengths['prompt_mean']} (mean)")
    source = {**bench.source, "sft_examples": len(sft_records)}
    with stage("sft", timings, log):
        sft_metrics = run_sft(config, tokenizer, examples, sft_dir)
        sft_card = _card(config, sft_dir, tokenizer, source, stage="sft", tokens=lengths, metrics={"sft": sft_metrics})
        _write_card(sft_dir, {**sft_card, "command": command, "build_seconds": round(time.time() - start, 1)})
    with stage("rl", timings, log):
        rl_metrics = run_rl(config, sft_dir, rl_records, work) if config.rl.steps > 0 else {"steps": 0}
    with stage("export", timings, log):
        final = work / "rl" if config.rl.steps > 0 else sft_dir
        export_model_dir(final, out, tokenizer, config.eval.max_new_tokens)
        probe = messages(sft_records[0], config.schema, config.template)
        verified = verify_model_dir(out, probe, examples[0]["prompt"])
    metrics: dict[str, Any] = {"sft": sft_metrics, "rl": rl_metrics}
    card = _card(
        config,
        out,
        tokenizer,
        {**source, "rl_prompts": rl_metrics.get("prompts", 0)},
        stage="sft+rl" if config.rl.steps > 0 else "sft",
        tokens=lengths,
        metrics=metrics,
        verified_load=verified,
        command=command,
    )
    _write_card(out, card)  # written before the check, so an interrupted check leaves a usable directory
    if not skip_eval:
        with stage("eval", timings, log):
            metrics["gold_quick"] = quick_eval(out, bench.splits[config.eval.split], config)
    card.update(metrics=metrics, timings_s=timings, build_seconds=round(time.time() - start, 1))
    _write_card(out, card)
    return card


def _versions() -> dict[str, str]:
    import tokenizers
    import torch
    import transformers
    import trl

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "tokenizers": tokenizers.__version__,
    }
