"""`agpo teacher label`: a pairs file labelled in process by the workers' code, as result lines of the job
contract, with the committed tiny teacher."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app

ROOT = Path(__file__).resolve().parents[2]


def test_a_file_is_labelled_in_process_as_result_lines(student_bench: Path, tmp_path: Path) -> None:
    pairs = (student_bench / "gold_test.jsonl").read_text().splitlines()[:6]
    src = tmp_path / "pairs.jsonl"
    src.write_text("\n".join(pairs) + "\n")
    out = tmp_path / "results.jsonl"
    done = CliRunner().invoke(
        app,
        ["teacher", "label", str(src), "--out", str(out), "--model", str(ROOT / "models/relevance-teacher"),
         "--samples", "2", "--max-tokens", "112"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["custom_id"] for x in lines] == [json.loads(p)["custom_id"] for p in pairs]
    for line in lines:
        assert line["status"] in ("completed", "failed") and line["teacher"].startswith("relevance-teacher@")
        assert line["samples"] == 2 or line["status"] == "failed"
    assert sum(x["label"] is not None for x in lines) >= 4
    assert "of 6 pairs labelled (sample)" in done.output.replace("\n", "")
    refused = CliRunner().invoke(app, ["teacher", "label", str(src), "--out", str(out), "--method", "vote"])
    assert refused.exit_code != 0 and "--method 'vote'" in refused.output
