"""The README's main job in its quick form: a fresh run of `agpo journey --quick` end to end.

It starts the real API process on SQLite (and a Celery worker when Redis answers), labels real Home Depot pairs
with the committed SmolLM2 teacher (its base loaded from the pinned wheel), trains a student on those labels and
the teacher's committed ones, evaluates it on human labels, exports and serves it, and writes the report checked
here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AGPO = str(Path(sys.executable).with_name("agpo"))


def test_quick_journey_writes_a_report_of_real_numbers(tmp_path: Path):
    out = tmp_path / "journey"
    env = {**os.environ, "AGPO_NO_PROGRESS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(
        [AGPO, "journey", "--quick", "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"report: {out / 'report.md'}" in done.stdout.replace("\n", "")
    # It ends with the way to the review page for its job, whose queue answered a reviewer's key during the run.
    assert "/review?job=job_" in done.stdout.replace("\n", "").split("report:")[-1]

    summary = json.loads((out / "summary.json").read_text())
    counts = summary["job"]["request_counts"]
    review = summary["review"]
    assert review["job_id"] == summary["job"]["id"] and review["queue_total"] == 64
    assert review["url"].endswith(f"/review?job={summary['job']['id']}") and (out / "reviewer.key").exists()
    assert summary["job"]["status"] == "completed" and counts["completed"] + counts["failed"] == counts["total"] == 64
    # The service took the teacher's prompt and label method from its model card.
    assert summary["job"]["teacher"].startswith("relevance-teacher-smollm2-more@")
    assert summary["job"]["decoding"]["method"] == "overlap" and summary["job"]["samples"] == 1
    for who in ("teacher", "student", "teacher_test"):
        for metric in ("macro_f1", "accuracy"):
            value = summary[who][metric]
            assert isinstance(value, float) and 0.0 <= value <= 1.0, (who, metric, value)
    # The teacher beats always answering the majority label by far, on the live pool and, by its committed labels,
    # on test; a broken pipeline (every pair failed, or one label for all) would not. The quick student learns in
    # 40 steps of 16: only sanity here.
    assert summary["teacher"]["macro_f1"] > summary["baselines"]["majority"]["macro_f1"] + 0.1
    assert summary["teacher_test"]["macro_f1"] > summary["baselines"]["majority"]["macro_f1"] + 0.1
    assert summary["teacher"]["unparseable_rate"] == 0.0
    # The live labels are the committed ones up to near ties (the same teacher, prompt and method).
    assert summary["live_vs_committed"]["pairs"] == 64 and summary["live_vs_committed"]["same_label"] >= 0.85
    assert summary["student_data"] == {"rows": 13_656, "live": 64, "committed": 13_592}
    # What a cascade job would save with this student, from the teacher's committed dev and test labels.
    chosen = summary["cascade"]["chosen_on_dev"][0]
    assert chosen["target"] == 0.95 and 0.0 <= chosen["student_share"] <= 1.0
    assert chosen["agreement_with_teacher"] >= 0.8 and "## Student-first labelling" in (out / "report.md").read_text()
    assert summary["export"]["parity_ok"] is True
    assert summary["scoring"]["pairs_per_s_batch"] > 0 and summary["scoring"]["sample"][0]["label"]
    # The API serves the first variant of its preference order that passed its gate at export.
    assert summary["scoring"]["variant"] in summary["export"]["servable"]

    report = (out / "report.md").read_text()
    assert not re.search(r"\bnan\b|\bNone\b|\{[a-z_]+\}|TODO|TBD", report), "placeholder in the report"
    student = summary["student"]
    assert f"| {student['macro_f1']:.3f} | {student['cohen_kappa']:.3f} | {student['accuracy']:.3f} |" in report
    assert "agree on" in report and "13,592 labels the same teacher made" in report
    for png in re.findall(r"\]\((plots/[^)]+\.png)\)", report):
        assert (out / png).stat().st_size > 1000, png
