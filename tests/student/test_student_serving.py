"""ONNX export with its parity check, and the onnxruntime scorer: correctness, refusal, thread safety."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from relevance.pairs import read_pairs_jsonl
from student.data import render_ad
from student.export import export
from student.modelio import TorchStudent, read_meta, softmax
from student.scorer import SERVE_ORDER, SERVE_ORDER_AMX, Scorer, cpu_has_amx, pick_variant, serve_order


def _gold_pairs(bench: Path, n: int | None = None) -> list:
    return read_pairs_jsonl(bench / "gold_test.jsonl").pairs[:n]


def test_export_passes_parity_and_writes_everything(exported_student: Path) -> None:
    names = {p.name for p in exported_student.iterdir()}
    assert {"model.onnx", "model.int8.onnx", "tokenizer.json", "student.json", "parity.json"} <= names
    meta = read_meta(exported_student)
    parity = meta["export"]["parity"]
    assert parity["ok"] and parity["relevance"] == "gold labels" and parity["n"] == 120
    assert parity["fp32_max_abs_prob_diff"] <= 1e-3
    assert parity["int8_argmax_agreement"] >= 0.99
    assert parity["int8_ndcg_delta"] <= 0.005
    assert meta["export"]["files"]["int8"]["bytes"] < meta["export"]["files"]["fp32"]["bytes"] / 3
    # The fast path was taken: fused attention that takes the raw mask, so int8 gets QAttention.
    graph = meta["export"]["graph"]
    assert graph["fused"] and graph["attention_mask_index"] and graph["fusions"]["attention"] == 6
    assert not [p for p in exported_student.parent.iterdir() if p.name.startswith(".")]  # no scratch left


def test_bf16_is_checked_at_export_and_served_by_auto(exported_student: Path, student_bench: Path) -> None:
    # OpenVINO computes the fp32 graph in bfloat16 (in fp32 on a CPU without bf16 units: precision says which).
    parity = read_meta(exported_student)["export"]["parity"]
    assert parity["bf16_argmax_agreement"] >= 0.99 and parity["bf16_ok"]
    assert read_meta(exported_student)["export"]["servable"] == ["fp32", "int8", "bf16"]
    assert pick_variant(exported_student) == serve_order()[0] and pick_variant(exported_student, "bf16") == "bf16"
    scorer = Scorer(exported_student, "bf16", batch_size=8)
    assert scorer.engine.precision in ("bf16", "f32") and scorer.model_version.endswith("/bf16")
    texts = [(p.query, render_ad(p.ad)) for p in _gold_pairs(student_bench, 40)]
    bf16, fp32 = softmax(scorer.logits(texts)), softmax(Scorer(exported_student, "fp32").logits(texts))
    assert np.abs(bf16 - fp32).max() < 0.05 and (bf16.argmax(1) == fp32.argmax(1)).mean() >= 0.95
    chunks = [texts[i::4] for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:  # one infer request per concurrent call
        for a, b in zip(pool.map(scorer.logits, chunks), [scorer.logits(c) for c in chunks], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("amx", [False, True])
def test_auto_serves_the_fastest_variant_that_passed(
    exported_student: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, amx: bool
) -> None:
    monkeypatch.setattr("student.scorer.cpu_has_amx", lambda: amx)
    fastest, second = ("bf16", "int8") if amx else ("int8", "bf16")
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("tokenizer.json", "model.onnx", "model.int8.onnx"):
        (partial / name).symlink_to(exported_student / name)
    meta = read_meta(exported_student)
    cases = (
        (["fp32", "int8", "bf16"], fastest),
        (["fp32", second], second),
        (["fp32"], "fp32"),
        (None, "int8"),  # an export from before bf16: its files passed their gates, and bf16 was never checked
    )
    for servable, expected in cases:
        export_meta = {**meta["export"], "servable": servable}
        (partial / "student.json").write_text(json.dumps({**meta, "export": export_meta}))
        assert pick_variant(partial) == expected, servable


def test_amx_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512_bf16 amx_tile amx_bf16 amx_int8\n\n")
    assert cpu_has_amx(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512_bf16 avx512_vnni\nbugs\t\t: amx_bf16_like\n")
    assert not cpu_has_amx(cpuinfo)  # bf16 in AVX-512 alone (an AMD EPYC) is not AMX
    assert not cpu_has_amx(tmp_path / "missing")
    assert serve_order() == (SERVE_ORDER_AMX if cpu_has_amx() else SERVE_ORDER)


def test_bf16_units_are_read_from_the_cpu_flags(tmp_path: Path) -> None:
    from llm.hardware import cpu_has_bf16

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n")
    assert cpu_has_bf16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert cpu_has_bf16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx avx2\nbugs\t\t: avx512_bf16\n")
    assert not cpu_has_bf16(cpuinfo)  # an AVX2-only CPU emulates bf16, about 50x slower than fp32
    assert not cpu_has_bf16(tmp_path / "missing")


def test_int8_quantisation_takes_relative_paths(
    exported_student: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The quantiser runs in a throwaway working directory; paths given relative to the caller's must still work.
    import shutil

    from student.export import quantize_int8

    (tmp_path / "m").mkdir()
    shutil.copy(exported_student / "model.onnx", tmp_path / "m" / "model.onnx")
    monkeypatch.chdir(tmp_path)
    quantize_int8("m/model.onnx", "m/model.int8.onnx")
    assert (tmp_path / "m" / "model.int8.onnx").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_export_will_not_overwrite_without_asking(trained_student: Path, exported_student: Path) -> None:
    with pytest.raises(FileExistsError, match="overwrite"):
        export(trained_student, exported_student, exported_student / "student.json")


def test_fp32_scorer_matches_pytorch(exported_student: Path, trained_student: Path, student_bench: Path) -> None:
    pairs = _gold_pairs(student_bench, 64)
    texts = [(p.query, render_ad(p.ad)) for p in pairs]
    scorer = Scorer(exported_student, "fp32", batch_size=16)
    probs = scorer.probabilities(texts)
    reference = softmax(TorchStudent(trained_student).logits(texts), scorer.temperature)
    assert np.abs(probs - reference).max() <= 1e-3
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-6)


def test_int8_scores_are_probabilities_with_labels_and_gains(exported_student: Path, student_bench: Path) -> None:
    pairs = _gold_pairs(student_bench, 40)
    scorer = Scorer(exported_student)
    scores = scorer.score(pairs)
    assert len(scores) == 40
    gains = read_meta(exported_student)["gains"]
    for s in scores:
        assert sum(s.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
        assert s.label == max(s.probabilities, key=s.probabilities.get)
        assert s.expected_gain == pytest.approx(sum(p * gains[k] for k, p in s.probabilities.items()), abs=1e-9)
        assert s.model_version == read_meta(exported_student)["model_version"] + "/int8"
    # A mapping in the Pair shape scores like the Pair itself. int8 picks activation scales per batch, so a pair
    # scored alone moves a little; fp32 does not depend on the batch around a pair.
    alone = {"query": pairs[7].query, "ad": pairs[7].ad.model_dump()}
    assert scorer.score([alone])[0].probabilities == pytest.approx(scores[7].probabilities, abs=0.02)
    fp32 = Scorer(exported_student, "fp32")
    in_batch = fp32.score(pairs)[7].probabilities
    assert fp32.score([alone])[0].probabilities == pytest.approx(in_batch, abs=1e-5)


def test_concurrent_scoring_matches_sequential(exported_student: Path, student_bench: Path) -> None:
    pairs = _gold_pairs(student_bench)
    texts = [(p.query, render_ad(p.ad)) for p in pairs]
    chunks = [texts[i::8] for i in range(8)]
    scorer = Scorer(exported_student, "int8", batch_size=8)
    sequential = [scorer.logits(chunk) for chunk in chunks]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(2):
            concurrent = list(pool.map(scorer.logits, chunks))
            for a, b in zip(sequential, concurrent, strict=True):
                np.testing.assert_array_equal(a, b)


def test_scorer_refuses_a_missing_variant(exported_student: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("student.json", "tokenizer.json", "model.onnx"):
        (partial / name).symlink_to(exported_student / name)
    assert Scorer(partial, "fp32").logits([("a", "b")]).shape == (1, 4)
    with pytest.raises(FileNotFoundError, match=r"model\.int8\.onnx"):
        Scorer(partial, "int8")
    with pytest.raises(ValueError, match="variant"):
        Scorer(partial, "fp16")  # type: ignore[arg-type]


def test_parity_json_matches_student_json(exported_student: Path) -> None:
    parity = json.loads((exported_student / "parity.json").read_text())
    assert parity == read_meta(exported_student)["export"]["parity"]


@pytest.mark.parametrize(("wanted", "served"), [("auto", serve_order()[0]), ("bf16", "bf16"), ("fp32", "fp32")])
def test_the_api_serves_the_variant_it_is_told(
    exported_student: Path, tmp_path: Path, wanted: str, served: str
) -> None:
    from fastapi.testclient import TestClient

    from pipelines.settings import Settings
    from services.api import create_app

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        queue="local",
        auth=False,
        student_model=str(exported_student),
        student_variant=wanted,
    )
    pair = {"custom_id": "p1", "query": "red running shoes", "ad": {"title": "Red running shoes, size 42"}}
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/score", json={"pairs": [pair]})
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["model_version"].endswith(f"/{served}")


def test_concurrent_score_requests_are_batched_and_each_gets_its_own_scores(
    exported_student: Path, student_bench: Path, tmp_path: Path
) -> None:
    """A real uvicorn: 48 one-pair requests sent at once come back with the scores a direct call gives, and the
    server scored them in fewer forwards than requests."""
    import asyncio

    import httpx

    from services.procs import answers, free_port, running, wait_until

    pairs = [p.model_dump(mode="json") for p in _gold_pairs(student_bench, 48)]
    direct = Scorer(exported_student, "fp32").score(_gold_pairs(student_bench, 48))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "AGPO_DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}",
        "AGPO_QUEUE": "local",
        "AGPO_AUTH": "false",
        "AGPO_STUDENT_MODEL": str(exported_student),
        "AGPO_STUDENT_VARIANT": "fp32",
    }

    async def score_all() -> list[dict]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            replies = await asyncio.gather(*(client.post("/v1/score", json={"pairs": [p]}) for p in pairs))
        assert all(r.status_code == 200 for r in replies), [r.text for r in replies if r.status_code != 200][:1]
        return [r.json()["data"][0] for r in replies]

    with running([["serve", "api", "--port", str(port)]], env, tmp_path):
        wait_until(lambda: answers(url + "/healthz"), 120, "the API")
        httpx.post(f"{url}/v1/score", json={"pairs": pairs[:1]}, timeout=120).raise_for_status()  # loads the model
        scored = asyncio.run(score_all())
        metrics = httpx.get(f"{url}/metrics").text
    for line, pair, want in zip(scored, pairs, direct, strict=True):
        assert line["custom_id"] == pair["custom_id"] and line["label"] == want.label
        for name, p in want.probabilities.items():
            assert abs(line["probabilities"][name] - p) < 1e-5
    count = float(next(x for x in metrics.splitlines() if x.startswith("agpo_score_batch_pairs_count")).split()[-1])
    total = float(next(x for x in metrics.splitlines() if x.startswith("agpo_score_batch_pairs_sum")).split()[-1])
    assert total == 49 and count < 49, (count, total)
