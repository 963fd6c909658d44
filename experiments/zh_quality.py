"""What the embedded models reach on Chinese, measured beside the same measurement in English.

The synthetic benchmark's world written twice (``relevance.synthetic``, ``lang`` en and zh: the same categories,
brands, constraints and label rules), and on each:

- the SmolLM2 teacher (the committed adapter, its model card's method) on a seeded subset of gold-test, in English
  with its own prompt, in Chinese under the shipped ``esci-zh`` task (Chinese guidelines, prompt and examples);
- MiniLM students trained on the same number of gold labels (the recipe of ``agpo student train``), several seeds;
- the zero-shot MiniLM bi-encoder (cuts fitted on dev) and the majority class;
- how much of the test text MiniLM's tokenizer reads as ``[UNK]``.

Every student run leaves ``eval.json`` in its folder and is skipped when it is there, so a run resumes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from experiments.kit import finished_run, format_mean_std, mean_std_cell
from rlvr.config import from_mapping, read_mapping

Log = Callable[[str], None]
LANGS = ("en", "zh")
HEADLINE = ("macro_f1", "cohen_kappa", "accuracy")


@dataclass(frozen=True)
class ZhQualityConfig:
    seed: int = 0  # the benchmark's seed (both languages)
    train_pairs: int = 3_000
    dev_pairs: int = 500
    test_pairs: int = 1_000
    teacher: str = "models/relevance-teacher-smollm2-more"
    teacher_pairs: int = 100
    teacher_method: str = "score"
    zh_task: str = "esci-zh"
    student_seeds: tuple[int, ...] = (0, 1)
    recipe: dict[str, Any] = field(default_factory=dict)  # student.train.TrainConfig fields


def load_config(path: str | Path) -> ZhQualityConfig:
    return from_mapping(ZhQualityConfig, read_mapping(path), source=str(path))


def _texts(path: Path) -> list[tuple[str, str]]:
    from student.data import render_ad

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [(r["query"], render_ad(r["ad"])) for r in rows]


def unknown_share(texts: list[tuple[str, str]]) -> float:
    """The share of MiniLM's tokens that are ``[UNK]`` on these pairs."""
    from transformers import AutoTokenizer

    from student.modelio import base_model_path

    tok = AutoTokenizer.from_pretrained(str(base_model_path()))
    ids = [i for q, a in texts for i in tok(q, a)["input_ids"]]
    return sum(i == tok.unk_token_id for i in ids) / len(ids)


def _task(cfg: ZhQualityConfig, lang: str) -> Any:
    from relevance.tasks import builtin_tasks, check_task

    return check_task(builtin_tasks()[cfg.zh_task], 1) if lang == "zh" else None


def prompt_tokens(cfg: ZhQualityConfig, lang: str, data: Path, n: int = 50) -> float:
    """Mean tokens of the teacher's prompt (chat template applied) over the first ``n`` test pairs."""
    from transformers import AutoTokenizer

    from teacher.evaluate import chat_prompts

    card = json.loads((Path(cfg.teacher) / "model_card.json").read_text())
    rows = [json.loads(line) for line in (data / "gold_test.jsonl").read_text(encoding="utf-8").splitlines()[:n]]
    tok = AutoTokenizer.from_pretrained(cfg.teacher)
    task = _task(cfg, lang)
    schema = task.schema if task else card.get("label_schema", "esci")
    prompts = chat_prompts(tok, rows, schema, card.get("prompt_template", "compact"), task)
    return sum(len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts) / len(prompts)


def _teacher(cfg: ZhQualityConfig, lang: str, data: Path, out: Path, log: Log) -> dict[str, Any]:
    from experiments.real_baselines import real_baselines
    from teacher.data import labelled_records
    from teacher.evaluate import EvalSettings, evaluate_teacher, write_report

    path = out / f"teacher_{lang}.json"
    if path.exists():
        return json.loads(path.read_text())
    card = json.loads((Path(cfg.teacher) / "model_card.json").read_text())
    records = labelled_records(data / "gold_test.jsonl", pairs=cfg.teacher_pairs, seed=0)
    task = _task(cfg, lang)
    settings = EvalSettings(
        n=1,
        temperature=0.0,
        max_new_tokens=int(card.get("max_new_tokens", 112)),
        batch_size=64,
        schema=task.schema if task else card.get("label_schema", "esci"),
        template=card.get("prompt_template", "compact"),
        task=task,
        dtype="bfloat16",
        method=cfg.teacher_method,
    )
    log(f"teacher on {len(records)} {lang} pairs ({cfg.teacher_method})")
    start = time.time()
    report, _ = evaluate_teacher(cfg.teacher, records, settings)
    report["seconds"] = round(time.time() - start, 1)
    report["baselines"] = real_baselines(records, data / "dev.jsonl", "esci")
    write_report(report, path)
    return report


def _student(cfg: ZhQualityConfig, data: Path, out: Path, seed: int, log: Log) -> dict[str, Any]:
    from student.evaluate import evaluate
    from student.train import TrainConfig, train

    if (done := finished_run(out)) is not None:
        return done
    recipe = {"progress": False, **cfg.recipe, "seed": seed}
    log(f"student seed {seed} on {data.name}: {cfg.train_pairs} gold pairs")
    start = time.time()
    train(
        data / "teacher_train.jsonl", out / "model", TrainConfig(**recipe), source="gold", dev_path=data / "dev.jsonl"
    )
    seconds = time.time() - start
    report = evaluate(out / "model", data / "gold_test.jsonl", dev_path=data / "dev.jsonl", baselines=seed == 0)
    summary = {
        "seed": seed,
        "train_s": round(seconds, 1),
        "student": {k: report["student"][k] for k in HEADLINE},
        "baselines": {name: {k: row[k] for k in HEADLINE} for name, row in (report.get("baselines") or {}).items()},
    }
    (out / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def run(cfg: ZhQualityConfig, out_dir: str | Path, log: Log = print) -> dict[str, Any]:
    from relevance.synthetic.generator import generate_benchmark

    out = Path(out_dir)
    results: dict[str, Any] = {"config": asdict(cfg), "langs": {}}
    for lang in LANGS:
        data = out / "data" / lang
        if not (data / "manifest.json").exists():
            generate_benchmark(
                data,
                cfg.seed,
                teacher_train=cfg.train_pairs,
                dev=cfg.dev_pairs,
                gold_test=cfg.test_pairs,
                pool=0,
                lang=lang,
            )
        teacher = _teacher(cfg, lang, data, out, log)
        students = [_student(cfg, data, out / lang / f"student-{s}", s, log) for s in cfg.student_seeds]
        baselines = next(s["baselines"] for s in students if s["baselines"])
        results["langs"][lang] = {
            "unk_share": round(unknown_share(_texts(data / "gold_test.jsonl")), 4),
            "teacher_prompt_tokens": round(prompt_tokens(cfg, lang, data), 1),
            "teacher": {
                "n": teacher["pairs"],
                **{k: teacher["scored" if "scored" in teacher else "majority"][k] for k in HEADLINE if k},
                "baselines": teacher["baselines"],
                "pairs_per_s": round(teacher["pairs"] / teacher["seconds"], 2) if teacher.get("seconds") else None,
            },
            "students": {k: mean_std_cell([s["student"][k] for s in students], "seeds", 3) for k in HEADLINE},
            "student_runs": students,
            "baselines": baselines,
        }
    return results


def _cell(row: dict[str, Any], key: str) -> str:
    value = row[key]
    if isinstance(value, dict):
        return format_mean_std(value["mean"], value["std"])
    return f"{value:.3f}"


def plot(results: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _rows(results)
    names = list(rows)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.38
    for j, lang in enumerate(LANGS):
        values = [rows[n][lang]["macro_f1"] for n in names]
        means = [v["mean"] if isinstance(v, dict) else v for v in values]
        errs = [v["std"] if isinstance(v, dict) else 0.0 for v in values]
        ax.bar([i + (j - 0.5) * width for i in range(len(names))], means, width, yerr=errs, label=lang, capsize=3)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("macro-F1 on gold-test")
    ax.set_ylim(0, 1)
    ax.legend(title="benchmark")
    ax.set_title("The same synthetic world in English and in Chinese")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _rows(results: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    langs = results["langs"]
    return {
        "teacher": {lang: langs[lang]["teacher"] for lang in LANGS},
        "student": {lang: langs[lang]["students"] for lang in LANGS},
        "bi-encoder": {lang: langs[lang]["baselines"]["bi_encoder"] for lang in LANGS},
        "majority": {lang: langs[lang]["baselines"]["majority"] for lang in LANGS},
    }


def write_report(results: dict[str, Any], path: str | Path, command: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg, langs = results["config"], results["langs"]
    png = plot(results, path.with_suffix(".png"))
    path.with_suffix(".json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    lines = [
        "# Chinese: what the embedded models reach",
        "",
        f"Command: `{command}`",
        "",
        f"The synthetic benchmark's world written in English and in Chinese (`agpo relevance generate --lang zh`, seed "
        f"{cfg['seed']}: the same categories, brands, constraints and label rules; JD-style queries and titles in "
        f"Chinese). Students: MiniLM (`all-MiniLM-L6-v2`, the shipped base) trained on {cfg['train_pairs']:,} gold "
        f"labels, seeds {list(cfg['student_seeds'])} (mean ± std), scored on {cfg['test_pairs']:,} gold-test pairs. "
        f"Teacher: `{cfg['teacher']}` on {langs['en']['teacher']['n']} gold-test pairs, method "
        f"`{cfg['teacher_method']}`, its own prompt in English and the shipped `{cfg['zh_task']}` task in Chinese; "
        "the baselines in its row are on its pairs. Bi-encoder: zero-shot MiniLM cosine, cuts fitted on dev.",
        "",
        "| on gold-test | en macro-F1 | en kappa | zh macro-F1 | zh kappa |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in _rows(results).items():
        cells = [_cell(row[lang], k) for lang in LANGS for k in ("macro_f1", "cohen_kappa")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    t = {lang: langs[lang]["teacher"]["baselines"] for lang in LANGS}
    lines += [
        "",
        "On the teacher's pairs: bi-encoder "
        + ", ".join(f"{lang} {t[lang]['bi_encoder']['macro_f1']:.3f}" for lang in LANGS)
        + "; majority "
        + ", ".join(f"{lang} {t[lang]['majority']['macro_f1']:.3f}" for lang in LANGS)
        + ".",
        "",
        "MiniLM's tokenizer reads "
        + ", ".join(f"{100 * langs[lang]['unk_share']:.1f}% of the {lang} test tokens" for lang in LANGS)
        + " as `[UNK]`: its English vocabulary lacks many Chinese characters, so a Chinese student wants a base with "
        "a Chinese vocabulary (`agpo student train --base-model DIR_OR_HUB_ID`; `tests/student/test_student_zh.py` "
        "trains one with a character vocabulary end to end).",
        "",
        "The teacher's prompt is "
        + " and ".join(f"{langs[lang]['teacher_prompt_tokens']:,.0f} tokens in {lang}" for lang in LANGS)
        + " on average (chat template applied): SmolLM2's tokenizer spends several tokens per Chinese character, and "
        "the Chinese task carries its guidelines and two examples; labelling ran at "
        + " and ".join(f"{langs[lang]['teacher']['pairs_per_s']} pairs/s in {lang}" for lang in LANGS)
        + " (bf16, 2 cores, while nothing else ran).",
        "",
        f"![macro-F1, English and Chinese]({png.name})",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
