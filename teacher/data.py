"""The teacher's data: benchmark splits in, chat prompts, SFT examples and RL rows out.

A split is a list of Pair-shaped records whose ``meta`` holds the gold ``label``, ``difficulty`` and
``reasoning`` (the generator's format, also what a user's own labelled JSONL provides).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any

from relevance.prompts import build_messages
from relevance.synthetic.generator import GENERATOR_VERSION, BenchmarkConfig, generate

Record = dict[str, Any]
SPLITS = ("teacher_train", "dev", "gold_test")


@dataclass(frozen=True)
class Benchmark:
    splits: dict[str, list[Record]]
    source: dict[str, Any]  # how the splits were made (generator version and seed) or where they were read


def read_jsonl(path: str | Path) -> list[Record]:
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(records: Iterable[Mapping[str, Any]], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")


def load_benchmark(
    seed: int = 0, sizes: Mapping[str, int] | None = None, data_dir: str | Path | None = None
) -> Benchmark:
    """The labelled splits: read from ``data_dir/<split>.jsonl``, or generated in memory (seeded, no pool)."""
    if data_dir is not None:
        root = Path(data_dir)
        missing = [s for s in SPLITS if not (root / f"{s}.jsonl").exists()]
        if missing:
            raise FileNotFoundError(f"{root}: no {', '.join(f'{s}.jsonl' for s in missing)}")
        splits = {s: read_jsonl(root / f"{s}.jsonl") for s in SPLITS}
        source: dict[str, Any] = {"dir": str(root)}
        manifest = root / "manifest.json"
        if manifest.exists():
            info = json.loads(manifest.read_text())
            source.update({k: info.get(k) for k in ("generator", "generator_version", "seed")})
    else:
        wanted = {s: int((sizes or {}).get(s, 0)) for s in SPLITS}
        bench = generate(BenchmarkConfig(seed=seed, sizes={**wanted, "pool": 0}))
        splits = {s: bench.splits[s] for s in SPLITS}
        source = {"generator": "relevance.synthetic", "generator_version": GENERATOR_VERSION, "seed": seed}
    for name, records in splits.items():
        unlabelled = [r.get("custom_id") for r in records if "label" not in (r.get("meta") or {})]
        if unlabelled:
            raise ValueError(f"split {name}: {len(unlabelled)} records without meta.label, e.g. {unlabelled[0]}")
    source["sizes"] = {s: len(r) for s, r in splits.items()}
    return Benchmark(splits, source)


def label_of(record: Mapping[str, Any]) -> str:
    return record["meta"]["label"]


def balanced_draw(records: Sequence[Record], count: int, seed: int) -> list[Record]:
    """``count`` records drawn as evenly over labels as the labels' counts allow (rare labels all taken):
    one of each label in turn, from each label's rows shuffled with ``seed``."""
    by_label: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_label[label_of(r)].append(r)
    rng = random.Random(f"balanced-draw:{seed}")
    for rows in by_label.values():
        rng.shuffle(rows)
    turns = zip_longest(*(by_label[k] for k in sorted(by_label)))
    drawn = [r for turn in turns for r in turn if r is not None][:count]
    rng.shuffle(drawn)
    return drawn


def difficulty_of(record: Mapping[str, Any]) -> str:
    return (record.get("meta") or {}).get("difficulty", "unknown")


def messages(record: Mapping[str, Any], schema: str, template: str) -> list[dict[str, str]]:
    """The chat prompt for a record (its meta, which holds the answer, is never shown)."""
    return build_messages({k: v for k, v in record.items() if k != "meta"}, schema, template)


def sft_examples(
    records: Sequence[Mapping[str, Any]], tokenizer: Any, schema: str, template: str
) -> list[dict[str, str]]:
    """Prompt (chat template with the assistant turn opened) and completion (the gold reasoning trace).

    The trainer appends the end-of-turn token to each completion, so the model learns to stop after the label.
    """
    out = []
    for r in records:
        prompt = tokenizer.apply_chat_template(
            messages(r, schema, template), add_generation_prompt=True, tokenize=False
        )
        out.append({"prompt": prompt, "completion": r["meta"]["reasoning"]})
    return out


def split_train(records: Sequence[Record], sft_count: int, seed: int) -> tuple[list[Record], list[Record]]:
    """Teacher-train shuffled with ``seed`` and cut in two: SFT examples first, RL prompts after.

    RL on pairs the SFT pass never saw measures what the reward teaches rather than what was memorised. When
    ``sft_count`` takes everything, RL reuses the whole split.
    """
    shuffled = list(records)
    random.Random(f"teacher-split:{seed}").shuffle(shuffled)
    sft, rest = shuffled[:sft_count], shuffled[sft_count:]
    return sft, rest or shuffled


def subset(records: Sequence[Record], count: int | None, seed: int = 0) -> list[Record]:
    """``count`` records drawn without replacement with ``seed`` (all of them, in order, for None or too many)."""
    if count is None or count >= len(records):
        return list(records)
    picked = sorted(random.Random(f"subset:{seed}").sample(range(len(records)), count))
    return [records[i] for i in picked]


def labelled_records(path: str | Path, *, pairs: int | None = None, seed: int = 0) -> list[Record]:
    """Gold pairs from any JSONL of pairs with ``meta.label`` (an importer's output, ``agpo relevance real``).

    Lines are checked by the pair contract (:func:`relevance.pairs.read_pairs_jsonl`); ValueError names the first
    bad line, or the first pair without ``meta.label``.
    """
    from relevance.pairs import read_pairs_jsonl

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    batch = read_pairs_jsonl(path)
    if batch.errors:
        raise ValueError(f"{path}: {len(batch.errors)} bad line(s), first {batch.errors[0]}")
    for row, pair in zip(batch.rows, batch.pairs, strict=True):
        if not (pair.meta or {}).get("label"):
            raise ValueError(f"{path}: line {row}: no meta.label (a gold file carries its label there)")
    if not batch.pairs:
        raise ValueError(f"{path}: no pairs")
    return subset([json.loads(pair.to_json()) for pair in batch.pairs], pairs, seed)


def benchmark_of_model(model_dir: str | Path) -> Benchmark:
    """The benchmark a built teacher was trained on, from the ``data`` section of its ``model_card.json``.

    The generator deals queries to splits by their remaining sizes, so a split is reproduced only with the seed
    *and* every split's size; the card records both.
    """
    card_path = Path(model_dir) / "model_card.json"
    if not card_path.exists():
        raise FileNotFoundError(f"{card_path} not found: pass --data-dir with the labelled <split>.jsonl files")
    data = json.loads(card_path.read_text())["data"]
    if data.get("dir"):
        return load_benchmark(data_dir=data["dir"])
    if data.get("generator_version") != GENERATOR_VERSION:
        raise ValueError(
            f"{card_path}: built from generator version {data.get('generator_version')}, this is {GENERATOR_VERSION}"
        )
    return load_benchmark(seed=int(data["seed"]), sizes=data["sizes"])


def split_records(
    model_dir: str | Path,
    split: str,
    *,
    data_dir: str | Path | None = None,
    pairs: int | None = None,
    seed: int = 0,
) -> list[Record]:
    """Records of ``split`` (from ``data_dir``, else the model card's benchmark), optionally a seeded subset."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; one of {', '.join(SPLITS)}")
    bench = load_benchmark(data_dir=data_dir) if data_dir else benchmark_of_model(model_dir)
    return subset(bench.splits[split], pairs, seed)
