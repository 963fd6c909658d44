"""Helpers for the student tests: teacher result lines made from gold pairs."""

from __future__ import annotations

import json
import random
from pathlib import Path

from relevance.schemas import get_schema

TEACHER = "tiny-teacher@test"
PROMPT_VERSION = "esci-v1-test"


def teacher_results(gold_path: Path, out: Path, *, inline_pairs: bool, failed_every: int = 25, seed: int = 0) -> Path:
    """Result lines in the job contract shape, as a noisy teacher with 8 samples would write them."""
    sch = get_schema("esci")
    rng = random.Random(seed)
    lines = []
    for i, raw in enumerate(gold_path.read_text(encoding="utf-8").splitlines()):
        pair = json.loads(raw)
        record: dict = {"custom_id": pair["custom_id"], "teacher": TEACHER, "prompt_version": PROMPT_VERSION}
        if inline_pairs:
            record.update(query=pair["query"], ad=pair["ad"], meta={"query_id": pair["meta"]["query_id"]})
        if failed_every and i % failed_every == failed_every - 1:
            record.update(status="failed", label=None, error="unparseable")
        else:
            gold = pair["meta"]["label"]
            other = rng.choice([n for n in sch.names if n != gold])
            votes = {n: 0 for n in sch.names}
            votes[gold] += 6
            votes[other] += 2
            dist = {n: v / 8 for n, v in votes.items()}
            record.update(status="completed", label=gold, confidence=0.75, distribution=dist, samples=8)
        lines.append(json.dumps(record))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
