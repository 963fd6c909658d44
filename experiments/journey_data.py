"""What a journey labels, learns from and is judged on: real Home Depot pairs (the default) or the synthetic
benchmark.

Real data: a live pool of Home Depot ``train`` rows that the teacher never trained on goes through the service
with its human labels held back (they are the answer key); the student also learns from the same teacher's labels
of the rest of those rows, made once and committed (``relevance/real_data/teacher_labels``), provided the teacher
is the one that made them; dev picks the student's checkpoint; test (disjoint by query) judges everyone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from teacher.data import read_jsonl, write_jsonl

DataSource = Literal["real", "synthetic"]
DATA_SOURCES: tuple[DataSource, ...] = ("real", "synthetic")
DEFAULT_TEACHERS: dict[DataSource, Path] = {
    "real": Path("models/relevance-teacher-smollm2-more"),
    "synthetic": Path("models/relevance-teacher"),
}
COMMITTED_LABELS = Path("relevance/real_data/teacher_labels")


@dataclass
class JourneyData:
    source: DataSource
    description: str  # one sentence for the report
    pool: Path  # pairs sent through the service, labels held back
    answers: Path  # the pool's answer key: one {custom_id, label} per line
    dev: Path  # gold: the student's checkpoint choice and the bi-encoder's cuts
    test: Path  # gold: where the student is judged
    pool_size: int
    committed_pool: Path | None = None  # earlier teacher labels of more unseen rows (result lines)
    committed_test: Path | None = None  # the same teacher's labels of test
    committed_dev: Path | None = None  # and of dev (where a cascade's threshold is chosen)
    pairs: Path | None = None  # every pair the committed labels refer to


def hold_back_labels(pairs: list[dict[str, Any]], pool: Path, answers: Path) -> None:
    """Write the pairs without their labels (what the teacher sees) and the labels apart (the answer key)."""
    write_jsonl(({k: v for k, v in p.items() if k != "meta"} for p in pairs), pool)
    write_jsonl(({"custom_id": p["custom_id"], "label": p["meta"]["label"]} for p in pairs), answers)


def seeded_subset(rows: list[dict[str, Any]], n: int | None, seed: int) -> list[dict[str, Any]]:
    if n is None or n >= len(rows):
        return rows
    return random.Random(seed).sample(rows, n)


def real_data(
    out: Path, teacher: Path, pool: int, seed: int, test: int | None = None, dev: int | None = None
) -> JourneyData:
    """Home Depot pairs: ``pool`` unseen train rows to label live, dev and test (all of them unless sizes are
    given, as in the quick run), and the committed labels of the other unseen rows."""
    from relevance.real import TRAINING_IDS, write_real_sets

    data = out / "data"
    write_real_sets(data)
    ids = teacher / TRAINING_IDS
    seen = set(ids.read_text(encoding="utf-8").split()) if ids.is_file() else set()
    unseen = [p for p in read_jsonl(data / "homedepot_train.jsonl") if p["custom_id"] not in seen]
    live = seeded_subset(unseen, pool, seed)
    hold_back_labels(live, data / "pool.jsonl", data / "pool_answers.jsonl")
    for split, n in (("dev", dev), ("test", test)):
        rows = read_jsonl(data / f"homedepot_{split}.jsonl")
        write_jsonl(seeded_subset(rows, n, seed), data / f"{split}.jsonl")
    committed = COMMITTED_LABELS / "homedepot_pool.jsonl"
    return JourneyData(
        source="real",
        description=(
            f"real Home Depot search pairs rated by people (relevance/real_data/SOURCES.md): {len(live):,} train "
            f"rows the teacher never trained on ({len(seen):,} rows it did are left out) went through the service "
            "with their human labels held back; dev and test are disjoint from train by query"
        ),
        pool=data / "pool.jsonl",
        answers=data / "pool_answers.jsonl",
        dev=data / "dev.jsonl",
        test=data / "test.jsonl",
        pool_size=len(live),
        committed_pool=committed if committed.is_file() else None,
        committed_test=COMMITTED_LABELS / "homedepot_test.jsonl",
        committed_dev=COMMITTED_LABELS / "homedepot_dev.jsonl",
        pairs=data / "homedepot_train.jsonl",
    )


def synthetic_data(out: Path, pool: int, seed: int, dev: int, gold_test: int) -> JourneyData:
    from relevance.synthetic.generator import generate_benchmark

    data = out / "data"
    generate_benchmark(data, seed=seed, teacher_train=0, dev=dev, gold_test=gold_test, pool=pool, pool_answers=True)
    return JourneyData(
        source="synthetic",
        description=f"the synthetic JD-style benchmark (seed {seed}): its unlabelled pool, with a hidden answer key",
        pool=data / "pool.jsonl",
        answers=data / "pool_answers.jsonl",
        dev=data / "dev.jsonl",
        test=data / "gold_test.jsonl",
        pool_size=pool,
    )


def teacher_name(lines: list[dict[str, Any]]) -> str | None:
    """The one teacher (name@revision) that wrote these result lines, or None when they disagree or say nothing."""
    names = {line.get("teacher") for line in lines}
    return names.pop() if len(names) == 1 else None


def training_rows(data: JourneyData, results: Path, teacher: str | None) -> tuple[list[dict[str, Any]], int]:
    """The student's rows: the live labels, plus the committed labels of unseen rows outside the live pool when
    ``teacher`` (as the live results name it) made them. Returns the rows and how many came from the commit."""
    from experiments.value_chain import teacher_rows

    rows = teacher_rows(read_jsonl(results), {p["custom_id"]: p for p in read_jsonl(data.pool)})
    if data.committed_pool is None or data.pairs is None:
        return rows, 0
    committed = read_jsonl(data.committed_pool)
    if teacher is None or teacher_name(committed) != teacher:
        return rows, 0
    live = {row["custom_id"] for row in rows} | {p["custom_id"] for p in read_jsonl(data.pool)}
    pairs = {p["custom_id"]: p for p in read_jsonl(data.pairs)}
    extra = teacher_rows([line for line in committed if line["custom_id"] not in live], pairs)
    return rows + extra, len(extra)


def made_by(path: Path | None, teacher: str | None) -> bool:
    """Whether the committed label file ``path`` exists and ``teacher`` made every line of it."""
    return path is not None and path.is_file() and teacher is not None and teacher_name(read_jsonl(path)) == teacher


def committed_test_labels(data: JourneyData, teacher: str | None) -> dict[str, str] | None:
    """The teacher's committed labels of the test pairs, when this teacher made them."""
    if not made_by(data.committed_test, teacher):
        return None
    assert data.committed_test is not None
    lines = read_jsonl(data.committed_test)
    return {line["custom_id"]: line["label"] for line in lines if line.get("status") == "completed"}
