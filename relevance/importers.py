"""Importers for real relevance data on local disk: Amazon ESCI, Wayfair WANDS, and any JSONL/CSV table.

Each importer returns an :class:`ImportResult`: the valid :class:`~relevance.pairs.Pair` objects, with the gold
label (canonical name of the importer's schema) and the source ids in ``meta``, and a list of
:class:`~relevance.pairs.RowError` for the rows that could not be used (unknown label, empty query, unknown
product, over-long query...). A bad row never stops the import. A file that lacks required columns does: a
:class:`MissingColumnsError` naming them is raised after reading only the header, before any row.

- ESCI (Shopping Queries Dataset): ``shopping_queries_dataset_examples`` and ``..._products`` as parquet or CSV.
  Labels E/S/C/I (or the full names) in the ``esci`` schema. Products are joined on (product_id, locale).
  Filters: locale (default ``us``), split (``train``/``test``), version (``small``/``large``).
- WANDS: tab-separated ``product.csv``, ``query.csv``, ``label.csv``. Labels Exact/Partial/Irrelevant in the
  ``wands`` schema (gains 2/1/0, as WANDS evaluates). ``product_features`` (``key:value|key:value``) becomes the
  ad's attributes and ``category hierarchy`` (else ``product_class``) its category.
- Generic: JSONL, CSV, TSV or parquet with a :class:`ColumnMapping` from the file's columns to pair fields and a
  label schema; dotted names reach into nested JSON objects.

Real product texts are often longer than the pair limits: descriptions, titles, brands, categories and attribute
values are cut to fit (a description is made of the first part of the text anyway); a query is never altered,
so an over-long query is a row error. HTML tags in descriptions are removed.
"""

from __future__ import annotations

import csv
import html
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from relevance.pairs import DEFAULT_LIMITS, Pair, PairLimits, RowError, error_fields
from relevance.schemas import LabelSchema, get_schema

ESCI_EXAMPLE_COLUMNS = (
    "example_id",
    "query",
    "query_id",
    "product_id",
    "product_locale",
    "esci_label",
    "small_version",
    "large_version",
    "split",
)
ESCI_PRODUCT_COLUMNS = (
    "product_id",
    "product_title",
    "product_description",
    "product_bullet_point",
    "product_brand",
    "product_color",
    "product_locale",
)
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

_ESCI_REQUIRED = ("example_id", "query", "query_id", "product_id", "product_locale", "esci_label")
_ESCI_PRODUCT_REQUIRED = ("product_id", "product_title", "product_locale")
_WANDS_PRODUCT_REQUIRED = ("product_id", "product_name")
_WANDS_QUERY_REQUIRED = ("query_id", "query")


class MissingColumnsError(ValueError):
    """A source file lacks columns the importer needs; raised before any row is read."""

    def __init__(self, path: str | Path, missing: Sequence[str]) -> None:
        self.path = str(path)
        self.missing = list(missing)
        super().__init__(f"{self.path}: missing required column(s): {', '.join(self.missing)}")


@dataclass
class ImportResult:
    """Pairs with gold labels in ``meta['label']``, the errors of the rows left out, and the label schema."""

    pairs: list[Pair] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    schema: str = "esci"
    rows: int = 0

    @property
    def labels(self) -> list[str | None]:
        return [(p.meta or {}).get("label") for p in self.pairs]


# ------------------------------------------------------------------------------------------------ tables


Format = Literal["parquet", "csv", "tsv", "jsonl"]


def _format(path: Path, fmt: Format | None) -> Format:
    if fmt is not None:
        return fmt
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    for ext, name in (
        (".parquet", "parquet"),
        (".pq", "parquet"),
        (".tsv", "tsv"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
    ):
        if suffix.startswith(ext):
            return name  # type: ignore[return-value]
    return "csv"


def _sep(fmt: Format, sep: str | None) -> str:
    return sep if sep is not None else ("\t" if fmt == "tsv" else ",")


def table_columns(path: str | Path, fmt: Format | None = None, sep: str | None = None) -> list[str]:
    """The column names of a parquet, CSV or TSV file, read from its header only."""
    p = Path(path)
    kind = _format(p, fmt)
    if kind == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(p).names)
    if kind == "jsonl":
        raise ValueError("JSONL has no header; its fields are checked per row")
    # Only the first record is read, so a header check never depends on the rows below it.
    with open(p, newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh, delimiter=_sep(kind, sep)), [])
    return list(header)


def _require(path: str | Path, have: Sequence[str], need: Sequence[str]) -> None:
    missing = [c for c in need if c not in have]
    if missing:
        raise MissingColumnsError(path, missing)


def _rows(
    path: str | Path, columns: Sequence[str], fmt: Format | None = None, sep: str | None = None
) -> Iterator[dict[str, Any]]:
    """Rows of a table as dicts of the given (present) columns; CSV cells are read as text, empty cells as ''."""
    p = Path(path)
    kind = _format(p, fmt)
    import pandas as pd

    if kind == "parquet":
        frame = pd.read_parquet(p, columns=list(columns))
    else:
        frame = pd.read_csv(
            p, sep=_sep(kind, sep), usecols=list(columns), dtype=str, keep_default_na=False, na_values=[]
        )
    names = list(frame.columns)
    for values in frame.itertuples(index=False, name=None):
        yield dict(zip(names, values, strict=True))


def _text(value: Any) -> str:
    """A cell as stripped text: None and NaN become '', integral floats lose their '.0'."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value).strip()


_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _plain(text: str) -> str:
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 3)].rstrip() + "..."


def _cut_attributes(attrs: Mapping[str, str], limits: PairLimits) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for k, v in attrs.items():
        key, val = _cut(k.strip(), limits.attribute_key), _cut(v.strip(), limits.attribute_value)
        if key and val and key not in out:
            out[key] = val
        if len(out) >= limits.attributes:
            break
    return out or None


def _build(
    row: int,
    record: dict[str, Any],
    columns: Mapping[str, str],
    limits: PairLimits,
    result: ImportResult,
    seen: dict[str, int],
) -> None:
    """Validate one pair record; on failure add errors naming the source columns (``columns``: field -> column)."""
    try:
        pair = Pair.model_validate(record, context={"limits": limits})
    except ValidationError as exc:
        for fld, msg in error_fields(exc):
            result.errors.append(RowError(row, columns.get(fld, fld) or None, msg))
        return
    first = seen.get(pair.custom_id)
    if first is not None:
        result.errors.append(
            RowError(
                row, columns.get("custom_id", "custom_id"), f"duplicate id {pair.custom_id!r} (first on row {first})"
            )
        )
        return
    seen[pair.custom_id] = row
    result.pairs.append(pair)


def _label(
    raw: str,
    schema: LabelSchema,
    column: str,
    row: int,
    result: ImportResult,
    label_map: Mapping[str, str] | None = None,
) -> str | None:
    value = raw.strip()
    if label_map is not None and value in label_map:
        value = label_map[value]
    name = schema.normalize(value) if value else None
    if name is None:
        msg = "empty label" if not value else f"unknown label {raw!r}; expected one of {', '.join(schema.names)}"
        result.errors.append(RowError(row, column, msg))
    return name


# --------------------------------------------------------------------------------------------------- ESCI


def import_esci(
    examples: str | Path,
    products: str | Path,
    *,
    locale: str | None = "us",
    split: str | None = None,
    version: Literal["small", "large"] | None = None,
    limit: int | None = None,
    limits: PairLimits = DEFAULT_LIMITS,
) -> ImportResult:
    """Read the Shopping Queries Dataset into ESCI-labelled pairs.

    ``locale``/``split``/``version`` keep only matching examples (None keeps all); ``limit`` stops after that many
    pairs. Row numbers in errors count data rows of the examples file, 1-based.
    """
    need = list(_ESCI_REQUIRED)
    if split is not None:
        need.append("split")
    if version is not None:
        need.append(f"{version}_version")
    ex_cols = table_columns(examples)
    _require(examples, ex_cols, need)
    pr_cols = table_columns(products)
    _require(products, pr_cols, _ESCI_PRODUCT_REQUIRED)
    schema = get_schema("esci")
    result = ImportResult(schema=schema.name)

    wanted = [c for c in ESCI_PRODUCT_COLUMNS if c in pr_cols]
    catalogue: dict[tuple[str, str], dict[str, Any]] = {}
    for prod in _rows(products, wanted):
        key = (_text(prod["product_id"]), _text(prod["product_locale"]))
        if key[0] and key not in catalogue:
            catalogue[key] = prod

    fields = {
        "custom_id": "example_id",
        "query": "query",
        "ad.title": "product_title",
        "ad.description": "product_description",
        "ad.brand": "product_brand",
        "ad.attributes": "product_color",
    }
    seen: dict[str, int] = {}
    ex_wanted = [c for c in ESCI_EXAMPLE_COLUMNS if c in ex_cols]
    for row, ex in enumerate(_rows(examples, ex_wanted), start=1):
        result.rows = row
        loc = _text(ex["product_locale"])
        if locale is not None and loc != locale:
            continue
        if split is not None and _text(ex.get("split")) != split:
            continue
        if version is not None and _text(ex.get(f"{version}_version")) not in ("1", "True", "true"):
            continue
        label = _label(_text(ex["esci_label"]), schema, "esci_label", row, result)
        pid = _text(ex["product_id"])
        prod = catalogue.get((pid, loc))
        if prod is None:
            result.errors.append(
                RowError(row, "product_id", f"product {pid!r} (locale {loc!r}) is not in the products file")
            )
            continue
        if label is None:
            continue
        description = _plain(_text(prod.get("product_description"))) or _plain(_text(prod.get("product_bullet_point")))
        colour = _text(prod.get("product_color"))
        ad: dict[str, Any] = {
            "title": _cut(_text(prod["product_title"]), limits.title),
            "description": _cut(description, limits.description) or None,
            "brand": _cut(_text(prod.get("product_brand")), limits.brand) or None,
            "attributes": _cut_attributes({"color": colour}, limits) if colour else None,
        }
        meta = {
            "source": "esci",
            "label": label,
            "query_id": _text(ex["query_id"]),
            "product_id": pid,
            "locale": loc,
            "example_id": _text(ex["example_id"]),
        }
        if "split" in ex:
            meta["split"] = _text(ex["split"])
        record = {"custom_id": f"esci-{_text(ex['example_id'])}", "query": _text(ex["query"]), "ad": ad, "meta": meta}
        if not _text(ex["example_id"]):
            result.errors.append(RowError(row, "example_id", "example_id must not be empty"))
            continue
        _build(row, record, fields, limits, result, seen)
        if limit is not None and len(result.pairs) >= limit:
            break
    return result


# -------------------------------------------------------------------------------------------------- WANDS


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
    _require(products, pr_cols, _WANDS_PRODUCT_REQUIRED)
    q_cols = table_columns(queries, "tsv")
    _require(queries, q_cols, _WANDS_QUERY_REQUIRED)
    l_cols = table_columns(labels, "tsv")
    _require(labels, l_cols, WANDS_LABEL_COLUMNS)
    schema = get_schema("wands")
    result = ImportResult(schema=schema.name)

    catalogue: dict[str, dict[str, Any]] = {}
    for prod in _rows(products, [c for c in WANDS_PRODUCT_COLUMNS if c in pr_cols], "tsv"):
        catalogue.setdefault(_text(prod["product_id"]), prod)
    query_rows: dict[str, dict[str, Any]] = {}
    for q in _rows(queries, [c for c in WANDS_QUERY_COLUMNS if c in q_cols], "tsv"):
        query_rows.setdefault(_text(q["query_id"]), q)

    fields = {
        "custom_id": "id",
        "query": "query",
        "ad.title": "product_name",
        "ad.description": "product_description",
        "ad.category": "category hierarchy",
        "ad.attributes": "product_features",
    }
    seen: dict[str, int] = {}
    for row, lab in enumerate(_rows(labels, WANDS_LABEL_COLUMNS, "tsv"), start=1):
        result.rows = row
        label = _label(_text(lab["label"]), schema, "label", row, result)
        qid, pid = _text(lab["query_id"]), _text(lab["product_id"])
        q = query_rows.get(qid)
        prod = catalogue.get(pid)
        if q is None:
            result.errors.append(RowError(row, "query_id", f"query {qid!r} is not in the queries file"))
        if prod is None:
            result.errors.append(RowError(row, "product_id", f"product {pid!r} is not in the products file"))
        if label is None or q is None or prod is None:
            continue
        category = _text(prod.get("category hierarchy")) or _text(prod.get("product_class"))
        ad: dict[str, Any] = {
            "title": _cut(_text(prod["product_name"]), limits.title),
            "description": _cut(_plain(_text(prod.get("product_description"))), limits.description) or None,
            "category": _cut(category, limits.category) or None,
            "attributes": _cut_attributes(_features(_text(prod.get("product_features"))), limits),
        }
        meta = {
            "source": "wands",
            "label": label,
            "query_id": qid,
            "product_id": pid,
            "id": _text(lab["id"]),
            "query_class": _text(q.get("query_class")) or None,
            "product_class": _text(prod.get("product_class")) or None,
        }
        record = {"custom_id": f"wands-{_text(lab['id'])}", "query": _text(q["query"]), "ad": ad, "meta": meta}
        _build(row, record, fields, limits, result, seen)
        if limit is not None and len(result.pairs) >= limit:
            break
    return result


def import_wands_dir(directory: str | Path, **kwargs: Any) -> ImportResult:
    """:func:`import_wands` on a directory holding product.csv, query.csv and label.csv (WANDS' ``dataset/``)."""
    d = Path(directory)
    return import_wands(d / "product.csv", d / "query.csv", d / "label.csv", **kwargs)


# ------------------------------------------------------------------------------------------------ generic


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
    kind = _format(p, fmt)
    sch = get_schema(schema)
    result = ImportResult(schema=sch.name)
    src = source or p.stem
    required = [mapping.query, mapping.title] + [c for c in (mapping.custom_id, mapping.label) if c]
    rows: Iterator[tuple[int, Mapping[str, Any]]]
    if kind == "jsonl":
        rows = _jsonl_rows(p, result)
    else:
        have = table_columns(p, kind, sep)
        _require(p, have, mapping.columns())
        rows = enumerate(_rows(p, mapping.columns(), kind, sep), start=1)
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
            return "" if value is _MISSING else _text(value)

        meta: dict[str, Any] = {"source": src}
        if mapping.label:
            label = _label(text(mapping.label), sch, mapping.label, row, result, label_map)
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
                attrs.update({str(k): _text(v) for k, v in raw.items()})
            elif raw not in (_MISSING, None, "") and not (isinstance(raw, float) and math.isnan(raw)):
                result.errors.append(RowError(row, mapping.attributes_column, "attributes must be a JSON object"))
                continue
        ad: dict[str, Any] = {
            "title": _cut(text(mapping.title), limits.title),
            "description": _cut(_plain(text(mapping.description)), limits.description) or None,
            "brand": _cut(text(mapping.brand), limits.brand) or None,
            "category": _cut(text(mapping.category), limits.category) or None,
            "attributes": _cut_attributes(attrs, limits),
        }
        cid = text(mapping.custom_id) if mapping.custom_id else f"{src}-{row}"
        record = {"custom_id": cid, "query": text(mapping.query), "ad": ad, "meta": meta}
        _build(row, record, fields, limits, result, seen)
        if limit is not None and len(result.pairs) >= limit:
            break
    return result
