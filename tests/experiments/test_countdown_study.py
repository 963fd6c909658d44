"""The Countdown pass@k study end to end on a tiny base model: stages, caching and the record, deadlines, --first and
--only, shared runs, its config and its report."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from rlvr.train import TrainConfig

runner = CliRunner()


def _study_config(tmp_path: Path, base_dir: Path, text: str | None = None) -> Path:
    config = tmp_path / "study.yaml"
    text = text or (Path(__file__).resolve().parents[2] / "configs" / "study_smoke.yaml").read_text()
    where = f"base_model: {base_dir}\nout_dir: {tmp_path / 'study'}\nrecord_dir: {tmp_path / 'record'}\n"
    config.write_text(text + where)
    return config


def test_study_smoke_runs_every_stage_and_writes_its_report(base_dir: Path, tmp_path: Path) -> None:
    config = _study_config(tmp_path, base_dir)
    report = tmp_path / "report" / "passk_study.md"
    result = runner.invoke(app, ["study", "--config", str(config), "--report", str(report)])
    assert result.exit_code == 0, result.output
    md = report.read_text()
    for name in ("base", "grpo", "agpo", "agpo_const_pos", "agpo_lp0.5"):
        assert f"| {name} |" in md
    assert "pass@4" in md and "± " in md and "Partial" not in md
    assert "learning rate tuned per method on dev over [" in md
    data = json.loads(report.with_suffix(".json").read_text())
    assert set(data["learning_rates"]) == {"grpo", "agpo", "agpo_const_pos", "agpo_lp0.5"}
    assert data["learning_rates"]["agpo_const_pos"] == 1e-4  # fixed in its settings, not tuned
    assert data["learning_rates"]["agpo_lp0.5"] == data["learning_rates"]["agpo"]  # the ablation inherits it
    assert data["learning_rate_sources"]["agpo_lp0.5"] == "agpo's"
    assert data["cells"]["agpo"]["test_easy"]["1"][2] == 2  # two seeds
    assert data["pending"] == []
    # Each arm's training log, summarised over its seeds: GRPO's advantage mass is half negative by construction.
    assert set(data["training"]) == set(data["learning_rates"]) and data["training"]["agpo"]["train reward"][2] == 2
    # (A step whose groups all tie logs 0, so a short run's mean can sit below 0.5, never above it.)
    assert 0.0 <= data["training"]["grpo"]["negative share"][0] <= 0.5 + 1e-6
    assert "| method | seeds | train reward | negative share | truncated |" in md
    # Every tuning run's dev pass@1 is reported beside the base's, and the chosen rate is the best of them.
    tuned = data["dev_pass1"]["grpo"]
    assert set(tuned) == {f"{lr:g}" for lr in yaml.safe_load(config.read_text())["lr_grid"]}
    assert tuned[f"{data['learning_rates']['grpo']:g}"] == max(tuned.values())
    assert 0.0 <= data["base_dev_pass1"] <= 1.0 and "Dev pass@1 of the tuning runs" in md
    assert f"Base on dev: {data['base_dev_pass1']:.3f}." in md
    # Paired differences: every arm minus the base and minus the first method, on the same problems.
    pairs = {(row["arm"], row["minus"]) for row in data["differences"]}
    assert pairs == {(m, "base") for m in data["learning_rates"]} | {
        (m, "grpo") for m in data["learning_rates"] if m != "grpo"
    }
    row = next(row for row in data["differences"] if (row["arm"], row["minus"]) == ("agpo", "grpo"))
    assert set(row) >= {"1", "4"} and row["seeds"] == [2, 2]
    cell = row["4"]
    assert cell["low"] <= cell["mean"] <= cell["high"]
    assert f"| agpo − grpo | 2/2 | {cell['mean']:+.3f} [{cell['low']:+.3f}, {cell['high']:+.3f}]" in md
    assert (report.parent / "passk_study_test_easy.png").exists()
    assert (report.parent / "passk_study_test_easy_minus_base.png").stat().st_size > 1000
    assert "(passk_study_test_easy_minus_base.png)" in md
    assert "(passk_study_test_easy.png)" in md
    # A second run finds everything cached and reproduces the same numbers.
    again = runner.invoke(app, ["study", "--config", str(config), "--report", str(report)])
    assert again.exit_code == 0
    assert json.loads(report.with_suffix(".json").read_text())["cells"] == data["cells"]
    assert "train " not in again.output
    # Without out_dir (no weights, as in a fresh checkout) the record alone reproduces the report.
    shutil.rmtree(tmp_path / "study")
    fresh = runner.invoke(app, ["study", "--config", str(config), "--report", str(report)])
    assert fresh.exit_code == 0, fresh.output
    assert "train " not in fresh.output and "eval " not in fresh.output
    assert json.loads(report.with_suffix(".json").read_text())["cells"] == data["cells"]
    assert not list((tmp_path / "record").rglob("*.safetensors"))
    # Changed settings must not silently reuse runs trained otherwise, from out_dir or from the record.
    text = (Path(__file__).resolve().parents[2] / "configs" / "study_smoke.yaml").read_text()
    config = _study_config(tmp_path, base_dir, text.replace("steps: 2,", "steps: 3,"))
    changed = runner.invoke(app, ["study", "--config", str(config), "--report", str(report)])
    assert changed.exit_code == 2
    assert "trained with other settings" in changed.output


# The smallest study that runs every stage: arms, seeds and references come before it.
TINY_STUDY = """
lr_grid: [1.0e-4]
train: {steps: 2, prompts_per_step: 2, group_size: 4, max_completion_length: 12, logging_steps: 1}
dev_problems: 2
dev_n: 2
test_problems: 2
test_n: 4
splits: [test_easy]
max_new_tokens: 12
"""

ONE_RUN = (
    """
methods: {grpo: {estimator: grpo}}
ablations: {grpo_lp0.5: {estimator: grpo, lambda_pos: 0.5}}
ablation_lr_from: grpo
seeds: [0]
"""
    + TINY_STUDY
)


def test_study_past_its_deadline_reports_what_is_pending_and_resumes(base_dir: Path, tmp_path: Path) -> None:
    config = _study_config(tmp_path, base_dir, ONE_RUN)
    report = tmp_path / "passk_study.md"
    args = ["study", "--config", str(config), "--report", str(report)]
    stopped = runner.invoke(app, [*args, "--hours", "0"])
    assert stopped.exit_code == 0, stopped.output
    assert "train " not in stopped.output and "pending" in stopped.output
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["cells"] == {} and "base on test_easy" in data["pending"] and "grpo (learning rate)" in data["pending"]
    md = report.read_text()
    assert "Partial results" in md and "--hours" not in md  # the command shown is the one that finishes it
    # --first runs an ablation before its source method: the source's rate is settled for it on the way.
    unknown = runner.invoke(app, [*args, "--first", "nope"])
    assert unknown.exit_code == 2 and "unknown arm(s) ['nope']" in unknown.output
    done = runner.invoke(app, [*args, "--first", "grpo_lp0.5"])
    assert done.exit_code == 0, done.output
    assert done.output.index("train grpo_lp0.5") < done.output.index("grpo seed 0:")
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["pending"] == [] and data["learning_rate_sources"] == {"grpo": "tuned on dev", "grpo_lp0.5": "grpo's"}
    assert data["learning_rates"]["grpo_lp0.5"] == data["learning_rates"]["grpo"]
    assert list(data["cells"]) == ["base", "grpo", "grpo_lp0.5"]  # reported in the config's order, not the run's


def test_study_only_starts_work_for_the_named_arms_and_reports_the_others_cached_part(
    base_dir: Path, tmp_path: Path
) -> None:
    # The ablation's rate is fixed, so that running it first does not settle grpo's on the way.
    fixed = ONE_RUN.replace("lambda_pos: 0.5}", "lambda_pos: 0.5, learning_rate: 1.0e-4}")
    config = _study_config(tmp_path, base_dir, fixed)
    report = tmp_path / "passk_study.md"
    args = ["study", "--config", str(config), "--report", str(report)]
    unknown = runner.invoke(app, [*args, "--only", "nope"])
    assert unknown.exit_code == 2 and "--only: unknown arm(s) ['nope']" in unknown.output
    held = runner.invoke(app, [*args, "--only", "grpo"])
    assert held.exit_code == 0, held.output
    assert "train grpo " in held.output and "train grpo_lp0.5" not in held.output
    assert "grpo_lp0.5 seed 0: (cached results only)" in held.output
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["pending"] == ["grpo_lp0.5 seed 0 on test_easy"] and set(data["cells"]) == {"base", "grpo"}
    assert "--only" not in report.read_text()  # the command shown is the one that finishes it
    rest = runner.invoke(app, args)
    assert rest.exit_code == 0, rest.output
    assert "train grpo_lp0.5" in rest.output and "train grpo " not in rest.output
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["pending"] == [] and set(data["cells"]) == {"base", "grpo", "grpo_lp0.5"}
    # All cached now: --only moves the ablation to the front of the run, but not of the report.
    again = runner.invoke(app, [*args, "--only", "grpo_lp0.5"])
    assert again.exit_code == 0 and "train " not in again.output, again.output
    data = json.loads(report.with_suffix(".json").read_text())
    assert list(data["learning_rates"]) == list(data["learning_rate_sources"]) == ["grpo", "grpo_lp0.5"]
    assert list(data["cells"]) == ["base", "grpo", "grpo_lp0.5"]
    md = report.read_text()
    assert md.index("| grpo | ") < md.index("| grpo_lp0.5 | ")


def test_a_study_evaluates_sampling_settings_checkpoints_and_kl_with_seed_resampled_intervals(
    base_dir: Path, tmp_path: Path
) -> None:
    text = (
        ONE_RUN.replace("seeds: [0]", "seeds: [0, 1]").replace("splits: [test_easy]", "splits: [test_rare]")
        + "eval_sampling: {t0.6: {temperature: 0.6, top_p: 0.95}}\nresample_seeds: true\n"
        + "checkpoints: [1]\nkl_problems: 2\nkl_n: 2\n"
    ).replace("lambda_pos: 0.5}", "lambda_pos: 0.5, learning_rate: 1.0e-4, seeds: [1]}")
    text = text.replace("logging_steps: 1}", "logging_steps: 1, save_steps: 1}")
    config = _study_config(tmp_path, base_dir, text)
    report = tmp_path / "passk_rare.md"
    result = runner.invoke(app, ["study", "--config", str(config), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "temperature 0.6, top_p 0.95" in result.output
    data = json.loads(report.with_suffix(".json").read_text())
    assert set(data["cells"]["grpo"]) == {"test_rare", "test_rare@t0.6"}
    assert data["cells"]["grpo"]["test_rare@t0.6"]["1"][2] == 2  # both seeds, under the second setting too
    assert data["cells"]["grpo_lp0.5"]["test_rare"]["1"][2] == 1  # an arm run on the one seed it names
    assert "train grpo_lp0.5 lr=0.0001 seed=1" in result.output and "seed=0" not in result.output.split("grpo_lp")[1]
    raw = data["raw"]["base"]
    assert raw["test_rare"][0]["split"] == raw["test_rare@t0.6"][0]["split"] == "test_rare"
    assert (tmp_path / "record" / "base" / "eval_test_rare_t0.6.json").exists()
    assert {row["split"] for row in data["differences"]} == {"test_rare", "test_rare@t0.6"}
    md = report.read_text()
    assert "## test_rare@t0.6" in md and "over problems and seeds" in md
    assert "split@t0.6: temperature 0.6, top_p 0.95" in md
    # Each policy's path from the base: its checkpoint evaluated, KL to the base at the checkpoint and at the end.
    assert (tmp_path / "record" / "tune" / "grpo-lr0.0001" / "eval_test_rare_step1.json").exists()  # seed 0 tuned
    assert (tmp_path / "record" / "runs" / "grpo-s1" / "kl_step1.json").exists()
    runs = data["trajectories"]["grpo"]
    assert len(runs) == 2 and [point["step"] for point in runs[0]] == [1, 2]
    assert all(point["kl"] > -1.0 and "pass@4" in point for run in runs for point in run)
    assert data["trajectories"]["grpo_lp0.5"][0][1]["pass@1"] == data["cells"]["grpo_lp0.5"]["test_rare"]["1"][0]
    assert "## Trajectories on test_rare" in md and "| base | 0 | 1 | 0.000 |" in md
    assert (tmp_path / "passk_rare_tradeoff.png").stat().st_size > 10_000
    again = runner.invoke(app, ["study", "--config", str(config), "--report", str(report)])
    assert again.exit_code == 0 and "train " not in again.output and "KL of" not in again.output, again.output
    bad = _study_config(tmp_path, base_dir, ONE_RUN + "eval_sampling: {cold: {temp: 0.6}}\n")
    refused = runner.invoke(app, ["study", "--config", str(bad), "--report", str(report)])
    assert refused.exit_code == 2 and "may set temperature, top_p and splits only" in refused.output
    seedless = _study_config(tmp_path, base_dir, ONE_RUN.replace("lambda_pos: 0.5}", "lambda_pos: 0.5, seeds: [4]}"))
    refused = runner.invoke(app, ["study", "--config", str(seedless), "--report", str(report)])
    assert refused.exit_code == 2 and "names seeds [4] that are not in seeds [0]" in refused.output
    early = _study_config(tmp_path, base_dir, ONE_RUN + "checkpoints: [1]\n")
    refused = runner.invoke(app, ["study", "--config", str(early), "--report", str(report)])
    assert refused.exit_code == 2 and "checkpoint 1 needs train.save_steps dividing it (now 0)" in refused.output
    stray = _study_config(tmp_path, base_dir, ONE_RUN + "eval_sampling: {t0.6: {top_p: 0.9, splits: [test_hard]}}\n")
    refused = runner.invoke(app, ["study", "--config", str(stray), "--report", str(report)])
    assert refused.exit_code == 2 and "names splits ['test_hard'] that are not in splits" in refused.output


def test_the_reports_command_drops_options_that_only_pace_the_work() -> None:
    from cli.rl import _without_options

    argv = ["study", "--hours", "2", "--first", "a", "--first=b", "--config", "c.yaml", "--hours=1", "--only", "x"]
    assert _without_options(argv, "--hours", "--first", "--only") == ["study", "--config", "c.yaml"]


def test_the_report_says_the_rates_were_fixed_when_no_arm_was_tuned() -> None:
    from experiments.countdown.study.report import learning_rate_sentence

    summary = {"config": {"lr_grid": [3e-5], "dev_n": 16}, "learning_rate_sources": {"a": "fixed", "b": "fixed"}}
    assert learning_rate_sentence(summary) == "learning rate fixed per method (no dev tuning)"
    summary["learning_rate_sources"]["b"] = "tuned on dev"
    assert (
        learning_rate_sentence(summary) == "learning rate tuned per method on dev over [3e-05] (dev pass@1 with n = 16)"
    )


def test_shipped_study_configs_load(tmp_path: Path) -> None:
    from experiments.countdown.study import StudyConfig

    root = Path(__file__).resolve().parents[2] / "configs"
    full = StudyConfig.load(root / "study.yaml")
    assert set(full.methods) == {"grpo", "dr_grpo", "nsr", "w_reinforce", "agpo"}
    assert full.seeds == [0, 1, 2] and full.test_n == 256 and len(full.lr_grid) >= 3
    lambdas = {a.get("lambda_pos") for a in full.ablations.values()}
    assert {0.0, 0.05, 0.2, 0.5} <= lambdas
    assert any(a.get("pos_term") == "constant" for a in full.ablations.values())
    for name in ("study_pilot.yaml", "study_smoke.yaml"):
        StudyConfig.load(root / name)
    precondition = StudyConfig.load(root / "study_precondition.yaml")
    first, *others = precondition.methods.values()
    assert first["estimator"] == "grpo" and first["learning_rate"] > max(full.lr_grid[:1])
    # Every arm trains at GRPO's rate: the arms differ in the update alone.
    assert {arm["learning_rate"] for arm in others} == {first["learning_rate"]}
    assert any(arm.get("mask_truncated_completions") for arm in others)
    assert precondition.train["steps"] > full.train["steps"] and precondition.test_n == full.test_n
    rare = StudyConfig.load(root / "study_rare.yaml")
    # The reading rule needs GRPO, the known-working control and AGPO on every seed, at one rate and budget.
    for arm in ("grpo", "w_reinforce", "agpo"):
        assert "seeds" not in rare.methods[arm] and rare.methods[arm]["learning_rate"] == first["learning_rate"]
    assert rare.seeds == [0, 1, 2] and rare.resample_seeds
    assert {k: v for k, v in rare.train.items() if k != "save_steps"} == precondition.train
    assert rare.splits[0] == "test_rare" and rare.test_problems >= 150 and rare.test_n == 256
    assert ("test_rare@t0.6", "test_rare", {"temperature": 0.6, "top_p": 0.95}) in rare.evaluations()
    assert "Reading rule (written before any run)" in rare.note
    bad = tmp_path / "bad_study.yaml"
    bad.write_text("sedes: [1]\n")
    with pytest.raises(ValueError, match=r"bad_study.yaml: unknown setting\(s\) \['sedes'\]"):
        StudyConfig.load(bad)
    bad.write_text("references: [agpo, gpro]\n")
    with pytest.raises(ValueError, match=r"references \['gpro'\] are not arms of the study"):
        StudyConfig.load(bad)


def test_a_recorded_run_predating_a_new_setting_counts_as_trained_with_its_default() -> None:
    from experiments.countdown.study.runs import run_settings

    record = Path(__file__).resolve().parents[2] / "docs" / "results" / "passk_study_record" / "tune" / "agpo-lr1e-05"
    recorded = json.loads((record / "agpo_run.json").read_text())["config"]
    assert "protect_shared_prefix" not in recorded  # recorded before the option existed
    now = asdict(TrainConfig(**{k: v for k, v in recorded.items() if k in TrainConfig.__dataclass_fields__}))
    assert run_settings(recorded) == run_settings(now)
    assert run_settings(recorded) != run_settings({**now, "protect_shared_prefix": True})


def test_run_identity_is_what_a_run_trains_not_what_its_arm_is_called() -> None:
    from experiments.countdown.study.runs import run_identity

    def identity(**settings: object) -> str:
        return run_identity(asdict(TrainConfig(**settings)))  # type: ignore[arg-type]

    assert identity(estimator="nsr") == identity(estimator="agpo", lambda_pos=0.0)
    assert identity(estimator="w_reinforce") == identity(estimator="agpo", pos_term="constant")
    assert identity(estimator="agpo") == identity(estimator="agpo", lambda_pos=0.1)  # the default, spelled out
    assert identity(estimator="agpo") != identity(estimator="nsr")
    assert identity(estimator="nsr") != identity(estimator="nsr", learning_rate=1e-5)
    assert identity(estimator="nsr") != identity(estimator="nsr", seed=1)
    assert identity(estimator="nsr") != identity(estimator="nsr", protect_shared_prefix=True)
    assert identity(estimator="nsr", output_dir="a") == identity(estimator="nsr", output_dir="b")


SHARED = (
    """
methods: {nsr: {estimator: nsr}, agpo: {estimator: agpo}}
ablations: {agpo_lp0.0: {estimator: agpo, lambda_pos: 0.0}}
ablation_lr_from: agpo
references: [nsr, agpo]
seeds: [0, 1]
"""
    + TINY_STUDY
)


def test_arms_that_train_the_same_thing_share_one_run(base_dir: Path, tmp_path: Path) -> None:
    # AGPO with lambda_pos 0 is NSR: at the same rate and seed the ablation is NSR's run, trained once.
    config = _study_config(tmp_path, base_dir, SHARED)
    report = tmp_path / "passk_study.md"
    args = ["study", "--config", str(config), "--report", str(report)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "train agpo_lp0.0" not in result.output and result.output.count("  train ") == 4
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["pending"] == [] and data["learning_rates"]["agpo_lp0.0"] == data["learning_rates"]["nsr"]
    assert data["shared_runs"] == {"agpo_lp0.0": {"0": "tune/nsr-lr0.0001", "1": "runs/nsr-s1"}}
    assert data["cells"]["agpo_lp0.0"] == data["cells"]["nsr"] and data["cells"]["agpo_lp0.0"]["test_easy"]["1"][2] == 2
    assert "- agpo_lp0.0: seed 0: `tune/nsr-lr0.0001`, seed 1: `runs/nsr-s1`" in report.read_text()
    assert not (tmp_path / "record" / "runs" / "agpo_lp0.0-s1").exists()
    # Compared with the arms named in references: the ablation minus its twin is 0 on every problem.
    pairs = {(row["arm"], row["minus"]) for row in data["differences"]}
    assert pairs == {("nsr", "base"), ("agpo", "base"), ("agpo_lp0.0", "base"), ("agpo", "nsr")} | {
        ("nsr", "agpo"),
        ("agpo_lp0.0", "nsr"),
        ("agpo_lp0.0", "agpo"),
    }
    twin = next(row for row in data["differences"] if (row["arm"], row["minus"]) == ("agpo_lp0.0", "nsr"))
    assert all(twin[k] == {**twin[k], "mean": 0.0, "low": 0.0, "high": 0.0} for k in twin if k.isdigit())
    # From the record alone (a fresh checkout) the same runs are found and shared again.
    shutil.rmtree(tmp_path / "study")
    fresh = runner.invoke(app, args)
    assert fresh.exit_code == 0, fresh.output
    assert "train " not in fresh.output and "eval " not in fresh.output
    again = json.loads(report.with_suffix(".json").read_text())
    assert again["shared_runs"] == data["shared_runs"] and again["cells"] == data["cells"]


def test_a_method_shares_the_run_an_ablation_trained_before_it(base_dir: Path, tmp_path: Path) -> None:
    # The other way round: the ablation runs first (--first), and NSR's tuning run at that rate is the ablation's.
    config = _study_config(tmp_path, base_dir, SHARED.replace("seeds: [0, 1]", "seeds: [0]"))
    report = tmp_path / "passk_study.md"
    result = runner.invoke(app, ["study", "--config", str(config), "--report", str(report), "--first", "agpo_lp0.0"])
    assert result.exit_code == 0, result.output
    assert "train agpo_lp0.0" in result.output and "train nsr" not in result.output
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["shared_runs"] == {"nsr": {"0": "runs/agpo_lp0.0-s0"}}
    assert data["dev_pass1"]["nsr"] and data["cells"]["nsr"] == data["cells"]["agpo_lp0.0"]
    # A shared run that is still pending is not reported as shared: there is nothing of it to show yet.
    config = _study_config(tmp_path, base_dir, SHARED)
    stopped = runner.invoke(app, ["study", "--config", str(config), "--report", str(report), "--hours", "0"])
    assert stopped.exit_code == 0, stopped.output
    data = json.loads(report.with_suffix(".json").read_text())
    assert "runs/nsr-s1" in stopped.output and "agpo_lp0.0 seed 1 on test_easy" in data["pending"]
    assert data["shared_runs"] == {"nsr": {"0": "runs/agpo_lp0.0-s0"}}
