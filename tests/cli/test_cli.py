"""The ``agpo`` command line: the demo table and the benchmark's output file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer.main
from typer.testing import CliRunner

from cli.main import app
from experiments.advantage_table import advantage_table

runner = CliRunner()


def test_demo_table_values() -> None:
    rows = {row.estimator: row for row in advantage_table(8)}
    agpo = rows["agpo"]
    assert agpo.cells[0].pos is None and agpo.cells[0].neg == -1.0  # all wrong: still pushed down
    assert agpo.cells[8].neg is None and agpo.cells[8].pos == 0.0  # all right: nothing to learn
    assert rows["grpo"].cells[0].neg == 0.0
    assert rows["nsr"].neg_share == 1.0 and rows["psr"].neg_share == 0.0
    assert abs(rows["grpo"].neg_share - 0.5) < 1e-6  # GRPO is zero-mean in every group
    assert agpo.neg_share > 0.9


def test_demo_command_prints_every_estimator() -> None:
    result = runner.invoke(app, ["demo", "--group-size", "4"])
    assert result.exit_code == 0, result.output
    for name in ("agpo", "grpo", "dr_grpo", "nsr", "psr", "w_reinforce", "rloo"):
        assert name in result.output
    assert "4/4" in result.output


def test_demo_rejects_a_group_of_one() -> None:
    result = runner.invoke(app, ["demo", "--group-size", "1"])
    assert result.exit_code != 0
    assert "group-size" in result.output


def test_bench_writes_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = runner.invoke(
        app,
        [
            "bench",
            "advantages",
            "--num-rewards",
            "2048",
            "--group-sizes",
            "8,64",
            "--repeats",
            "1",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [row["group_size"] for row in data["rows"]] == [8, 64]
    for row in data["rows"]:
        for key in ("agpo_ms", "grpo_ms", "trl_grpo_ms", "agpo_index_ms", "loop_ms"):
            assert row[key] > 0
        assert row["agpo_over_grpo"] == row["agpo_ms"] / row["grpo_ms"]


def test_relevance_generate_writes_the_splits(tmp_path: Path) -> None:
    sizes = ["--teacher-train", "60", "--dev", "20", "--gold-test", "20", "--pool", "40"]
    result = runner.invoke(app, ["relevance", "generate", "--out", str(tmp_path), *sizes])
    assert result.exit_code == 0, result.output
    assert "140 pairs" in result.output
    for split, size in (("teacher_train", 60), ("dev", 20), ("gold_test", 20), ("pool", 40)):
        assert len((tmp_path / f"{split}.jsonl").read_text().splitlines()) == size
    assert json.loads((tmp_path / "manifest.json").read_text())["seed"] == 0


def test_relevance_generate_in_chinese_and_an_unknown_language_is_one_line(tmp_path: Path) -> None:
    sizes = ["--teacher-train", "0", "--dev", "0", "--gold-test", "30", "--pool", "0"]
    result = runner.invoke(app, ["relevance", "generate", "--out", str(tmp_path), "--lang", "zh", *sizes])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "manifest.json").read_text())["lang"] == "zh"
    first = json.loads((tmp_path / "gold_test.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert re.search(r"[\u4e00-\u9fff]", first["ad"]["title"])
    bad = runner.invoke(app, ["relevance", "generate", "--out", str(tmp_path / "x"), "--lang", "fr", *sizes])
    assert bad.exit_code == 2 and "--lang 'fr'" in bad.output and "Traceback" not in bad.output


def test_a_tenants_webhook_secret_is_made_once_and_rotated_on_request(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from pipelines.settings import get_settings

    monkeypatch.setenv("AGPO_DATABASE_URL", f"sqlite:///{tmp_path / 'agpo.db'}")
    get_settings.cache_clear()
    try:
        first, again, rotated = (
            runner.invoke(app, ["keys", "webhook-secret", "--tenant", "acme", *extra])
            for extra in ([], [], ["--rotate"])
        )
    finally:
        get_settings.cache_clear()
    secrets = [r.output.strip().splitlines()[-1] for r in (first, again, rotated)]
    assert all(r.exit_code == 0 for r in (first, again, rotated)), first.output
    assert secrets[0].startswith("whsec_") and secrets[0] == secrets[1] != secrets[2]


def _readme_commands() -> list[list[str]]:
    """Every ``agpo ...`` invocation in README's code spans and blocks, cut at its first option or placeholder."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    found: list[list[str]] = []
    # A word ends at a space, a backtick, a bracket, a bar or the line's end: `agpo teacher build --config X`.
    word_run = r"((?: [a-z][a-z0-9-]*(?=[\s`|\[\]]|$))+)"
    for match in re.finditer(r"(?:^|`|\$ )agpo" + word_run, readme, flags=re.MULTILINE):
        words = match.group(1).split()
        for end, word in enumerate(words):
            if "/" in word or word.upper() == word:
                words = words[:end]
                break
        if words and words not in found:
            found.append(words)
    return found


def _command_paths(command: object, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every command path of a click command tree, groups included."""
    paths = {prefix}
    for name, sub in getattr(command, "commands", {}).items():
        paths |= _command_paths(sub, (*prefix, name))
    return paths


def test_every_command_in_the_readme_exists() -> None:
    """A command path in README (``agpo teacher build``, ``agpo jobs list``, ...) is a real command or group."""
    paths = _command_paths(typer.main.get_command(app))
    commands = _readme_commands()
    assert len(commands) >= 25
    groups = {path[:-1] for path in paths if path}  # paths that have subcommands
    missing = []
    for words in commands:
        # The longest prefix that is a command; the words after a plain command are its arguments, but a word after
        # a group must be one of its subcommands (`agpo teacher bogus` is not a command).
        n = next((n for n in range(len(words), 0, -1) if tuple(words[:n]) in paths), 0)
        if n == 0 or (n < len(words) and tuple(words[:n]) in groups):
            missing.append(" ".join(words))
    assert not missing, f"README names commands that do not exist: {missing}"


def test_every_group_mounted_once_and_each_top_level_command_is_named_in_the_readme() -> None:
    paths = _command_paths(typer.main.get_command(app))
    top = {path[0] for path in paths if path}
    assert {"train", "eval", "study", "teacher", "student", "serve", "worker", "beat", "annotate", "jobs"} <= top
    readme_top = {words[0] for words in _readme_commands()}
    assert top <= readme_top, f"commands missing from README: {sorted(top - readme_top)}"


def test_value_chain_seeds_that_are_not_integers_are_one_clear_line() -> None:
    result = runner.invoke(app, ["student", "value-chain", "--config", "configs/real_3k.yaml", "--seeds", "0,x"])
    assert result.exit_code != 0
    assert "--seeds '0,x': expected comma-separated integers" in result.output
    assert "Traceback" not in result.output
