"""The experiments' shared kit: mean ± std cells over seeds, their text, and the confusion-matrix plot.

Every study reports a statistic over seeds as its mean and sample standard deviation (0 for a single seed); the
forms below are the cells its JSON and Markdown hold. The confusion-matrix plot is the student library's
(:func:`student.evaluate.save_confusion_png`), which experiments use for any gold-by-predicted matrix.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """The mean and sample standard deviation of ``values`` (std 0 for a single value); NaN for none."""
    if not values:
        return math.nan, math.nan
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), std


def mean_std_count(values: Sequence[float]) -> list[float]:
    """``[mean, std, count]``: the pass@k study's cell (its JSON stores the count as a float)."""
    return [*mean_std(values), float(len(values))]


def mean_std_cell(values: Sequence[float], count_key: str = "count", digits: int | None = None) -> dict[str, Any]:
    """``{"mean", "std", count_key}``, mean and std rounded to ``digits`` when given; NaN for no values."""
    mean, std = mean_std(values)
    if digits is not None:
        mean, std = round(mean, digits), round(std, digits)
    return {"mean": mean, "std": std, count_key: len(values)}


def format_mean_std(mean: float, std: float) -> str:
    """``0.412 ± 0.031``."""
    return f"{mean:.3f} ± {std:.3f}"


def format_ndcg(value: float | None, digits: int = 3) -> str:
    """An NDCG cell: ``n/a`` where no query has two pairs to rank (the evaluation reports None there)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_interval(mean: float, low: float, high: float) -> str:
    """A signed difference with its interval: ``+0.012 [-0.004, +0.030]``."""
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def plot_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str) -> Path:
    """A gold (rows) by predicted (columns) count matrix over ``labels`` as a PNG heat map, shaded by row share;
    columns past the labels (e.g. unparsed answers) are left out."""
    from student.evaluate import save_confusion_png

    return save_confusion_png({"confusion": {"rows": list(labels), "matrix": [list(r) for r in matrix]}}, path, title)


def finished_run(out: Path) -> dict[str, Any] | None:
    """The summary a finished run left in ``out/eval.json``; else None, with ``out`` emptied for a fresh run."""
    report = out / "eval.json"
    if report.exists():
        return json.loads(report.read_text())
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return None
