"""Reading labelled data for distillation: validation errors name file and line, splits keep queries apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from student_helpers import PROMPT_VERSION, TEACHER, teacher_results

from student.data import (
    DataError,
    detect_source,
    load_gold,
    load_labelled,
    load_teacher_results,
    render_ad,
    split_by_query,
)

AD = {"title": "Acme Mixer", "brand": "Acme", "category": "Kitchen > Mixers", "attributes": {"Colour": "Red"}}


def _result(cid: str, label: str | None = "Exact", status: str = "completed", **extra: object) -> dict:
    record = {"custom_id": cid, "status": status, "label": label, "query": f"query {cid}", "ad": AD}
    record.update(extra)
    return record


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_unknown_label_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.jsonl", [_result("a"), _result("b", "Irrelevant"), _result("c", "Maybe")])
    with pytest.raises(DataError) as err:
        load_teacher_results(path)
    assert err.value.line == 3
    assert str(path) in str(err.value) and "line 3" in str(err.value) and "'Maybe'" in str(err.value)


def test_unknown_distribution_label_and_bad_share(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.jsonl", [_result("a", distribution={"Exact": 0.5, "Relevant": 0.5})])
    with pytest.raises(DataError, match="line 1: distribution: 'Relevant'"):
        load_teacher_results(path)
    path = _write(tmp_path / "r2.jsonl", [_result("a", distribution={"Exact": -1})])
    with pytest.raises(DataError, match="non-negative"):
        load_teacher_results(path)


@pytest.mark.parametrize(
    ("drop", "message"),
    [("custom_id", "custom_id: field required"), ("status", "status: expected one of"), ("label", "label: field")],
)
def test_missing_field_in_a_result(tmp_path: Path, drop: str, message: str) -> None:
    bad = _result("b", "Irrelevant")
    del bad[drop]
    path = _write(tmp_path / "r.jsonl", [_result("a"), bad])
    with pytest.raises(DataError, match=f"line 2: {message}"):
        load_teacher_results(path)


def test_result_without_pair_asks_for_the_pairs_file(tmp_path: Path) -> None:
    record = _result("a")
    del record["query"], record["ad"]
    path = _write(tmp_path / "r.jsonl", [record])
    with pytest.raises(DataError, match=r"line 1: query, ad: .*pairs file"):
        load_teacher_results(path)


def test_bad_pair_inside_a_result_names_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.jsonl", [_result("a", ad={"brand": "Acme"})])
    with pytest.raises(DataError, match=r"line 1: ad\.title: field required"):
        load_teacher_results(path)


def test_single_class_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.jsonl", [_result("a"), _result("b"), _result("c", status="failed", label=None)])
    with pytest.raises(DataError, match="every usable pair has the label 'Exact'"):
        load_teacher_results(path)


def test_invalid_json_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(_result("a")) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        load_teacher_results(path)


def test_gold_without_label_is_refused(student_bench: Path, tmp_path: Path) -> None:
    lines = (student_bench / "gold_test.jsonl").read_text(encoding="utf-8").splitlines()[:5]
    broken = json.loads(lines[3])
    del broken["meta"]["label"]
    path = tmp_path / "g.jsonl"
    path.write_text("\n".join([*lines[:3], json.dumps(broken)]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 4: meta\.label: field required"):
        load_gold(path)


def test_results_joined_with_pairs_skip_failed(student_bench: Path, student_results: Path) -> None:
    data = load_teacher_results(student_results, student_bench / "teacher_train.jsonl")
    n_lines = len(student_results.read_text(encoding="utf-8").splitlines())
    assert data.n_failed == n_lines // 25
    assert len(data.examples) == n_lines - data.n_failed
    assert data.teachers == [TEACHER] and data.prompt_versions == [PROMPT_VERSION]
    ex = data.examples[0]
    assert ex.group.startswith("id:q")  # meta.query_id from the joined pair
    assert sum(ex.target) == pytest.approx(1.0) and max(ex.target) == pytest.approx(0.75)
    assert ex.confidence == pytest.approx(0.75)


def test_inline_results_and_auto_detection(student_bench: Path, tmp_path: Path) -> None:
    inline = teacher_results(student_bench / "dev.jsonl", tmp_path / "inline.jsonl", inline_pairs=True)
    assert detect_source(inline) == "teacher"
    assert detect_source(student_bench / "dev.jsonl") == "gold"
    teacher = load_labelled(inline)
    gold = load_labelled(student_bench / "dev.jsonl")
    assert teacher.source == "teacher" and gold.source == "gold"
    by_id = {e.custom_id: e for e in gold.examples}
    for e in teacher.examples:
        assert e.ad_text == by_id[e.custom_id].ad_text and e.group == by_id[e.custom_id].group


def test_missing_join_id_names_the_line(student_bench: Path, tmp_path: Path) -> None:
    path = _write(tmp_path / "r.jsonl", [{"custom_id": "nope", "status": "completed", "label": "Exact"}])
    with pytest.raises(DataError, match="line 1: custom_id 'nope' is not in the pairs file"):
        load_teacher_results(path, student_bench / "dev.jsonl")


def test_split_is_query_disjoint_and_deterministic(student_bench: Path) -> None:
    examples = load_gold(student_bench / "teacher_train.jsonl").examples
    train, dev = split_by_query(examples, 0.2, seed=5)
    assert len(train) + len(dev) == len(examples)
    assert not {e.group for e in train} & {e.group for e in dev}
    share = len({e.group for e in dev}) / len({e.group for e in examples})
    assert 0.15 <= share <= 0.25
    _, again_dev = split_by_query(list(reversed(examples)), 0.2, seed=5)
    assert {e.custom_id for e in again_dev} == {e.custom_id for e in dev}
    _, other_dev = split_by_query(examples, 0.2, seed=6)
    assert {e.custom_id for e in other_dev} != {e.custom_id for e in dev}


def test_split_groups_by_normalised_query_without_query_id(tmp_path: Path) -> None:
    records = [_result(f"a{i}", "Exact", query="Red  Mixer") for i in range(3)]
    records += [_result(f"b{i}", "Irrelevant", query="red mixer ") for i in range(3)]
    records += [_result(f"c{i}", "Irrelevant", query="blue kettle") for i in range(3)]
    examples = load_teacher_results(_write(tmp_path / "r.jsonl", records)).examples
    assert len({e.group for e in examples}) == 2
    train, dev = split_by_query(examples, 0.5, seed=0)
    assert {len(train), len(dev)} == {3, 6}


def test_render_ad_is_short_and_deterministic() -> None:
    a = render_ad({**AD, "attributes": {"Size": "2 L", "Colour": "Red"}, "description": "word " * 200})
    b = render_ad({**AD, "attributes": {"Colour": "Red", "Size": "2 L"}, "description": "word " * 200})
    assert a == b
    assert a.startswith("Acme Mixer | brand: Acme | category: Kitchen > Mixers | Colour: Red; Size: 2 L | word")
    assert len(a) < 330 and a.endswith("...")


def test_teacher_dev_results_join_the_same_pairs_file(
    student_bench: Path, student_results: Path, tmp_path: Path
) -> None:
    from student.train import TrainConfig, prepare_data

    dev_results = _write(tmp_path / "dev.jsonl", [json.loads(x) for x in student_results.read_text().splitlines()[:40]])
    data = prepare_data(
        student_results, TrainConfig(), pairs=student_bench / "teacher_train.jsonl", dev_path=dev_results
    )
    assert data.dev_source["source"] == "teacher" and 0 < len(data.dev) <= 40
    assert not {e.group for e in data.train} & {e.group for e in data.dev}
    assert data.dropped["dev_query_overlap"] >= len(data.dev)
