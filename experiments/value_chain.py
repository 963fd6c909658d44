"""Is the teacher worth running? Students trained with scarce gold, with the teacher's labels of an unlabelled pool,
and with both, scored on the same human-labelled test set beside the zero-shot bi-encoder and the teacher itself.

Every arm names what it trains on: ``gold`` (a subset of the gold file, drawn afresh per seed, none of it in the
pool: whole queries by default, or single rows, or rows as evenly over labels as they allow) and/or ``teacher``
(the teacher's result lines for the pool, read from a committed file so the experiment never relabels), plus any
:class:`student.train.TrainConfig` overrides (``min_confidence`` for confidence filtering, ``targets: soft`` for the
teacher's label distributions). Seed ``s`` draws the same gold subset and trains with the same seed in every arm,
so arms are compared seed by seed.

Intervals resample both the test pairs and the seeds (a percentile bootstrap): a difference between two arms is
"above 0" only when it holds for other test pairs and other training runs alike. Each run leaves ``eval.json``
(metrics and its test predictions) in its folder and is skipped when it is there, so the experiment resumes.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments.kit import finished_run, format_interval, format_mean_std, mean_std_cell
from rlvr.config import from_mapping, read_mapping
from teacher.data import read_jsonl, write_jsonl

Log = Callable[[str], None]
GOLD, TEACHER = "gold", "teacher"
GOLD_TARGETS = ("label", "graded")
GOLD_DRAWS = ("queries", "rows", "balanced")


@dataclass(frozen=True)
class ChainData:
    """``gold``: gold pairs the scarce gold is drawn from; ``pool``: the pairs the teacher labelled (joined to its
    results by ``custom_id``); ``pool_labels`` and ``test_labels``: the teacher's result lines for the pool and
    for the test pairs; ``dev`` chooses checkpoints and fits the bi-encoder's cut points; ``test`` scores.
    ``gold`` is needed only by arms that use gold, ``pool`` and ``pool_labels`` only by arms that use the teacher."""

    dev: str
    test: str
    gold: str | None = None
    pool: str | None = None
    pool_labels: str | None = None
    test_labels: str | None = None


@dataclass(frozen=True)
class Arm:
    name: str
    uses: tuple[str, ...]  # "gold", "teacher" or both
    recipe: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides for this arm
    gold_pairs: int | None = None  # this arm's gold pairs per seed (default: the config's gold_pairs)
    flip: float = 0.0  # the share of its gold Exact/Substitute labels swapped (label noise, seeded by the seed)
    # "label": the gold label, one-hot; "graded": shares from the raters' mean (``meta.score``, Home Depot's 1-3),
    # a soft target for ``targets: soft`` recipes
    gold_targets: str = "label"
    # How the gold pairs are drawn: "queries", whole queries (what a team labelling query by query gets); "rows",
    # single pairs at random (more queries, fewer pairs each); "balanced", single pairs as evenly over labels as the
    # rarest allows (how the teacher's own real rows were drawn)
    gold_draw: str = "queries"
    # Human review of the teacher's pool labels: this many pool pairs take the raters' label (``meta.label`` of the
    # pool file) in place of the teacher's, chosen as the review queue orders them ("uncertainty", most uncertain
    # first, :func:`relevance.votes.uncertainty`) or at random ("random", seeded by the seed), the control
    reviewed: int = 0
    review_order: str = "uncertainty"
    # Two stages: this arm's student starts from the one the named earlier arm trained at the same seed (e.g. the
    # teacher-labelled pool first, then the scarce gold), instead of from the untrained base.
    init_from: str | None = None


REVIEW_ORDERS = ("uncertainty", "random")


@dataclass(frozen=True)
class ChainConfig:
    data: ChainData
    arms: tuple[Arm, ...]
    gold_pairs: int = 500
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    recipe: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields for every arm
    bootstrap: int = 2000
    comparisons: tuple[tuple[str, str], ...] = ()  # (arm, reference): reference is an arm, bi_encoder or teacher
    title: str = "The value chain: scarce gold, the teacher's labels, or both"
    # Where each finished run's outcome (metrics and test predictions, a few KB) is also kept, as
    # ``<arm>/seed<s>.json``: committed, it lets a chain of many CPU-hours grow over several checkouts.
    record_dir: str = ""

    def validate(self) -> None:
        names = [a.name for a in self.arms]
        problems = [f"arm {n!r} appears twice" for n in sorted({n for n in names if names.count(n) > 1})]
        for arm in self.arms:
            unknown = sorted(set(arm.uses) - {GOLD, TEACHER})
            if unknown or not arm.uses:
                problems.append(f"arm {arm.name!r}: uses must be gold and/or teacher, got {list(arm.uses)}")
            if GOLD in arm.uses and not self.data.gold:
                problems.append(f"arm {arm.name!r} uses gold: give data.gold")
            if TEACHER in arm.uses and not (self.data.pool and self.data.pool_labels):
                problems.append(f"arm {arm.name!r} uses the teacher: give data.pool and data.pool_labels")
            if not 0 <= arm.flip <= 1:
                problems.append(f"arm {arm.name!r}: flip must lie in [0, 1], got {arm.flip}")
            elif arm.flip and GOLD not in arm.uses:
                problems.append(f"arm {arm.name!r}: flip swaps gold labels, but the arm does not use gold")
            if arm.gold_targets not in GOLD_TARGETS:
                problems.append(f"arm {arm.name!r}: gold_targets must be one of {list(GOLD_TARGETS)}")
            elif arm.gold_targets == "graded" and (arm.flip or GOLD not in arm.uses):
                problems.append(f"arm {arm.name!r}: graded gold targets need an arm that uses gold and flips none")
            if arm.gold_draw not in GOLD_DRAWS:
                problems.append(f"arm {arm.name!r}: gold_draw must be one of {list(GOLD_DRAWS)}, got {arm.gold_draw!r}")
            if arm.reviewed and TEACHER not in arm.uses:
                problems.append(f"arm {arm.name!r}: reviewed replaces teacher labels, but the arm does not use them")
            if arm.reviewed < 0 or arm.review_order not in REVIEW_ORDERS:
                problems.append(f"arm {arm.name!r}: reviewed >= 0 and review_order one of {list(REVIEW_ORDERS)}")
            if arm.init_from is not None and arm.init_from not in names[: names.index(arm.name)]:
                problems.append(f"arm {arm.name!r}: init_from must name an arm listed before it, got {arm.init_from!r}")
        references = {*names, "bi_encoder", "majority", *(("teacher",) if self.data.test_labels else ())}
        for arm, ref in self.comparisons:
            if arm not in names:
                problems.append(f"comparison ({arm}, {ref}): {arm!r} is not an arm")
            if ref not in references:
                others = sorted(references - set(names))
                problems.append(f"comparison ({arm}, {ref}): {ref!r} is neither an arm nor one of {others}")
        if self.gold_pairs < 1:
            problems.append("gold_pairs must be at least 1")
        if not self.seeds:
            problems.append("seeds: give at least one")
        if problems:
            raise ValueError("; ".join(problems))


def load_chain_config(path: str | Path) -> ChainConfig:
    cfg = from_mapping(ChainConfig, read_mapping(path), source=str(path))
    cfg.validate()
    return cfg


def check_files(cfg: ChainConfig) -> None:
    """FileNotFoundError for the first missing data file, before anything trains."""
    for role, path in asdict(cfg.data).items():
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(
                f"data.{role}: no file {path} (`agpo relevance real --out runs/relevance/real` writes the real sets)"
            )


# -- training sets -------------------------------------------------------------------------------------------


def gold_subset(
    gold: Sequence[dict[str, Any]], exclude: set[str], n: int, seed: int, draw: str = "queries"
) -> list[dict[str, Any]]:
    """``n`` gold pairs drawn by ``seed``, none of them in ``exclude``: whole queries (``draw="queries"``), single
    rows (``"rows"``) or single rows as evenly over labels as the rarest allows (``"balanced"``)."""
    from experiments.student_curve import query_subset
    from teacher.data import balanced_draw

    rows = [row for row in gold if row["custom_id"] not in exclude]
    if n > len(rows):
        raise ValueError(f"asked for {n:,} gold pairs, the gold file has {len(rows):,} outside the pool")
    if draw == "rows":
        return [rows[i] for i in np.random.default_rng([seed, 2029]).permutation(len(rows))[:n]]
    if draw == "balanced":
        return balanced_draw(rows, n, seed)
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    return [json.loads(line) for line in query_subset(lines, n, seed)]


FLIP_PAIR = ("Exact", "Substitute")


def flip_labels(rows: Sequence[dict[str, Any]], share: float, seed: int) -> list[dict[str, Any]]:
    """``rows`` with ``share`` of their Exact and Substitute gold labels swapped, for label-noise calibration.

    The swapped pairs come first in one seeded order of the candidates, so at a given seed the pairs swapped at 5%
    are among those swapped at 10%: noise levels differ only in how much is swapped, not in which pairs."""
    candidates = [i for i, row in enumerate(rows) if row["meta"]["label"] in FLIP_PAIR]
    order = np.random.default_rng([seed, 2027]).permutation(len(candidates))
    swapped = {candidates[j] for j in order[: round(share * len(candidates))]}
    other = {FLIP_PAIR[0]: FLIP_PAIR[1], FLIP_PAIR[1]: FLIP_PAIR[0]}
    return [
        {**row, "meta": {**row["meta"], "label": other[row["meta"]["label"]]}} if i in swapped else row
        for i, row in enumerate(rows)
    ]


def gold_as_result(row: dict[str, Any], targets: str = "label") -> dict[str, Any]:
    """A gold pair as a result line with its pair inline: the human label, certain; with ``targets="graded"`` its
    distribution is the label shares of the raters' mean (``meta.score``)."""
    line = {
        "custom_id": row["custom_id"],
        "status": "completed",
        "label": row["meta"]["label"],
        "confidence": 1.0,
        "query": row["query"],
        "ad": row["ad"],
    }
    if targets == "graded":
        from relevance.importers.homedepot import homedepot_label_shares

        score = row["meta"].get("score")
        if score is None:
            raise ValueError(f"gold pair {row['custom_id']!r} has no meta.score: graded targets need raters' means")
        line["distribution"] = homedepot_label_shares(float(score))
    return line


def reviewed_rows(
    rows: Sequence[dict[str, Any]], human: dict[str, str], n: int, order: str, seed: int
) -> list[dict[str, Any]]:
    """``rows`` (teacher result lines) where ``n`` of them carry the human label instead, certain: the ``n`` the
    review queue shows first (``order="uncertainty"``), or ``n`` drawn at random by ``seed``."""
    from relevance.votes import uncertainty

    if n > len(rows):
        raise ValueError(f"reviewed: {n} pairs asked for, the pool has {len(rows)} teacher labels")
    if order == "uncertainty":
        ranked = sorted(
            range(len(rows)),
            key=lambda i: (-uncertainty(rows[i]["label"], rows[i].get("distribution") or {}), rows[i]["custom_id"]),
        )
    else:
        ranked = [int(i) for i in np.random.default_rng([seed, 2028]).permutation(len(rows))]
    chosen = set(ranked[:n])
    out = []
    for i, row in enumerate(rows):
        if i in chosen:
            label = human.get(row["custom_id"])
            if label is None:
                raise ValueError(f"pool pair {row['custom_id']!r} has no meta.label: review needs the raters' labels")
            row = {**row, "label": label, "confidence": 1.0, "distribution": None}
        out.append(row)
    return out


def teacher_rows(labels: Sequence[dict[str, Any]], pool: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The teacher's completed result lines with their pairs inline (failed lines carry no label to learn)."""
    rows = []
    for line in labels:
        if line.get("status") != "completed":
            continue
        pair = pool.get(line["custom_id"])
        if pair is None:
            raise ValueError(f"teacher label {line['custom_id']!r} has no pair in the pool file")
        rows.append({**line, "query": pair["query"], "ad": pair["ad"]})
    return rows


# -- runs ----------------------------------------------------------------------------------------------------


@dataclass
class Inputs:
    """What every run reads, loaded once."""

    gold: list[dict[str, Any]]
    teacher: list[dict[str, Any]]
    pool_human: dict[str, str]  # the pool's own human labels (meta.label), for arms that review
    test_pairs: list[tuple[str, str]]
    test_labels: np.ndarray  # schema indices
    schema: str


def load_inputs(cfg: ChainConfig, schema: str = "esci") -> Inputs:
    from relevance.schemas import get_schema
    from student.data import load_gold

    teacher: list[dict[str, Any]] = []
    human: dict[str, str] = {}
    if cfg.data.pool and cfg.data.pool_labels:
        pool = {row["custom_id"]: row for row in read_jsonl(cfg.data.pool)}
        teacher = teacher_rows(read_jsonl(cfg.data.pool_labels), pool)
        human = {k: row["meta"]["label"] for k, row in pool.items() if (row.get("meta") or {}).get("label")}
    test = load_gold(cfg.data.test, schema).examples
    sch = get_schema(schema)
    return Inputs(
        gold=read_jsonl(cfg.data.gold) if cfg.data.gold else [],
        teacher=teacher,
        pool_human=human,
        test_pairs=[(e.query, e.ad_text) for e in test],
        test_labels=np.array([sch.index(e.label) for e in test]),
        schema=schema,
    )


def training_rows(arm: Arm, inputs: Inputs, cfg: ChainConfig, seed: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if GOLD in arm.uses:
        pool_ids = {row["custom_id"] for row in inputs.teacher}
        n = arm.gold_pairs or cfg.gold_pairs
        gold = flip_labels(gold_subset(inputs.gold, pool_ids, n, seed, arm.gold_draw), arm.flip, seed)
        rows += [gold_as_result(r, arm.gold_targets) for r in gold]
    if TEACHER in arm.uses:
        teacher = inputs.teacher
        if arm.reviewed:
            teacher = reviewed_rows(teacher, inputs.pool_human, arm.reviewed, arm.review_order, seed)
        rows += teacher
    return rows


def run_arm(
    cfg: ChainConfig,
    arm: Arm,
    seed: int,
    inputs: Inputs,
    out: Path,
    log: Log,
    start: Path | None = None,
    keep_model: bool = False,
    recorded: bool = True,
) -> dict[str, Any]:
    """Train one student for ``arm`` and ``seed`` (from the student in ``start`` when given) and score it on test;
    ``eval.json`` caches the outcome and the record keeps a copy (read back unless ``recorded`` is False),
    ``out/model`` keeps the weights when ``keep_model``."""
    from relevance.metrics import evaluate_labels
    from relevance.schemas import get_schema
    from student.evaluate import predict_logits
    from student.train import TrainConfig, train

    record = recorded_run(cfg, arm.name, seed)
    if recorded and record is not None and record.exists() and not (out / "eval.json").exists():
        return json.loads(record.read_text())
    if (done := finished_run(out)) is not None:
        if record is not None and not record.exists():
            _keep(record, done)
        return done
    train_file = out / "train.jsonl"
    rows = training_rows(arm, inputs, cfg, seed)
    write_jsonl(rows, train_file)
    log(f"  {arm.name} seed {seed}: training on {len(rows):,} pairs" + (f" from {start}" if start is not None else ""))
    config = TrainConfig(**{**cfg.recipe, **arm.recipe, "seed": seed, "progress": False})
    if start is not None:
        config.base_model = str(start)
    started = time.perf_counter()
    trained = train(train_file, out / "model", config, source="teacher", dev_path=cfg.data.dev, schema=inputs.schema)
    train_s = time.perf_counter() - started
    pred = predict_logits(out / "model", inputs.test_pairs).argmax(axis=1)
    sch = get_schema(inputs.schema)
    metrics = evaluate_labels([sch.names[i] for i in inputs.test_labels], [sch.names[i] for i in pred], sch)
    training = trained.meta["training"]
    summary = {
        "arm": arm.name,
        "seed": seed,
        "train_pairs": trained.meta["data"]["train"]["n"],
        "skipped": trained.meta["data"]["skipped"],
        "train_seconds": round(train_s, 1),
        "steps": training["steps"],
        "selected_step": (training.get("selection") or {}).get("best_step"),
        "started_from": trained.meta["base_model"]["path"] if start is not None else None,
        **{k: metrics[k] for k in ("accuracy", "macro_f1", "cohen_kappa")},
        "predictions": pred.tolist(),
    }
    if arm.reviewed:
        # how many reviewed pairs the raters overturned: what review was worth before any training
        teacher = {row["custom_id"]: row["label"] for row in inputs.teacher}
        summary["review_overturned"] = sum(
            row["label"] != teacher[row["custom_id"]] for row in rows if row["custom_id"] in teacher
        )
    (out / "eval.json").write_text(json.dumps(summary))
    if record is not None:
        _keep(record, summary)
    # Metrics and predictions stay; 90 MB of weights per run do not, unless a later arm starts from them.
    if not keep_model:
        shutil.rmtree(out / "model", ignore_errors=True)
    train_file.unlink()
    f1, kappa = summary["macro_f1"], summary["cohen_kappa"]
    log(f"  {arm.name} seed {seed}: macro-F1 {f1:.3f}, kappa {kappa:.3f} ({train_s:.0f}s)")
    return summary


# -- references: what a team has without the experiment's students --------------------------------------------


def reference_predictions(cfg: ChainConfig, inputs: Inputs) -> dict[str, np.ndarray]:
    """Test predictions (schema indices; ``k`` = no label) of the zero-shot bi-encoder (cut points fitted on dev),
    the majority class of the gold file (of dev without one), and, when its test labels are given, the teacher."""
    from collections import Counter

    from relevance.schemas import get_schema
    from student.data import load_gold
    from student.evaluate import bi_encoder_cosines, cosine_labels

    sch = get_schema(inputs.schema)
    test = load_gold(cfg.data.test, sch.name).examples
    dev = load_gold(cfg.data.dev, sch.name).examples
    labels, _ = cosine_labels(bi_encoder_cosines(test), bi_encoder_cosines(dev), [e.label for e in dev], sch)
    # The majority class of the gold file, or of dev where the experiment has no gold.
    majority = Counter([row["meta"]["label"] for row in inputs.gold] or [e.label for e in dev]).most_common(1)[0][0]
    out = {
        "bi_encoder": np.array([sch.index(x) for x in labels]),
        "majority": np.full(len(test), sch.index(sch.normalize(majority) or majority)),
    }
    if cfg.data.test_labels:
        by_id = {line["custom_id"]: line for line in read_jsonl(cfg.data.test_labels)}
        missing = [e.custom_id for e in test if e.custom_id not in by_id]
        if missing:
            raise ValueError(f"data.test_labels has no teacher label for {len(missing)} test pairs, e.g. {missing[0]}")
        k = len(sch.names)
        out["teacher"] = np.array(
            [sch.index(by_id[e.custom_id]["label"]) if by_id[e.custom_id].get("label") else k for e in test]
        )
    return out


# -- statistics ----------------------------------------------------------------------------------------------


def bootstrap_metric(
    y: np.ndarray,
    runs: np.ndarray,
    reference: np.ndarray | None,
    k: int,
    reps: int,
    seed: int = 0,
    metric: Callable[[np.ndarray, np.ndarray, int], float] | None = None,
) -> dict[str, Any]:
    """Mean ``metric`` (macro-F1 by default; ``student.evaluate.kappa_indices`` for kappa) over ``runs`` (seeds x
    pairs of predictions), minus ``reference``'s when given (one run per seed, paired, or one run for all), with a
    95% percentile interval resampling test pairs and seeds together."""
    from student.evaluate import macro_f1_indices

    score = metric or macro_f1_indices
    runs = np.atleast_2d(runs)
    ref = None if reference is None else np.atleast_2d(reference)
    if ref is not None and ref.shape[0] not in (1, runs.shape[0]):
        raise ValueError(f"{ref.shape[0]} reference runs for {runs.shape[0]} runs: give one, or one per seed")

    def statistic(pairs: np.ndarray, seeds: np.ndarray) -> float:
        values = []
        for s in seeds:
            value = score(y[pairs], runs[s][pairs], k)
            if ref is not None:
                value -= score(y[pairs], ref[s if ref.shape[0] > 1 else 0][pairs], k)
            values.append(value)
        return float(np.mean(values))

    every_pair, every_seed = np.arange(y.size), np.arange(runs.shape[0])
    rng = np.random.default_rng(seed)
    draws = [
        statistic(rng.integers(0, y.size, y.size), rng.integers(0, runs.shape[0], runs.shape[0])) for _ in range(reps)
    ]
    low, high = np.quantile(draws, [0.025, 0.975])
    point = statistic(every_pair, every_seed)
    return {"mean": round(point, 4), "low": round(float(low), 4), "high": round(float(high), 4)}


def seed_differences(y: np.ndarray, runs: np.ndarray, reference: np.ndarray, k: int) -> list[float]:
    """Each seed's macro-F1 minus the reference's (its run of the same seed, or its only run) on the whole test."""
    from student.evaluate import macro_f1_indices

    ref = np.atleast_2d(reference)
    return [
        macro_f1_indices(y, run, k) - macro_f1_indices(y, ref[s if ref.shape[0] > 1 else 0], k)
        for s, run in enumerate(np.atleast_2d(runs))
    ]


def seeds_to_resolve(differences: Sequence[float], margin: float) -> int | None:
    """Seeds for a 95% half-width of ``margin`` on the mean difference, from the spread of ``differences`` over
    seeds (normal approximation); None from fewer than two seeds."""
    if len(differences) < 2:
        return None
    sd = float(np.std(differences, ddof=1))
    return max(2, math.ceil((1.96 * sd / margin) ** 2))


# -- the experiment ------------------------------------------------------------------------------------------


def run_chain(cfg: ChainConfig, out: Path, log: Log) -> dict[str, Any]:
    """Every arm at every seed (runs in ``out``, resuming), the references, and the summary."""
    from relevance.schemas import get_schema
    from student.evaluate import kappa_indices
    from student.train import TrainConfig

    check_files(cfg)
    out.mkdir(parents=True, exist_ok=True)
    inputs = load_inputs(cfg)
    sch = get_schema(inputs.schema)
    k = len(sch.names)
    log(
        f"gold {cfg.gold_pairs if inputs.gold else 0:,} pairs per seed; "
        f"teacher-labelled pool {len(inputs.teacher):,} pairs; "
        f"test {inputs.test_labels.size:,} pairs; seeds {list(cfg.seeds)}"
    )
    starts = {arm.init_from for arm in cfg.arms if arm.init_from}
    for arm in cfg.arms:
        log(
            f"{arm.name}: trains on {' + '.join(arm.uses)}"
            + (f", from {arm.init_from}'s student" if arm.init_from else "")
        )
    runs: dict[str, list[dict[str, Any]]] = {arm.name: [] for arm in cfg.arms}
    # Seed by seed, so that a stage-1 student's weights live only until its own seed's stage 2 has used them, and a
    # chain stopped early leaves whole seeds finished rather than whole arms.
    for seed in cfg.seeds:
        for arm in cfg.arms:
            run_dir = out / arm.name / f"seed{seed}"
            again = arm.name in starts and _start_missing(cfg, arm.name, seed, out)
            if again:  # a later arm needs its weights, which are gone: train it again
                shutil.rmtree(run_dir, ignore_errors=True)
            start = out / arm.init_from / f"seed{seed}" / "model" if arm.init_from else None
            run = run_arm(cfg, arm, seed, inputs, run_dir, log, start, arm.name in starts, recorded=not again)
            runs[arm.name].append(run)
        for name in starts:  # every arm that starts from these has finished this seed
            shutil.rmtree(out / name / f"seed{seed}" / "model", ignore_errors=True)
    references = reference_predictions(cfg, inputs)
    y = inputs.test_labels

    preds = {name: np.array([r["predictions"] for r in rs]) for name, rs in runs.items()}
    table: dict[str, Any] = {}
    for arm in cfg.arms:
        rs = runs[arm.name]
        batch = {**cfg.recipe, **arm.recipe}.get("batch_size", TrainConfig.batch_size)
        table[arm.name] = {
            "uses": list(arm.uses),
            "recipe": arm.recipe,
            "train_pairs": mean_std_cell([r["train_pairs"] for r in rs], "seeds", 1),
            # Optimizer steps x batch: what a capped run saw of a large pool.
            "pairs_seen": mean_std_cell([r["steps"] * batch for r in rs], "seeds", 1),
            "macro_f1": mean_std_cell([r["macro_f1"] for r in rs], "seeds", 4),
            "macro_f1_95": bootstrap_metric(y, preds[arm.name], None, k, cfg.bootstrap),
            "cohen_kappa": mean_std_cell([r["cohen_kappa"] for r in rs], "seeds", 4),
            "cohen_kappa_95": bootstrap_metric(y, preds[arm.name], None, k, cfg.bootstrap, metric=kappa_indices),
            "train_seconds": mean_std_cell([r["train_seconds"] for r in rs], "seeds", 1),
        }
        if arm.reviewed:
            table[arm.name]["review_overturned"] = mean_std_cell([r["review_overturned"] for r in rs], "seeds", 1)
    for name, pred in references.items():
        level = bootstrap_metric(y, pred, None, k, cfg.bootstrap)
        agreement = bootstrap_metric(y, pred, None, k, cfg.bootstrap, metric=kappa_indices)
        table[name] = {
            "macro_f1": level["mean"],
            "macro_f1_95": level,
            "cohen_kappa": agreement["mean"],
            "cohen_kappa_95": agreement,
        }
    comparisons = []
    for arm_name, ref in cfg.comparisons:
        ref_pred = preds.get(ref, references.get(ref))
        diff = bootstrap_metric(y, preds[arm_name], ref_pred, k, cfg.bootstrap)
        kappa_diff = bootstrap_metric(y, preds[arm_name], ref_pred, k, cfg.bootstrap, metric=kappa_indices)
        comparisons.append(
            {
                "arm": arm_name,
                "reference": ref,
                "macro_f1_difference": diff,
                "above_0": diff["low"] > 0,
                "kappa_difference": kappa_diff,
                "seeds_to_resolve_0.01": seeds_to_resolve(seed_differences(y, preds[arm_name], ref_pred, k), 0.01),
            }
        )
    summary = {
        "config": _jsonable(cfg),
        "test": {"path": cfg.data.test, "pairs": int(y.size)},
        "table": table,
        "comparisons": comparisons,
        "runs": {name: [_without_predictions(r) for r in rs] for name, rs in runs.items()},
    }
    return summary


def recorded_run(cfg: ChainConfig, arm: str, seed: int) -> Path | None:
    """Where the record keeps the outcome of ``arm`` at ``seed`` (None without a record)."""
    return Path(cfg.record_dir) / arm / f"seed{seed}.json" if cfg.record_dir else None


def _keep(record: Path, run: dict[str, Any]) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(run))


def _finished(cfg: ChainConfig, arm: str, seed: int, out: Path) -> bool:
    record = recorded_run(cfg, arm, seed)
    return (out / arm / f"seed{seed}" / "eval.json").exists() or (record is not None and record.exists())


def _start_missing(cfg: ChainConfig, name: str, seed: int, out: Path) -> bool:
    """Whether an unfinished arm still has to start from ``name``'s student at ``seed``, whose weights are gone."""
    waiting = any(a.init_from == name and not _finished(cfg, a.name, seed, out) for a in cfg.arms)
    return waiting and not (out / name / f"seed{seed}" / "model").exists()


def _without_predictions(run: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in run.items() if key != "predictions"}


def _jsonable(cfg: ChainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(cfg)))


def write_report(summary: dict[str, Any], md_path: Path, command: str) -> Path:
    """The Markdown report, with the plot (.png) and the summary (.json) beside it."""
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.with_suffix(".json").write_text(json.dumps({**summary, "command": command}, indent=2))
    png = plot(summary, md_path.with_suffix(".png"))
    md_path.write_text(render_markdown(summary, command, png.name))
    return md_path


def _f1_cell(row: dict[str, Any]) -> str:
    f1 = row["macro_f1"]
    ci = row["macro_f1_95"]
    point = format_mean_std(f1["mean"], f1["std"]) if isinstance(f1, dict) else f"{f1:.3f}"
    return f"{point} [{ci['low']:.3f}, {ci['high']:.3f}]"


def _verdict(difference: dict[str, float]) -> str:
    if difference["low"] > 0:
        return "above 0"
    if difference["high"] < 0:
        return "below 0"
    return "interval holds 0"


def _kappa_cell(row: dict[str, Any]) -> str:
    kappa = row["cohen_kappa"]
    point = format_mean_std(kappa["mean"], kappa["std"]) if isinstance(kappa, dict) else f"{kappa:.3f}"
    ci = row.get("cohen_kappa_95")
    return point if ci is None else f"{point} [{ci['low']:.3f}, {ci['high']:.3f}]"


def render_markdown(summary: dict[str, Any], command: str, png: str) -> str:
    cfg = summary["config"]
    test = summary["test"]
    paired = "seed s trains with the same seed in every arm"
    if any("gold" in arm["uses"] for arm in cfg["arms"]):
        paired = "seed s draws the same gold pairs and trains with the same seed in every arm"
    lines = [
        f"# {cfg.get('title') or ChainConfig.title}",
        "",
        f"Command: `{command}`",
        "",
        f"Test: `{test['path']}`, {test['pairs']:,} pairs. Seeds {cfg['seeds']} ({paired}). Students: macro-F1 "
        "and kappa mean ± std over seeds, then the 95% interval when test pairs and seeds are resampled together "
        f"({cfg['bootstrap']:,} draws).",
        "",
        "| trains on | pairs | pairs seen | macro-F1 | kappa | train s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in summary["table"].items():
        if "uses" in row:
            seen = row.get("pairs_seen", {}).get("mean")
            lines.append(
                f"| {name} | {row['train_pairs']['mean']:,.0f} | {'' if seen is None else f'{seen:,.0f}'} "
                f"| {_f1_cell(row)} | {_kappa_cell(row)} | {row['train_seconds']['mean']:.0f} |"
            )
        else:
            lines.append(f"| *{name}* (reference) | | | {_f1_cell(row)} | {_kappa_cell(row)} | |")
    if summary["comparisons"]:
        lines += [
            "",
            "| difference | macro-F1: mean [95% interval] | verdict | seeds for ± 0.01 | kappa: mean [95% interval] |",
            "| --- | --- | --- | --- | --- |",
        ]
        for c in summary["comparisons"]:
            d = c["macro_f1_difference"]
            needed = c["seeds_to_resolve_0.01"]
            kd = c.get("kappa_difference")
            kappa = "" if kd is None else format_interval(kd["mean"], kd["low"], kd["high"])
            lines.append(
                f"| {c['arm']} - {c['reference']} | {format_interval(d['mean'], d['low'], d['high'])} "
                f"| {_verdict(d)} | {'n/a' if needed is None else f'{needed:,}'} | {kappa} |"
            )
        lines += [
            "",
            "Seeds for ± 0.01: how many paired seeds would put the 95% half-width of the mean difference at 0.01 "
            "on this test set, from the spread of the per-seed differences above (seed variance only).",
        ]
    lines += ["", f"![macro-F1 by arm]({png})", "", "Arms:", ""]
    for arm in cfg["arms"]:
        gold = f" ({arm['gold_pairs'] or cfg['gold_pairs']:,} per seed)" if "gold" in arm["uses"] else ""
        if arm.get("gold_draw", "queries") != "queries":
            gold += ", drawn as single pairs" + (" evenly over labels" if arm["gold_draw"] == "balanced" else "")
        if arm.get("flip"):
            gold += f", {arm['flip']:.0%} of its Exact/Substitute labels swapped"
        if arm.get("gold_targets") == "graded":
            gold += ", soft targets from the raters' mean (label shares of a normal, sd 0.3, around it)"
        if arm.get("reviewed"):
            how = "the review queue's first (most uncertain)" if arm["review_order"] == "uncertainty" else "random"
            gold += f", {arm['reviewed']:,} {how} pool pairs reviewed: the raters' label replaces the teacher's"
            overturned = summary["table"].get(arm["name"], {}).get("review_overturned")
            if overturned:
                gold += f" (the raters overturned {overturned['mean']:,.0f} of them, mean over seeds)"
        if arm.get("init_from"):
            gold += f", starting from the student `{arm['init_from']}` trained at the same seed"
        extra = "".join(f", {key}: {value}" for key, value in arm["recipe"].items())
        lines.append(f"- `{arm['name']}`: {' + '.join(arm['uses'])}{gold}{extra}")
    recipe = ", ".join(f"{key}: {value}" for key, value in cfg["recipe"].items()) or "the TrainConfig defaults"
    lines += ["", f"Recipe for every arm (student.train.TrainConfig fields): {recipe}.", ""]
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["table"]
    names = list(rows)
    means = [r["macro_f1"]["mean"] if isinstance(r["macro_f1"], dict) else r["macro_f1"] for r in rows.values()]
    lows = [m - r["macro_f1_95"]["low"] for m, r in zip(means, rows.values(), strict=True)]
    highs = [r["macro_f1_95"]["high"] - m for m, r in zip(means, rows.values(), strict=True)]
    colors = ["tab:blue" if "uses" in r else "tab:gray" for r in rows.values()]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names)), 4.2), dpi=120)
    ax.bar(range(len(names)), means, yerr=[lows, highs], color=colors, capsize=4)
    for i, m in enumerate(means):
        ax.text(i, m + highs[i] + 0.005, f"{m:.3f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=25, ha="right")
    ax.set_ylabel("macro-F1 on test (95% interval: pairs and seeds)")
    ax.set_title(f"Students (blue) and references (gray), {summary['test']['pairs']:,} test pairs", fontsize=10)
    ax.set_ylim(0, max(m + h for m, h in zip(means, highs, strict=True)) + 0.05)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
