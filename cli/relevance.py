"""``agpo relevance ...``: the relevance domain's data: the seeded synthetic benchmark and the shipped real samples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import console, fail

app = typer.Typer(help="The relevance domain: synthetic benchmark and data.", no_args_is_help=True)


@app.command("generate")
def relevance_generate(
    out: Annotated[Path, typer.Option(help="folder for <split>.jsonl and manifest.json")] = Path(
        "runs/relevance/benchmark"
    ),
    seed: Annotated[int, typer.Option()] = 0,
    teacher_train: Annotated[int, typer.Option(min=0, help="pairs")] = 20_000,
    dev: Annotated[int, typer.Option(min=0, help="pairs")] = 2_000,
    gold_test: Annotated[int, typer.Option(min=0, help="pairs")] = 2_000,
    pool: Annotated[int, typer.Option(min=0, help="unlabelled pairs")] = 20_000,
    lang: Annotated[str, typer.Option(help="en, or zh: the same world in Chinese, JD-style queries and titles")] = "en",
) -> None:
    """Generate the seeded synthetic query-ad benchmark (ESCI labels, reasoning traces, splits by query)."""
    import time

    from relevance.synthetic import generate_benchmark
    from relevance.synthetic.generator import LANGUAGES

    if lang not in LANGUAGES:
        raise fail(f"--lang {lang!r}: choose one of {', '.join(LANGUAGES)}")
    start = time.perf_counter()
    manifest = generate_benchmark(
        out, seed, teacher_train=teacher_train, dev=dev, gold_test=gold_test, pool=pool, lang=lang
    )
    seconds = time.perf_counter() - start
    total = teacher_train + dev + gold_test + pool
    console.print(f"{total:,} pairs in {seconds:.1f}s -> {out} (generator {manifest.get('generator_version', '?')})")


@app.command("real")
def relevance_real(
    out: Annotated[Path, typer.Option(help="folder for the real sets as pairs JSONL")] = Path("runs/relevance/real"),
    unseen_by: Annotated[
        list[Path] | None,
        typer.Option(help="model dir: also write homedepot_train_unseen.jsonl, the train rows none of them saw"),
    ] = None,
) -> None:
    """Write the shipped real, human-labelled samples as pairs JSONL: Home Depot train/dev/test, an ESCI sample."""
    from relevance.real import DATA_DIR, write_real_sets, write_unseen_train

    counts = write_real_sets(out)
    if unseen_by:
        try:
            counts["homedepot_train_unseen"] = write_unseen_train(out, list(unseen_by))
        except FileNotFoundError as exc:
            raise fail(str(exc)) from None
    for name, n in counts.items():
        console.print(f"{name}: {n:,} pairs -> {out / (name + '.jsonl')}")
    console.print(f"provenance and licences: {DATA_DIR / 'SOURCES.md'}")
