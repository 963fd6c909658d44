"""The synthetic benchmark: determinism, label rules, evidence in the ad, splits, balance and difficulty."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from relevance.pairs import Pair
from relevance.parsing import parse_label
from relevance.synthetic import SPLITS, BenchmarkConfig, generate, generate_benchmark
from relevance.synthetic.attributes import KINDS
from relevance.synthetic.catalogue import BRANDS, CATEGORIES, COMPLEMENTS
from relevance.synthetic.generator import _misspell, _near_model

SIZES = {"teacher_train": 3000, "dev": 400, "gold_test": 1000, "pool": 400}


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    generate_benchmark(out, seed=7, **SIZES)
    return out


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def splits(bench_dir: Path) -> dict[str, list[dict]]:
    return {s: _read(bench_dir / f"{s}.jsonl") for s in SPLITS}


@pytest.fixture(scope="module")
def labelled(splits: dict[str, list[dict]]) -> list[dict]:
    return [r for s in SPLITS if s != "pool" for r in splits[s]]


def test_catalogue_size_and_complements() -> None:
    assert len(CATEGORIES) >= 20
    assert len(BRANDS) >= 100 and len(set(BRANDS)) == len(BRANDS)
    assert all(len(c.brands) >= 4 for c in CATEGORIES.values())
    for a, comps in COMPLEMENTS.items():
        for b in comps:
            assert a in COMPLEMENTS[b], (a, b)  # symmetric
    for a, b in [
        ("smartphone", "phone_case"),
        ("laptop", "laptop_bag"),
        ("printer", "ink_cartridge"),
        ("camera", "memory_card"),
    ]:
        assert b in COMPLEMENTS[a]
    kinds = {k for c in CATEGORIES.values() for k in c.attributes}
    assert {"colour", "size", "material", "gender", "capacity"} <= kinds
    assert any(c.models for c in CATEGORIES.values())


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    small = {"teacher_train": 300, "dev": 50, "gold_test": 50, "pool": 50}
    a = generate_benchmark(tmp_path / "a", seed=3, **small)
    b = generate_benchmark(tmp_path / "b", seed=3, **small)
    c = generate_benchmark(tmp_path / "c", seed=4, **small)
    for split in SPLITS:
        name = f"{split}.jsonl"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    assert a["sha256"] == b["sha256"] != c["sha256"]


def test_determinism_does_not_depend_on_hash_randomisation(tmp_path: Path) -> None:
    code = (
        "import sys; from relevance.synthetic import generate_benchmark; "
        "m = generate_benchmark(sys.argv[1], seed=5, teacher_train=200, dev=20, gold_test=20, pool=20); "
        "print(m['sha256']['teacher_train.jsonl'])"
    )
    root = Path(__file__).resolve().parents[2]
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
        out = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / hash_seed)], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_sizes_manifest_and_files(bench_dir: Path, splits: dict[str, list[dict]]) -> None:
    manifest = json.loads((bench_dir / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["generator_version"]
    for split, n in SIZES.items():
        assert len(splits[split]) == n
        counts = manifest["counts"][split]
        assert counts["pairs"] == n
        assert sum(counts["labels"].values()) == n == sum(counts["difficulty"].values())
        data = (bench_dir / f"{split}.jsonl").read_bytes()
        assert manifest["sha256"][f"{split}.jsonl"] == hashlib.sha256(data).hexdigest()
    gold = Counter(r["meta"]["label"] for r in splits["gold_test"])
    assert dict(gold) == {k: v for k, v in manifest["counts"]["gold_test"]["labels"].items() if v}


def test_every_line_is_a_valid_pair(splits: dict[str, list[dict]]) -> None:
    ids = set()
    for records in splits.values():
        for record in records:
            pair = Pair.model_validate(record)
            ids.add(pair.custom_id)
    assert len(ids) == sum(SIZES.values())


def _recheck(constraints: dict, facts: dict) -> str:
    """An independent statement of the labelling rule, on the stored structured fields."""
    if facts["category"] != constraints["category"]:
        return "Complement" if facts["category"] in COMPLEMENTS[constraints["category"]] else "Irrelevant"
    ok = all(constraints[k] is None or constraints[k] == facts[k] for k in ("brand", "model"))
    ok = ok and all(facts["attributes"][k] == v for k, v in constraints["attributes"].items())
    return "Exact" if ok else "Substitute"


def test_labels_follow_the_rules(labelled: list[dict]) -> None:
    for record in labelled:
        meta = record["meta"]
        assert meta["label"] == _recheck(meta["constraints"], meta["ad_facts"]), record
        assert set(meta["ad_facts"]["attributes"]) == set(CATEGORIES[meta["ad_facts"]["category"]].attributes)


def test_reasoning_ends_with_a_parseable_label_line(labelled: list[dict]) -> None:
    for record in labelled:
        reasoning = record["meta"]["reasoning"]
        assert reasoning.splitlines()[-1] == f"Label: {record['meta']['label']}"
        assert parse_label(reasoning) == record["meta"]["label"]
        assert reasoning.isascii() and len(reasoning.split()) < 80


def test_the_ad_shows_the_evidence(labelled: list[dict]) -> None:
    for record in labelled:
        meta, ad = record["meta"], record["ad"]
        facts, constraints = meta["ad_facts"], meta["constraints"]
        assert ad["title"].startswith(facts["brand"])
        assert ad["category"] == CATEGORIES[facts["category"]].path
        if facts["model"]:
            assert facts["model"] in ad["title"]
        if facts["category"] != constraints["category"]:
            continue
        text = " | ".join([ad["title"], ad.get("description", ""), *ad.get("attributes", {}).values()]).lower()
        for kind in constraints["attributes"]:
            forms = KINDS[kind].ad_forms(facts["attributes"][kind])
            assert any(form.lower() in text for form in forms), (kind, record)


def test_splits_share_no_query(splits: dict[str, list[dict]]) -> None:
    owner: dict[str, str] = {}
    for split, records in splits.items():
        for record in records:
            for key in (record["query"], record["meta"]["query_id"]):
                assert owner.setdefault(key, split) == split, key


def test_pool_carries_no_labels(splits: dict[str, list[dict]]) -> None:
    for record in splits["pool"]:
        assert set(record["meta"]) == {"query_id", "split"}


def test_classes_are_balanced(splits: dict[str, list[dict]]) -> None:
    for split in ("teacher_train", "gold_test"):
        counts = Counter(r["meta"]["label"] for r in splits[split])
        shares = {k: v / len(splits[split]) for k, v in counts.items()}
        assert set(shares) == {"Exact", "Substitute", "Complement", "Irrelevant"}
        assert min(shares.values()) >= 0.1, shares
        assert max(shares.values()) <= 0.45, shares


def test_difficulty_tiers(splits: dict[str, list[dict]]) -> None:
    gold = splits["gold_test"]
    tiers = Counter(r["meta"]["difficulty"] for r in gold)
    assert set(tiers) == {"easy", "medium", "hard"} and tiers["hard"] >= 0.2 * len(gold)
    hard = [r["meta"] for r in gold if r["meta"]["difficulty"] == "hard"]
    easy = [r["meta"] for r in gold if r["meta"]["difficulty"] == "easy"]
    # Hard substitutes fail exactly one of several constraints.
    for meta in hard:
        if meta["label"] == "Substitute":
            c, f = meta["constraints"], meta["ad_facts"]
            failed = [k for k in ("brand", "model") if c[k] is not None and c[k] != f[k]]
            failed += [k for k, v in c["attributes"].items() if f["attributes"][k] != v]
            assert len(failed) == 1, meta
            assert (c["brand"] is not None) + (c["model"] is not None) + len(c["attributes"]) >= 2
    # Easy irrelevant ads come from another family of products; hard ones may not.
    for meta in easy:
        if meta["label"] == "Irrelevant":
            q, a = CATEGORIES[meta["constraints"]["category"]], CATEGORIES[meta["ad_facts"]["category"]]
            assert q.family != a.family
    # Hard Exact pairs include unit or spelling variants the reasoning has to resolve.
    assert any(" = " in m["reasoning"] for m in hard if m["label"] == "Exact")
    # And the hard queries carry noise: filler words or misspelt brands.
    texts = {r["query"] for r in gold if r["meta"]["difficulty"] == "hard"}
    brands = {b.lower() for b in BRANDS}
    misspelt = [t for t in texts if not any(w in brands for w in t.split())]
    assert misspelt


def test_intents_cover_the_query_kinds(labelled: list[dict]) -> None:
    intents = Counter(r["meta"]["intent"] for r in labelled)
    assert {"category", "brand_category", "attribute_category", "brand_attribute", "model"} <= set(intents)


def test_noise_helpers() -> None:
    import random

    rng = random.Random(0)
    for word in ("novia", "smartphone", "controller"):
        typo = _misspell(rng, word)
        assert typo != word and abs(len(typo) - len(word)) <= 1
    assert _misspell(rng, "tv") == "tv"
    for model in ("NX-450", "AB-1212", "KZ-90"):
        near = _near_model(rng, model)
        assert near != model and near.split("-")[0] == model.split("-")[0]


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="unknown splits"):
        BenchmarkConfig(sizes={"train": 10})
    bench = generate(BenchmarkConfig(seed=1, sizes={"dev": 10}))
    assert len(bench.splits["dev"]) == 10 and not bench.splits["teacher_train"]


def test_pool_answer_key(tmp_path: Path) -> None:
    manifest = generate_benchmark(tmp_path, seed=1, teacher_train=50, dev=10, gold_test=10, pool=40, pool_answers=True)
    pool = _read(tmp_path / "pool.jsonl")
    answers = _read(tmp_path / "pool_answers.jsonl")
    assert [a["custom_id"] for a in answers] == [r["custom_id"] for r in pool]
    assert Counter(a["label"] for a in answers) == Counter(
        {k: v for k, v in manifest["counts"]["pool"]["labels"].items() if v}
    )
    assert manifest["files"]["pool_answers"] == "pool_answers.jsonl"


def test_in_memory_records_are_pairs_for_prompting() -> None:
    from relevance.prompts import build_prompt

    bench = generate(BenchmarkConfig(seed=2, sizes={"dev": 20, "pool": 10}))
    record = bench.splits["dev"][0]
    prompt = build_prompt(record)
    assert record["query"] in prompt and record["meta"]["reasoning"] not in prompt
    assert bench.gold["pool"][0]["label"] in {"Exact", "Substitute", "Complement", "Irrelevant"}
    assert "label" not in bench.splits["pool"][0]["meta"]
