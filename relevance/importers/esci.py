"""Amazon ESCI (Shopping Queries Dataset): ``shopping_queries_dataset_examples`` and ``..._products``, parquet or
CSV. Labels E/S/C/I (or the full names) in the ``esci`` schema; products joined on (product_id, locale)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

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
_ESCI_REQUIRED = ("example_id", "query", "query_id", "product_id", "product_locale", "esci_label")
_ESCI_PRODUCT_REQUIRED = ("product_id", "product_title", "product_locale")


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
    require_columns(examples, ex_cols, need)
    pr_cols = table_columns(products)
    require_columns(products, pr_cols, _ESCI_PRODUCT_REQUIRED)
    schema = get_schema("esci")
    result = ImportResult(schema=schema.name)

    wanted = [c for c in ESCI_PRODUCT_COLUMNS if c in pr_cols]
    catalogue: dict[tuple[str, str], dict[str, Any]] = {}
    for prod in read_rows(products, wanted):
        key = (clean_text(prod["product_id"]), clean_text(prod["product_locale"]))
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
    for row, ex in enumerate(read_rows(examples, ex_wanted), start=1):
        result.rows = row
        loc = clean_text(ex["product_locale"])
        if locale is not None and loc != locale:
            continue
        if split is not None and clean_text(ex.get("split")) != split:
            continue
        if version is not None and clean_text(ex.get(f"{version}_version")) not in ("1", "True", "true"):
            continue
        label = parse_label(clean_text(ex["esci_label"]), schema, "esci_label", row, result)
        pid = clean_text(ex["product_id"])
        prod = catalogue.get((pid, loc))
        if prod is None:
            result.errors.append(
                RowError(row, "product_id", f"product {pid!r} (locale {loc!r}) is not in the products file")
            )
            continue
        if label is None:
            continue
        description = strip_html(clean_text(prod.get("product_description"))) or strip_html(
            clean_text(prod.get("product_bullet_point"))
        )
        colour = clean_text(prod.get("product_color"))
        ad: dict[str, Any] = {
            "title": cut_to(clean_text(prod["product_title"]), limits.title),
            "description": cut_to(description, limits.description) or None,
            "brand": cut_to(clean_text(prod.get("product_brand")), limits.brand) or None,
            "attributes": cut_attributes({"color": colour}, limits) if colour else None,
        }
        meta = {
            "source": "esci",
            "label": label,
            "query_id": clean_text(ex["query_id"]),
            "product_id": pid,
            "locale": loc,
            "example_id": clean_text(ex["example_id"]),
        }
        if "split" in ex:
            meta["split"] = clean_text(ex["split"])
        record = {
            "custom_id": f"esci-{clean_text(ex['example_id'])}",
            "query": clean_text(ex["query"]),
            "ad": ad,
            "meta": meta,
        }
        if not clean_text(ex["example_id"]):
            result.errors.append(RowError(row, "example_id", "example_id must not be empty"))
            continue
        build_pair(row, record, fields, limits, result, seen)
        if limit is not None and len(result.pairs) >= limit:
            break
    return result
