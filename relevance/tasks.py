"""Labelling tasks as data: a team's label set, guidelines, few-shot examples and prompt, in one versioned record.

A task is what a team writes down before anyone labels (YAML or JSON, see ``relevance/task_library/`` for a
shipped one)::

    name: esci-zh
    language: zh
    labels:                      # schema order = display order = the order ties are broken in
      - {name: Exact, code: E, grade: 3, gain: 1.0, guideline: "...", aliases: [完全相关]}
      - ...
    guidelines: "..."            # free text shown to the teacher
    examples:                    # few-shot: shown as earlier chat turns, answer = reasoning + "Label: <name>"
      - {query: "...", ad: {title: "..."}, label: Exact, reasoning: "..."}
    template: brief              # a built-in template (relevance.prompts) ...
    prompt: {system: "...", user: "..."}   # ... or Jinja text; exactly one of the two

A task's label set becomes a :class:`~relevance.schemas.LabelSchema` named after the task, so the parser, the
votes, the metrics and the label cache work on it unchanged. Its **prompt version** hashes the whole task (and
the built-in template's text when it names one), so any changed word is a new version and a cached label made
under one task is never served for another.

Jinja templates come from tenants, so they render in Jinja's immutable sandbox with undefined names as errors;
they see ``query``, ``ad`` (``title``, ``brand``, ``category``, ``attributes``, ``description``, cut to the
task's limits), ``ad_text`` (the ad as the built-in templates show it), ``labels`` (``name``, ``code``,
``guideline``, ``hint``, ``aliases``), ``names``, ``guidelines`` and ``prefix`` (``Label:``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from relevance.pairs import Ad, Pair, unstorable, validate_pair
from relevance.parsing import LABEL_PREFIX, format_label_line
from relevance.prompts import PromptTemplate, build_messages, cut, get_template, render_ad, template_names
from relevance.schemas import Label, LabelSchema

TASK_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,31}$"
MAX_LABELS = 16
MAX_EXAMPLES = 16
MAX_TEMPLATE_CHARS = 8_000
MAX_GUIDELINES_CHARS = 8_000

MAX_PROMPT_CHARS = 50_000
TASK_LIBRARY = Path(__file__).with_name("task_library")


class _TaskSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, also bounded in time and memory: a tenant's template may loop only over the
    task's and the pair's own (bounded) data, and cannot build huge values with ``*`` or ``**``."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        sized = (str, list, tuple)
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("exponents above 64 are not allowed in a task's prompt")
        if operator == "*" and isinstance(left, sized) != isinstance(right, sized):
            times = right if isinstance(left, sized) else left
            if isinstance(times, int) and times > 1_000:
                raise SecurityError("repeating text more than 1,000 times is not allowed in a task's prompt")
        return super().call_binop(context, operator, left, right)


_SANDBOX = _TaskSandbox(undefined=jinja2.StrictUndefined, autoescape=False)
for _unbounded in ("range", "lipsum", "cycler", "joiner"):
    _SANDBOX.globals.pop(_unbounded, None)


def _render(template: jinja2.Template, context: Mapping[str, Any]) -> str:
    """The rendered text, refused once it passes MAX_PROMPT_CHARS (read as it is produced, never built whole)."""
    out: list[str] = []
    size = 0
    for piece in template.generate(context):
        size += len(piece)
        if size > MAX_PROMPT_CHARS:
            raise SecurityError(f"the prompt renders to more than {MAX_PROMPT_CHARS:,} characters")
        out.append(piece)
    return "".join(out)


class TaskError(ValueError):
    """A task that cannot be used; ``field`` names where (``labels.2.name``, ``prompt.user``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class TaskLabel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=64)
    code: str | None = Field(None, min_length=1, max_length=16, description="short form the parser also reads")
    grade: int | None = Field(None, ge=0, le=100, description="higher is more relevant; default: by position")
    gain: float | None = Field(None, ge=0.0, description="what NDCG credits; default: the grade")
    guideline: str = Field("", max_length=2_000)
    hint: str | None = Field(None, max_length=500, description="few-word guideline for short prompts")
    aliases: list[str] = Field(default_factory=list, max_length=16, description="other names, any language")


class TaskExample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=512)
    ad: Ad
    label: str = Field(min_length=1, max_length=64)
    reasoning: str = Field("", max_length=2_000)


class TaskPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str = Field("", max_length=MAX_TEMPLATE_CHARS)
    user: str = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)


class TaskSpec(BaseModel):
    """What a team writes: validated here, stored as given, built into a :class:`Task` wherever it labels."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=TASK_NAME_PATTERN, description="lower case, digits, '-', '_', '.'; at most 32")
    description: str = Field("", max_length=1_000)
    language: str = Field("en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$", description="BCP 47, e.g. en, zh")
    labels: list[TaskLabel] = Field(min_length=2, max_length=MAX_LABELS)
    guidelines: str = Field("", max_length=MAX_GUIDELINES_CHARS)
    examples: list[TaskExample] = Field(default_factory=list, max_length=MAX_EXAMPLES)
    template: str | None = Field(None, description=f"a built-in template: {', '.join(template_names())}")
    prompt: TaskPrompt | None = Field(None, description="Jinja system and user text, instead of a template")
    output: Literal["label_line"] = "label_line"
    max_description_chars: int = Field(240, ge=0, le=4_096)
    max_attributes: int = Field(8, ge=0, le=64)

    @field_validator("template")
    @classmethod
    def _known_template(cls, value: str | None) -> str | None:
        if value is not None and value not in template_names():
            raise ValueError(f"unknown template {value!r}; built-in: {', '.join(template_names())}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        # Every text of a task is stored and shown to a model: no NUL, no lone surrogate, anywhere in it.
        def walk(value: Any, where: str) -> None:
            if isinstance(value, str):
                if problem := unstorable(value):
                    raise ValueError(f"{where or 'task'} {problem}")
            elif isinstance(value, Mapping):
                for key, item in value.items():
                    walk(str(key), where)
                    walk(item, f"{where}.{key}" if where else str(key))
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    walk(item, f"{where}.{i}")

        walk(data, "")
        return data

    @model_validator(mode="after")
    def _one_prompt(self) -> TaskSpec:
        if (self.template is None) == (self.prompt is None):
            raise ValueError("give exactly one of template (a built-in's name) and prompt (Jinja system/user)")
        return self


def _schema(spec: TaskSpec) -> LabelSchema:
    n = len(spec.labels)
    labels = []
    for i, lab in enumerate(spec.labels):
        grade = n - 1 - i if lab.grade is None else lab.grade
        labels.append(
            Label(
                name=lab.name,
                code=lab.code or lab.name,
                grade=grade,
                gain=float(grade) if lab.gain is None else lab.gain,
                guideline=lab.guideline,
                hint=lab.hint if lab.hint is not None else lab.guideline,
                aliases=tuple(a.strip().lower() for a in lab.aliases if a.strip()),
            )
        )
    try:
        return LabelSchema(name=spec.name, labels=tuple(labels), description=spec.description)
    except ValueError as exc:
        raise TaskError("labels", str(exc)) from None


@dataclass(frozen=True)
class Task:
    """A task ready to label with: its schema, and its prompts rendered per pair."""

    spec: TaskSpec
    version: int = 0  # the stored version (1, 2, ...); 0 for one never stored
    id: str | None = None  # the stored row's id; None for a built-in task

    @cached_property
    def schema(self) -> LabelSchema:
        return _schema(self.spec)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def ref(self) -> str:
        """``name@version``, as results and exports name it."""
        return f"{self.name}@{self.version}"

    @cached_property
    def builtin(self) -> PromptTemplate | None:
        return get_template(self.spec.template) if self.spec.template else None

    def fingerprint(self) -> str:
        """Everything the teacher's answer depends on, as canonical JSON (the built-in template's text too)."""
        payload = {
            "spec": self.spec.model_dump(mode="json", exclude={"description"}),
            "schema": self.schema.fingerprint(),
            "template": asdict(self.builtin) if self.builtin else None,
        }
        return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    @cached_property
    def prompt_version(self) -> str:
        """``t`` and 11 hex characters of sha256 over :meth:`fingerprint` (the ``t`` tells it from a built-in
        template's version): recorded with every label made under it."""
        return "t" + hashlib.sha256(self.fingerprint().encode("utf-8")).hexdigest()[:11]

    @cached_property
    def _jinja(self) -> tuple[jinja2.Template | None, jinja2.Template]:
        prompt = self.spec.prompt
        assert prompt is not None
        compiled = []
        for part in ("system", "user"):
            try:
                text = getattr(prompt, part)
                compiled.append(_SANDBOX.from_string(text) if text else None)
            except jinja2.TemplateSyntaxError as exc:
                raise TaskError(f"prompt.{part}", f"line {exc.lineno}: {exc.message}") from None
        return compiled[0], compiled[1]  # type: ignore[return-value]

    def _context(self, pair: Pair) -> dict[str, Any]:
        ad = pair.ad
        limit = self.spec.max_description_chars
        shown = PromptTemplate("task", "", "", max_description_chars=limit, max_attributes=self.spec.max_attributes)
        return {
            "query": pair.query,
            "ad": {
                "title": ad.title,
                "brand": ad.brand or "",
                "category": ad.category or "",
                "attributes": dict(list((ad.attributes or {}).items())[: self.spec.max_attributes]),
                "description": cut(ad.description or "", limit),
            },
            "ad_text": render_ad(pair, shown),
            "labels": [
                {
                    "name": lab.name,
                    "code": lab.code,
                    "guideline": lab.guideline,
                    "hint": lab.hint,
                    "aliases": list(lab.aliases),
                }
                for lab in self.schema.labels
            ],
            "names": ", ".join(self.schema.names),
            "guidelines": self.spec.guidelines,
            "prefix": LABEL_PREFIX,
        }

    def _turn(self, pair: Pair) -> tuple[str, str]:
        """(system, user) for one pair, before guidelines and examples are added."""
        if self.builtin is not None:
            system, user = build_messages(pair, self.schema, self.builtin)
            return system["content"], user["content"]
        system_t, user_t = self._jinja
        context = self._context(pair)
        try:
            system = _render(system_t, context) if system_t is not None else ""
            user = _render(user_t, context)
        except Exception as exc:  # a tenant's template: any error it raises is the task's, never the server's
            raise TaskError("prompt", f"does not render: {exc or type(exc).__name__}") from None
        return system.strip(), user.strip()

    def messages(self, pair: Pair | Mapping[str, Any]) -> list[dict[str, str]]:
        """Chat messages asking the teacher to label ``pair``: the system text (with the guidelines when a
        built-in template is used, which has no slot for them), each example as a user turn and the answer it
        should get, then the pair."""
        p = pair if isinstance(pair, Pair) else validate_pair(pair)
        system, user = self._turn(p)
        if self.builtin is not None and self.spec.guidelines:
            system = f"{system}\n\n{self.spec.guidelines.strip()}"
        messages = [{"role": "system", "content": system}] if system else []
        for example in self.spec.examples:
            shot = Pair(custom_id="example", query=example.query, ad=example.ad)
            answer = format_label_line(self.schema.label(example.label).name)
            if example.reasoning.strip():
                answer = f"{example.reasoning.strip()}\n{answer}"
            messages += [{"role": "user", "content": self._turn(shot)[1]}, {"role": "assistant", "content": answer}]
        messages.append({"role": "user", "content": user})
        return messages


def check_task(spec: TaskSpec, version: int = 0) -> Task:
    """The task built and tried once: its labels, examples and prompt all work, or :class:`TaskError` says where.

    The prompt is rendered for the first example's pair (or a stand-in), so a template error is found when a
    team stores the task, not by the worker that first labels with it.
    """
    task = Task(spec, version)
    schema = task.schema
    for i, example in enumerate(spec.examples):
        if schema.normalize(example.label) is None:
            raise TaskError(f"examples.{i}.label", f"{example.label!r} is not one of {', '.join(schema.names)}")
    probe = spec.examples[0] if spec.examples else None
    pair = Pair(
        custom_id="probe",
        query=probe.query if probe else "stand-in query",
        ad=probe.ad if probe else Ad(title="stand-in title", brand="b", category="c", description="d"),
    )
    task.messages(pair)
    return task


def parse_task(data: Mapping[str, Any]) -> TaskSpec:
    """A spec from parsed YAML/JSON; :class:`TaskError` names the first bad field."""
    try:
        return TaskSpec.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "task"
        raise TaskError(where, first["msg"].removeprefix("Value error, ")) from None


@lru_cache(maxsize=256)
def _task_from_json(spec_json: str, version: int, task_id: str | None) -> Task:
    return Task(TaskSpec.model_validate_json(spec_json), version, task_id)


def load_task(spec: Mapping[str, Any], version: int, task_id: str | None = None) -> Task:
    """A stored task, built once per process (a worker labels many chunks with the same one)."""
    return _task_from_json(json.dumps(dict(spec), sort_keys=True, ensure_ascii=False), version, task_id)


def builtin_tasks() -> dict[str, TaskSpec]:
    """The tasks shipped in ``relevance/task_library`` (version 1 each), by name."""
    import yaml

    out: dict[str, TaskSpec] = {}
    for path in sorted(TASK_LIBRARY.glob("*.yaml")):
        spec = parse_task(yaml.safe_load(path.read_text(encoding="utf-8")))
        out[spec.name] = spec
    return out
