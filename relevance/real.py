"""The real, human-labelled samples the project ships, for judging models on real data.

- ``homedepot``: 28,291 Home Depot search pairs (Kaggle's Product Search Relevance training set, crowd-rated),
  split by query into train / dev / test; see :mod:`relevance.importers.homedepot` for the label mapping.
- ``esci-sample``: 200 Amazon ESCI pairs, one per query, for spot checks of four-label ESCI answers.

Provenance (repository, commit, file hashes, licence) is in ``relevance/real_data/SOURCES.md``. Which rows fed a
model's training is recorded in its card; nothing trains on ``test``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from relevance.importers import ColumnMapping, ImportResult, import_table
from relevance.importers.homedepot import import_homedepot
from relevance.pairs import write_pairs_jsonl

DATA_DIR = Path(__file__).with_name("real_data")
HOMEDEPOT_CSV = DATA_DIR / "homedepot.csv"
ESCI_SAMPLE_CSV = DATA_DIR / "esci_sample.csv"
HOMEDEPOT_SPLITS = ("train", "dev", "test")
# Query buckets (of 100) per split; the rest of Kaggle's 74,067 rows is not shipped.
SPLIT_BUCKETS = {"test": range(0, 5), "dev": range(5, 7), "train": range(7, 38)}


def query_bucket(query: str) -> int:
    """A query's bucket in [0, 100): a hash of its lower-cased, space-normalised text, so splits never share one."""
    norm = " ".join(query.lower().split())
    return int(hashlib.sha256(norm.encode()).hexdigest()[:8], 16) % 100


def split_of(query: str) -> str | None:
    bucket = query_bucket(query)
    return next((name for name, span in SPLIT_BUCKETS.items() if bucket in span), None)


def homedepot(split: str) -> ImportResult:
    if split not in HOMEDEPOT_SPLITS:
        raise ValueError(f"split must be one of {', '.join(HOMEDEPOT_SPLITS)}, got {split!r}")
    return import_homedepot(HOMEDEPOT_CSV, split=split)


def esci_sample() -> ImportResult:
    mapping = ColumnMapping(
        query="query", title="product_title", custom_id="example_id", label="label", query_id="query_id"
    )
    return import_table(ESCI_SAMPLE_CSV, mapping, schema="esci", source="esci-sample")


def write_real_sets(out: str | Path) -> dict[str, int]:
    """Write ``homedepot_{train,dev,test}.jsonl`` and ``esci_sample.jsonl`` (pairs with ``meta.label``) to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for split in HOMEDEPOT_SPLITS:
        counts[f"homedepot_{split}"] = _write(homedepot(split), out / f"homedepot_{split}.jsonl")
    counts["esci_sample"] = _write(esci_sample(), out / "esci_sample.jsonl")
    return counts


TRAINING_IDS = "training_ids.txt"


def write_unseen_train(out: str | Path, models: list[str | Path]) -> int:
    """Write ``homedepot_train_unseen.jsonl``: the Home Depot train rows none of ``models`` trained on (each
    model dir lists its rows in ``training_ids.txt``), e.g. a pool for a teacher to label; returns its size."""
    seen: set[str] = set()
    for model in models:
        ids = Path(model) / TRAINING_IDS
        if not ids.is_file():
            raise FileNotFoundError(f"{model}: no {TRAINING_IDS} (a model card lists the rows it trained on there)")
        seen.update(ids.read_text(encoding="utf-8").split())
    result = homedepot("train")
    result.pairs = [p for p in result.pairs if p.custom_id not in seen]
    return _write(result, Path(out) / "homedepot_train_unseen.jsonl")


def _write(result: ImportResult, path: Path) -> int:
    if result.errors:
        first = result.errors[0]
        raise ValueError(f"{path.name}: {len(result.errors)} bad rows in the shipped sample, first: {first}")
    return write_pairs_jsonl(result.pairs, path)
