"""RL commands: the advantage table, Countdown base models, training, pass@k evaluation, the study, benchmarks.

``app`` holds the top-level commands (``agpo train``, ``agpo eval``, ...); ``base_app`` and ``bench_app`` are the
``agpo base`` and ``agpo bench`` groups. Heavy libraries load inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import console
from cli.common import fail as _fail

app = typer.Typer()
bench_app = typer.Typer(help="Benchmarks (ratios against baselines run side by side).", no_args_is_help=True)
base_app = typer.Typer(help="The tiny Countdown base model (built from scratch, no hub).", no_args_is_help=True)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:+.2f}"


@app.command()
def demo(
    group_size: Annotated[int, typer.Option("--group-size", "-g", min=2, help="responses sampled per prompt")] = 8,
) -> None:
    """Show how AGPO and the baselines assign advantages across a group's success rate."""
    from agpo.advantages import ESTIMATORS
    from experiments.advantage_table import advantage_table

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
    import torch

    from experiments.bench.advantages import bench_advantages

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


@bench_app.command("trl-step")
def bench_trl_step_cmd(
    model: Annotated[Path, typer.Option(help="model directory (e.g. the Countdown base)")] = Path(
        "models/countdown-base"
    ),
    steps: Annotated[int, typer.Option(min=1)] = 3,
    repeats: Annotated[int, typer.Option(min=1)] = 3,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda where torch sees a GPU)")] = None,
) -> None:
    """Time TRL training steps of AGPOTrainer against plain GRPOTrainer on the same model and batch."""
    from experiments.bench.advantages import bench_trainer_step
    from rlvr.sampling import torch_device

    if not (model / "config.json").exists():
        raise _fail(f"--model {model}: no model there (build one with: agpo base build --out {model})")
    if device not in (None, "cpu", "cuda"):
        raise _fail(f"--device {device!r}: use cpu or cuda")
    try:
        target = torch_device(device).type
    except RuntimeError as e:
        raise _fail(f"--device {device}: {e}") from e
    with console.status(f"timing TRL steps on {target} (GRPOTrainer and AGPOTrainer, alternating)..."):
        r = bench_trainer_step(str(model), steps=steps, repeats=repeats, device=target)
    console.print(
        f"{steps} TRL steps on {target} (median of {repeats}): GRPOTrainer {r.grpo_s:.2f}s, "
        f"AGPOTrainer {r.agpo_s:.2f}s, ratio {r.ratio:.3f}"
    )


def _countdown_split(split: str, problems: int) -> tuple:
    """The first ``problems`` problems of a Countdown split, or a CLI error naming the splits there are."""
    from rlvr.tasks.countdown import make_splits

    try:
        return getattr(make_splits(), split)[:problems]
    except AttributeError:
        raise _fail(f"unknown split {split!r}; use test_easy, test_hard, test_rare or dev") from None


@base_app.command("build")
def base_build(
    out: Annotated[Path, typer.Option(help="model directory to write")] = Path("runs/countdown/base"),
    seed: Annotated[int, typer.Option(help="model init and trace sampling seed")] = 0,
    trace_passes: Annotated[int, typer.Option(min=1, help="fresh random traces per SFT problem")] = 5,
    epochs: Annotated[float, typer.Option(min=0.01)] = 1.0,
    hidden: Annotated[int, typer.Option(min=16)] = 128,
    layers: Annotated[int, typer.Option(min=1)] = 4,
    max_failures: Annotated[int, typer.Option(min=0, help="dead ends before the solution, at most, per trace")] = 4,
    fail_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="chance of each further dead end, up to --max-failures")
    ] = 0.6,
    max_chars: Annotated[
        int | None,
        typer.Option(min=16, help="cap each trace at this many characters (= tokens), dropping dead ends to fit"),
    ] = None,
) -> None:
    """Build the Countdown base model: character tokenizer, tiny Qwen2, SFT on search traces."""
    import sys

    from experiments.countdown.base_model import BaseRecipe, build_base

    recipe = BaseRecipe(
        seed=seed,
        trace_passes=trace_passes,
        epochs=epochs,
        hidden=hidden,
        layers=layers,
        max_failures=max_failures,
        max_chars=max_chars,
        fail_rate=fail_rate,
    )
    card = build_base(out, recipe, command=" ".join(["agpo", *sys.argv[1:]]))
    console.print(
        f"base model: {out} ({card['parameters']:,} parameters, SFT loss {card['metrics']['train_loss']:.3f})"
    )


@app.command()
def train(
    config: Annotated[Path | None, typer.Option(help="YAML file of TrainConfig settings")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override: key=value (repeatable)")] = None,
    estimator: Annotated[str | None, typer.Option(help="agpo, grpo, dr_grpo, nsr, psr, w_reinforce, rloo")] = None,
    lambda_pos: Annotated[float | None, typer.Option()] = None,
    lambda_neg: Annotated[float | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option(help="learning rate")] = None,
    group_size: Annotated[int | None, typer.Option(help="samples per prompt")] = None,
    steps: Annotated[int | None, typer.Option(help="optimizer steps")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    base_model: Annotated[Path | None, typer.Option(help="model directory to start from")] = None,
    output_dir: Annotated[Path | None, typer.Option(help="where the trained policy goes")] = None,
) -> None:
    """RL-train a policy with AGPO (or a baseline estimator) through TRL."""
    from rlvr.train import load_config
    from rlvr.train import train as run

    flags = {
        "estimator": estimator,
        "lambda_pos": lambda_pos,
        "lambda_neg": lambda_neg,
        "learning_rate": lr,
        "group_size": group_size,
        "steps": steps,
        "seed": seed,
        "base_model": base_model,
        "output_dir": output_dir,
    }
    overrides = [*(set_ or []), *(f"{k}={v}" for k, v in flags.items() if v is not None)]
    try:
        cfg = load_config(config, overrides)
        summary = run(cfg)
    except (ValueError, FileNotFoundError) as e:
        raise _fail(str(e)) from e
    console.print(
        f"trained {summary['steps']} steps in {summary['train_runtime_s']:.0f}s; "
        f"reward {summary['reward_first']} -> {summary['reward_last']}; policy saved to {cfg.output_dir}"
    )


@app.command("eval")
def eval_cmd(
    model: Annotated[list[Path], typer.Option(help="model directory (repeat for several checkpoints)")],
    label: Annotated[list[str] | None, typer.Option(help="legend label per --model, in order")] = None,
    split: Annotated[str, typer.Option(help="test_easy, test_hard, test_rare or dev")] = "test_easy",
    problems: Annotated[int, typer.Option(min=1, help="first N problems of the split")] = 100,
    n: Annotated[int, typer.Option(min=1, help="samples per problem; pass@k for k = 1, 2, 4, ..., n")] = 256,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 128,
    temperature: Annotated[float, typer.Option(min=0.0)] = 1.0,
    seed: Annotated[int, typer.Option()] = 0,
    backend: Annotated[str, typer.Option(help="transformers, or vllm where installed")] = "transformers",
    out: Annotated[Path, typer.Option(help="JSON results; the plot goes beside it as .png")] = Path(
        "runs/countdown/eval.json"
    ),
) -> None:
    """Sample n completions per Countdown problem, verify them, and report pass@k curves (JSON + PNG)."""
    from rich.progress import Progress

    from rlvr.evaluate import evaluate, plot_curves, save_results
    from rlvr.sampling import SamplingParams
    from rlvr.tasks.countdown import CountdownReward

    labels = label or []
    if labels and len(labels) != len(model):
        raise _fail(f"{len(labels)} --label values for {len(model)} --model values; give one per model or none")
    chosen = _countdown_split(split, problems)
    params = SamplingParams(n=n, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    results = []
    with Progress(console=console) as bar:
        for i, m in enumerate(model):
            if not (m / "config.json").exists():
                raise _fail(f"--model {m}: no config.json there; is it a model directory?")
            task = bar.add_task(f"sampling {m.name}", total=len(chosen) * n)
            results.append(
                evaluate(
                    m,
                    [p.prompt for p in chosen],
                    [p.reference for p in chosen],
                    CountdownReward(),
                    params,
                    label=labels[i] if labels else m.name,
                    split=split,
                    backend=backend,
                    progress=lambda k, task=task: bar.advance(task, k),
                )
            )
    save_results(results, out)
    plot_curves(results, out.with_suffix(".png"), title=f"Countdown {split}: pass@k ({len(chosen)} problems)")
    table = Table(title=f"pass@k on {split} ({len(chosen)} problems, n={n})")
    table.add_column("model")
    ks = sorted(results[0].curve)
    for k in ks:
        table.add_column(f"@{k}", justify="right")
    for r in results:
        table.add_row(r.label, *[f"{r.curve[k]:.3f}" for k in ks])
    console.print(table)
    console.print(f"wrote {out} and {out.with_suffix('.png')}")


@app.command("prefix-effect")
def prefix_effect(
    base: Annotated[Path, typer.Option(help="the base model the others were trained from")],
    model: Annotated[list[str], typer.Option(help="LABEL=DIR of a trained model (repeatable)")],
    reference: Annotated[
        list[str] | None,
        typer.Option(help="a --model label: also give every shift minus this model's (repeatable; default: the first)"),
    ] = None,
    split: Annotated[str, typer.Option(help="test_easy, test_hard, test_rare or dev")] = "test_hard",
    problems: Annotated[int, typer.Option(min=1, help="first N problems of the split")] = 100,
    n: Annotated[int, typer.Option(min=2, help="samples per problem from the base")] = 16,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 128,
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Path, typer.Option(help="JSON result; the bar plot goes beside it as .png")] = Path(
        "runs/countdown/prefix_effect.json"
    ),
) -> None:
    """How RL moved the log-probability of tokens a wrong Countdown answer shares with a right one."""
    import sys

    from experiments.prefix_effect import measure_and_report, models_to_compare
    from rlvr.sampling import SamplingParams
    from rlvr.tasks.countdown import CountdownReward

    try:
        models = models_to_compare(model, reference or ())
    except ValueError as e:
        raise _fail(str(e)) from e
    chosen = _countdown_split(split, problems)
    measure_and_report(
        base,
        models,
        [p.prompt for p in chosen],
        [p.reference for p in chosen],
        CountdownReward(),
        SamplingParams(n=n, max_new_tokens=max_new_tokens, seed=seed),
        differences_from=reference or (),
        split=split,
        command=" ".join(["agpo", *sys.argv[1:]]),
        out=out,
        title=f"Countdown {split}: {len(chosen)} problems x {n} base samples",
        console=console,
    )


@app.command()
def outcomes(
    model: Annotated[list[str], typer.Option(help="LABEL=DIR of a model (repeatable)")],
    split: Annotated[str, typer.Option(help="test_easy, test_hard, test_rare or dev")] = "test_hard",
    problems: Annotated[int, typer.Option(min=1, help="first N problems of the split")] = 40,
    n: Annotated[int, typer.Option(min=1, help="samples per problem")] = 32,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 128,
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Path, typer.Option(help="JSON result")] = Path("runs/countdown/outcomes.json"),
) -> None:
    """Share of correct answers, false ``yes`` claims and missing answers per model on a Countdown split."""
    import sys

    from experiments.countdown.outcomes import outcome_shares, outcomes_table, save
    from experiments.prefix_effect import parse_models
    from rlvr.sampling import SamplingParams

    try:
        models = parse_models(model)
    except ValueError as e:
        raise _fail(str(e)) from e
    chosen = _countdown_split(split, problems)
    params = SamplingParams(n=n, max_new_tokens=max_new_tokens, seed=seed)
    result = {
        "split": split,
        "problems": len(chosen),
        "n": n,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "command": " ".join(["agpo", *sys.argv[1:]]),
        "models": {label: outcome_shares(path, chosen, params) for label, path in models.items()},
    }
    save(result, out)
    console.print(outcomes_table(result))
    console.print(f"wrote {out}")


def _without_options(argv: list[str], *options: str) -> list[str]:
    """The command line without these options and their values (the report's command is what reproduces it)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in options:
            skip = True
        elif not arg.startswith(tuple(option + "=" for option in options)):
            kept.append(arg)
    return kept


@app.command()
def study(
    config: Annotated[Path | None, typer.Option(help="YAML of StudyConfig settings (default: the full study)")] = None,
    report: Annotated[Path, typer.Option(help="Markdown report; plots and raw JSON go beside it")] = Path(
        "docs/results/passk_study.md"
    ),
    ablations: Annotated[bool, typer.Option(help="also run the lambda_pos and positive-term ablations")] = True,
    hours: Annotated[
        float | None,
        typer.Option(
            min=0, help="start no new training or evaluation after this many hours; the report says what is left"
        ),
    ] = None,
    first: Annotated[
        list[str] | None,
        typer.Option(help="run this arm (method or ablation) before the others in each seed; repeatable"),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(help="start new work for this arm alone (repeatable); the others report what is cached"),
    ] = None,
) -> None:
    """From one base model: GRPO, Dr. GRPO, NSR, W-REINFORCE and AGPO, lr tuned on dev, seeds, pass@k to n."""
    import sys
    import time

    from experiments.countdown.study import Study, StudyConfig, render_report

    deadline = None if hours is None else time.time() + hours * 3600
    try:
        cfg = StudyConfig.load(config)
        summary = Study(cfg, log=console.print, deadline=deadline).run(
            report, include_ablations=ablations, first=first or (), only=only or ()
        )
    except (ValueError, FileNotFoundError) as e:
        raise _fail(str(e)) from e
    render_report(
        summary, report, command=" ".join(["agpo", *_without_options(sys.argv[1:], "--hours", "--first", "--only")])
    )
    pending = summary["pending"]
    console.print(f"wrote {report}" + (f" ({len(pending)} pieces of work pending: rerun to resume)" if pending else ""))
