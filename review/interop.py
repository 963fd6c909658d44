"""The review queue in the formats of Argilla and Label Studio, and their annotations read back as reviews.

- Argilla (2.x): records as ``rg.Record.to_dict()`` writes them and ``rg.Record.from_dict()`` /
  ``dataset.records.from_json()`` read them: ``{"id", "fields", "metadata", "suggestions": {question: {value,
  score, agent}}, "responses": {question: [{value, user_id, status}]}}``. The teacher's label is the suggestion of
  the ``label`` question; submitted responses come back as reviews by ``argilla:<user_id>``.
- Label Studio: tasks ``{"data", "predictions": [{"model_version", "score", "result"}]}`` for the labelling
  config :func:`label_studio_config`; an export's ``annotations`` (choices of ``label``) come back as reviews by
  ``label-studio:<completed_by>``. Cancelled annotations are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import quoteattr

QUESTION = "label"  # the question / control every export names
TEXT = "pair"  # Label Studio's object tag the choices belong to


@dataclass(frozen=True)
class QueueRecord:
    """What a reviewer sees of one pair: the pair, and the teacher's answer."""

    custom_id: str
    job_id: str
    pair: Mapping[str, Any]
    label: str | None
    confidence: float | None
    teacher: str
    reasoning: str = ""


@dataclass(frozen=True)
class ImportedReview:
    custom_id: str
    reviewer: str
    label: str


class InteropError(ValueError):
    """A record of an import that cannot be read; the message names its position and field."""


def _fields(pair: Mapping[str, Any]) -> dict[str, str]:
    ad = pair.get("ad") or {}
    attributes = "; ".join(f"{k}: {v}" for k, v in (ad.get("attributes") or {}).items())
    fields = {
        "query": pair.get("query", ""),
        "title": ad.get("title", ""),
        "description": ad.get("description") or "",
        "brand": ad.get("brand") or "",
        "attributes": attributes,
    }
    return {k: v for k, v in fields.items() if v}


def argilla_records(records: Sequence[QueueRecord]) -> list[dict[str, Any]]:
    """Records for an Argilla dataset with TextFields query/title/... and a LabelQuestion ``label``."""
    out = []
    for r in records:
        suggestions = {}
        if r.label is not None:
            suggestions[QUESTION] = {"value": r.label, "score": r.confidence, "agent": r.teacher}
        out.append(
            {
                "id": r.custom_id,
                "fields": _fields(r.pair),
                "metadata": {"job_id": r.job_id},
                "suggestions": suggestions,
                "responses": {},
            }
        )
    return out


def argilla_settings(labels: Sequence[str]) -> dict[str, Any]:
    """The dataset settings the records fit (``rg.Settings`` arguments, as plain data)."""
    return {
        "fields": [{"name": n, "type": "text"} for n in ("query", "title", "description", "brand", "attributes")],
        "questions": [{"name": QUESTION, "type": "label_selection", "labels": list(labels)}],
    }


def label_studio_config(labels: Sequence[str]) -> str:
    """The labelling config (XML) the tasks are made for."""
    choices = "\n".join(f"    <Choice value={quoteattr(label)}/>" for label in labels)
    return (
        "<View>\n"
        '  <Header value="$query"/>\n'
        f'  <Text name="{TEXT}" value="$title"/>\n'
        '  <Text name="description" value="$description"/>\n'
        '  <Text name="attributes" value="$attributes"/>\n'
        f'  <Choices name="{QUESTION}" toName="{TEXT}" choice="single" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def label_studio_tasks(records: Sequence[QueueRecord]) -> list[dict[str, Any]]:
    out = []
    for r in records:
        data = {"custom_id": r.custom_id, "job_id": r.job_id, "description": "", "attributes": "", **_fields(r.pair)}
        task: dict[str, Any] = {"data": data, "predictions": []}
        if r.label is not None:
            task["predictions"].append(
                {
                    "model_version": r.teacher,
                    "score": r.confidence,
                    "result": [
                        {"from_name": QUESTION, "to_name": TEXT, "type": "choices", "value": {"choices": [r.label]}}
                    ],
                }
            )
        out.append(task)
    return out


def _need(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        raise InteropError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def argilla_reviews(records: Any) -> list[ImportedReview]:
    """Submitted responses of records read from Argilla (``to_dict()`` / ``records.to_json()``)."""
    out = []
    for i, record in enumerate(_need(records, list, "records")):
        where = f"record {i}"
        record = _need(record, dict, where)
        custom_id = _need(record.get("id"), str, f"{where}: id")
        responses = _need(record.get("responses") or {}, dict, f"{where}: responses")
        for j, response in enumerate(_need(responses.get(QUESTION) or [], list, f"{where}: responses.{QUESTION}")):
            response = _need(response, dict, f"{where}: responses.{QUESTION}[{j}]")
            if response.get("status", "submitted") != "submitted":
                continue
            value = _need(response.get("value"), str, f"{where}: responses.{QUESTION}[{j}].value")
            user = response.get("user_id")
            if user is None:
                raise InteropError(f"{where}: responses.{QUESTION}[{j}].user_id is missing")
            out.append(ImportedReview(custom_id, f"argilla:{user}", value))
    return out


def label_studio_reviews(tasks: Any) -> list[ImportedReview]:
    """Annotations of a Label Studio JSON export (each task's ``annotations``; cancelled ones skipped)."""
    out = []
    for i, task in enumerate(_need(tasks, list, "tasks")):
        where = f"task {i}"
        task = _need(task, dict, where)
        data = _need(task.get("data"), dict, f"{where}: data")
        custom_id = _need(data.get("custom_id"), str, f"{where}: data.custom_id")
        for j, annotation in enumerate(_need(task.get("annotations") or [], list, f"{where}: annotations")):
            annotation = _need(annotation, dict, f"{where}: annotations[{j}]")
            if annotation.get("was_cancelled"):
                continue
            who = annotation.get("completed_by")
            if isinstance(who, dict):
                who = who.get("email") or who.get("id")
            if who is None:
                raise InteropError(f"{where}: annotations[{j}].completed_by is missing")
            results = _need(annotation.get("result") or [], list, f"{where}: annotations[{j}].result")
            choices = [
                r.get("value", {}).get("choices")
                for r in results
                if isinstance(r, dict) and r.get("from_name") == QUESTION
            ]
            if not choices or not isinstance(choices[0], list) or len(choices[0]) != 1:
                raise InteropError(f"{where}: annotations[{j}].result has no single choice of {QUESTION!r}")
            out.append(ImportedReview(custom_id, f"label-studio:{who}", _need(choices[0][0], str, f"{where}: choice")))
    return out
