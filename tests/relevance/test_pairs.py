"""The Pair contract: validation, limits, messages that name the field, and line-numbered JSONL errors."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from relevance.pairs import (
    MAX_QUERY_CHARS,
    Pair,
    PairLimits,
    read_pairs_jsonl,
    validate_jsonl,
    validate_pair,
    validate_records,
    write_pairs_jsonl,
)


def _pair(**kw: object) -> dict:
    base: dict = {"custom_id": "p1", "query": "red shoes", "ad": {"title": "Red Shoes"}}
    base.update(kw)
    return base


def test_strips_whitespace_and_drops_empty_optionals() -> None:
    pair = validate_pair(
        _pair(
            custom_id=" p1 ",
            query="  red shoes \n",
            ad={"title": " Red Shoes ", "brand": "  ", "attributes": {" colour ": " red ", "size": 9, "x": " "}},
        )
    )
    assert pair.custom_id == "p1" and pair.query == "red shoes"
    assert pair.ad.title == "Red Shoes" and pair.ad.brand is None
    assert pair.ad.attributes == {"colour": "red", "size": "9"}
    assert json.loads(pair.to_json()) == {
        "custom_id": "p1",
        "query": "red shoes",
        "ad": {"title": "Red Shoes", "attributes": {"colour": "red", "size": "9"}},
    }


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (_pair(query="   "), "query", "query must not be empty"),
        (_pair(query="q" * (MAX_QUERY_CHARS + 1)), "query", f"the limit is {MAX_QUERY_CHARS}"),
        (_pair(ad={"title": ""}), "ad.title", "title must not be empty"),
        (_pair(ad={"description": "x"}), "ad.title", "Field required"),
        (_pair(ad={"title": "t", "titel": "typo"}), "ad.titel", "Extra inputs"),
        (_pair(custom_id=""), "custom_id", "custom_id must not be empty"),
        (_pair(query=5), "query", "valid string"),
        (_pair(ad={"title": "t", "attributes": {str(i): "v" for i in range(65)}}), "ad.attributes", "limit is 64"),
        (_pair(ad={"title": "t", "attributes": {"k": "v" * 300}}), "ad.attributes", "attributes['k']"),
        (_pair(meta={"blob": "x" * 20_000}), "meta", "bytes as JSON"),
        (_pair(query="red\x00shoes"), "query", "query contains a NUL character"),
        (_pair(custom_id="p\ud800"), "custom_id", "custom_id contains a lone surrogate"),
        (_pair(ad={"title": "t", "brand": "\udfff"}), "ad.brand", "brand contains a lone surrogate"),
        (_pair(ad={"title": "t", "attributes": {"k\x00": "v"}}), "ad.attributes", "contains a NUL"),
        (_pair(meta={"note": "\ud800"}), "meta", "JSON-serialisable"),
    ],
)
def test_errors_name_the_field(data: dict, field: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_pair(data)
    errors = info.value.errors()
    assert [".".join(map(str, e["loc"])) for e in errors] == [field]
    assert message in errors[0]["msg"]
    assert field in str(info.value)


def test_limits_come_from_the_validation_context() -> None:
    tight = PairLimits(query=5)
    with pytest.raises(ValidationError, match="query is 9 characters; the limit is 5"):
        validate_pair(_pair(), tight)
    with pytest.raises(ValidationError, match="the limit is 5"):
        Pair.model_validate(_pair(), context={"limits": tight})
    assert validate_pair(_pair()).query == "red shoes"


def test_jsonl_reports_each_bad_line_and_keeps_reading() -> None:
    lines = [
        json.dumps(_pair(custom_id="a")),  # 1 ok
        "",  # 2 blank: skipped
        "{not json",  # 3
        json.dumps(_pair(custom_id="b", ad={"brand": "x"})),  # 4 no title
        json.dumps(_pair(custom_id="c", query=" ")),  # 5 empty query
        json.dumps(_pair(custom_id="a", query="other")),  # 6 duplicate id
        "[1, 2]",  # 7 not an object
        json.dumps(_pair(custom_id="d")),  # 8 ok
    ]
    batch = validate_jsonl(lines)
    assert [p.custom_id for p in batch.pairs] == ["a", "d"]
    assert [(e.row, e.field) for e in batch.errors] == [
        (3, None),
        (4, "ad.title"),
        (5, "query"),
        (6, "custom_id"),
        (7, None),
    ]
    assert "invalid JSON" in batch.errors[0].message
    assert "first on line 1" in batch.errors[3].message
    assert str(batch.errors[2]) == "line 5, query: query must not be empty"
    assert not batch.ok


LINES = [
    json.dumps(_pair(custom_id=" a ", ad={"title": " T ", "brand": " ", "attributes": {" k ": " v ", "e": " "}})),
    json.dumps(_pair(custom_id="b", meta={"x": float("nan"), "big": 10**30})),  # NaN: not strict JSON
    json.dumps(_pair(custom_id="c", query="\ud800 lone surrogate")),  # not text: no store or teacher takes it
    json.dumps(_pair(custom_id="d", query="   ")),
    json.dumps(_pair(custom_id="e", ad={"title": "T", "colour": "red"})),
    json.dumps(_pair(custom_id="a")),  # duplicate custom_id
    '{"custom_id": "f", "query": "q", "ad": {"title": "T"}, "custom_id": "g"}',  # duplicate key: the last wins
    "[1, 2]",
    "{not json",
]


def test_the_fast_jsonl_path_agrees_with_record_validation() -> None:
    # Good lines are parsed and validated by pydantic's JSON parser, the rest by json.loads + model_validate:
    # whichever path a line takes, the pairs and the messages must be those of validating the record.
    fast = validate_jsonl([line.encode() for line in LINES])
    records = []
    for row, line in enumerate(LINES[:-1], start=1):
        records.append((row, json.loads(line)))
    slow = validate_records(records)
    assert [repr(p) for p in fast.pairs] == [repr(p) for p in slow.pairs]  # repr: NaN != NaN
    assert fast.rows == slow.rows == [1, 2, 7]
    assert [e for e in fast.errors if e.row != len(LINES)] == slow.errors
    assert fast.errors[-1].row == len(LINES) and fast.errors[-1].message.startswith("invalid JSON")


def test_jsonl_lines_with_nul_or_lone_surrogate_escapes_fail_alone() -> None:
    lines = [
        json.dumps(_pair(custom_id="a")),
        '{"custom_id": "b\\u0000", "query": "q", "ad": {"title": "T"}}',
        '{"custom_id": "c", "query": "q\\ud800", "ad": {"title": "T"}}',
        json.dumps(_pair(custom_id="d")),
    ]
    batch = validate_jsonl([line.encode() for line in lines])
    assert [p.custom_id for p in batch.pairs] == ["a", "d"]
    assert [(e.row, e.field) for e in batch.errors] == [(2, "custom_id"), (3, "query")]
    assert "NUL" in batch.errors[0].message and "lone surrogate" in batch.errors[1].message


def test_a_jsonl_line_nested_thousands_deep_fails_alone() -> None:
    deep = '{"custom_id": "b", "query": "q", "ad": {"title": "T", "attributes": ' + '{"a": ' * 5000 + "1"
    deep += "}" * 5000 + "}}"
    lines = [json.dumps(_pair(custom_id="a")), deep, "[" * 30_000 + "]" * 30_000, json.dumps(_pair(custom_id="d"))]
    batch = validate_jsonl([line.encode() for line in lines])
    assert [p.custom_id for p in batch.pairs] == ["a", "d"]
    assert [(e.row, e.message) for e in batch.errors] == [
        (2, "invalid JSON: nested too deeply"),
        (3, "invalid JSON: nested too deeply"),
    ]


def test_jsonl_limits_on_count_bytes_and_encoding() -> None:
    many = [json.dumps(_pair(custom_id=str(i))) for i in range(5)]
    batch = validate_jsonl(many, max_pairs=3)
    assert len(batch.pairs) == 3
    assert [(e.row, e.message) for e in batch.errors] == [(4, "too many pairs: the limit is 3; stopped reading")]

    raw = [json.dumps(_pair(custom_id="x")).encode(), b"\xff\xfe", b"x" * 100]
    batch = validate_jsonl(raw, limits=PairLimits(line_bytes=99))
    assert [p.custom_id for p in batch.pairs] == ["x"]
    assert "not UTF-8" in batch.errors[0].message and batch.errors[0].row == 2
    assert "limit is 99" in batch.errors[1].message and batch.errors[1].row == 3


def test_file_round_trip(tmp_path) -> None:
    pairs = [validate_pair(_pair(custom_id=f"p{i}", meta={"label": "Exact"})) for i in range(3)]
    path = tmp_path / "pairs.jsonl"
    assert write_pairs_jsonl(pairs, path) == 3
    batch = read_pairs_jsonl(path)
    assert batch.ok and batch.pairs == pairs
