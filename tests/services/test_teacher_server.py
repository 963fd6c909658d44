"""The OpenAI-compatible teacher server, under a real uvicorn on a local port, called with the official client."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from pipelines.backends.transformers_backend import TransformersBackend
from services.teacher_server import app_from_env

NAME = "tiny-teacher"


@pytest.fixture(scope="module")
def client(teacher_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=teacher_url, api_key="x", max_retries=0, timeout=30)


def test_models_list_names_the_model_and_its_revision(client: openai.OpenAI, tiny_backend: TransformersBackend) -> None:
    [model] = client.models.list().data
    assert model.id == NAME
    assert model.model_extra["revision"] == tiny_backend.revision
    assert model.model_extra["max_model_len"] == 512
    assert client.models.retrieve(NAME).id == NAME
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_completions_n3_returns_three_choices_and_usage(client: openai.OpenAI) -> None:
    out = client.completions.create(model=NAME, prompt="1+1=", n=3, max_tokens=4, seed=0)
    assert out.object == "text_completion" and out.model == NAME and out.id.startswith("cmpl-")
    assert [c.index for c in out.choices] == [0, 1, 2]
    assert all(isinstance(c.text, str) and c.finish_reason in {"stop", "length"} for c in out.choices)
    assert out.usage.prompt_tokens == 4  # one token per character
    assert out.usage.completion_tokens == sum(c.model_extra["completion_tokens"] for c in out.choices)
    assert 3 <= out.usage.completion_tokens <= 12
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens


def test_completions_with_a_list_of_prompts_are_prompt_major(
    client: openai.OpenAI, tiny_backend: TransformersBackend
) -> None:
    out = client.completions.create(model=NAME, prompt=["1+1=", "22+33="], n=2, max_tokens=3, temperature=0)
    assert [c.index for c in out.choices] == [0, 1, 2, 3]
    assert out.usage.prompt_tokens == 4 + 6
    # Greedy: each prompt's two answers agree, and match the backend called directly on that prompt alone.
    from pipelines.backends.base import Decoding

    for k, prompt in enumerate(["1+1=", "22+33="]):
        [direct] = tiny_backend.generate_text([prompt], Decoding(n=1, temperature=0, max_tokens=3))
        assert [c.text for c in out.choices[2 * k : 2 * k + 2]] == [direct.completions[0].text] * 2


def test_chat_completions_n3_returns_three_messages_and_usage(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model=NAME,
        messages=[{"role": "system", "content": "add."}, {"role": "user", "content": "2+2="}],
        n=3,
        max_tokens=5,
        stop=["\n\n"],
        seed=1,
    )
    assert out.object == "chat.completion" and out.id.startswith("chatcmpl-")
    assert len(out.choices) == 3
    assert all(c.message.role == "assistant" and isinstance(c.message.content, str) for c in out.choices)
    # No chat template: the plain prompt, one token per character except "A", which the tokenizer does not know.
    assert out.usage.prompt_tokens == len("add.\n\n2+2=\n\nAnswer:\n") - 1
    assert out.usage.completion_tokens == sum(c.model_extra["completion_tokens"] for c in out.choices)
    assert out.system_fingerprint and len(out.system_fingerprint) == 12


def test_seed_reproduces_samples_over_http(client: openai.OpenAI) -> None:
    def texts(seed: int) -> list[str]:
        out = client.completions.create(model=NAME, prompt="what is 5*5?", n=4, max_tokens=8, seed=seed)
        return [c.text for c in out.choices]

    first = texts(3)
    assert texts(3) == first
    assert texts(4) != first


def test_concurrent_seeded_requests_do_not_disturb_each_other(client: openai.OpenAI) -> None:
    def texts(seed: int) -> list[str]:
        out = client.chat.completions.create(
            model=NAME, messages=[{"role": "user", "content": "9-3="}], n=2, max_tokens=6, seed=seed
        )
        return [c.message.content for c in out.choices]

    alone = {seed: texts(seed) for seed in (1, 2)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(texts, [1, 2, 1, 2]))
    assert together == [alone[1], alone[2], alone[1], alone[2]]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"n": 0}, "n"),
        ({"n": 1000}, "n"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 100_000}, "max_tokens"),
        ({"stop": [""]}, "stop"),
        ({"logprobs": 2}, "logprobs"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"best_of": 3}, "best_of"),
        ({"stream": True}, "streaming is not supported"),
    ],
)
def test_bad_params_are_400s_that_name_the_param(client: openai.OpenAI, params: dict, named: str) -> None:
    base = {"model": NAME, "prompt": "1+1=", "max_tokens": 2}
    # Through extra_body, so the client sends exactly what we test, unchecked.
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(**base, extra_body=params)
    assert named in str(caught.value)
    error = caught.value.body
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == ("stream" if named.startswith("streaming") else named)


def test_no_op_values_of_unsupported_params_are_accepted(client: openai.OpenAI) -> None:
    # Some clients always send these; at their neutral values they change nothing, so they must not fail.
    out = client.chat.completions.create(
        model=NAME,
        messages=[{"role": "user", "content": "1+1="}],
        max_tokens=2,
        presence_penalty=0,
        frequency_penalty=0,
        logprobs=False,
        user="u1",
    )
    assert len(out.choices) == 1


def test_bad_chat_messages_name_the_field(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match=r"messages\.0\.role"):
        client.chat.completions.create(model=NAME, messages=[{"role": "wizard", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model=NAME, messages=[])


def test_an_unknown_model_is_a_404_naming_the_served_one(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="serves 'tiny-teacher'") as caught:
        client.completions.create(model="gpt-4o", prompt="hi", max_tokens=1)
    assert caught.value.body["code"] == "model_not_found" and caught.value.body["param"] == "model"


def test_a_prompt_beyond_the_context_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="exceeds the model's context"):
        client.completions.create(model=NAME, prompt="1" * 600, max_tokens=4)


def test_health_and_openapi_docs(teacher_url: str, tiny_backend: TransformersBackend) -> None:
    root = teacher_url.removesuffix("/v1")
    health = httpx.get(f"{root}/health").json()
    assert health == {"status": "ok", "model": NAME, "teacher_id": tiny_backend.teacher_id}
    schema = httpx.get(f"{root}/openapi.json").json()["components"]["schemas"]
    assert "completions per prompt" in schema["CompletionRequest"]["properties"]["n"]["description"]
    assert "chat template" in schema["ChatRequest"]["description"]


def test_app_from_env_serves_the_configured_model(
    tiny_lm_dir: Path, monkeypatch: pytest.MonkeyPatch, serve_app
) -> None:
    monkeypatch.setenv("AGPO_TEACHER_MODEL", str(tiny_lm_dir))
    monkeypatch.setenv("AGPO_TEACHER_SERVED_NAME", "from-env")
    monkeypatch.setenv("AGPO_TEACHER_MAX_N", "2")
    with serve_app(app_from_env()) as root:
        client = openai.OpenAI(base_url=root + "/v1", api_key="x", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["from-env"]
        out = client.completions.create(model="from-env", prompt="1+1=", n=2, max_tokens=2)
        assert len(out.choices) == 2
        with pytest.raises(openai.BadRequestError, match="n must be <= 2"):
            client.completions.create(model="from-env", prompt="1+1=", n=3, max_tokens=2)


def test_with_an_api_key_only_callers_that_send_it_are_served(tiny_backend: TransformersBackend, serve_app) -> None:
    from services.teacher_server import TeacherServerSettings, create_app

    app = create_app(tiny_backend, served_name=NAME, settings=TeacherServerSettings(api_key="s3cret"))
    with serve_app(app) as url:
        for key in ("wrong", "EMPTY"):
            stranger = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
            with pytest.raises(openai.AuthenticationError, match="AGPO_TEACHER_API_KEY"):
                stranger.models.list()
            with pytest.raises(openai.AuthenticationError):
                stranger.completions.create(model=NAME, prompt="hi", max_tokens=1)
        assert httpx.get(url + "/health").status_code == 200  # liveness stays open to the orchestrator
        keyed = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0)
        assert [m.id for m in keyed.models.list().data] == [NAME]
        assert keyed.completions.create(model=NAME, prompt="hi", max_tokens=2, seed=0).choices


def test_a_lone_surrogate_in_a_prompt_is_a_400_naming_it(teacher_url: str) -> None:
    # What a JSON "\ud800" escape decodes to: not text, and a tokenizer fails on it (it was a 500).
    cases = [
        (
            "/chat/completions",
            {"model": NAME, "messages": [{"role": "user", "content": "a\ud800b"}]},
            "messages.0.content",
        ),
        ("/completions", {"model": NAME, "prompt": ["ok", "x\udfff"], "max_tokens": 2}, "prompt"),
        ("/completions", {"model": NAME, "prompt": "ok", "stop": ["\ud800"], "max_tokens": 2}, "stop"),
    ]
    for path, body, param in cases:
        r = httpx.post(teacher_url + path, content=json.dumps(body), headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
        assert "lone surrogate" in r.json()["error"]["message"]
