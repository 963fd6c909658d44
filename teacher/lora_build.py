"""``agpo teacher build --base NAME``: a LoRA adapter on a pretrained LLM as the relevance teacher.

Stages: data (synthetic benchmark traces, plus human-labelled real pairs whose answers are overlap reasoning,
:mod:`teacher.targets`) -> LoRA SFT with TRL's ``SFTTrainer`` (checkpointed: an interrupted build resumes) ->
optionally AGPO on the label reward with the adapter still trainable -> the adapter directory (a few MB: the
adapter, the base's tokenizer and chat template, the generation config, ``model_card.json`` and the ids of
every real training row) -> a quick check on synthetic gold-test and on real dev pairs.

The adapter's ``base_model_name_or_path`` is the base as the recipe names it (``smollm2-135m-instruct``), not
a path of this machine; :func:`llm.bases.load_causal_lm` resolves it wherever the adapter is loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llm.bases import ADAPTER_CONFIG, BASES, resolve_base
from teacher.build import Log, eval_settings, quiet_libraries, recipe_fields, stage
from teacher.config import TeacherConfig
from teacher.data import Record, balanced_draw, label_of, labelled_records, load_benchmark, messages, subset
from teacher.evaluate import evaluate_teacher
from teacher.targets import answer_target

log = logging.getLogger(__name__)

TRAINING_IDS = "training_ids.txt"
DONE = "DONE"  # in the SFT folder: the stage finished (its metrics)
KEY = "KEY"  # in the SFT folder: the settings it was trained under (sft_key)


def earlier_training_ids(config: TeacherConfig) -> list[str]:
    """The real rows the adapter that ``sft.init_adapter`` continues was trained on (none for a fresh adapter)."""
    if not config.sft.init_adapter:
        return []
    ids_file = Path(config.sft.init_adapter) / TRAINING_IDS
    return ids_file.read_text().split() if ids_file.is_file() else []


def training_records(config: TeacherConfig) -> tuple[list[Record], dict[str, Any]]:
    """The SFT mix (synthetic traces and real rows, shuffled) and where each part came from. Real rows an
    adapter being continued was trained on are left out, so every real row is trained on once."""
    d = config.data
    sizes = {"teacher_train": d.teacher_train, "dev": d.dev, "gold_test": d.gold_test}
    bench = load_benchmark(d.seed, sizes, d.dir)
    synthetic = subset(bench.splits["teacher_train"], config.sft.examples, seed=config.seed)
    real: list[Record] = []
    source: dict[str, Any] = {**bench.source, "sft_examples": len(synthetic)}
    rl_real: list[Record] = []
    if d.real and d.real_examples > 0:
        earlier = set(earlier_training_ids(config))
        pool = [r for r in labelled_records(d.real) if r["custom_id"] not in earlier]
        real = balanced_draw(pool, d.real_examples, config.seed)
        # RL prompts: real rows the SFT pass never saw, so the reward teaches rather than recalls.
        seen = {r["custom_id"] for r in real}
        rest = [r for r in pool if r["custom_id"] not in seen]
        rl_real = balanced_draw(rest, config.rl.steps * config.rl.prompts_per_step, config.seed + 1)
        source["real"] = {
            "file": d.real,
            "sha256": hashlib.sha256(Path(d.real).read_bytes()).hexdigest(),
            "rows": len(real),
            "rl_rows": len(rl_real),
            "earlier_rows": len(earlier),
            "labels": dict(sorted(Counter(label_of(r) for r in real).items())),
            "sources": sorted({(r.get("meta") or {}).get("source", "unknown") for r in real}),
            "ids_file": TRAINING_IDS,
        }
    mix = synthetic + real
    random.Random(f"sft-mix:{config.seed}").shuffle(mix)
    return mix, {"benchmark": bench, "source": source, "real": real, "rl_real": rl_real}


def sft_examples(records: Sequence[Record], tokenizer: Any, config: TeacherConfig) -> list[dict[str, str]]:
    """Prompt (chat template, assistant turn opened) and completion (:func:`teacher.targets.answer_target`)."""
    return [
        {
            "prompt": tokenizer.apply_chat_template(
                messages(r, config.schema, config.template), add_generation_prompt=True, tokenize=False
            ),
            "completion": answer_target(r),
        }
        for r in records
    ]


def lora_config(config: TeacherConfig) -> Any:
    from peft import LoraConfig

    lo = config.lora
    return LoraConfig(
        r=lo.r, lora_alpha=lo.alpha, lora_dropout=lo.dropout, target_modules=lo.target_modules, task_type="CAUSAL_LM"
    )


def sft_key(config: TeacherConfig) -> str:
    """A hash of every setting the SFT stage depends on: a finished stage is reused only under the same key."""
    settings = config.to_dict()
    relevant = {k: settings[k] for k in ("seed", "base", "schema", "template", "data", "lora", "sft")}
    if config.sft.init_adapter:  # the adapter's bytes, not only its path
        weights = Path(config.sft.init_adapter) / "adapter_model.safetensors"
        relevant["init_adapter_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def cached_sft(config: TeacherConfig, sft_dir: Path, log: Log, train: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The SFT stage's metrics: reused when ``sft_dir`` finished under the same settings, else ``train()`` (which
    resumes from a checkpoint of an interrupted run under the same settings). Other settings start afresh."""
    key = sft_key(config)
    key_file = sft_dir / KEY
    if sft_dir.exists() and (not key_file.is_file() or key_file.read_text() != key):
        log(f"{sft_dir} holds SFT under other settings: training again")
        shutil.rmtree(sft_dir)
    if (sft_dir / DONE).is_file():
        log(f"reusing the finished SFT stage in {sft_dir}")
        return json.loads((sft_dir / DONE).read_text())
    sft_dir.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key)
    metrics = train()
    (sft_dir / DONE).write_text(json.dumps(metrics))
    return metrics


def _last_checkpoint(folder: Path) -> str | None:
    checkpoints = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return str(checkpoints[-1]) if checkpoints else None


def run_lora_sft(
    config: TeacherConfig, base: str, tokenizer: Any, examples: list[dict[str, str]], sft_dir: Path
) -> dict[str, Any]:
    """LoRA SFT from ``base``; the adapter lands in ``sft_dir``. Resumes from the last checkpoint there."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from teacher.build import plain_loss_sft_trainer, sft_args, sft_summary

    checkpoints = sft_dir / "checkpoints"
    args = sft_args(
        config,
        checkpoints,
        bf16=bf16_here(config.sft.bf16),
        save_strategy="steps",
        save_steps=50,
        save_total_limit=1,
        logging_steps=10,
    )
    model = AutoModelForCausalLM.from_pretrained(base)
    if config.sft.init_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, config.sft.init_adapter, is_trainable=True)
    trainer = plain_loss_sft_trainer()(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=None if config.sft.init_adapter else lora_config(config),
    )
    result = trainer.train(resume_from_checkpoint=_last_checkpoint(checkpoints))
    trainer.model.save_pretrained(sft_dir)  # the adapter alone: RL reads the tokenizer from its base
    shutil.rmtree(checkpoints, ignore_errors=True)
    return sft_summary(trainer, result, len(examples))


def bf16_here(asked: bool) -> bool:
    """bf16 where asked and the CPU computes it in hardware; without the units torch emulates it, ~50x slower."""
    from llm.hardware import cpu_has_bf16

    if asked and not cpu_has_bf16():
        log.warning("bf16 asked, but this CPU has no bf16 units (amx_bf16 or avx512_bf16): training in fp32")
        return False
    return asked


def run_lora_rl(config: TeacherConfig, sft_dir: Path, rl_records: list[Record], work: Path) -> dict[str, Any]:
    """AGPO (``config.rl``) on the label reward, training the SFT adapter further; it lands in ``work / 'rl'``."""
    from dataclasses import replace

    from rlvr.train import train
    from teacher.build import rl_train_config
    from teacher.data import write_jsonl

    rl_pairs = work / "rl_pairs.jsonl"
    write_jsonl(rl_records, rl_pairs)
    run = replace(
        rl_train_config(config.rl, config.seed, sft_dir, rl_pairs, work / "rl"),
        template=config.template,
        bf16=bf16_here(config.sft.bf16),
        logging_steps=1,
    )
    summary = train(run)
    rewards = [row["reward"] for row in summary["log_history"] if "reward" in row]
    quarter = max(1, len(rewards) // 4)
    return {
        "estimator": config.rl.estimator,
        "steps": summary["steps"],
        "prompts": len(rl_records),
        "rollouts": summary["steps"] * config.rl.prompts_per_step * config.rl.group_size,
        "reward_first_quarter": sum(rewards[:quarter]) / quarter if rewards else None,
        "reward_last_quarter": sum(rewards[-quarter:]) / quarter if rewards else None,
        "train_runtime_s": round(summary["train_runtime_s"], 1),
    }


def export_adapter(adapter_dir: Path, out: Path, config: TeacherConfig, tokenizer: Any) -> None:
    """The adapter with its base named portably, the tokenizer, and the generation settings labelling uses."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import GenerationConfig

    out.mkdir(parents=True, exist_ok=True)
    # Stored in bf16: half the bytes to commit, and the adapter is merged into the base on load in any case.
    weights = load_file(adapter_dir / "adapter_model.safetensors")
    save_file({k: v.to(torch.bfloat16) for k, v in weights.items()}, out / "adapter_model.safetensors")
    shutil.copy2(adapter_dir / ADAPTER_CONFIG, out / ADAPTER_CONFIG)
    adapter = json.loads((out / ADAPTER_CONFIG).read_text())
    adapter["base_model_name_or_path"] = config.base
    (out / ADAPTER_CONFIG).write_text(json.dumps(adapter, indent=2, sort_keys=True))
    tokenizer.save_pretrained(out, save_jinja_files=False)
    (out / "chat_template.jinja").unlink(missing_ok=True)
    GenerationConfig(
        do_sample=False,
        max_new_tokens=config.eval.max_new_tokens,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ).save_pretrained(out)


def quick_checks(out: Path, config: TeacherConfig, bench: Any) -> dict[str, Any]:
    """The card's quick checks: synthetic gold-test and, when configured, real pairs (``eval.real``)."""
    e, settings = config.eval, eval_settings(config)
    checks: dict[str, Any] = {}
    sets = {e.split: subset(bench.splits[e.split], e.pairs, seed=config.seed)}
    if e.real:
        sets[f"real:{Path(e.real).name}"] = labelled_records(e.real, pairs=e.real_pairs, seed=config.seed)
    for name, records in sets.items():
        report, _ = evaluate_teacher(out, records, settings)
        checks[name] = {k: report[k] for k in ("pairs", "n", "headline", "seconds")}
    return checks


def _card(config: TeacherConfig, out: Path, source: dict[str, Any], **extra: Any) -> dict[str, Any]:
    from teacher.build import _versions

    base = BASES.get(config.base or "")
    adapter_bytes = (out / "adapter_model.safetensors").stat().st_size
    fields = recipe_fields(config, source)
    # Real rows teach the overlap reasoning (relevance.overlap); after it the labels' probabilities are read in one
    # forward, as accurate on real dev pairs as a written answer and three times faster. The service's default.
    method = "overlap" if fields.get("data", {}).get("real") else "sample"
    return {
        "name": f"relevance-teacher-{config.base}",
        "task": "query-ad relevance (ESCI labels): brief reasoning, then a final line 'Label: <label>'",
        "kind": "lora-adapter",
        "base": {
            "name": config.base,
            **(
                {
                    "hub_id": base.hub_id,
                    "gguf_sha256": base.sha256,
                    "wheel": f"{base.distribution}=={base.version}",
                    "licence": base.licence,
                }
                if base
                else {}
            ),
        },
        "adapter_size_bytes": adapter_bytes,
        "label_method": method,
        **fields,
        **extra,
        "versions": _versions(),
    }


def readme(card: dict[str, Any]) -> str:
    real = card["data"].get("real")
    lines = [
        f"# {card['name']}",
        "",
        f"{card['task']}. A LoRA adapter ({card['adapter_size_bytes'] / 2**20:.1f} MiB) on "
        f"`{card['base']['name']}`, trained by the project's teacher recipe; it loads onto its base with "
        "`llm.bases.load_causal_lm` (or peft's `PeftModel.from_pretrained`).",
        "",
        f"- Prompt: template `{card['prompt_template']}`, version `{card['prompt_version']}`.",
        f"- Synthetic training traces: {card['data'].get('sft_examples', 0)} (generator seed "
        f"{card['data'].get('seed')}).",
    ]
    if real:
        earlier = real.get("earlier_rows", 0)
        init = card["recipe"]["sft"].get("init_adapter")
        continued = f", continuing `{init}` (trained on {earlier} more)" if earlier else ""
        lines.append(
            f"- Real training rows: {real['rows']} from `{real['file']}` (sha256 {real['sha256'][:12]}, labels "
            f"{real['labels']}){continued}; the ids of all {real['rows'] + earlier} are in `{TRAINING_IDS}`. "
            "Never evaluate on them."
        )
    for name, check in card.get("metrics", {}).get("quick", {}).items():
        head = check["headline"]
        lines.append(
            f"- Quick check, {name} ({check['pairs']} pairs, n={check['n']}): macro-F1 {head['macro_f1']:.3f}, "
            f"kappa {head.get('cohen_kappa', float('nan')):.3f}, unparseable {head['unparseable_rate']:.2%}."
        )
    lines.append(f"- Rebuild: `{card.get('command') or 'agpo teacher build --config configs/teacher_smollm2.yaml'}`.")
    if "build_seconds" in card:
        sft_minutes = card["metrics"]["sft"].get("train_runtime_s", 0) / 60
        lines.append(
            f"- Build time: {card['build_seconds'] / 60:.1f} min for the last run of the command; its SFT stage "
            f"(cached, resumable) trained for {sft_minutes:.0f} min on 2 CPU cores."
        )
    return "\n".join(lines) + "\n"


def _write_card(out: Path, card: dict[str, Any]) -> None:
    (out / "model_card.json").write_text(json.dumps(card, indent=1))
    (out / "README.md").write_text(readme(card))


def build_lora_teacher(
    config: TeacherConfig,
    out_dir: str | Path,
    *,
    work_dir: str | Path | None = None,
    command: str = "",
    log: Log = print,
    skip_eval: bool = False,
) -> dict[str, Any]:
    """Build the adapter teacher into ``out_dir``; a finished SFT stage in ``work_dir`` is reused."""
    from transformers import AutoTokenizer

    if not config.base:
        raise ValueError("build_lora_teacher needs config.base (a registered base, a model directory or a hub id)")
    start = time.time()
    quiet_libraries()
    out, work = Path(out_dir), Path(work_dir or f"{out_dir}.work")
    sft_dir = work / "sft"
    timings: dict[str, float] = {}
    with stage("data", timings, log):
        records, parts = training_records(config)
        base = resolve_base(config.base)
        tokenizer = AutoTokenizer.from_pretrained(base)
        examples = sft_examples(records, tokenizer, config)
        log(f"{len(records)} SFT examples ({len(parts['real'])} real); base {config.base} at {base}")
    with stage("sft", timings, log):
        sft_metrics = cached_sft(config, sft_dir, log, lambda: run_lora_sft(config, base, tokenizer, examples, sft_dir))
    rl_metrics: dict[str, Any] = {"steps": 0}
    if config.rl.steps > 0:
        with stage("rl", timings, log):
            if not parts["rl_real"]:
                raise ValueError("rl.steps > 0 needs real rows for RL prompts (data.real and data.real_examples)")
            rl_metrics = run_lora_rl(config, sft_dir, parts["rl_real"], work)
    with stage("export", timings, log):
        export_adapter(work / "rl" if config.rl.steps > 0 else sft_dir, out, config, tokenizer)
        used = parts["real"] + (parts["rl_real"] if config.rl.steps > 0 else [])
        ids = sorted({r["custom_id"] for r in used} | set(earlier_training_ids(config)))
        (out / TRAINING_IDS).write_text("".join(f"{i}\n" for i in ids))
    metrics: dict[str, Any] = {"sft": sft_metrics, "rl": rl_metrics}
    stage_name = "sft+rl" if config.rl.steps > 0 else "sft"
    card = _card(config, out, parts["source"], stage=stage_name, metrics=metrics, command=command)
    _write_card(out, card)
    if not skip_eval:
        with stage("eval", timings, log):
            metrics["quick"] = quick_checks(out, config, parts["benchmark"])
    card.update(metrics=metrics, timings_s=timings, build_seconds=round(time.time() - start, 1))
    _write_card(out, card)
    return card
