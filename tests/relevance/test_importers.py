"""Importers on small fixture files in the upstream column layouts, bad rows included."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from relevance.importers import (
    ColumnMapping,
    MissingColumnsError,
    import_esci,
    import_table,
    import_wands,
    import_wands_dir,
)

FIXTURES = Path(__file__).parent / "fixtures"
ESCI_EXAMPLES = FIXTURES / "esci" / "shopping_queries_dataset_examples.csv"
ESCI_PRODUCTS = FIXTURES / "esci" / "shopping_queries_dataset_products.csv"


def _check_esci(result) -> None:
    assert result.schema == "esci"
    assert [p.custom_id for p in result.pairs] == ["esci-0", "esci-1", "esci-2", "esci-7"]
    assert result.labels == ["Irrelevant", "Exact", "Substitute", "Exact"]
    assert [(e.row, e.field) for e in result.errors] == [(4, "esci_label"), (5, "query"), (6, "product_id")]
    assert "unknown label 'X'" in result.errors[0].message and "E" not in result.errors[0].message.split("'X'")[0]
    first = result.pairs[0]
    assert first.query == "!awnmower tractor"
    assert first.ad.title == "Husqvarna Riding Lawn Mower Cover"
    assert first.ad.description == "Fits most riding mowers & tractors."  # HTML removed
    assert first.ad.brand == "Husqvarna" and first.ad.attributes == {"color": "Green"}
    assert first.meta is not None and first.meta["query_id"] == "0" and first.meta["product_id"] == "B000MOO21W"
    assert result.pairs[1].ad.description.startswith("42-inch deck")  # bullet points when no description
    assert result.pairs[3].query == "lawn mower cover, waterproof"


def test_esci_csv() -> None:
    _check_esci(import_esci(ESCI_EXAMPLES, ESCI_PRODUCTS))


def test_esci_parquet(tmp_path: Path) -> None:
    ex, pr = tmp_path / "examples.parquet", tmp_path / "products.parquet"
    pd.read_csv(ESCI_EXAMPLES).to_parquet(ex)  # integer ids and flags, as upstream
    pd.read_csv(ESCI_PRODUCTS).to_parquet(pr)
    _check_esci(import_esci(ex, pr))


def test_esci_filters() -> None:
    spanish = import_esci(ESCI_EXAMPLES, ESCI_PRODUCTS, locale="es")
    assert [p.query for p in spanish.pairs] == ["auriculares inalambricos"] and not spanish.errors
    test_small = import_esci(ESCI_EXAMPLES, ESCI_PRODUCTS, split="test", version="small")
    assert [p.custom_id for p in test_small.pairs] == ["esci-2", "esci-7"]
    assert len(import_esci(ESCI_EXAMPLES, ESCI_PRODUCTS, locale=None, limit=2).pairs) == 2


def test_missing_columns_fail_before_any_row(tmp_path: Path) -> None:
    bad = tmp_path / "examples.csv"
    # The body would not even parse; the header check must come first.
    bad.write_text('example_id,query,product_id\n1,"unterminated,x\n1,2,3,4,5,6,7\n')
    with pytest.raises(MissingColumnsError) as info:
        import_esci(bad, ESCI_PRODUCTS)
    assert info.value.missing == ["query_id", "product_locale", "esci_label"]
    assert "esci_label" in str(info.value)
    # Filters need their columns too.
    no_split = tmp_path / "no_split.csv"
    no_split.write_text("example_id,query,query_id,product_id,product_locale,esci_label\n")
    with pytest.raises(MissingColumnsError, match="split"):
        import_esci(no_split, ESCI_PRODUCTS, split="test")


def test_wands() -> None:
    result = import_wands_dir(FIXTURES / "wands")
    assert result.schema == "wands"
    assert [p.custom_id for p in result.pairs] == ["wands-0", "wands-1", "wands-2"]
    assert result.labels == ["Irrelevant", "Partial", "Exact"]
    assert [(e.row, e.field) for e in result.errors] == [
        (4, "label"),
        (5, "query"),
        (6, "query_id"),
        (7, "product_id"),
        (8, "product_name"),
    ]
    bed = result.pairs[0]
    assert bed.query == "salon chair" and bed.ad.title == "solid wood platform bed"
    assert bed.ad.category == "Furniture / Bedroom Furniture / Beds & Headboards / Beds"
    assert bed.ad.attributes == {
        "overallwidth-sidetoside": "64.7",
        "dsprimaryproductstyle": "modern",
        "material": "solid wood",
    }
    assert bed.meta is not None and bed.meta["query_class"] == "Massage Chairs"
    assert "malformed feature" not in str(result.pairs[1].ad.attributes)


def test_wands_missing_columns(tmp_path: Path) -> None:
    labels = tmp_path / "label.csv"
    labels.write_text("id\tquery_id\tproduct_id\tgrade\n0\t0\t0\tExact\n")
    with pytest.raises(MissingColumnsError, match="label"):
        import_wands(FIXTURES / "wands" / "product.csv", FIXTURES / "wands" / "query.csv", labels)


def test_generic_jsonl_with_nested_fields() -> None:
    mapping = ColumnMapping(
        query="q", title="product.name", brand="product.brand", custom_id="id", label="rel", query_id="qid",
        attributes_column="specs",
    )  # fmt: skip
    result = import_table(FIXTURES / "generic.jsonl", mapping)
    assert [p.custom_id for p in result.pairs] == ["a1", "a2"]
    assert result.labels == ["Exact", "Substitute"]
    assert result.pairs[0].ad.attributes == {"colour": "red", "size": "9"}
    assert result.pairs[0].meta == {"source": "generic", "label": "Exact", "query_id": "q1"}
    assert [(e.row, e.field) for e in result.errors] == [
        (4, "rel"),
        (5, None),
        (6, "q"),
        (7, "product.name"),
        (8, "id"),
    ]
    assert "duplicate id 'a1'" in result.errors[-1].message


def test_generic_csv_with_label_map_and_schema() -> None:
    mapping = ColumnMapping(query="search_term", title="ad_title", brand="ad_brand", custom_id="pair_id", label="grade",
                            attributes=("colour",))  # fmt: skip
    result = import_table(FIXTURES / "generic.csv", mapping, schema="graded")
    assert result.schema == "graded"
    assert result.labels == ["Perfect", "Good"]
    assert result.pairs[0].ad.attributes == {"colour": "black"}
    assert [(e.row, e.field) for e in result.errors] == [(3, "ad_title"), (4, "grade")]

    mapped = import_table(FIXTURES / "generic.csv", mapping, schema="binary", label_map={"3": "R", "2": "R", "1": "I"})
    assert mapped.labels == ["Relevant", "Relevant"]

    with pytest.raises(MissingColumnsError, match="relevance"):
        import_table(FIXTURES / "generic.csv", ColumnMapping(query="search_term", title="ad_title", label="relevance"))
