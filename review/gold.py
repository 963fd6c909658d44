"""Reviewed pairs as gold: JSONL pairs with ``meta.label`` (what ``agpo student train --source gold`` and
``agpo teacher eval`` read) and a flat Parquet table. The label is the reviewers' consensus
(:func:`review.agreement.consensus`); the teacher's label stays beside it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from review.agreement import consensus


def gold_row(
    pair: Mapping[str, Any],
    job_id: str,
    teacher_label: str | None,
    teacher_confidence: float | None,
    reviews: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    """One gold pair: the pair as it was sent, ``meta.label`` the reviewers' consensus."""
    meta = dict(pair.get("meta") or {})
    meta.update(
        label=consensus(reviews),
        teacher_label=teacher_label,
        teacher_confidence=teacher_confidence,
        reviewers=[reviewer for reviewer, _ in reviews],
        job_id=job_id,
    )
    return {"custom_id": pair["custom_id"], "query": pair["query"], "ad": pair["ad"], "meta": meta}


def to_jsonl(rows: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def to_parquet(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """A flat table: one column per ad field, the attributes as JSON text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def ad(row: Mapping[str, Any], key: str) -> Any:
        return row["ad"].get(key)

    table = pa.table(
        {
            "custom_id": [r["custom_id"] for r in rows],
            "query": [r["query"] for r in rows],
            "title": [ad(r, "title") for r in rows],
            "description": [ad(r, "description") for r in rows],
            "brand": [ad(r, "brand") for r in rows],
            "category": [ad(r, "category") for r in rows],
            "attributes": [
                json.dumps(ad(r, "attributes"), ensure_ascii=False) if ad(r, "attributes") else None for r in rows
            ],
            "label": [r["meta"]["label"] for r in rows],
            "teacher_label": [r["meta"]["teacher_label"] for r in rows],
            "teacher_confidence": pa.array([r["meta"]["teacher_confidence"] for r in rows], pa.float64()),
            "reviewers": pa.array([r["meta"]["reviewers"] for r in rows], pa.list_(pa.string())),
            "job_id": [r["meta"]["job_id"] for r in rows],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()
