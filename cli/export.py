"""A job's results joined with their pairs, as a table: Parquet, or a Hugging Face ``datasets`` directory.

One row per pair, flat columns (the ad's fields side by side; attributes, meta and the vote distribution as JSON
text, so every row has the same schema whatever its pair carried), and the job's identity (teacher, prompt
version, label schema, decoding) in the file's metadata, so a table found later still says who labelled it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

ExportFormat = Literal["parquet", "hf"]
FORMATS: tuple[str, ...] = ("parquet", "hf")
METADATA_KEY = "agpo"
JOB_FIELDS = (
    "id",
    "status",
    "label_schema",
    "prompt_template",
    "prompt_version",
    "task",
    "teacher",
    "samples",
    "decoding",
)


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def export_row(line: dict[str, Any]) -> dict[str, Any]:
    """One result line with its ``pair`` (``results/page?include_pair=true``) as a flat row."""
    pair = line.get("pair") or {}
    ad = pair.get("ad") or {}
    return {
        "custom_id": line["custom_id"],
        "query": pair.get("query"),
        "title": ad.get("title"),
        "description": ad.get("description"),
        "brand": ad.get("brand"),
        "category": ad.get("category"),
        "attributes": _json_text(ad.get("attributes")),
        "meta": _json_text(pair.get("meta")),
        "messages": _json_text(pair.get("messages")),  # a batch line's conversation, labelled in place of a pair
        "status": line.get("status"),
        "label": line.get("label"),
        "confidence": line.get("confidence"),
        "distribution": _json_text(line.get("distribution")),
        "reasoning": line.get("reasoning"),
        "samples": line.get("samples"),
        "cached": line.get("cached"),
        "teacher": line.get("teacher"),
        "prompt_version": line.get("prompt_version"),
        "error": line.get("error"),
    }


def job_metadata(job: dict[str, Any]) -> dict[str, Any]:
    """What the export says about where its labels came from."""
    return {"job": {k: job.get(k) for k in JOB_FIELDS}, "request_counts": job.get("request_counts")}


def _table(rows: list[dict[str, Any]], metadata: dict[str, Any]) -> Any:
    import pyarrow as pa

    columns = list(export_row({"custom_id": ""}))
    schema = pa.schema(
        [
            pa.field(
                name,
                pa.float64()
                if name == "confidence"
                else pa.int64()
                if name == "samples"
                else pa.bool_()
                if name == "cached"
                else pa.string(),
            )
            for name in columns
        ],
        metadata={METADATA_KEY: json.dumps(metadata, ensure_ascii=False)},
    )
    return pa.Table.from_pylist(rows, schema=schema)


def write_export(
    lines: Iterable[dict[str, Any]], job: dict[str, Any], out: str | Path, fmt: ExportFormat = "parquet"
) -> int:
    """Write ``lines`` (result lines with pairs) to ``out``; the number of rows written."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out)
    rows = [export_row(line) for line in lines]
    metadata = job_metadata(job)
    table = _table(rows, metadata)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out)
    else:
        try:
            import datasets
        except ImportError:
            raise ValueError("--format hf needs the datasets package: pip install datasets") from None
        dataset = datasets.Dataset(table, info=datasets.DatasetInfo(description=json.dumps(metadata)))
        dataset.save_to_disk(str(out))
        (out / "agpo_job.json").write_text(json.dumps(metadata, indent=1, ensure_ascii=False) + "\n")
    return len(rows)
