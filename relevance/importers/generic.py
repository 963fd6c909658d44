"""Any JSONL, CSV, TSV or parquet table, with a :class:`ColumnMapping` from its columns to pair fields and a
label schema; dotted names reach into nested JSON objects."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relevance.importers.tables import (
    Format,
    ImportResult,
    build_pair,
    clean_text,
    cut_attributes,
    cut_to,
    parse_label,
    read_rows,
    require_columns,
    strip_html,
    table_columns,
    table_format,
)
from relevance.pairs import DEFAULT_LIMITS, PairLimits, RowError
from relevance.schemas import LabelSchema, get_schema


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column fills which pair field. ``query`` and ``title`` are required.

    ``custom_id`` defaults to ``<source>-<row>``. ``attributes`` lists columns that become attributes under their
    own names; ``attributes_column`` names one column holding an object (or a JSON object string) of attributes.
    ``label`` is the gold label column, ``query_id`` a query grouping column (both go to ``meta``), and
    ``meta`` lists further columns copied into ``meta`` as they are.
    """

    query: str
    title: str
    custom_id: str | None = None
    description: str | None = None
    brand: str | None = None
    category: str | None = None
    attributes: tuple[str, ...] = ()
    attributes_column: str | None = None
    label: str | None = None
    query_id: str | None = None
    meta: tuple[str, ...] = ()

    def columns(self) -> list[str]:
        cols = [self.query, self.title, *self.attributes, *self.meta]
        cols += [c for c in (self.custom_id, self.description, self.brand, self.category) if c]
        cols += [c for c in (self.attributes_column, self.label, self.query_id) if c]
        return list(dict.fromkeys(cols))

    def field_columns(self) -> dict[str, str]:
        out = {"query": self.query, "ad.title": self.title}
        for fld, col in (
            ("custom_id", self.custom_id),
            ("ad.description", self.description),
            ("ad.brand", self.brand),
            ("ad.category", self.category),
            ("ad.attributes", self.attributes_column),
        ):
            if col:
                out[fld] = col
        return out


_MISSING = object()


def _get(record: Mapping[str, Any], name: str) -> Any:
    """``record[name]``, or the value at a dotted path into nested objects; ``_MISSING`` if absent."""
    if name in record:
        return record[name]
    node: Any = record
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _jsonl_rows(path: Path, result: ImportResult) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as fh:
        for row, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                result.errors.append(RowError(row, None, f"invalid JSON: {exc.msg} at column {exc.colno}"))
                continue
            if not isinstance(record, dict):
                result.errors.append(RowError(row, None, f"expected a JSON object, got {type(record).__name__}"))
                continue
            yield row, record


def import_table(
    path: str | Path,
    mapping: ColumnMapping,
    *,
    schema: str | LabelSchema = "esci",
    fmt: Format | None = None,
    sep: str | None = None,
    label_map: Mapping[str, str] | None = None,
    source: str | None = None,
    limit: int | None = None,
    limits: PairLimits = DEFAULT_LIMITS,
) -> ImportResult:
    """Read pairs from a JSONL, CSV, TSV or parquet file through ``mapping``.

    Labels are matched to ``schema`` by name, code or alias; ``label_map`` first translates source values
    (``{"2": "Exact"}``). For tables the header is checked first (:class:`MissingColumnsError`); a JSONL line
    without a mapped field is a row error. Row numbers are JSONL line numbers or 1-based table data rows.
    """
    p = Path(path)
    kind = table_format(p, fmt)
    sch = get_schema(schema)
    result = ImportResult(schema=sch.name)
    src = source or p.stem
    required = [mapping.query, mapping.title] + [c for c in (mapping.custom_id, mapping.label) if c]
    rows: Iterator[tuple[int, Mapping[str, Any]]]
    if kind == "jsonl":
        rows = _jsonl_rows(p, result)
    else:
        have = table_columns(p, kind, sep)
        require_columns(p, have, mapping.columns())
        rows = enumerate(read_rows(p, mapping.columns(), kind, sep), start=1)
    fields = mapping.field_columns()
    seen: dict[str, int] = {}
    for row, rec in rows:
        result.rows = row
        absent = [c for c in required if _get(rec, c) is _MISSING]
        if absent:
            result.errors.extend(RowError(row, c, "field missing") for c in absent)
            continue

        def text(col: str | None, rec: Mapping[str, Any] = rec) -> str:
            if col is None:
                return ""
            value = _get(rec, col)
            return "" if value is _MISSING else clean_text(value)

        meta: dict[str, Any] = {"source": src}
        if mapping.label:
            label = parse_label(text(mapping.label), sch, mapping.label, row, result, label_map)
            if label is None:
                continue
            meta["label"] = label
        if mapping.query_id:
            meta["query_id"] = text(mapping.query_id)
        for col in mapping.meta:
            value = _get(rec, col)
            if value is not _MISSING and not (isinstance(value, float) and math.isnan(value)):
                meta[col] = value
        attrs = {col: text(col) for col in mapping.attributes if text(col)}
        if mapping.attributes_column:
            raw = _get(rec, mapping.attributes_column)
            if isinstance(raw, str) and raw.strip():
                try:
                    raw = json.loads(raw)
                except json.JSONDecodeError:
                    result.errors.append(RowError(row, mapping.attributes_column, "attributes must be a JSON object"))
                    continue
            if isinstance(raw, Mapping):
                attrs.update({str(k): clean_text(v) for k, v in raw.items()})
            elif raw not in (_MISSING, None, "") and not (isinstance(raw, float) and math.isnan(raw)):
                result.errors.append(RowError(row, mapping.attributes_column, "attributes must be a JSON object"))
                continue
        ad: dict[str, Any] = {
            "title": cut_to(text(mapping.title), limits.title),
            "description": cut_to(strip_html(text(mapping.description)), limits.description) or None,
            "brand": cut_to(text(mapping.brand), limits.brand) or None,
            "category": cut_to(text(mapping.category), limits.category) or None,
            "attributes": cut_attributes(attrs, limits),
        }
        cid = text(mapping.custom_id) if mapping.custom_id else f"{src}-{row}"
        record = {"custom_id": cid, "query": text(mapping.query), "ad": ad, "meta": meta}
        build_pair(row, record, fields, limits, result, seen)
        if limit is not None and len(result.pairs) >= limit:
            break
    return result
