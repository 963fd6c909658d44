"""Wayfair WANDS: tab-separated ``product.csv``, ``query.csv``, ``label.csv``; labels Exact/Partial/Irrelevant in the
``wands`` schema. ``product_features`` become the ad's attributes, ``category hierarchy`` its category."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from relevance.importers.tables import (
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
)
from relevance.pairs import DEFAULT_LIMITS, PairLimits, RowError
from relevance.schemas import get_schema

WANDS_PRODUCT_COLUMNS = (
    "product_id",
    "product_name",
    "product_class",
    "category hierarchy",
    "product_description",
    "product_features",
    "rating_count",
    "average_rating",
    "review_count",
)
WANDS_QUERY_COLUMNS = ("query_id", "query", "query_class")
WANDS_LABEL_COLUMNS = ("id", "query_id", "product_id", "label")

_WANDS_PRODUCT_REQUIRED = ("product_id", "product_name")
_WANDS_QUERY_REQUIRED = ("query_id", "query")


def _features(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in text.split("|"):
        key, sep, value = item.partition(":")
        if sep and key.strip() and value.strip():
            out.setdefault(key.strip(), value.strip())
    return out


def import_wands(
    products: str | Path,
    queries: str | Path,
    labels: str | Path,
    *,
    limit: int | None = None,
    limits: PairLimits = DEFAULT_LIMITS,
) -> ImportResult:
    """Read WANDS (tab-separated product.csv, query.csv, label.csv) into ``wands``-labelled pairs.

    One pair per row of label.csv; errors carry that file's 1-based data row.
    """
    pr_cols = table_columns(products, "tsv")
    require_columns(products, pr_cols, _WANDS_PRODUCT_REQUIRED)
    q_cols = table_columns(queries, "tsv")
    require_columns(queries, q_cols, _WANDS_QUERY_REQUIRED)
    l_cols = table_columns(labels, "tsv")
    require_columns(labels, l_cols, WANDS_LABEL_COLUMNS)
    schema = get_schema("wands")
    result = ImportResult(schema=schema.name)

    catalogue: dict[str, dict[str, Any]] = {}
    for prod in read_rows(products, [c for c in WANDS_PRODUCT_COLUMNS if c in pr_cols], "tsv"):
        catalogue.setdefault(clean_text(prod["product_id"]), prod)
    query_rows: dict[str, dict[str, Any]] = {}
    for q in read_rows(queries, [c for c in WANDS_QUERY_COLUMNS if c in q_cols], "tsv"):
        query_rows.setdefault(clean_text(q["query_id"]), q)

    fields = {
        "custom_id": "id",
        "query": "query",
        "ad.title": "product_name",
        "ad.description": "product_description",
        "ad.category": "category hierarchy",
        "ad.attributes": "product_features",
    }
    seen: dict[str, int] = {}
    for row, lab in enumerate(read_rows(labels, WANDS_LABEL_COLUMNS, "tsv"), start=1):
        result.rows = row
        label = parse_label(clean_text(lab["label"]), schema, "label", row, result)
        qid, pid = clean_text(lab["query_id"]), clean_text(lab["product_id"])
        q = query_rows.get(qid)
        prod = catalogue.get(pid)
        if q is None:
            result.errors.append(RowError(row, "query_id", f"query {qid!r} is not in the queries file"))
        if prod is None:
            result.errors.append(RowError(row, "product_id", f"product {pid!r} is not in the products file"))
        if label is None or q is None or prod is None:
            continue
        category = clean_text(prod.get("category hierarchy")) or clean_text(prod.get("product_class"))
        ad: dict[str, Any] = {
            "title": cut_to(clean_text(prod["product_name"]), limits.title),
            "description": cut_to(strip_html(clean_text(prod.get("product_description"))), limits.description) or None,
            "category": cut_to(category, limits.category) or None,
            "attributes": cut_attributes(_features(clean_text(prod.get("product_features"))), limits),
        }
        meta = {
            "source": "wands",
            "label": label,
            "query_id": qid,
            "product_id": pid,
            "id": clean_text(lab["id"]),
            "query_class": clean_text(q.get("query_class")) or None,
            "product_class": clean_text(prod.get("product_class")) or None,
        }
        record = {
            "custom_id": f"wands-{clean_text(lab['id'])}",
            "query": clean_text(q["query"]),
            "ad": ad,
            "meta": meta,
        }
        build_pair(row, record, fields, limits, result, seen)
        if limit is not None and len(result.pairs) >= limit:
            break
    return result


def import_wands_dir(directory: str | Path, **kwargs: Any) -> ImportResult:
    """:func:`import_wands` on a directory holding product.csv, query.csv and label.csv (WANDS' ``dataset/``)."""
    d = Path(directory)
    return import_wands(d / "product.csv", d / "query.csv", d / "label.csv", **kwargs)
