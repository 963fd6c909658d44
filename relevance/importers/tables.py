"""What every importer shares: reading a table (JSONL, CSV, TSV, parquet), checking its columns, cleaning
product text to the pair limits, and building a :class:`~relevance.pairs.Pair` or a row error."""

from __future__ import annotations

import csv
import html
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from relevance.pairs import Pair, PairLimits, RowError, error_fields
from relevance.schemas import LabelSchema


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


Format = Literal["parquet", "csv", "tsv", "jsonl"]


def table_format(path: Path, fmt: Format | None) -> Format:
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


def separator(fmt: Format, sep: str | None) -> str:
    return sep if sep is not None else ("\t" if fmt == "tsv" else ",")


def table_columns(path: str | Path, fmt: Format | None = None, sep: str | None = None) -> list[str]:
    """The column names of a parquet, CSV or TSV file, read from its header only."""
    p = Path(path)
    kind = table_format(p, fmt)
    if kind == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(p).names)
    if kind == "jsonl":
        raise ValueError("JSONL has no header; its fields are checked per row")
    # Only the first record is read, so a header check never depends on the rows below it.
    with open(p, newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh, delimiter=separator(kind, sep)), [])
    return list(header)


def require_columns(path: str | Path, have: Sequence[str], need: Sequence[str]) -> None:
    missing = [c for c in need if c not in have]
    if missing:
        raise MissingColumnsError(path, missing)


def read_rows(
    path: str | Path, columns: Sequence[str], fmt: Format | None = None, sep: str | None = None
) -> Iterator[dict[str, Any]]:
    """Rows of a table as dicts of the given (present) columns; CSV cells are read as text, empty cells as ''."""
    p = Path(path)
    kind = table_format(p, fmt)
    import pandas as pd

    if kind == "parquet":
        frame = pd.read_parquet(p, columns=list(columns))
    else:
        frame = pd.read_csv(
            p, sep=separator(kind, sep), usecols=list(columns), dtype=str, keep_default_na=False, na_values=[]
        )
    names = list(frame.columns)
    for values in frame.itertuples(index=False, name=None):
        yield dict(zip(names, values, strict=True))


def clean_text(value: Any) -> str:
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


def strip_html(text: str) -> str:
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()


def cut_to(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 3)].rstrip() + "..."


def cut_attributes(attrs: Mapping[str, str], limits: PairLimits) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for k, v in attrs.items():
        key, val = cut_to(k.strip(), limits.attribute_key), cut_to(v.strip(), limits.attribute_value)
        if key and val and key not in out:
            out[key] = val
        if len(out) >= limits.attributes:
            break
    return out or None


def build_pair(
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


def parse_label(
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
