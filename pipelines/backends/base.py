"""The teacher interface: a batch of chat prompts and decoding settings in, n completions per prompt out.

Every backend (``transformers`` in-process, ``openai`` over HTTP to any OpenAI-compatible server, ``vllm``
in-process on GPU) implements :class:`TeacherBackend`, so the annotation engine never knows which one it talks
to. ``teacher_id`` names the model *and its revision*: it goes into every result line and into the label-cache
key, so a retrained teacher never serves labels cached from its predecessor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from relevance.label_scores import LABEL_METHODS, LabelMethod

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Decoding:
    """Decoding settings for one request; part of the label-cache key (see :meth:`cache_key`)."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # How the label is read (relevance.label_scores); score and overlap need a backend that is a LabelScorer.
    method: LabelMethod = "sample"

    def __post_init__(self) -> None:
        if self.method not in LABEL_METHODS:
            raise ValueError(f"method must be one of {', '.join(LABEL_METHODS)}, got {self.method!r}")
        if self.method != "sample" and self.n != 1:
            raise ValueError(f"method {self.method!r} reads one answer per pair; n must be 1, got {self.n}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")

    def cache_key(self) -> dict[str, Any]:
        """The settings that change what the teacher says (the seed does not enter: samples are a draw).

        Sampled labels keep the key they had before methods existed; a scored answer is greedy, so sampling
        settings do not enter its key, and an overlap answer depends on no decoding setting at all.
        """
        if self.method == "overlap":
            return {"method": self.method}
        out = asdict(self)
        out.pop("seed")
        out["stop"] = list(self.stop)
        if self.method == "sample":
            out.pop("method")
        else:
            for name in ("n", "temperature", "top_p"):
                out.pop(name)
        return out

    def record(self) -> dict[str, Any]:
        """Every setting, as a job row stores it (:func:`pipelines.requests.job_request` reads it back)."""
        return {**asdict(self), "stop": list(self.stop)}


@dataclass(frozen=True)
class Completion:
    text: str
    completion_tokens: int
    finish_reason: str = "stop"  # "stop" (EOS or a stop string) or "length" (max_tokens reached)


@dataclass(frozen=True)
class Generation:
    """The n completions for one prompt, and the prompt's length in tokens."""

    completions: list[Completion]
    prompt_tokens: int
    extra: dict[str, Any] = field(default_factory=dict)


class TeacherError(RuntimeError):
    """The teacher could not answer (server down, timeout after retries, bad response)."""


class PromptError(ValueError):
    """The teacher refused prompts of a batch (too long for its context, empty): sending them again cannot help.

    ``refused`` maps each refused prompt's position in the batch to the reason. ``answered`` holds, by position,
    what the backend had already answered when it knew (the openai backend sends each prompt on its own), so
    that only the prompts in neither need asking again.
    """

    def __init__(self, refused: Mapping[int, str], answered: Mapping[int, Any] | None = None) -> None:
        if not refused:
            raise ValueError("a PromptError refuses at least one prompt")
        self.refused = dict(refused)
        self.answered = dict(answered or {})
        super().__init__("; ".join(f"prompt {i}: {reason}" for i, reason in sorted(self.refused.items())))


@runtime_checkable
class TeacherBackend(Protocol):
    @property
    def teacher_id(self) -> str:
        """``<model name>@<revision>``: stable for the same weights, different for different ones."""
        ...

    def generate(self, prompts: Sequence[Messages], decoding: Decoding) -> list[Generation]:
        """One :class:`Generation` per prompt, in order, each with exactly ``decoding.n`` completions."""
        ...

    def ping(self) -> None:
        """Return when the teacher can answer; raise :class:`TeacherError` saying why not."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class LabelScorer(Protocol):
    """A backend that can also score labels (label methods ``score`` and ``overlap``)."""

    def score_next(
        self, prompts: Sequence[Messages], prefixes: Sequence[str], candidates: Sequence[str]
    ) -> list[list[float]]:
        """For each prompt whose answer begins with ``prefixes[i]``: the log-probability that each candidate
        comes next (of its first token, after a space), in ``candidates`` order."""
        ...
