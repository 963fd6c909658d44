"""The query-ad pair: the unit every part of the product reads and writes.

Contract (see the job contract): ``{custom_id, query, ad: {title, description?, brand?, category?,
attributes?}, meta?}``. Text is whitespace-stripped, query and title must be non-empty, and every field has a
length limit. The limits are module constants used as defaults; a service passes its own settings as a
:class:`PairLimits` through pydantic's validation context (``Pair.model_validate(data, context={"limits":
limits})`` or :func:`validate_pair`), so the same model serves the API, the importers and the generator.

Validation messages name the field (``ad.title: must not be empty``), so a 4xx can point at it, and
:func:`validate_jsonl` reads a whole JSONL upload, keeping the valid pairs and listing each bad line with its
1-based line number instead of stopping at the first.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticSerializationError, to_json

MAX_CUSTOM_ID_CHARS = 256
MAX_QUERY_CHARS = 512
MAX_TITLE_CHARS = 512
MAX_DESCRIPTION_CHARS = 4096
MAX_BRAND_CHARS = 128
MAX_CATEGORY_CHARS = 256
MAX_ATTRIBUTES = 64
MAX_ATTRIBUTE_KEY_CHARS = 64
MAX_ATTRIBUTE_VALUE_CHARS = 256
MAX_META_BYTES = 16_384
MAX_LINE_BYTES = 65_536


@dataclass(frozen=True)
class PairLimits:
    """Length limits for one pair; defaults are the module constants."""

    custom_id: int = MAX_CUSTOM_ID_CHARS
    query: int = MAX_QUERY_CHARS
    title: int = MAX_TITLE_CHARS
    description: int = MAX_DESCRIPTION_CHARS
    brand: int = MAX_BRAND_CHARS
    category: int = MAX_CATEGORY_CHARS
    attributes: int = MAX_ATTRIBUTES
    attribute_key: int = MAX_ATTRIBUTE_KEY_CHARS
    attribute_value: int = MAX_ATTRIBUTE_VALUE_CHARS
    meta_bytes: int = MAX_META_BYTES
    line_bytes: int = MAX_LINE_BYTES


DEFAULT_LIMITS = PairLimits()


def context_limits(info: ValidationInfo) -> PairLimits:
    # Called for every field of every pair: concrete type checks, not ABC isinstance (a quarter of a bulk upload).
    ctx = info.context
    if type(ctx) is dict:
        limits = ctx.get("limits")
        if type(limits) is PairLimits:
            return limits
    elif isinstance(ctx, Mapping) and isinstance(ctx.get("limits"), PairLimits):
        return ctx["limits"]
    return DEFAULT_LIMITS


def unstorable(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (a NUL, which PostgreSQL refuses, or a lone surrogate, which UTF-8
    cannot encode), or None."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000)"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (an unpaired \\ud800-\\udfff escape), which is not text"
    return None


def _text(value: str, name: str, limit: int, *, required: bool) -> str | None:
    if problem := unstorable(value):
        raise ValueError(f"{name} {problem}")
    value = value.strip()
    if not value:
        if required:
            raise ValueError(f"{name} must not be empty")
        return None
    if len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters; the limit is {limit}")
    return value


def check_custom_id(value: str, limits: PairLimits = DEFAULT_LIMITS) -> str:
    """``value`` stripped, or ValueError: empty, too long, or not storable as text. Any item's id (a pair's, a
    batch line's conversation's) is held to this."""
    return _text(value, "custom_id", limits.custom_id, required=True)  # type: ignore[return-value]


def check_meta(value: dict[str, Any] | None, limits: PairLimits = DEFAULT_LIMITS) -> dict[str, Any] | None:
    """``value`` unchanged, or ValueError: not JSON-serialisable or over ``limits.meta_bytes`` as JSON."""
    if value is None:
        return None
    try:
        size = len(to_json(value))  # compact UTF-8, in Rust: json.dumps here was half the cost of a bulk upload
    except PydanticSerializationError as exc:
        raise ValueError(f"meta must be JSON-serialisable: {exc}") from None
    if size > limits.meta_bytes:
        raise ValueError(f"meta is {size} bytes as JSON; the limit is {limits.meta_bytes}")
    return value


class Ad(BaseModel):
    """The ad side of a pair. Only the title is required; attributes are free-form string key/values."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    title: str
    description: str | None = None
    brand: str | None = None
    category: str | None = None
    attributes: dict[str, str] | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, v: str, info: ValidationInfo) -> str:
        return _text(v, "title", context_limits(info).title, required=True)  # type: ignore[return-value]

    @field_validator("description", "brand", "category")
    @classmethod
    def _optional(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return None
        limits = context_limits(info)
        name = info.field_name or "field"
        return _text(v, name, getattr(limits, name), required=False)

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, v: dict[str, str] | None, info: ValidationInfo) -> dict[str, str] | None:
        if v is None:
            return None
        limits = context_limits(info)
        if len(v) > limits.attributes:
            raise ValueError(f"attributes has {len(v)} entries; the limit is {limits.attributes}")
        out: dict[str, str] = {}
        for key, value in v.items():
            if problem := unstorable(key) or unstorable(value):
                raise ValueError(f"attributes entry {key[:40]!r} {problem}")
            k = key.strip()
            if not k:
                raise ValueError("attributes has an empty key")
            if len(k) > limits.attribute_key:
                raise ValueError(
                    f"attributes key {k[:40]!r} is {len(k)} characters; the limit is {limits.attribute_key}"
                )
            val = value.strip()
            if len(val) > limits.attribute_value:
                raise ValueError(f"attributes[{k!r}] is {len(val)} characters; the limit is {limits.attribute_value}")
            if val:
                out[k] = val
        return out or None


class Pair(BaseModel):
    """A query and an ad to be judged; ``meta`` carries anything the caller wants back (ids, gold labels)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    custom_id: str
    query: str
    ad: Ad
    meta: dict[str, Any] | None = None

    @field_validator("custom_id")
    @classmethod
    def _custom_id(cls, v: str, info: ValidationInfo) -> str:
        return check_custom_id(v, context_limits(info))

    @field_validator("query")
    @classmethod
    def _query(cls, v: str, info: ValidationInfo) -> str:
        return _text(v, "query", context_limits(info).query, required=True)  # type: ignore[return-value]

    @field_validator("meta")
    @classmethod
    def _meta(cls, v: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        return check_meta(v, context_limits(info))

    def to_json(self) -> str:
        """One JSONL line (no trailing newline), omitting absent optional fields."""
        return self.model_dump_json(exclude_none=True)


@dataclass(frozen=True)
class RowError:
    """A problem with one record of an input.

    ``row`` is 1-based: the line number in a JSONL file, the data row (header not counted) in a table.
    ``field`` names the offending field (``ad.title``, ``custom_id``, a source column) or is None when the
    record as a whole is bad (not JSON, not an object).
    """

    row: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.row}" + (f", {self.field}" if self.field else "")
        return f"{where}: {self.message}"


@dataclass
class PairBatch:
    """Valid pairs (with the row each came from) and the errors of the records that were not."""

    pairs: list[Pair] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def error_fields(exc: ValidationError) -> list[tuple[str, str]]:
    """``(field, message)`` for each error of a pydantic ``ValidationError``, fields dotted (``ad.title``)."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or None
        msg = str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif err.get("type") == "missing":
            msg = "field required"
        out.append((loc or "", msg))
    return out


@contextmanager
def paused_gc() -> Iterator[None]:
    """Hold the cyclic garbage collector off while a bulk input is turned into objects.

    A 100k-pair upload allocates millions of acyclic objects; each allocation burst triggers collections
    that walk every live object again, which doubled ingestion time. Reference counting still frees
    everything; cycles made meanwhile wait for the next collection after the block.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def validate_pair(data: Any, limits: PairLimits = DEFAULT_LIMITS) -> Pair:
    """Validate one pair (a mapping or a Pair) against ``limits``; raises ``ValidationError``."""
    if isinstance(data, Pair) and limits is DEFAULT_LIMITS:
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump()
    return Pair.model_validate(data, context={"limits": limits})


def validate_records(
    records: Iterable[tuple[int, Any]],
    *,
    limits: PairLimits = DEFAULT_LIMITS,
    max_pairs: int | None = None,
) -> PairBatch:
    """Validate ``(row, record)`` items; duplicates of an earlier ``custom_id`` are errors, not pairs.

    A record may already be a :class:`Pair` (or another model with a ``custom_id``) validated against ``limits``;
    it is taken as it is.
    """
    batch = PairBatch()
    seen: dict[str, int] = {}
    with paused_gc():
        for row, record in records:
            if isinstance(record, BaseModel):
                pair = record  # validated upstream against the same limits (a Pair, or a batch line's conversation)
            elif not isinstance(record, Mapping):
                batch.errors.append(RowError(row, None, f"expected a JSON object, got {type(record).__name__}"))
                continue
            else:
                try:
                    pair = Pair.model_validate(record, context={"limits": limits})
                except ValidationError as exc:
                    batch.errors.extend(RowError(row, f or None, m) for f, m in error_fields(exc))
                    continue
            first = seen.get(pair.custom_id)
            if first is not None:
                batch.errors.append(
                    RowError(row, "custom_id", f"duplicate custom_id {pair.custom_id!r} (first on line {first})")
                )
                continue
            if max_pairs is not None and len(batch.pairs) >= max_pairs:
                batch.errors.append(RowError(row, None, f"too many pairs: the limit is {max_pairs}; stopped reading"))
                break
            seen[pair.custom_id] = row
            batch.pairs.append(pair)
            batch.rows.append(row)
    return batch


def _jsonl_records(
    lines: Iterable[str | bytes], limits: PairLimits, errors: list[RowError]
) -> Iterator[tuple[int, Any]]:
    """``(line, Pair)`` for lines that parse and validate, ``(line, record)`` for the rest, errors for non-JSON.

    A good line is parsed and validated in one pass by pydantic's JSON parser, three times faster than
    ``json.loads`` then ``model_validate``; a line it rejects takes the slow path, which words the error exactly
    as for a record (bad UTF-8, bad JSON, not an object, or the fields at fault), so both paths agree.
    """
    context = {"limits": limits}
    for lineno, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            if len(raw) > limits.line_bytes:
                errors.append(RowError(lineno, None, f"line is {len(raw)} bytes; the limit is {limits.line_bytes}"))
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                errors.append(RowError(lineno, None, f"not UTF-8: {exc.reason} at byte {exc.start}"))
                continue
        else:
            text = raw
            size = len(text.encode("utf-8", errors="replace"))
            if size > limits.line_bytes:
                errors.append(RowError(lineno, None, f"line is {size} bytes; the limit is {limits.line_bytes}"))
                continue
        if not text.strip():
            continue
        try:
            pair = Pair.model_validate_json(raw, context=context)
        except ValidationError:
            pair = None
        if pair is not None:
            yield lineno, pair
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.append(RowError(lineno, None, f"invalid JSON: {exc.msg} at column {exc.colno}"))
            continue
        except RecursionError:  # arrays or objects nested thousands deep: no pair looks like that
            errors.append(RowError(lineno, None, "invalid JSON: nested too deeply"))
            continue
        yield lineno, record


def validate_jsonl(
    lines: Iterable[str | bytes],
    *,
    limits: PairLimits = DEFAULT_LIMITS,
    max_pairs: int | None = None,
) -> PairBatch:
    """Validate a JSONL stream line by line; blank lines are skipped, bad lines are reported and skipped.

    Errors carry the 1-based line number and the field, so a whole upload can be fixed in one round trip.
    """
    pre: list[RowError] = []
    batch = validate_records(_jsonl_records(lines, limits, pre), limits=limits, max_pairs=max_pairs)
    batch.errors = sorted(pre + batch.errors, key=lambda e: e.row)
    return batch


def read_pairs_jsonl(
    path: str | Path, *, limits: PairLimits = DEFAULT_LIMITS, max_pairs: int | None = None
) -> PairBatch:
    """:func:`validate_jsonl` over a file."""
    with open(path, "rb") as fh:
        return validate_jsonl((line.rstrip(b"\r\n") for line in fh), limits=limits, max_pairs=max_pairs)


def write_pairs_jsonl(pairs: Iterable[Pair], path: str | Path) -> int:
    """Write pairs one per line; returns the count."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for pair in pairs:
            fh.write(pair.to_json())
            fh.write("\n")
            n += 1
    return n
