"""Labelling pairs with a teacher: prompts, n samples, parsing, retries, votes. Plain functions, no DB.

The label-cache key hashes everything that changes the teacher's answer: the pair's content (query and ad;
never ``custom_id`` or ``meta``), the label schema, the prompt version, the teacher id with its revision, and
the decoding settings. A pair seen before under the same key is not sent to the teacher again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from pipelines.backends.base import Decoding, LabelScorer, Messages, PromptError, TeacherBackend, TeacherError
from pipelines.chat_lines import conversation
from relevance.label_scores import reasoning_of, scored_answer, scored_label, scoring_prefix
from relevance.overlap import overlap_reasoning
from relevance.parsing import LABEL_PREFIX, parse_label
from relevance.prompts import build_messages, prompt_version
from relevance.schemas import DEFAULT_SCHEMA, LabelSchema, get_schema
from relevance.tasks import Task
from relevance.votes import vote


@dataclass(frozen=True)
class LabelRequest:
    """How to label: schema, prompt template, decoding and how often to re-ask for unparseable samples.

    It carries the :class:`LabelSchema` itself, looked up once where the request is made (from the API's
    options, or from a job's row by :func:`pipelines.requests.job_request`), never again per pair. Under a
    ``task`` (:mod:`relevance.tasks`) the schema and the prompts are the task's.
    """

    schema: LabelSchema = field(default_factory=lambda: get_schema(DEFAULT_SCHEMA))
    prompt_template: str = "compact"
    decoding: Decoding = field(default_factory=Decoding)
    unparseable_retries: int = 1
    # mode cascade (pipelines.cascade): the student's label where its confidence reaches this; None: teacher only.
    cascade_threshold: float | None = None
    task: Task | None = None

    def __post_init__(self) -> None:
        if self.task is not None:
            object.__setattr__(self, "schema", self.task.schema)
            object.__setattr__(self, "prompt_template", self.task.spec.template or "jinja")

    @property
    def label_schema(self) -> str:
        """The schema's name, as a job records it."""
        return self.schema.name

    @cached_property
    def prompt_version(self) -> str:
        if self.task is not None:
            return self.task.prompt_version
        return prompt_version(self.prompt_template, self.schema)

    def messages(self, pair: Any) -> Messages:
        """The chat asking the teacher to label ``pair`` (a batch line's own conversation is sent as it is)."""
        if (chat := conversation(pair)) is not None:
            return chat
        if self.task is not None:
            return self.task.messages(pair)
        return build_messages(pair, self.schema, self.prompt_template)

    @cached_property
    def schema_fingerprint(self) -> str:
        return self.schema.fingerprint()


@dataclass
class PairOutcome:
    """One pair's answer: ``label`` None means failed (no parseable sample), with ``error`` saying why."""

    label: str | None
    confidence: float
    distribution: dict[str, float]
    reasoning: str
    samples: list[dict[str, Any]]
    teacher: str
    prompt_version: str
    cached: bool = False
    error: str | None = None
    source: str = "teacher"  # or "student" (a cascade job's pair the student was sure of)
    # In a cascade job, the student's guess on a pair it left to the teacher: {"label", "confidence"}
    student: dict[str, Any] | None = None

    def to_cache(self) -> dict[str, Any]:
        keys = ("label", "confidence", "distribution", "reasoning", "samples", "teacher", "prompt_version")
        return {k: getattr(self, k) for k in keys}


@dataclass
class BatchStats:
    teacher_prompts: int = 0
    teacher_calls: int = 0
    teacher_seconds: float = 0.0
    completion_tokens: int = 0


def pair_content(pair: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a pair (or of a conversation) the teacher sees."""
    if (chat := conversation(pair)) is not None:
        return {"messages": chat}
    return {"query": pair["query"], "ad": pair["ad"]}


def cache_key(pair: Mapping[str, Any], request: LabelRequest, teacher_id: str) -> str:
    payload = {
        "pair": pair_content(pair),
        "schema": request.schema_fingerprint,
        "prompt_version": request.prompt_version,
        "teacher": teacher_id,
        "decoding": request.decoding.cache_key(),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


T = TypeVar("T")


def answer_each(call: Callable[[list[int]], Sequence[T]], indices: list[int]) -> tuple[dict[int, T], dict[int, str]]:
    """``call(indices)`` for a batch, so that prompts the teacher refuses fail alone: ``(answers, refused)``.

    A :class:`PromptError` names the refused prompts (and any answers the backend already had); the rest are
    asked again without them. Any other error is the teacher's, not a prompt's, and propagates.
    """
    answers: dict[int, T] = {}
    refused: dict[int, str] = {}
    todo = list(indices)
    while todo:
        try:
            results = call(todo)
        except PromptError as error:
            refused.update({todo[pos]: reason for pos, reason in error.refused.items()})
            answers.update({todo[pos]: answer for pos, answer in error.answered.items()})
            todo = [i for i in todo if i not in refused and i not in answers]
            continue
        answers.update(zip(todo, results, strict=True))
        todo = []
    return answers, refused


def refusal_error(reason: str) -> str:
    """A refused pair's error, as its result line says it."""
    return f"the teacher cannot take this pair's prompt: {reason}; shorten the pair or lower max_tokens"


def _sample_record(text: str, label: str | None, tokens: int, finish: str) -> dict[str, Any]:
    # A byte-level model can emit NUL, which PostgreSQL text cannot store; it carries no meaning in an answer.
    return {"label": label, "text": text.replace("\x00", ""), "completion_tokens": tokens, "finish_reason": finish}


def label_pairs(
    pairs: Sequence[Mapping[str, Any]],
    backend: TeacherBackend,
    request: LabelRequest,
    *,
    batch_size: int = 32,
    stats: BatchStats | None = None,
    on_batch: Any = None,
) -> list[PairOutcome]:
    """Label ``pairs`` (Pair-shaped dicts) with ``request.decoding.n`` samples each; one outcome per pair.

    Samples without a parseable ``Label:`` line are re-asked up to ``unparseable_retries`` times (only the
    missing ones); a pair with no parseable sample at all is a failure carrying the last raw answer, never a
    guess. ``on_batch()`` is called after every teacher call (the chunk runner renews its lease there).
    """
    stats = stats if stats is not None else BatchStats()
    schema = request.schema
    version = request.prompt_version
    n = request.decoding.n
    samples: list[list[dict[str, Any]]] = [[] for _ in pairs]
    messages = [request.messages(p) for p in pairs]
    if request.decoding.method != "sample":
        return _scored_pairs(pairs, messages, backend, request, batch_size, stats, on_batch)

    refused: dict[int, str] = {}

    def ask(indices: list[int], want: dict[int, int]) -> None:
        # Group by how many samples are still wanted, so one call asks for the same n for every prompt in it.
        by_n: dict[int, list[int]] = {}
        for i in indices:
            by_n.setdefault(want[i], []).append(i)
        for k, group in sorted(by_n.items()):
            decoding = Decoding(**{**request.decoding.__dict__, "n": k})

            def generate(part: list[int], decoding: Decoding = decoding) -> list[Any]:
                t0 = time.perf_counter()
                try:
                    return backend.generate([messages[i] for i in part], decoding)
                finally:
                    stats.teacher_seconds += time.perf_counter() - t0
                    stats.teacher_calls += 1

            for start in range(0, len(group), batch_size):
                part = group[start : start + batch_size]
                generations, refusals = answer_each(generate, part)
                refused.update(refusals)
                stats.teacher_prompts += len(generations)
                for i, gen in generations.items():
                    for c in gen.completions:
                        stats.completion_tokens += c.completion_tokens
                        samples[i].append(
                            _sample_record(c.text, parse_label(c.text, schema), c.completion_tokens, c.finish_reason)
                        )
                if on_batch is not None:
                    on_batch()

    ask(list(range(len(pairs))), dict.fromkeys(range(len(pairs)), n))
    for _ in range(request.unparseable_retries):
        # Keep the parseable samples, replace the unparseable ones: n samples per pair in the end.
        want: dict[int, int] = {}
        for i, rows in enumerate(samples):
            bad = [r for r in rows if r["label"] is None]
            if bad:
                samples[i] = [r for r in rows if r["label"] is not None]
                want[i] = len(bad)
        if not want:
            break
        ask(sorted(want), want)

    teacher = backend.teacher_id
    outcomes = []
    for i, rows in enumerate(samples):
        if i in refused:
            outcomes.append(PairOutcome(None, 0.0, {}, "", [], teacher, version, error=refusal_error(refused[i])))
            continue
        v = vote([r["label"] for r in rows], schema)
        if v.label is None:
            last = rows[-1]["text"] if rows else ""
            outcomes.append(
                PairOutcome(None, 0.0, {}, last, rows, teacher, version, error="unparseable: no sample had a label")
            )
            continue
        reasoning = next(r["text"] for r in rows if r["label"] == v.label)
        outcomes.append(PairOutcome(v.label, v.confidence, v.distribution, reasoning, rows, teacher, version))
    return outcomes


def _scored_pairs(
    pairs: Sequence[Mapping[str, Any]],
    messages: list[Messages],
    backend: TeacherBackend,
    request: LabelRequest,
    batch_size: int,
    stats: BatchStats,
    on_batch: Any,
) -> list[PairOutcome]:
    """Label methods ``score`` and ``overlap``: reasoning (greedy up to the label line, or written by rule), then
    the labels' probabilities after it; the most probable label, with its probability as the confidence."""
    if not isinstance(backend, LabelScorer):
        raise TeacherError(
            f"label_method {request.decoding.method!r} needs a teacher backend that scores labels (transformers); "
            f"{type(backend).__name__} can only sample: use label_method 'sample'"
        )
    decoding = request.decoding
    greedy = Decoding(n=1, temperature=0.0, max_tokens=decoding.max_tokens, stop=(*decoding.stop, LABEL_PREFIX))
    names = request.schema.names
    teacher, version = backend.teacher_id, request.prompt_version
    outcomes: list[PairOutcome] = []
    for start in range(0, len(pairs), batch_size):
        part = list(range(start, min(start + batch_size, len(pairs))))
        t0 = time.perf_counter()
        # The rule (overlap) reads a query and a title; a conversation has neither, so the teacher reasons there.
        ruled = [] if decoding.method == "score" else [i for i in part if conversation(pairs[i]) is None]
        refused, reasonings, tokens = {}, {}, {}
        if asked := [i for i in part if i not in ruled]:
            answers, refused = answer_each(
                lambda idx: [g.completions[0] for g in backend.generate([messages[i] for i in idx], greedy)], asked
            )
            stats.teacher_calls += 1
            reasonings = {i: reasoning_of(c.text).replace("\x00", "") for i, c in answers.items()}
            tokens = {i: c.completion_tokens for i, c in answers.items()}
        for i in ruled:
            reasonings[i], tokens[i] = overlap_reasoning(pairs[i]["query"], pairs[i]["ad"]["title"]), 0
        logprobs, unscored = answer_each(
            lambda idx, said=reasonings: backend.score_next(
                [messages[i] for i in idx], [scoring_prefix(said[i]) for i in idx], names
            ),
            [i for i in part if i in reasonings],
        )
        refused.update(unscored)
        stats.teacher_seconds += time.perf_counter() - t0
        stats.teacher_calls += 1
        stats.teacher_prompts += len(logprobs)
        stats.completion_tokens += sum(tokens.values())
        for i in part:
            if i in refused:
                outcomes.append(PairOutcome(None, 0.0, {}, "", [], teacher, version, error=refusal_error(refused[i])))
                continue
            s = scored_label(logprobs[i], request.schema)
            answer = scored_answer(reasonings[i], s.label)
            sample = {**_sample_record(answer, s.label, tokens[i], decoding.method), "label_mass": round(s.mass, 6)}
            outcomes.append(PairOutcome(s.label, s.confidence, s.distribution, answer, [sample], teacher, version))
        if on_batch is not None:
            on_batch()
    return outcomes


def result_line(custom_id: str, outcome: PairOutcome | None, *, state: str, error: str | None = None) -> dict[str, Any]:
    """A result line of the job contract."""
    if outcome is None:
        return {"custom_id": custom_id, "status": state, "label": None, "error": error}
    line: dict[str, Any] = {
        "custom_id": custom_id,
        "status": "completed" if outcome.label is not None else "failed",
        "label": outcome.label,
        "confidence": round(outcome.confidence, 6),
        "distribution": outcome.distribution,
        "reasoning": outcome.reasoning,
        "samples": len(outcome.samples),
        "teacher": outcome.teacher,
        "prompt_version": outcome.prompt_version,
        "cached": outcome.cached,
        "source": outcome.source,
    }
    if outcome.student is not None:
        line["student"] = outcome.student
    if outcome.error:
        line["error"] = outcome.error
    return line
