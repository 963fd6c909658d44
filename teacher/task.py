"""The relevance task for ``rlvr.train``: chat prompts of labelled pairs, gold labels, the label reward.

``agpo`` may not import the relevance domain, so this side registers the task (``task: relevance``) with
:func:`rlvr.train.register_task` when the module is imported. ``data_path`` names a JSONL file of labelled
pairs (a benchmark split); without it the synthetic benchmark's teacher-train split is generated with
``data_seed``.
"""

from __future__ import annotations

from typing import Any

from relevance.prompts import DEFAULT_TEMPLATE
from relevance.reward import RelevanceReward
from relevance.schemas import DEFAULT_SCHEMA
from rlvr.train import TrainConfig, register_task
from teacher.data import label_of, load_benchmark, messages, read_jsonl

TASK_NAME = "relevance"


def relevance_rows(
    records: list[dict[str, Any]], schema: str = DEFAULT_SCHEMA, template: str = DEFAULT_TEMPLATE
) -> tuple[list[list[dict[str, str]]], list[str]]:
    """Chat prompts and gold labels of labelled records."""
    return [messages(r, schema, template) for r in records], [label_of(r) for r in records]


def relevance_task(config: TrainConfig) -> tuple[list[Any], list[str], RelevanceReward]:
    if config.data_path:
        records = read_jsonl(config.data_path)
    else:
        records = load_benchmark(seed=config.data_seed, sizes={"teacher_train": 4000}).splits["teacher_train"]
    prompts, labels = relevance_rows(records, DEFAULT_SCHEMA, config.template or DEFAULT_TEMPLATE)
    return prompts, labels, RelevanceReward(DEFAULT_SCHEMA)


register_task(TASK_NAME, relevance_task)
