"""pass@k evaluation of checkpoints: sample n completions per problem, verify them, and report curves.

One call evaluates one checkpoint on one problem set and returns per-problem correct counts (kept raw, so any
pass@k and any bootstrap can be recomputed later) together with the curve and its confidence intervals.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agpo.passk import default_ks, pass_at_k_bootstrap
from agpo.rewards import RewardFunction, score
from rlvr.sampling import SamplingParams, sample


@dataclass
class EvalResult:
    label: str
    model: str
    split: str
    n: int
    counts: list[int]
    curve: dict[int, float]
    low: dict[int, float]
    high: dict[int, float]
    samples: dict[str, list[str]] = field(default_factory=dict)  # a few completions per problem, for reading

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> EvalResult:
        for key in ("curve", "low", "high"):
            data[key] = {int(k): v for k, v in data[key].items()}
        return cls(**data)


def evaluate(
    model_dir: str | Path,
    prompts: Sequence[str],
    references: Sequence[str],
    reward: RewardFunction,
    params: SamplingParams,
    *,
    label: str = "",
    split: str = "",
    backend: str = "transformers",
    keep_samples: int = 2,
    progress: Callable[[int], None] | None = None,
) -> EvalResult:
    """Sample ``params.n`` completions per prompt and count the correct ones (reward >= 1)."""
    completions = sample(model_dir, prompts, params, backend=backend, progress=progress)
    counts = []
    kept: dict[str, list[str]] = {}
    for prompt, reference, outs in zip(prompts, references, completions, strict=True):
        values = score(reward, outs, [reference] * len(outs))
        counts.append(sum(v >= 1.0 for v in values))
        if len(kept) < 20:
            kept[prompt] = outs[:keep_samples]
    rows = pass_at_k_bootstrap(counts, params.n, default_ks(params.n))
    return EvalResult(
        label=label or Path(model_dir).name,
        model=str(model_dir),
        split=split,
        n=params.n,
        counts=counts,
        curve={r.k: r.mean for r in rows},
        low={r.k: r.low for r in rows},
        high={r.k: r.high for r in rows},
        samples=kept,
    )


def save_results(results: Sequence[EvalResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([r.to_json() for r in results], indent=1))


def load_results(path: Path) -> list[EvalResult]:
    return [EvalResult.from_json(d) for d in json.loads(path.read_text())]


def plot_curves(
    results: Sequence[EvalResult],
    path: Path,
    title: str = "pass@k",
    ylabel: str = "pass@k",
    ylim: tuple[float, float] | None = (0, 1),
) -> None:
    """pass@k against k (log scale) for several checkpoints on one plot, with bootstrap bands.

    With ``ylim=None`` the axis fits the data and a line marks 0: the form for differences between models.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for r in results:
        ks = sorted(r.curve)
        ax.plot(ks, [r.curve[k] for k in ks], marker="o", markersize=3, label=r.label)
        ax.fill_between(ks, [r.low[k] for k in ks], [r.high[k] for k in ks], alpha=0.15)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples)")
    ax.set_ylabel(ylabel)
    if ylim is None:
        ax.axhline(0.0, color="black", linewidth=0.8)
    else:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
