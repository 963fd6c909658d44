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

from relevance.importers.esci import ESCI_EXAMPLE_COLUMNS, ESCI_PRODUCT_COLUMNS, import_esci
from relevance.importers.generic import ColumnMapping, import_table
from relevance.importers.tables import ImportResult, MissingColumnsError, table_columns
from relevance.importers.wands import (
    WANDS_LABEL_COLUMNS,
    WANDS_PRODUCT_COLUMNS,
    WANDS_QUERY_COLUMNS,
    import_wands,
    import_wands_dir,
)

__all__ = [
    "ESCI_EXAMPLE_COLUMNS",
    "ESCI_PRODUCT_COLUMNS",
    "WANDS_LABEL_COLUMNS",
    "WANDS_PRODUCT_COLUMNS",
    "WANDS_QUERY_COLUMNS",
    "ColumnMapping",
    "ImportResult",
    "MissingColumnsError",
    "import_esci",
    "import_table",
    "import_wands",
    "import_wands_dir",
    "table_columns",
]
