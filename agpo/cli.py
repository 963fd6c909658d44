"""The ``agpo`` command line."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.table import Table

from agpo.advantages import ESTIMATORS

app = typer.Typer(
    help="AGPO: Asymmetric Group Policy Optimization for RL with verifiable rewards.", no_args_is_help=True
)
bench_app = typer.Typer(help="Benchmarks (ratios against baselines run side by side).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
console = Console()


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:+.2f}"


@app.command()
def demo(
    group_size: Annotated[int, typer.Option("--group-size", "-g", min=2, help="responses sampled per prompt")] = 8,
) -> None:
    """Show how AGPO and the baselines assign advantages across a group's success rate."""
    from agpo.demo import advantage_table

    rows = advantage_table(group_size)
    table = Table(
        title=f"Advantage of a correct (top) and a wrong (bottom) response\nin a group of {group_size}, binary reward"
    )
    table.add_column("right", justify="right", style="bold")
    for row in rows:
        table.add_column(row.estimator, justify="right")
    for k in range(group_size + 1):
        table.add_row(f"{k}/{group_size}", *[f"{_fmt(r.cells[k].pos)}\n{_fmt(r.cells[k].neg)}" for r in rows])
    table.add_section()
    table.add_row("wrong\nshare", *[f"{r.neg_share:.0%}" for r in rows])
    console.print(table)
    cfg = ESTIMATORS["agpo"]
    console.print(
        f"AGPO (lambda_pos={cfg.lambda_pos}, lambda_neg={cfg.lambda_neg}): every wrong response is pushed down by "
        f"{cfg.lambda_neg}, even when the whole group is wrong (GRPO gives that group nothing); a correct one is "
        "pulled up most when it is rare, and not at all when every response is right."
    )


@bench_app.command("advantages")
def bench_advantages_cmd(
    num_rewards: Annotated[int, typer.Option(help="rewards per measurement")] = 1_000_000,
    group_sizes: Annotated[str, typer.Option(help="comma-separated group sizes")] = "8,16,64",
    repeats: Annotated[int, typer.Option(min=1, help="timed rounds per vectorised contender")] = 7,
    out: Annotated[Path | None, typer.Option(help="also write the figures as JSON here")] = None,
) -> None:
    """Time AGPO's advantages against plain GRPO normalisation and a per-group Python loop."""
    from agpo.bench import bench_advantages

    sizes = tuple(int(s) for s in group_sizes.split(","))
    with console.status("timing advantage estimators...") as status:
        rows = bench_advantages(num_rewards, sizes, repeats, progress=lambda msg: status.update(msg))
    table = Table(
        title=f"Advantages for {num_rewards:,} rewards (median of {repeats}; torch threads {torch.get_num_threads()})"
    )
    for col in (
        "G",
        "AGPO ms",
        "GRPO (TRL) ms",
        "GRPO (same engine) ms",
        "AGPO by index ms",
        "loop ms",
        "AGPO / GRPO (TRL)",
        "AGPO / GRPO (same engine)",
        "loop / AGPO",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r.group_size),
            f"{r.agpo_ms:.2f}",
            f"{r.trl_grpo_ms:.2f}",
            f"{r.grpo_ms:.2f}",
            f"{r.agpo_index_ms:.2f}",
            f"{r.loop_ms:.0f}",
            f"{r.agpo_over_trl:.2f}x",
            f"{r.agpo_over_grpo:.2f}x",
            f"{r.loop_over_agpo:.0f}x",
        )
    console.print(table)
    if out:
        meta = {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor(),
            "cpus": os.cpu_count(),
            "repeats": repeats,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta, "rows": [r.as_dict() for r in rows]}, indent=2))
        console.print(f"wrote {out}")


if __name__ == "__main__":
    app()
