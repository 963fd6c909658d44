"""Whether a pair's prompt fits the teacher's context, decided when the pair is submitted.

A pair whose prompt plus ``max_tokens`` exceeds the teacher's context can never be labelled; refusing it at
submission (a 422 naming the pair and the token counts) beats failing it in a worker minutes later. The meter
renders the prompt exactly as the in-process teacher does (its tokenizer and chat template) and counts tokens.

Rendering and counting cost 0.1-0.3 ms a pair, half a minute for a 100k-pair upload, so most pairs skip both. A
byte-level BPE token spans at least one UTF-8 byte, so a prompt has at most as many tokens as the template's
own (counted once, on a skeleton pair that fills every slot) plus the bytes of the pair's fields; when that
bound fits, nothing is rendered. Only pairs near the limit are rendered and tokenised.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pipelines.annotate import LabelRequest
from pipelines.backends import encode_prompt, render_prompt
from pipelines.chat_lines import conversation
from pipelines.settings import Settings
from relevance.pairs import Pair, PairBatch, RowError
from relevance.prompts import PromptTemplate, get_template

log = logging.getLogger(__name__)

# A scored label is read after the answer's reasoning and its label line: a few tokens past max_tokens.
SCORING_SLACK = 16
TOO_LONG = "too long for the teacher:"


@dataclass
class PromptMeter:
    """A teacher's tokenizer and context: how many tokens a pair's prompt takes and whether it fits."""

    tokenizer: Any
    context: int
    _skeletons: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)

    @cached_property
    def byte_level(self) -> bool:
        """Whether every token spans at least one byte (byte-level BPE), which makes bytes a bound on tokens."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return False
        spec = json.loads(backend.to_str())
        return (
            any("ByteLevel" in json.dumps(spec.get(part)) for part in ("pre_tokenizer", "decoder"))
            and spec.get("model", {}).get("type") == "BPE"
        )

    def _tokens(self, pair: Pair, request: LabelRequest) -> int:
        text = render_prompt(self.tokenizer, request.messages(pair))
        return len(encode_prompt(self.tokenizer, text, templated=bool(getattr(self.tokenizer, "chat_template", None))))

    def _bound(self, pair: Pair, request: LabelRequest) -> int:
        """At most this many tokens in ``pair``'s prompt (byte-level BPE): the template's own, plus a token per
        byte of every field the template shows, as often as it shows it."""
        template = request.task.builtin if request.task else get_template(request.prompt_template)
        assert template is not None
        key = (request.prompt_version, template.name)
        if key not in self._skeletons:
            self._skeletons[key] = self._tokens(_skeleton(template), request)
        ad = pair.ad
        shown = [ad.title, ad.brand or "", ad.category or "", (ad.description or "")[: template.max_description_chars]]
        shown += [f"{k}: {v}; " for k, v in list((ad.attributes or {}).items())[: template.max_attributes]]
        slots = template.system + template.user
        return (
            self._skeletons[key]
            + slots.count("{query}") * len(pair.query.encode("utf-8"))
            + slots.count("{ad}") * sum(len(text.encode("utf-8")) for text in shown)
        )

    def problem(self, pair: Pair, request: LabelRequest) -> str | None:
        """Why ``pair`` cannot be labelled under ``request`` in this context, or None when it fits."""
        answer = request.decoding.max_tokens + (0 if request.decoding.method == "sample" else SCORING_SLACK)
        room = self.context - answer
        if room <= 0:
            return f"max_tokens={request.decoding.max_tokens} leaves no room in the teacher's context of {self.context}"
        # A Jinja prompt has no known slots, and a conversation no template: both are counted
        bounded = (request.task is None or request.task.builtin is not None) and conversation(pair) is None
        if self.byte_level and bounded and self._bound(pair, request) <= room:
            return None
        used = self._tokens(pair, request)
        if used <= room:
            return None
        return (
            f"its prompt ({request.prompt_template} template) is {used} tokens, and with max_tokens="
            f"{request.decoding.max_tokens} that exceeds the teacher's context of {self.context} tokens (the prompt "
            f"may be {room}); shorten the query or ad, or lower max_tokens"
        )

    def split(self, batch: PairBatch, request: LabelRequest) -> PairBatch:
        """``batch`` with the pairs that cannot fit moved to its errors (by row), the rest kept in order."""
        kept = PairBatch(errors=list(batch.errors))
        for pair, row in zip(batch.pairs, batch.rows, strict=True):
            if (problem := self.problem(pair, request)) is None:
                kept.pairs.append(pair)
                kept.rows.append(row)
            else:
                kept.errors.append(RowError(row, None, f"{TOO_LONG} {problem}"))
        kept.errors.sort(key=lambda e: e.row)
        return kept


def _skeleton(template: PromptTemplate) -> Pair:
    """A pair that fills every slot of ``template`` with one character: its prompt is the template's own text."""
    attributes = {f"k{i}": "v" for i in range(template.max_attributes)}
    return Pair.model_validate(
        {
            "custom_id": "skeleton",
            "query": "q",
            "ad": {"title": "t", "brand": "b", "category": "c", "description": "d", "attributes": attributes},
        }
    )


_lock = threading.Lock()
_meters: dict[tuple[Any, ...], PromptMeter | None] = {}


def prompt_meter(settings: Settings) -> PromptMeter | None:
    """The meter of the configured teacher, loaded once per process; None when this process cannot know (a
    served teacher without ``AGPO_TEACHER_TOKENIZER`` and ``AGPO_TEACHER_CONTEXT``): the worker then fails
    such a pair alone."""
    key = (settings.teacher_backend, settings.teacher_model, settings.teacher_tokenizer, settings.teacher_context)
    with _lock:
        if key not in _meters:
            _meters[key] = _load(settings)
        return _meters[key]


def _load(settings: Settings) -> PromptMeter | None:
    local = settings.teacher_backend != "openai"
    source = settings.teacher_tokenizer or (settings.teacher_model if local else None)
    if source is None:
        return None
    try:
        from transformers import AutoTokenizer

        from llm.bases import model_context

        context = settings.teacher_context or (model_context(settings.teacher_model) if local else None)
        if context is None:
            return None
        return PromptMeter(AutoTokenizer.from_pretrained(source), context)
    except Exception as exc:  # the check is a convenience: without it the worker still fails such pairs alone
        log.warning("cannot measure prompts against the teacher's context (%s): %s", source, exc)
        return None
