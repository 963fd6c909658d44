"""Teacher backends: transformers on a tiny local model, openai against real HTTP servers, vllm's import guard."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from helpers import build_tiny_lm

from pipelines.backends import create_backend, model_revision, plain_prompt
from pipelines.backends.base import Decoding, PromptError, TeacherBackend, TeacherError
from pipelines.backends.openai_backend import OpenAIBackend
from pipelines.backends.transformers_backend import TransformersBackend

ROOT = Path(__file__).resolve().parents[2]
ASK = [{"role": "system", "content": "you add numbers."}, {"role": "user", "content": "what is 12+30?"}]
ASK_SHORT = [{"role": "user", "content": "1+1="}]


def _texts(generation) -> list[str]:
    return [c.text for c in generation.completions]


# -- transformers -------------------------------------------------------------------------------------------------


def test_n_completions_per_prompt_with_token_counts(tiny_backend: TransformersBackend) -> None:
    assert isinstance(tiny_backend, TeacherBackend)
    generations = tiny_backend.generate([ASK, ASK_SHORT], Decoding(n=3, max_tokens=6, seed=0))

    assert len(generations) == 2
    for messages, generation in zip([ASK, ASK_SHORT], generations, strict=True):
        assert len(generation.completions) == 3
        expected = tiny_backend.tokenizer(plain_prompt(messages))["input_ids"]
        assert generation.prompt_tokens == len(expected)
        for completion in generation.completions:
            assert 1 <= completion.completion_tokens <= 6
            assert completion.finish_reason == ("length" if completion.completion_tokens == 6 else "stop")
    assert generations[0].prompt_tokens > generations[1].prompt_tokens


def test_without_a_chat_template_the_prompt_is_the_plain_relevance_prompt(tiny_backend: TransformersBackend) -> None:
    from relevance.prompts import build_messages, build_prompt

    pair = {"custom_id": "p1", "query": "red shoes", "ad": {"title": "Red running shoes", "brand": "Acme"}}
    assert not tiny_backend.has_chat_template
    assert tiny_backend.render(build_messages(pair)) == build_prompt(pair)


def test_a_chat_template_is_applied_with_the_generation_prompt(chat_lm_dir: Path, tiny_backend) -> None:
    backend = TransformersBackend(chat_lm_dir)
    assert backend.has_chat_template
    rendered = backend.render(ASK)
    assert rendered == "system: you add numbers.\nuser: what is 12+30?\nassistant: "
    [generation] = backend.generate([ASK], Decoding(n=2, max_tokens=4, seed=0))
    # One token per character: the template's text is exactly what the model read.
    assert generation.prompt_tokens == len(rendered)
    assert len(generation.completions) == 2
    # Same weights, new tokenizer config: a different name but the same revision.
    assert backend.revision == tiny_backend.revision
    assert backend.teacher_id == f"tiny-chat-lm@{tiny_backend.revision}"


def test_greedy_is_deterministic_and_gives_n_identical_answers(tiny_backend: TransformersBackend) -> None:
    greedy = Decoding(n=3, temperature=0, max_tokens=8)
    first = tiny_backend.generate([ASK, ASK_SHORT], greedy)
    second = tiny_backend.generate([ASK, ASK_SHORT], greedy)
    assert [_texts(g) for g in first] == [_texts(g) for g in second]
    for generation in first:
        assert len(set(_texts(generation))) == 1 and len(generation.completions) == 3


def test_same_seed_same_samples_other_seed_other_samples(tiny_backend: TransformersBackend) -> None:
    def draw(seed: int) -> list[list[str]]:
        return [_texts(g) for g in tiny_backend.generate([ASK, ASK_SHORT], Decoding(n=4, max_tokens=10, seed=seed))]

    a = draw(7)
    assert draw(7) == a
    assert draw(8) != a
    assert len(set(a[0])) > 1  # sampling, not greedy


def test_a_seeded_request_leaves_the_global_rng_alone(tiny_backend: TransformersBackend) -> None:
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_backend.generate([ASK_SHORT], Decoding(n=2, max_tokens=4, seed=5))
    assert torch.equal(torch.rand(3), expected)


def test_stop_strings_cut_the_answer_before_the_first_stop(tiny_backend: TransformersBackend) -> None:
    # The first seed whose free sample is long enough to cut inside (the tiny model often ends early).
    for seed in range(50):
        [full] = _texts(tiny_backend.generate([ASK], Decoding(n=1, max_tokens=24, seed=seed))[0])
        if len(full) >= 8 and full.index(full[4]) >= 2:
            break
    else:
        pytest.fail("no seed gave a sample long enough to cut")
    stop = full[4]
    expected = full[: full.index(stop)]

    [generation] = tiny_backend.generate([ASK], Decoding(n=1, max_tokens=24, seed=seed, stop=(stop, "never-seen")))
    [completion] = generation.completions
    assert completion.text == expected
    assert completion.finish_reason == "stop"
    # Generation ended at the stop (the token that completed it included), not at max_tokens.
    assert completion.completion_tokens <= full.index(stop) + 2 < 24


def test_batching_and_sorting_keep_each_prompt_answer(tiny_lm_dir: Path) -> None:
    # Two prompts per generate call, lengths mixed: rows are sorted, left-padded, and put back in order.
    backend = TransformersBackend(tiny_lm_dir, batch_size=2)
    prompts = [ASK, ASK_SHORT, [{"role": "user", "content": "9*9=?"}], [{"role": "user", "content": "a longer one"}]]
    greedy = Decoding(n=1, temperature=0, max_tokens=6)
    together = [_texts(g) for g in backend.generate(prompts, greedy)]
    alone = [_texts(backend.generate([p], greedy)[0]) for p in prompts]
    assert together == alone


def test_teacher_id_is_stable_across_loads_and_changes_with_the_weights(tmp_path: Path, tiny_lm_dir: Path) -> None:
    same_a = build_tiny_lm(tmp_path / "a" / "teacher", seed=0)
    same_b = build_tiny_lm(tmp_path / "b" / "teacher", seed=0)
    other = build_tiny_lm(tmp_path / "c" / "teacher", seed=1)

    first = TransformersBackend(same_a).teacher_id
    assert first.startswith("teacher@") and len(first.split("@")[1]) == 12
    assert TransformersBackend(same_a).teacher_id == first  # reloaded
    assert TransformersBackend(same_b).teacher_id == first  # same bytes elsewhere
    assert TransformersBackend(other).teacher_id != first  # other weights, same name
    assert model_revision(other) == TransformersBackend(other).revision


def test_the_revision_is_hashed_once_until_a_weight_file_changes(tmp_path: Path) -> None:
    model = build_tiny_lm(tmp_path / "teacher", seed=0)
    weights = model / "model.safetensors"
    first = model_revision(model)
    stat = weights.stat()
    original = weights.read_bytes()
    # Other bytes under the same size and modification time: the per-process cache answers without reading.
    weights.write_bytes(bytes(reversed(original)))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert model_revision(model) == first
    # Swapped weights have a new modification time: hashed again.
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert model_revision(model) != first


def test_a_missing_model_dir_is_a_teacher_error(tmp_path: Path) -> None:
    with pytest.raises(TeacherError, match="not a model directory"):
        TransformersBackend(tmp_path / "nope")


def test_a_prompt_longer_than_the_context_is_refused_by_position(tiny_backend: TransformersBackend) -> None:
    long = [{"role": "user", "content": "1" * 500}]
    with pytest.raises(PromptError, match="exceeds the model's context of 512") as caught:
        tiny_backend.generate([ASK_SHORT, long, ASK, long], Decoding(n=1, max_tokens=64))
    # Every refused prompt is named at once, so the caller asks again for the others in one call.
    assert sorted(caught.value.refused) == [1, 3] and not caught.value.answered


# -- create_backend -----------------------------------------------------------------------------------------------


def test_create_backend_builds_each_kind_and_names_the_known_ones(tiny_lm_dir: Path) -> None:
    backend = create_backend("transformers", str(tiny_lm_dir), batch_size=4)
    assert isinstance(backend, TransformersBackend) and backend.batch_size == 4
    with create_backend("openai", "m", base_url="http://127.0.0.1:9/v1", revision="r1") as remote:
        assert isinstance(remote, OpenAIBackend) and remote.teacher_id == "m@r1"
    with pytest.raises(ValueError, match="needs base_url"):
        create_backend("openai", "m")
    with pytest.raises(ValueError, match="known: transformers, openai, vllm"):
        create_backend("llamacpp", "m")


def test_importing_the_package_and_its_remote_backends_loads_no_torch() -> None:
    code = (
        "import sys, pipelines.backends, pipelines.backends.openai_backend, pipelines.backends.vllm_backend; "
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'transformers', 'vllm'})))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- vllm ---------------------------------------------------------------------------------------------------------


def test_the_teacher_dtype_setting_reaches_the_model(tiny_lm_dir: Path) -> None:
    import torch

    from pipelines.runtime import backend_options
    from pipelines.settings import Settings

    assert "dtype" not in backend_options(Settings(teacher_model=str(tiny_lm_dir)))  # auto: as stored
    options = backend_options(Settings(teacher_model=str(tiny_lm_dir), teacher_dtype="bfloat16"))
    backend = create_backend("transformers", str(tiny_lm_dir), **options)
    assert next(backend.model.parameters()).dtype == torch.bfloat16
    assert backend.generate([ASK], Decoding(n=1, max_tokens=4, temperature=0.0))[0].completions
    with pytest.raises(ValueError, match="teacher_dtype"):
        Settings(teacher_dtype="int4")


def test_vllm_backend_without_vllm_says_how_to_install_it(tiny_lm_dir: Path) -> None:
    # A CPU machine can only check the lazy import: running vLLM needs a CUDA GPU. No mock stands in for it.
    try:
        import vllm  # noqa: F401

        pytest.skip("vllm is installed here; this test covers machines without it")
    except ImportError:
        pass
    from pipelines.backends.vllm_backend import VLLMBackend

    with pytest.raises(TeacherError, match=r"pip install '\.\[gpu\]' on a CUDA machine"):
        VLLMBackend(tiny_lm_dir)
    with pytest.raises(TeacherError, match="pip install"):
        create_backend("vllm", str(tiny_lm_dir))


def test_vllm_sampling_arguments_carry_every_decoding_setting() -> None:
    from pipelines.backends.vllm_backend import sampling_kwargs

    decoding = Decoding(n=4, temperature=0.7, top_p=0.9, max_tokens=32, stop=("\n\n",), seed=3)
    assert sampling_kwargs(decoding, {"choice": ["Exact", "Irrelevant"]}) == {
        "n": 4,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 32,
        "stop": ["\n\n"],
        "seed": 3,
        "structured_outputs": {"choice": ["Exact", "Irrelevant"]},
    }
    assert sampling_kwargs(Decoding())["stop"] is None


# -- openai: against our real teacher server ----------------------------------------------------------------------


def test_openai_backend_against_the_teacher_server(teacher_url: str, tiny_backend: TransformersBackend) -> None:
    with OpenAIBackend(teacher_url, "tiny-teacher", max_retries=0) as backend:
        backend.ping()
        assert backend.teacher_id == f"tiny-teacher@{tiny_backend.revision}"  # revision read from /v1/models
        generations = backend.generate([ASK, ASK_SHORT], Decoding(n=3, max_tokens=5, seed=1))
        assert [len(g.completions) for g in generations] == [3, 3]
        local = tiny_backend.generate([ASK], Decoding(n=3, max_tokens=5, seed=1))[0]
        # Same backend behind HTTP: the same prompt tokens, the same samples, exact per-answer counts.
        assert generations[0].prompt_tokens == local.prompt_tokens
        assert generations[0].completions == local.completions
        assert generations[0].extra["completion_tokens_exact"] is True


def test_openai_backend_completions_endpoint_matches_chat_without_a_template(teacher_url: str) -> None:
    decoding = Decoding(n=2, max_tokens=5, seed=4)
    with (
        OpenAIBackend(teacher_url, "tiny-teacher", use_chat=True) as chat,
        OpenAIBackend(teacher_url, "tiny-teacher", use_chat=False) as text,
    ):
        # The tiny model has no chat template, so the server renders chat as the plain prompt we send.
        assert text.generate([ASK], decoding) == chat.generate([ASK], decoding)


def test_a_prompt_the_server_refuses_fails_alone_and_the_others_are_answered(teacher_url: str) -> None:
    long = [{"role": "user", "content": "1" * 600}]
    with OpenAIBackend(teacher_url, "tiny-teacher", max_retries=2) as backend:
        with pytest.raises(PromptError) as caught:
            backend.generate([ASK_SHORT, long, ASK], Decoding(n=2, max_tokens=5, seed=1))
        assert list(caught.value.refused) == [1] and "exceeds the model's context" in caught.value.refused[1]
        assert sorted(caught.value.answered) == [0, 2]
        assert all(len(g.completions) == 2 for g in caught.value.answered.values())
        assert backend.requests_sent == 3  # a refusal is not retried


def test_openai_backend_ping_names_the_served_models(teacher_url: str) -> None:
    backend = OpenAIBackend(teacher_url, "someone-else", max_retries=0)
    with backend, pytest.raises(TeacherError, match="serves: tiny-teacher"):
        backend.ping()


# -- openai: retries, bounds and request bodies against a scripted upstream ---------------------------------------


def scripted_upstream(
    fail_first: int = 0,
    status: int = 503,
    choices: int | None = None,
    delay: float = 0.0,
    headers: dict[str, str] | None = None,
) -> FastAPI:
    """A real OpenAI-shaped server that fails its first ``fail_first`` requests with ``status`` (and ``headers``),
    then answers ``choices`` (default: n) canned choices after ``delay`` seconds, recording every body and the
    peak concurrency.
    """
    app = FastAPI()
    app.state.bodies, app.state.in_flight, app.state.peak = [], 0, 0

    async def answer(request: Request, chat: bool) -> JSONResponse:
        body = await request.json()
        app.state.bodies.append(body)
        if len(app.state.bodies) <= fail_first:
            error = {"error": {"message": "busy", "type": "server_error"}}
            return JSONResponse(error, status_code=status, headers=headers)
        app.state.in_flight += 1
        app.state.peak = max(app.state.peak, app.state.in_flight)
        await asyncio.sleep(delay)
        app.state.in_flight -= 1
        count = body["n"] if choices is None else choices
        items = [
            {"index": i, "finish_reason": "stop", "logprobs": None}
            | ({"message": {"role": "assistant", "content": f"Label: Exact {i}"}} if chat else {"text": f"t{i}"})
            for i in reversed(range(count))  # out of order on purpose
        ]
        return JSONResponse(
            {
                "id": "x",
                "object": "chat.completion" if chat else "text_completion",
                "created": 0,
                "model": body["model"],
                "choices": items,
                "usage": {"prompt_tokens": 7, "completion_tokens": 10 * count, "total_tokens": 7 + 10 * count},
            }
        )

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        return await answer(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request) -> JSONResponse:
        return await answer(request, chat=False)

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "x"}]}

    return app


def test_nothing_listening_fails_after_every_retry_with_backoff(dead_url: str) -> None:
    with OpenAIBackend(dead_url, "m", max_retries=2, timeout=2) as backend:
        start = time.monotonic()
        with pytest.raises(TeacherError, match="failed after 3 attempts"):
            backend.generate([ASK_SHORT], Decoding(n=1))
        # The client's backoff: 0.5 s then 1 s, each at least 75% of nominal.
        assert time.monotonic() - start >= 0.75 * 1.5
        assert backend.requests_sent == 3


def test_the_servers_retry_after_ms_sets_the_wait(serve_app) -> None:
    app = scripted_upstream(fail_first=2, status=429, headers={"retry-after-ms": "20"})
    with serve_app(app) as url, OpenAIBackend(url + "/v1", "m", max_retries=2) as backend:
        start = time.monotonic()
        backend.generate([ASK_SHORT], Decoding(n=1))
        # Two waits of 20 ms, not the 0.5 s and 1 s the client waits when the server says nothing.
        assert time.monotonic() - start < 0.5 and backend.requests_sent == 3


def test_two_503s_then_success_recovers_on_the_third_attempt(serve_app) -> None:
    app = scripted_upstream(fail_first=2, status=503, headers={"retry-after-ms": "10"})
    with serve_app(app) as url, OpenAIBackend(url + "/v1", "m", max_retries=2) as backend:
        [generation] = backend.generate([ASK_SHORT], Decoding(n=2))
        assert len(app.state.bodies) == 3 and backend.requests_sent == 3
        assert _texts(generation) == ["Label: Exact 0", "Label: Exact 1"]  # sorted by index
        assert generation.prompt_tokens == 7
        # No per-choice counts from this server: the total is shared out and flagged as estimated.
        assert sum(c.completion_tokens for c in generation.completions) == 20
        assert generation.extra["completion_tokens_exact"] is False


def test_retries_stop_at_max_retries(serve_app) -> None:
    app = scripted_upstream(fail_first=100, status=429, headers={"retry-after-ms": "10"})
    with serve_app(app) as url, OpenAIBackend(url + "/v1", "m", max_retries=1) as backend:
        with pytest.raises(TeacherError, match=r"failed after 2 attempts.*429"):
            backend.generate([ASK_SHORT], Decoding(n=1))
        assert len(app.state.bodies) == 2


def test_client_errors_are_not_retried(serve_app) -> None:
    app = scripted_upstream(fail_first=100, status=400)
    with serve_app(app) as url, OpenAIBackend(url + "/v1", "m", max_retries=3) as backend:
        with pytest.raises(PromptError, match=r"prompt 0: the teacher server refused it \(400\): busy"):
            backend.generate([ASK_SHORT], Decoding(n=1))
        assert len(app.state.bodies) == 1
    app = scripted_upstream(fail_first=100, status=401)
    with serve_app(app) as url, OpenAIBackend(url + "/v1", "m", max_retries=3) as backend:
        with pytest.raises(TeacherError, match="not retryable"):  # the key, not the prompt: every prompt fails
            backend.generate([ASK_SHORT], Decoding(n=1))
        assert len(app.state.bodies) == 1


def test_request_body_carries_decoding_and_structured_outputs(serve_app) -> None:
    app = scripted_upstream()
    constraint = {"regex": r"(.|\n)*Label: (Exact|Substitute|Complement|Irrelevant)"}
    decoding = Decoding(n=3, temperature=0.6, top_p=0.8, max_tokens=40, stop=("\n\n",), seed=9)
    with serve_app(app) as url, OpenAIBackend(url + "/v1", "m", structured_outputs=constraint) as backend:
        backend.generate([ASK], decoding)
        assert backend.teacher_id == "m@served"  # the upstream publishes no revision
    [body] = app.state.bodies
    assert body["structured_outputs"] == constraint
    assert body["messages"] == ASK
    assert {k: body[k] for k in ("model", "n", "temperature", "top_p", "max_tokens", "stop", "seed")} == {
        "model": "m",
        "n": 3,
        "temperature": 0.6,
        "top_p": 0.8,
        "max_tokens": 40,
        "stop": ["\n\n"],
        "seed": 9,
    }


def test_completions_mode_sends_the_plain_prompt(serve_app) -> None:
    app = scripted_upstream()
    with serve_app(app) as url, OpenAIBackend(url + "/v1", "m", use_chat=False) as backend:
        [generation] = backend.generate([ASK], Decoding(n=2))
    assert app.state.bodies[0]["prompt"] == plain_prompt(ASK)
    assert "structured_outputs" not in app.state.bodies[0]
    assert _texts(generation) == ["t0", "t1"]


def test_fewer_choices_than_n_is_an_error(serve_app) -> None:
    app = scripted_upstream(choices=2)
    with (
        serve_app(app) as url,
        OpenAIBackend(url + "/v1", "m") as backend,
        pytest.raises(TeacherError, match="returned 2 choices for n=3"),
    ):
        backend.generate([ASK], Decoding(n=3))


def test_concurrency_is_bounded(serve_app) -> None:
    app = scripted_upstream(delay=0.2)
    with serve_app(app) as url, OpenAIBackend(url + "/v1", "m", max_concurrency=2) as backend:
        generations = backend.generate([ASK_SHORT] * 6, Decoding(n=1))
    assert len(generations) == 6 and len(app.state.bodies) == 6
    assert app.state.peak == 2


def test_a_closed_backend_refuses_work() -> None:
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "m")
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(TeacherError, match="closed"):
        backend.generate([ASK_SHORT], Decoding())


def _generate_in_child(backend: OpenAIBackend, results) -> None:
    results.put([c.text for c in backend.generate([ASK_SHORT], Decoding(n=2))[0].completions])


def test_a_backend_made_before_a_fork_works_in_the_child(serve_app) -> None:
    # Celery's prefork pool forks workers from a parent that may already hold the backend; the child gets the
    # parent's event loop object but not the thread running it.
    import multiprocessing

    app = scripted_upstream()
    context = multiprocessing.get_context("fork")
    with serve_app(app) as url, OpenAIBackend(url + "/v1", "m", max_retries=0) as backend:
        backend.ping()
        results = context.Queue()
        child = context.Process(target=_generate_in_child, args=(backend, results))
        child.start()
        child.join(timeout=30)
        assert child.exitcode == 0
        assert results.get(timeout=5) == ["Label: Exact 0", "Label: Exact 1"]
        backend.ping()  # the parent's loop is untouched


def test_a_closed_transformers_backend_refuses_work(tiny_lm_dir: Path) -> None:
    backend = TransformersBackend(tiny_lm_dir)
    backend.close()
    with pytest.raises(TeacherError, match="closed"):
        backend.generate([ASK_SHORT], Decoding())


@pytest.mark.parametrize(("rank", "reserved"), [(4, 8), (16, 16), (20, 32)])
def test_vllm_reserves_the_adapter_rank_rounded_up_to_a_size_it_supports(tmp_path: Path, rank: int, reserved: int):
    """vLLM itself needs a GPU (never here); the rank it is asked to reserve for an adapter is computed without it."""
    import json

    from pipelines.backends.vllm_backend import adapter_rank

    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": rank, "base_model_name_or_path": "x"}))
    assert adapter_rank(tmp_path) == reserved
