"""Label a pairs file in this process, by the code the workers run (no API, queue or database): for experiments
and for teams that want result lines of the job contract from a laptop."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.annotate import LabelRequest, label_pairs, result_line
from pipelines.backends.base import Decoding
from pipelines.settings import teacher_card
from relevance.label_scores import LabelMethod


def label_file(
    pairs_path: Path,
    model: str,
    out: Path,
    *,
    samples: int = 1,
    temperature: float = 1.0,
    max_tokens: int = 160,
    method: LabelMethod | None = None,
    dtype: str | None = None,
    threads: int | None = None,
    batch_size: int = 32,
    on_batch: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Result lines for every pair of ``pairs_path`` in ``out``; the prompt and the label method come from the
    teacher's model card unless given, as in the service. Returns counts and seconds."""
    from pipelines.backends import create_backend

    card = teacher_card(model)
    chosen: LabelMethod = method or card.get("label_method") or "sample"
    sampled = chosen == "sample"
    decoding = Decoding(
        n=samples if sampled else 1,
        temperature=temperature if sampled else 0.0,
        max_tokens=max_tokens,
        seed=0,
        method=chosen,
    )
    request = LabelRequest(prompt_template=card.get("prompt_template") or "compact", decoding=decoding)
    pairs = [json.loads(line) for line in pairs_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    options: dict[str, Any] = {"batch_size": batch_size * decoding.n}
    if dtype:
        options["dtype"] = dtype
    if threads:
        options["torch_threads"] = threads
    backend = create_backend("transformers", model, **options)
    started = time.perf_counter()
    try:
        outcomes = label_pairs(pairs, backend, request, batch_size=batch_size, on_batch=on_batch)
    finally:
        backend.close()
    seconds = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as fh:
        for pair, outcome in zip(pairs, outcomes, strict=True):
            fh.write(json.dumps(result_line(pair["custom_id"], outcome, state="completed"), ensure_ascii=False) + "\n")
    partial.rename(out)
    labelled = sum(o.label is not None for o in outcomes)
    return {"pairs": len(pairs), "labelled": labelled, "method": chosen, "seconds": round(seconds, 1)}
