"""The Chinese synthetic benchmark: the same world and label rules as the English one, JD-style surface text."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from relevance.parsing import parse_label
from relevance.synthetic import zh
from relevance.synthetic.generator import BenchmarkConfig, generate, generate_benchmark
from relevance.synthetic.rules import esci_label
from relevance.tasks import builtin_tasks, check_task

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def bench() -> dict[str, list[dict]]:
    return generate(
        BenchmarkConfig(seed=5, sizes={"teacher_train": 3000, "dev": 300, "gold_test": 300}, lang="zh")
    ).splits


def test_same_seed_same_bytes_and_english_is_another_stream(tmp_path: Path) -> None:
    sizes = {"teacher_train": 200, "dev": 50, "gold_test": 50, "pool": 50}
    a = generate_benchmark(tmp_path / "a", 1, lang="zh", **sizes)
    b = generate_benchmark(tmp_path / "b", 1, lang="zh", **sizes)
    en = generate_benchmark(tmp_path / "en", 1, **sizes)
    assert a["sha256"] == b["sha256"] and a["lang"] == "zh" and en["lang"] == "en"
    assert a["sha256"]["gold_test.jsonl"] != en["sha256"]["gold_test.jsonl"]
    with pytest.raises(ValueError, match="lang 'fr'"):
        BenchmarkConfig(lang="fr")


def test_every_pair_is_chinese_and_labelled_by_the_rules(bench: dict[str, list[dict]]) -> None:
    rows = [r for split in bench.values() for r in split]
    assert all(CJK.search(r["query"]) and CJK.search(r["ad"]["title"]) for r in rows)
    for r in rows:
        meta = r["meta"]
        assert meta["label"] == esci_label(meta["constraints"], meta["ad_facts"])
    labels = Counter(r["meta"]["label"] for r in rows)
    assert set(labels) == {"Exact", "Substitute", "Complement", "Irrelevant"}
    assert min(labels.values()) / len(rows) > 0.1


def test_queries_read_like_chinese_search(bench: dict[str, list[dict]]) -> None:
    rows = [r for split in bench.values() for r in split]
    queries = {r["query"] for r in rows}
    joined = " ".join(queries)
    # Units as shoppers type them, filler, and words run together without spaces.
    for form in ("寸", "码", "g", "w"):
        assert form in joined, form
    assert any(f in joined for f in ("正品", "包邮", "新款", "旗舰店"))
    assert sum(" " not in q for q in queries) / len(queries) > 0.25
    # Hard queries carry homophone typos: a character no query noun of its category has.
    typos = 0
    for r in rows:
        if r["meta"]["difficulty"] != "hard":
            continue
        nouns = zh._CATS[r["meta"]["constraints"]["category"]][1]
        typos += not any(noun in r["query"].lower() for noun in nouns)
    assert typos > 0


def test_the_gold_trace_is_chinese_and_ends_with_a_label_the_zh_task_reads(bench: dict[str, list[dict]]) -> None:
    schema = check_task(builtin_tasks()["esci-zh"], 1).schema
    for r in bench["gold_test"][:200]:
        trace = r["meta"]["reasoning"]
        assert trace.startswith("搜索词要：")
        assert parse_label(trace, schema) == r["meta"]["label"]


def test_the_same_capacity_in_another_unit_is_still_exact(bench: dict[str, list[dict]]) -> None:
    """Hard Exact pairs may write a queried capacity in another unit (1t in the query, 1000GB in the ad)."""
    assert zh.query_forms("capacity", "1 TB")[:2] == ["1t", "1tb"] and "1000g" in zh.query_forms("capacity", "1 TB")
    assert "1000GB" in zh.ad_forms("capacity", "1 TB")
    exact = [r for r in bench["teacher_train"] if r["meta"]["label"] == "Exact"]
    assert exact and all(json.dumps(r["ad"], ensure_ascii=False) for r in exact)
