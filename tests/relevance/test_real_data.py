"""The shipped real samples: splits by query as documented, labels mapped as documented, importable as pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from relevance.importers.homedepot import homedepot_label, homedepot_label_shares, import_homedepot
from relevance.real import HOMEDEPOT_CSV, esci_sample, homedepot, split_of


def test_every_shipped_row_sits_in_its_query_split() -> None:
    frame = pd.read_csv(HOMEDEPOT_CSV, dtype=str, keep_default_na=False)
    assert len(frame) == 28_291
    assert (frame["search_term"].map(split_of) == frame["split"]).all()
    by_split = {s: set(frame.loc[frame["split"] == s, "search_term"].str.lower()) for s in ("train", "dev", "test")}
    assert not by_split["train"] & by_split["test"]
    assert not by_split["dev"] & by_split["test"]


@pytest.mark.parametrize(
    ("score", "label"),
    [
        (3.0, "Exact"),
        (2.5, "Exact"),
        (2.33, "Substitute"),
        (2.0, "Substitute"),
        (1.67, "Irrelevant"),
        (1.0, "Irrelevant"),
    ],
)
def test_mean_ratings_map_to_esci_labels(score: float, label: str) -> None:
    assert homedepot_label(score) == label


@pytest.mark.parametrize("score", [1.0, 1.33, 1.67, 2.0, 2.25, 2.33, 2.5, 2.67, 3.0])
def test_label_shares_of_a_mean_rating_sum_to_one_and_follow_the_grade(score: float) -> None:
    shares = homedepot_label_shares(score)
    assert set(shares) == {"Exact", "Substitute", "Irrelevant"} and abs(sum(shares.values()) - 1) < 1e-9
    assert all(v >= 0 for v in shares.values())
    higher = homedepot_label_shares(min(3.0, score + 0.25))
    assert higher["Exact"] >= shares["Exact"] and higher["Irrelevant"] <= shares["Irrelevant"]
    # Away from a boundary the hard label dominates; spread 0 is the hard label itself.
    if score in (1.0, 3.0):
        assert shares[homedepot_label(score)] > 0.9
    assert homedepot_label_shares(score, spread=0) == {
        name: float(name == homedepot_label(score)) for name in ("Exact", "Substitute", "Irrelevant")
    }


def test_homedepot_test_split_imports_without_errors() -> None:
    result = homedepot("test")
    assert not result.errors and len(result.pairs) == 3_301
    labels = {p.meta["label"] for p in result.pairs}
    assert labels == {"Exact", "Substitute", "Irrelevant"}
    assert all(homedepot_label(p.meta["score"]) == p.meta["label"] for p in result.pairs)


def test_bad_ratings_are_row_errors_naming_the_column(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(
        "id,product_uid,search_term,product_title,relevance\n"
        "1,10,drill,Cordless Drill,3\n"
        "2,11,drill,Hammer,high\n"
        "3,12,drill,Saw,4.5\n"
    )
    result = import_homedepot(path)
    assert [p.custom_id for p in result.pairs] == ["homedepot-1"]
    assert [(e.row, e.field) for e in result.errors] == [(2, "relevance"), (3, "relevance")]


def test_esci_sample_has_four_label_answers() -> None:
    result = esci_sample()
    assert not result.errors and len(result.pairs) == 200
    assert {p.meta["label"] for p in result.pairs} == {"Exact", "Substitute", "Complement", "Irrelevant"}


def test_real_command_writes_the_sets(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["relevance", "real", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "homedepot_dev.jsonl").read_text().splitlines()
    assert len(lines) == 1_334
    assert json.loads(lines[0])["meta"]["source"] == "homedepot"
    assert (tmp_path / "esci_sample.jsonl").exists()


def test_unseen_train_rows_leave_out_every_row_a_model_trained_on(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for model, ids in ((first, ["homedepot-2", "homedepot-17"]), (second, ["homedepot-18", "not-a-row"])):
        model.mkdir()
        (model / "training_ids.txt").write_text("\n".join(ids) + "\n")
    args = ["relevance", "real", "--out", str(tmp_path / "out"), "--unseen-by", str(first), "--unseen-by", str(second)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    unseen = {json.loads(x)["custom_id"] for x in (tmp_path / "out" / "homedepot_train_unseen.jsonl").open()}
    train = {json.loads(x)["custom_id"] for x in (tmp_path / "out" / "homedepot_train.jsonl").open()}
    assert unseen == train - {"homedepot-2", "homedepot-17", "homedepot-18"} and len(unseen) == len(train) - 3

    result = CliRunner().invoke(app, ["relevance", "real", "--out", str(tmp_path / "o2"), "--unseen-by", str(tmp_path)])
    assert result.exit_code == 2 and "no training_ids.txt" in result.output
