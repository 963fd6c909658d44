"""Home Depot Product Search Relevance (Kaggle, 2016): ``search_term``, ``product_title`` and ``relevance``, the
mean of at least three crowd raters' grades on 1 (irrelevant), 2 (partly relevant), 3 (perfect match).

The mean is mapped onto three ESCI labels, so that pairs read like every other source in the default schema:

- Exact: mean >= 2.5 (most raters called it a perfect match);
- Substitute: 2.0 <= mean < 2.5 (partly relevant on balance: the raters' "somewhat relevant");
- Irrelevant: mean < 2.0 (at least one rater said irrelevant and nobody outweighed it).

The raw mean stays in ``meta.score``. Complement has no counterpart in the raters' scale and never occurs.
"""

from __future__ import annotations

import math
from pathlib import Path

from relevance.importers.tables import (
    ImportResult,
    build_pair,
    clean_text,
    cut_to,
    read_rows,
    require_columns,
    table_columns,
)
from relevance.pairs import DEFAULT_LIMITS, PairLimits, RowError

HOMEDEPOT_COLUMNS = ("id", "product_uid", "search_term", "product_title", "relevance")
EXACT_AT = 2.5
SUBSTITUTE_AT = 2.0


def homedepot_label(score: float) -> str:
    """The ESCI label of a mean rating on Home Depot's 1-3 scale."""
    if not 1.0 <= score <= 3.0:
        raise ValueError(f"relevance must lie in [1, 3], got {score}")
    if score >= EXACT_AT:
        return "Exact"
    if score >= SUBSTITUTE_AT:
        return "Substitute"
    return "Irrelevant"


# The spread of a mean of three 1-3 grades around the pair's "true" grade: one rater's grades spread about 0.5,
# and a mean of three about 0.5 / sqrt(3).
RATER_MEAN_SPREAD = 0.3


def homedepot_label_shares(score: float, spread: float = RATER_MEAN_SPREAD) -> dict[str, float]:
    """How likely each label is for a pair whose raters' mean is ``score``: the share of a normal around the mean
    (standard deviation ``spread``) that falls in each label's band.

    A mean of 2.33 and a mean of 3.0 are both one hard label apart from their neighbours, but the first sits
    near two boundaries and the second near none; these shares tell a student so (a soft target, as the teacher's
    vote distribution is). ``spread`` 0 gives the hard label.
    """
    label = homedepot_label(score)
    if spread <= 0:
        return {name: float(name == label) for name in ("Exact", "Substitute", "Irrelevant")}

    def below(x: float) -> float:
        return 0.5 * (1.0 + math.erf((x - score) / (spread * math.sqrt(2.0))))

    irrelevant, up_to_exact = below(SUBSTITUTE_AT), below(EXACT_AT)
    return {"Exact": 1.0 - up_to_exact, "Substitute": up_to_exact - irrelevant, "Irrelevant": irrelevant}


def _score(raw: str, row: int, result: ImportResult) -> float | None:
    try:
        score = float(raw)
    except ValueError:
        score = math.nan
    if not 1.0 <= score <= 3.0:
        result.errors.append(RowError(row, "relevance", f"expected a mean rating in [1, 3], got {raw!r}"))
        return None
    return score


def import_homedepot(
    path: str | Path,
    *,
    split: str | None = None,
    limit: int | None = None,
    limits: PairLimits = DEFAULT_LIMITS,
) -> ImportResult:
    """Read a Home Depot ``train.csv`` (or the project's committed sample) into ESCI-labelled pairs.

    ``split`` keeps only rows whose ``split`` column equals it (the committed sample has one).
    """
    cols = table_columns(path, "csv")
    require_columns(path, cols, HOMEDEPOT_COLUMNS + (("split",) if split else ()))
    result = ImportResult(schema="esci")
    fields = {"custom_id": "id", "query": "search_term", "ad.title": "product_title"}
    seen: dict[str, int] = {}
    wanted = [*HOMEDEPOT_COLUMNS, *(["split"] if "split" in cols else [])]
    for row, rec in enumerate(read_rows(path, wanted, "csv"), start=1):
        if split and clean_text(rec.get("split")) != split:
            continue
        result.rows += 1
        score = _score(clean_text(rec["relevance"]), row, result)
        if score is None:
            continue
        record = {
            "custom_id": f"homedepot-{clean_text(rec['id'])}",
            "query": clean_text(rec["search_term"]),
            "ad": {"title": cut_to(clean_text(rec["product_title"]), limits.title)},
            "meta": {
                "source": "homedepot",
                "label": homedepot_label(score),
                "score": score,
                "product_id": clean_text(rec["product_uid"]),
                "id": clean_text(rec["id"]),
            },
        }
        build_pair(row, record, fields, limits, result, seen)
        if limit is not None and len(result.pairs) >= limit:
            break
    return result
