"""Chat completion bodies in a batch file (endpoint ``/v1/chat/completions``), as OpenAI's Batch API and
``vllm run-batch`` take them.

A line's body is a chat completion request, taken unchanged: the teacher reads its ``messages`` as they are, and
the label is read from its answer with the task's labels (names and aliases), as for any pair. The body's other
fields (``model``, ``temperature``, ``max_tokens`` ...) are accepted and left to the service: every line of a batch
is labelled with the batch's task and decoding, so its labels are comparable and cached alike. Its ``metadata``
(OpenAI's string key/values) comes back as the line's ``meta``.

Or the body carries the relevance pair itself, ``"pair": {query, ad, meta?}``, in place of ``messages``: the task's
own prompt asks for its label then, and the pair can be reviewed and exported like any other.

A conversation is stored as the job item's pair ``{custom_id, messages, meta?}``; :func:`conversation` tells the
two apart wherever a pair is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from relevance.pairs import DEFAULT_LIMITS, PairLimits, check_custom_id, check_meta, context_limits, unstorable

ENDPOINT = "/v1/chat/completions"
MAX_MESSAGES = 64
# OpenAI's newer name for the system role; the teacher's chat templates know only "system".
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class ChatMessage(BaseModel):
    """One message: its role and its text (OpenAI's content parts joined, when only text parts are given)."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # ``name`` and the like: accepted, not read

    role: Literal["system", "developer", "user", "assistant"]
    content: str

    @field_validator("role", mode="after")
    @classmethod
    def _role(cls, v: str) -> str:
        return ROLES[v]

    @field_validator("content", mode="before")
    @classmethod
    def _content(cls, v: Any) -> Any:
        if isinstance(v, list):
            texts = []
            for i, part in enumerate(v):
                if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                    kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
                    raise ValueError(f"part {i} is {kind!r}: the teacher reads text parts only")
                texts.append(part["text"])
            v = "\n".join(texts)
        if isinstance(v, str) and (problem := unstorable(v)):
            raise ValueError(f"content {problem}")
        return v


class Conversation(BaseModel):
    """A batch line's conversation, labelled in place of a pair."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    custom_id: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    meta: dict[str, Any] | None = None

    @field_validator("custom_id")
    @classmethod
    def _custom_id(cls, v: str, info: ValidationInfo) -> str:
        return check_custom_id(v, context_limits(info))

    @field_validator("meta")
    @classmethod
    def _meta(cls, v: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        return check_meta(v, context_limits(info))

    @field_validator("messages")
    @classmethod
    def _last_asks(cls, v: list[ChatMessage]) -> list[ChatMessage]:
        if v[-1].role == "assistant":
            raise ValueError("the last message is the assistant's: end with the user's turn for the teacher to answer")
        return v


class BodyError(ValueError):
    """A chat body that is neither a conversation nor a pair; ``field`` is named as in the line (``body.pair``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def body_record(custom_id: Any, body: Mapping[str, Any]) -> tuple[Literal["pair", "conversation"], dict[str, Any]]:
    """``(kind, record)`` for a chat body, the record still to be validated; raises :class:`BodyError`."""
    if "pair" in body:
        if "messages" in body:
            raise BodyError("body.pair", "give messages or a pair, not both (a pair is asked with the task's prompt)")
        pair = body["pair"]
        if not isinstance(pair, Mapping):
            raise BodyError("body.pair", f"expected an object (query, ad), got {type(pair).__name__}")
        if "custom_id" in pair:
            raise BodyError("body.pair.custom_id", "the line's custom_id names the pair; leave it out of the body")
        return "pair", {"custom_id": custom_id, **pair}
    if "messages" not in body:
        raise BodyError("body.messages", "field required (a chat completion body; or give the relevance pair as pair)")
    return "conversation", {"custom_id": custom_id, "messages": body["messages"], "meta": body.get("metadata") or None}


def validate_conversation(record: Mapping[str, Any], limits: PairLimits = DEFAULT_LIMITS) -> Conversation:
    return Conversation.model_validate(record, context={"limits": limits})


def conversation(pair: Any) -> list[dict[str, str]] | None:
    """A conversation item's messages (``[{role, content}]``), None for a pair; ``pair`` a dict or a model."""
    if isinstance(pair, Conversation):
        return [m.model_dump() for m in pair.messages]
    if isinstance(pair, Mapping) and "messages" in pair and "query" not in pair:
        return [{"role": m["role"], "content": m["content"]} for m in pair["messages"]]
    return None


def chat_completion(request_id: str, result: Mapping[str, Any], created: int | None) -> dict[str, Any]:
    """A labelled line's response body: the teacher's answer as a ``chat.completion``, its result line beside it."""
    return {
        "id": "chatcmpl-" + request_id.removeprefix("batch_req_"),
        "object": "chat.completion",
        "created": created,
        "model": result.get("teacher"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.get("reasoning") or ""},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "relevance": dict(result),
    }
