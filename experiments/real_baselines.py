"""The two baselines every real-data number stands beside, on exactly the pairs a teacher was judged on.

- majority: always the most frequent label of the dev file;
- zero-shot bi-encoder: MiniLM cosine between query and ad, cut into labels at the points that maximise dev
  macro-F1 (:func:`student.evaluate.bi_encoder_report`).

A teacher that does not beat both on real pairs is not worth its compute.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HEADLINE = ("macro_f1", "accuracy", "cohen_kappa")


def real_baselines(records: Sequence[dict[str, Any]], dev_path: str | Path, schema: str = "esci") -> dict[str, Any]:
    """Majority and zero-shot bi-encoder reports (macro-F1, accuracy, kappa) on ``records``."""
    from student.data import load_gold, load_labelled
    from student.evaluate import bi_encoder_report, majority_report

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gold.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        gold = load_gold(path, schema).examples
    dev = load_labelled(dev_path, schema=schema).examples
    y_true, queries = [e.label for e in gold], [e.group for e in gold]
    prior = dict(Counter(e.label for e in dev))
    majority = majority_report(prior, y_true, queries, schema)
    bi_encoder = bi_encoder_report(gold, schema, dev)
    return {
        "dev": str(dev_path),
        "majority": {k: majority[k] for k in HEADLINE} | {"label": majority["label"]},
        "bi_encoder": {k: bi_encoder[k] for k in HEADLINE},
    }
