"""Labelling tasks as data: validation that names the field, prompts from data (the built-ins or a sandboxed Jinja
template), few-shot turns, versions that follow every word, and Chinese answers read through a task's aliases."""

from __future__ import annotations

import copy

import pytest

from pipelines.annotate import LabelRequest
from relevance.parsing import parse_label
from relevance.prompts import build_messages
from relevance.tasks import MAX_PROMPT_CHARS, TaskError, builtin_tasks, check_task, load_task, parse_task

PAIR = {
    "custom_id": "p1",
    "query": "格力空调 1.5匹 一级能效",
    "ad": {
        "title": "美的 变频空调 1.5匹 一级能效 冷暖",
        "brand": "美的",
        "category": "家用电器 > 空调",
        "attributes": {"匹数": "1.5匹", "能效等级": "一级"},
        "description": "静音省电。" * 80,
    },
    "meta": {"label": "Substitute", "secret": "do-not-show"},
}
MINE = {
    "name": "mine",
    "labels": [
        {"name": "Good", "guideline": "the product asked for", "aliases": ["好"]},
        {"name": "Bad", "guideline": "anything else", "aliases": ["差"]},
    ],
    "guidelines": "Brand matters.",
    "prompt": {
        "system": "Judge. {% for l in labels %}{{ l.name }}: {{ l.guideline }}. {% endfor %}{{ guidelines }}",
        "user": "Query: {{ query }}\nTitle: {{ ad.title }}\n{{ prefix }} one of {{ names }}",
    },
}


def test_the_shipped_chinese_task_renders_chinese_prompts_with_few_shot_turns() -> None:
    task = check_task(builtin_tasks()["esci-zh"], 1)
    messages = task.messages(PAIR)
    roles = [m["role"] for m in messages]
    n_examples = len(task.spec.examples)
    assert n_examples >= 1
    assert roles == ["system"] + ["user", "assistant"] * n_examples + ["user"]
    system, last = messages[0]["content"], messages[-1]["content"]
    assert "相关性标注员" in system and "完全相关" in system and "规范" in system
    assert "搜索词：格力空调 1.5匹 一级能效" in last and "品牌：美的" in last and "匹数：1.5匹" in last
    assert "do-not-show" not in "".join(m["content"] for m in messages)  # meta never reaches the teacher
    assert "静音省电。" * 60 not in last  # the description is cut to the task's limit
    for shot, example in zip(messages[2:-1:2], task.spec.examples, strict=True):
        assert shot["content"].endswith(f"Label: {example.label}")
    assert task.schema.names == ["Exact", "Substitute", "Complement", "Irrelevant"]


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ("品牌不符。\n标签：可替代", "Substitute"),
        ("全部符合。\nLabel: 完全相关", "Exact"),
        ("是配件。\n最终标签：互补品。", "Complement"),
        ("无关。\n标签：「不相关」", "Irrelevant"),
        ("标签：完全相关或可替代", None),
    ],
)
def test_chinese_answers_are_read_through_the_tasks_aliases(answer: str, label: str | None) -> None:
    schema = check_task(builtin_tasks()["esci-zh"], 1).schema
    assert parse_label(answer, schema) == label


def test_defaults_grade_by_position_and_the_labels_own_names_parse() -> None:
    task = check_task(parse_task(MINE))
    assert task.schema.grades == {"Good": 1, "Bad": 0}
    assert task.schema.gains == {"Good": 1.0, "Bad": 0.0}
    assert parse_label("Label: 好", task.schema) == "Good"
    messages = task.messages(PAIR)
    assert messages[0]["content"] == "Judge. Good: the product asked for. Bad: anything else. Brand matters."
    assert messages[1]["content"].endswith("Label: one of Good, Bad")


def test_a_builtin_template_gets_the_guidelines_in_its_system_text() -> None:
    spec = {**{k: v for k, v in MINE.items() if k != "prompt"}, "template": "brief"}
    task = check_task(parse_task(spec))
    plain = build_messages(PAIR, task.schema, "brief")
    messages = task.messages(PAIR)
    assert messages[0]["content"] == plain[0]["content"] + "\n\nBrand matters."
    assert messages[-1] == plain[1]


def test_every_word_of_a_task_changes_its_prompt_version() -> None:
    base = check_task(parse_task(MINE)).prompt_version
    edits = [
        lambda t: t["labels"][0].update(guideline="the exact product asked for"),
        lambda t: t["labels"][1]["aliases"].append("坏"),
        lambda t: t.update(guidelines="Brand matters a lot."),
        lambda t: t["prompt"].update(user=t["prompt"]["user"] + "!"),
        lambda t: t.update(examples=[{"query": "q", "ad": {"title": "t"}, "label": "Good"}]),
        lambda t: t.update(max_description_chars=100),
    ]
    versions = set()
    for edit in edits:
        spec = copy.deepcopy(MINE)
        edit(spec)
        versions.add(check_task(parse_task(spec)).prompt_version)
    assert base not in versions and len(versions) == len(edits)
    assert check_task(parse_task(copy.deepcopy(MINE))).prompt_version == base  # and nothing else does


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        ({"prompt": {"user": "{% for i in range(10**9) %}x{% endfor %}"}}, "prompt", "'range' is undefined"),
        ({"prompt": {"user": "{{ 'a' * 100000000 }}"}}, "prompt", "1,000 times"),
        ({"prompt": {"user": "{{ 10 ** 100000 }}"}}, "prompt", "exponents"),
        (
            {"prompt": {"user": "{% for l in labels %}{{ l.name }}" * 1 + "{% endfor %}" + "{{ guidelines }}"}},
            None,
            None,
        ),
        ({"prompt": {"user": "{{ ad.titel }}"}}, "prompt", "titel"),
        ({"prompt": {"user": "{% if x %}"}}, "prompt.user", "line 1"),
        ({"prompt": {"user": "{{ ''.__class__.__mro__ }}"}}, "prompt", "unsafe"),
        ({"prompt": {"user": "{{ 1 + 'a' }}"}}, "prompt", "does not render"),
        ({"prompt": {"user": "{{ 1 / 0 }}"}}, "prompt", "does not render"),
        ({"prompt": {"user": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"}}, "prompt", "does not render"),
        ({"template": "brief"}, "task", "exactly one of template"),
        ({"template": "nope", "prompt": None}, "template", "unknown template"),
        ({"labels": [{"name": "A"}, {"name": "a"}]}, "labels", "names both"),
        ({"labels": [{"name": "A\x00"}, {"name": "B"}]}, "task", "labels.0.name contains a NUL"),
        ({"examples": [{"query": "q", "ad": {"title": "t"}, "label": "Meh"}]}, "examples.0.label", "not one of"),
        ({"name": "Not A Name"}, "name", "pattern"),
        ({"labels": [{"name": "Only"}]}, "labels", "at least 2"),
    ],
)
def test_a_task_that_cannot_work_is_refused_naming_the_field(edit: dict, field: str | None, words: str | None) -> None:
    spec = {**MINE, **edit}
    if field is None:
        check_task(parse_task(spec))  # a loop over the task's own labels is fine
        return
    with pytest.raises(TaskError) as err:
        check_task(parse_task(spec))
    assert err.value.field == field and words in str(err.value)


def test_a_prompt_that_renders_too_long_is_refused() -> None:
    long_guidelines = "g" * 7_900
    user = "{% for l in labels %}" + "{{ guidelines }}" * 4 + "{% endfor %}"
    spec = {**MINE, "guidelines": long_guidelines, "prompt": {"user": user}}
    with pytest.raises(TaskError, match=f"more than {MAX_PROMPT_CHARS:,}"):
        check_task(parse_task(spec))


def test_a_label_request_under_a_task_uses_its_schema_prompts_and_version() -> None:
    task = load_task(parse_task(MINE).model_dump(mode="json"), 3, "task_x")
    request = LabelRequest(task=task)
    assert request.schema.names == ["Good", "Bad"] and request.label_schema == "mine"
    assert request.prompt_template == "jinja"
    assert request.prompt_version == task.prompt_version and request.prompt_version.startswith("t")
    assert request.messages(PAIR) == task.messages(PAIR)
    assert task.ref == "mine@3"
    assert load_task(parse_task(MINE).model_dump(mode="json"), 3, "task_x") is task  # built once per process
