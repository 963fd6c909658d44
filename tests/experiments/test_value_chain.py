"""The value chain: its statistics, how arms draw their data, its config checks, and a tiny run end to end."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from experiments.value_chain import (
    Arm,
    ChainConfig,
    ChainData,
    bootstrap_metric,
    flip_labels,
    gold_as_result,
    gold_subset,
    load_chain_config,
    reviewed_rows,
    run_chain,
    seed_differences,
    seeds_to_resolve,
    write_report,
)
from relevance.importers.homedepot import homedepot_label_shares
from relevance.metrics import cohen_kappa, macro_f1
from relevance.pairs import Pair
from relevance.schemas import get_schema
from student.data import query_group
from student.evaluate import kappa_indices, macro_f1_indices

ESCI = get_schema("esci")


def test_metrics_of_indices_match_the_metrics_module_with_missing_labels() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    pred = np.where(rng.random(300) < 0.5, y, rng.integers(0, 5, 300))  # 4 = no label
    names = [*ESCI.names, None]
    truth, said = [ESCI.names[i] for i in y], [names[i] for i in pred]
    assert macro_f1_indices(y, pred, 4) == pytest.approx(macro_f1(truth, said, ESCI))
    assert kappa_indices(y, pred, 4) == pytest.approx(cohen_kappa(truth, said, ESCI))
    assert 0.3 < kappa_indices(y, pred, 4) < 0.7  # half the labels copied: well above chance, well below 1


def test_bootstrap_intervals_pair_the_arms_and_resample_seeds() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 400)
    noisy = np.array([np.where(rng.random(400) < 0.5, y, rng.integers(0, 4, 400)) for _ in range(3)])
    chance = rng.integers(0, 4, (3, 400))

    same = bootstrap_metric(y, noisy, noisy, 4, reps=200)
    assert same == {"mean": 0.0, "low": 0.0, "high": 0.0}

    better = bootstrap_metric(y, noisy, chance, 4, reps=200)
    assert better["low"] > 0.2 and better["low"] <= better["mean"] <= better["high"]

    # One reference run (a deterministic baseline) is compared with every seed.
    against_one = bootstrap_metric(y, noisy, chance[0], 4, reps=200)
    assert against_one["low"] > 0.2

    level = bootstrap_metric(y, noisy, None, 4, reps=200)
    assert level["low"] < level["mean"] < level["high"] < 1

    with pytest.raises(ValueError, match="2 reference runs for 3 runs"):
        bootstrap_metric(y, noisy, chance[:2], 4, reps=10)


def test_seeds_needed_to_resolve_a_difference_follow_its_spread_over_seeds() -> None:
    assert seeds_to_resolve([0.01, 0.03], 0.01) == 8  # sd 0.0141: (1.96 * 0.0141 / 0.01) ** 2 = 7.7
    assert seeds_to_resolve([0.02, 0.02, 0.02], 0.01) == 2
    assert seeds_to_resolve([0.02], 0.01) is None
    y = np.array([0, 1, 2, 3] * 10)
    runs = np.array([y, np.where(np.arange(40) < 20, y, 3 - y)])
    assert seed_differences(y, runs, runs[0], 4) == [0.0, pytest.approx(macro_f1_indices(y, runs[1], 4) - 1.0)]


def test_gold_subsets_take_whole_queries_outside_the_pool(student_bench: Path) -> None:
    rows = [json.loads(line) for line in (student_bench / "teacher_train.jsonl").read_text().splitlines()]
    pool = {r["custom_id"] for r in rows[: len(rows) // 2]}
    picked = gold_subset(rows, pool, 60, seed=0)
    assert len(picked) == 60 and not pool & {r["custom_id"] for r in picked}
    groups = [query_group(Pair.model_validate(r)) for r in picked]
    finished = [g for i, g in enumerate(groups) if i + 1 < len(groups) and groups[i + 1] != g]
    assert len(finished) == len(set(finished))  # a query's pairs come together
    assert gold_subset(rows, pool, 60, seed=1) != picked
    with pytest.raises(ValueError, match="asked for"):
        gold_subset(rows, pool, len(rows), seed=0)


def test_gold_subsets_by_rows_or_evenly_over_labels() -> None:
    # 60 queries of 5 pairs, one label in ten Irrelevant: the real files' skew, in small
    labels = ["Irrelevant" if i % 10 == 0 else "Exact" if i % 10 < 7 else "Substitute" for i in range(300)]
    rows = [
        {"custom_id": f"p{i}", "query": f"query {i // 5}", "ad": {"title": f"ad {i}"}, "meta": {"label": label}}
        for i, label in enumerate(labels)
    ]
    pool = {f"p{i}" for i in range(0, 300, 3)}
    outside = [r for r in rows if r["custom_id"] not in pool]
    natural = Counter(r["meta"]["label"] for r in outside)
    n = 120  # more than three times the rarest label's rows (20): an even split takes it whole

    def queries(picked: list[dict]) -> int:
        return len({query_group(Pair.model_validate(r)) for r in picked})

    by_rows = gold_subset(rows, pool, n, seed=0, draw="rows")
    assert len({r["custom_id"] for r in by_rows}) == n and not pool & {r["custom_id"] for r in by_rows}
    assert gold_subset(rows, pool, n, seed=0, draw="rows") == by_rows
    assert gold_subset(rows, pool, n, seed=1, draw="rows") != by_rows
    assert queries(by_rows) > queries(gold_subset(rows, pool, n, seed=0))  # single pairs reach more queries

    even = gold_subset(rows, pool, n, seed=0, draw="balanced")
    counts = Counter(r["meta"]["label"] for r in even)
    assert len(even) == n and not pool & {r["custom_id"] for r in even}
    assert counts["Irrelevant"] == natural["Irrelevant"] == 20  # the rarest label taken whole
    assert counts["Exact"] == counts["Substitute"] == 50  # the rest split evenly
    with pytest.raises(ValueError, match="outside the pool"):
        gold_subset(rows, pool, len(outside) + 1, seed=0, draw="rows")


def test_label_noise_swaps_a_share_of_exact_and_substitute_nested_across_levels() -> None:
    labels = ["Exact"] * 60 + ["Substitute"] * 40 + ["Complement"] * 30 + ["Irrelevant"] * 20
    rows = [{"custom_id": f"p{i}", "meta": {"label": label}} for i, label in enumerate(labels)]

    def swapped(share: float, seed: int = 0) -> set[str]:
        noisy = flip_labels(rows, share, seed)
        assert [r["custom_id"] for r in noisy] == [r["custom_id"] for r in rows]
        changed = {a["custom_id"] for a, b in zip(rows, noisy, strict=True) if a["meta"] != b["meta"]}
        for a, b in zip(rows, noisy, strict=True):
            if a["custom_id"] in changed:
                assert {a["meta"]["label"], b["meta"]["label"]} == {"Exact", "Substitute"}
        return changed

    five, ten, twenty = swapped(0.05), swapped(0.10), swapped(0.20)
    assert (len(five), len(ten), len(twenty)) == (5, 10, 20)  # of the 100 Exact or Substitute pairs
    assert five < ten < twenty  # a level swaps what the lower ones swapped, and more
    assert swapped(0.10, seed=1) != ten
    assert not swapped(0.0)
    assert rows[0]["meta"]["label"] == "Exact"  # the input is left as it was


def test_graded_gold_carries_the_label_shares_of_the_raters_mean() -> None:
    row = {"custom_id": "a", "query": "q", "ad": {"title": "t"}, "meta": {"label": "Substitute", "score": 2.33}}
    plain = gold_as_result(row)
    assert plain["label"] == "Substitute" and "distribution" not in plain
    shares = gold_as_result(row, "graded")["distribution"]
    assert shares == homedepot_label_shares(2.33)
    with pytest.raises(ValueError, match=r"no meta\.score"):
        gold_as_result({**row, "meta": {"label": "Exact"}}, "graded")


def test_review_puts_the_raters_label_on_the_pairs_the_queue_shows_first() -> None:
    from relevance.votes import uncertainty

    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        p = rng.dirichlet([1, 1, 1, 1])
        dist = dict(zip(("Exact", "Substitute", "Complement", "Irrelevant"), map(float, p), strict=True))
        rows.append(
            {"custom_id": f"c{i}", "label": max(dist, key=dist.get), "confidence": max(p), "distribution": dist}
        )
    human = {r["custom_id"]: "Irrelevant" for r in rows}
    out = reviewed_rows(rows, human, 10, "uncertainty", seed=0)
    changed = [o for o, r in zip(out, rows, strict=True) if o is not r]
    assert len(changed) == 10 and all(o["label"] == "Irrelevant" and o["distribution"] is None for o in changed)
    cut = sorted((uncertainty(r["label"], r["distribution"]) for r in rows), reverse=True)[9]
    assert all(uncertainty(r["label"], r["distribution"]) >= cut for r in rows if r["custom_id"] in
               {o["custom_id"] for o in changed})  # fmt: skip
    a, b = reviewed_rows(rows, human, 10, "random", 1), reviewed_rows(rows, human, 10, "random", 2)
    assert [x["label"] for x in a] != [x["label"] for x in b]
    assert reviewed_rows(rows, human, 10, "random", 1) == a
    with pytest.raises(ValueError, match=r"no meta\.label"):
        reviewed_rows(rows, {}, 1, "uncertainty", 0)
    with pytest.raises(ValueError, match="the pool has 40"):
        reviewed_rows(rows, human, 41, "uncertainty", 0)


def test_configs_name_what_is_wrong(tmp_path: Path) -> None:
    data = ChainData(gold="g", pool="p", pool_labels="l", dev="d", test="t")
    arms = (Arm("gold", ("gold",)), Arm("gold", ("teachers",)))
    cfg = ChainConfig(data=data, arms=arms, comparisons=(("gold", "teacher"), ("nope", "gold")))
    with pytest.raises(ValueError, match="appears twice") as err:
        cfg.validate()
    message = str(err.value)
    assert "arm 'gold' appears twice" in message
    assert "uses must be gold and/or teacher, got ['teachers']" in message
    assert "'teacher' is neither an arm" in message  # no test_labels: the teacher is no reference
    assert "'nope' is not an arm" in message

    lean = ChainData(dev="d", test="t")
    arms = (
        Arm("g", ("gold",)),
        Arm("p", ("teacher",)),
        Arm("noisy", ("teacher",), flip=0.1),
        Arm("x", ("gold",), flip=2),
    )
    with pytest.raises(ValueError, match="uses gold") as err:
        ChainConfig(data=lean, arms=arms).validate()
    message = str(err.value)
    assert "arm 'g' uses gold: give data.gold" in message
    assert "arm 'p' uses the teacher: give data.pool and data.pool_labels" in message
    assert "arm 'noisy': flip swaps gold labels, but the arm does not use gold" in message
    assert "arm 'x': flip must lie in [0, 1], got 2" in message

    arms = (
        Arm("odd", ("gold",), gold_targets="fuzzy"),
        Arm("mixed", ("gold",), flip=0.1, gold_targets="graded"),
        Arm("early", ("gold",), init_from="late"),
        Arm("late", ("gold",), init_from="late"),
        Arm("skewed", ("gold",), gold_draw="stratified"),
    )
    with pytest.raises(ValueError, match="gold_targets") as err:
        ChainConfig(data=data, arms=arms).validate()
    assert "arm 'odd': gold_targets must be one of ['label', 'graded']" in str(err.value)
    assert "arm 'mixed': graded gold targets need an arm that uses gold and flips none" in str(err.value)
    assert "arm 'early': init_from must name an arm listed before it, got 'late'" in str(err.value)
    assert "arm 'late': init_from must name an arm listed before it, got 'late'" in str(err.value)
    assert "arm 'skewed': gold_draw must be one of ['queries', 'rows', 'balanced'], got 'stratified'" in str(err.value)

    path = tmp_path / "chain.yaml"
    path.write_text("data: {gold: g, pool: p, pool_labels: l, dev: d, test: t}\narms: []\nseeds: []\n")
    with pytest.raises(ValueError, match="seeds: give at least one"):
        load_chain_config(path)


def _teacher_labels(rows: list[dict], path: Path, flip: float, seed: int) -> None:
    """Result lines that agree with gold except for a ``flip`` share of random labels."""
    rng = random.Random(seed)
    lines = []
    for r in rows:
        label = r["meta"]["label"] if rng.random() > flip else rng.choice(ESCI.names)
        dist = {name: (0.7 if name == label else 0.1) for name in ESCI.names}
        lines.append({"custom_id": r["custom_id"], "status": "completed", "label": label, "distribution": dist})
    lines[0] = {"custom_id": rows[0]["custom_id"], "status": "failed", "label": None, "error": "no label"}
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_a_tiny_value_chain_runs_reports_and_resumes(student_bench: Path, tmp_path: Path) -> None:
    train = student_bench / "teacher_train.jsonl"
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    pool = rows[: len(rows) // 2]
    _teacher_labels(pool, tmp_path / "pool_labels.jsonl", flip=0.3, seed=0)
    test = student_bench / "gold_test.jsonl"
    _teacher_labels([json.loads(x) for x in test.read_text().splitlines()], tmp_path / "test_labels.jsonl", 0.3, 1)
    cfg = ChainConfig(
        data=ChainData(
            gold=str(train),
            pool=str(train),
            pool_labels=str(tmp_path / "pool_labels.jsonl"),
            dev=str(student_bench / "dev.jsonl"),
            test=str(test),
            test_labels=str(tmp_path / "test_labels.jsonl"),
        ),
        arms=(
            Arm("gold-40", ("gold",)),
            Arm("pool", ("teacher",), {"min_confidence": 0.5}),
            Arm("gold+pool", ("gold", "teacher")),
            Arm("pool>gold", ("gold",), init_from="pool"),
        ),
        gold_pairs=40,
        seeds=(0, 1),
        recipe={"max_steps": 2, "batch_size": 8, "max_length": 32, "select_best": False},
        bootstrap=50,
        comparisons=(("pool", "gold-40"), ("gold+pool", "teacher"), ("gold-40", "bi_encoder")),
        record_dir=str(tmp_path / "record"),
    )
    cfg.validate()
    kept_for_second_stage = []

    def log(message: str) -> None:
        if message.startswith("  pool>gold seed") and "training on" in message:
            kept = [(tmp_path / "work" / "pool" / f"seed{s}" / "model" / "model.safetensors").exists() for s in (0, 1)]
            kept_for_second_stage.append(tuple(kept))

    summary = run_chain(cfg, tmp_path / "work", log)

    table = summary["table"]
    assert list(table) == ["gold-40", "pool", "gold+pool", "pool>gold", "bi_encoder", "majority", "teacher"]
    assert table["gold-40"]["train_pairs"]["mean"] <= 40  # dev queries are dropped from training
    assert table["pool"]["train_pairs"]["mean"] == len(pool) - 1  # the failed line carries no label
    assert table["gold+pool"]["train_pairs"]["mean"] > table["pool"]["train_pairs"]["mean"]
    assert table["teacher"]["macro_f1"] > table["majority"]["macro_f1"]  # 70% of its labels are gold
    assert [c["reference"] for c in summary["comparisons"]] == ["gold-40", "teacher", "bi_encoder"]
    assert all(c["seeds_to_resolve_0.01"] is None or c["seeds_to_resolve_0.01"] >= 2 for c in summary["comparisons"])
    assert all(len(runs) == 2 and runs[0]["steps"] == 2 for runs in summary["runs"].values())
    assert not list((tmp_path / "work").rglob("*.safetensors"))  # metrics kept, weights not

    # The second stage trained from the first stage's weights, kept until then and removed after; seed by seed,
    # so one seed's first-stage weights are on disk at a time.
    for seed, run in enumerate(summary["runs"]["pool>gold"]):
        assert run["started_from"] == str(tmp_path / "work" / "pool" / f"seed{seed}" / "model")
    assert kept_for_second_stage == [(True, False), (False, True)]

    md = write_report(summary, tmp_path / "chain.md", "agpo student value-chain")
    text = md.read_text()
    assert "| pool - gold-40 |" in text and "*teacher* (reference)" in text and "seeds for ± 0.01" in text
    assert "kappa: mean [95% interval]" in text
    for row in table.values():  # kappa with its interval, for arms and references alike
        assert row["cohen_kappa_95"]["low"] <= row["cohen_kappa_95"]["high"]
    assert all(c["kappa_difference"]["low"] <= c["kappa_difference"]["high"] for c in summary["comparisons"])
    assert "`pool`: teacher, min_confidence: 0.5" in text and "max_steps: 2" in text
    assert table["pool"]["pairs_seen"]["mean"] == 2 * 8  # steps x batch
    assert (tmp_path / "chain.png").stat().st_size > 0
    assert json.loads((tmp_path / "chain.json").read_text())["command"] == "agpo student value-chain"

    # A second run reads the finished runs instead of training again.
    eval_json = tmp_path / "work" / "pool" / "seed1" / "eval.json"
    eval_json.write_text(json.dumps({**json.loads(eval_json.read_text()), "macro_f1": 0.123}))
    again = run_chain(cfg, tmp_path / "work", lambda _: None)
    assert again["runs"]["pool"][1]["macro_f1"] == 0.123

    # A second stage left unfinished needs its first stage's weights, which are gone: that stage trains again.
    (tmp_path / "work" / "pool>gold" / "seed1" / "eval.json").unlink()
    (tmp_path / "record" / "pool>gold" / "seed1.json").unlink()
    resumed = run_chain(cfg, tmp_path / "work", lambda _: None)
    assert (
        resumed["runs"]["pool"][1]["macro_f1"] != 0.123
        and resumed["runs"]["pool"][0]["macro_f1"] == again["runs"]["pool"][0]["macro_f1"]
    )
    assert not list((tmp_path / "work").rglob("*.safetensors"))

    # The record keeps every finished run: a checkout without the work dir reads it and trains nothing.
    elsewhere = run_chain(cfg, tmp_path / "elsewhere", lambda _: None)
    assert elsewhere["runs"] == resumed["runs"]
    assert not (tmp_path / "elsewhere" / "pool").exists()
