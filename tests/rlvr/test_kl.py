"""KL(policy || base) from the policy's samples: the scores match what the sampler drew, and a policy that did not
move has none."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rlvr.kl import kl_to_base, sample_rows, sequence_logprobs


def test_a_completions_score_is_the_log_probability_the_sampler_drew_it_with(base_dir: Path) -> None:
    from transformers import AutoTokenizer

    from llm.bases import load_causal_lm

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = load_causal_lm(base_dir).eval()
    prompt = "3,5,7>22:\n"
    enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    torch.manual_seed(0)
    with torch.inference_mode():
        out = model.generate(
            **enc,
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            max_new_tokens=40,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    new = out.sequences[0, enc["input_ids"].shape[1] :].tolist()
    drawn = sum(float(torch.log_softmax(s[0].float(), -1)[t]) for s, t in zip(out.scores, new, strict=False))
    # Scored in a padded batch beside a longer row, as the estimate scores them.
    prompt_ids = enc["input_ids"][0].tolist()
    sums = sequence_logprobs(model, [(prompt_ids, new), ([*prompt_ids, 5, 6], [*new, 7])], batch_size=2)
    assert sums[0] == pytest.approx(drawn, abs=1e-3)
    rows = sample_rows(model, tokenizer, [prompt, "12,3>4:\n"], n=3, max_new_tokens=40, seed=0, batch_size=4)
    assert len(rows) == 6 and all(len(c) <= 40 for _, c in rows)
    eos = tokenizer.eos_token_id
    assert all(eos not in c[:-1] for _, c in rows)  # cut after the end of sequence, nothing past it
    assert any(c[-1] == eos for _, c in rows) or all(len(c) == 40 for _, c in rows)


def test_a_policy_is_at_kl_zero_from_itself_and_above_zero_once_trained(base_dir: Path, tmp_path: Path) -> None:
    from rlvr.tasks.countdown import make_splits
    from rlvr.train import TrainConfig, train

    prompts = [p.prompt for p in make_splits().test_rare[:4]]
    same = kl_to_base(base_dir, base_dir, prompts, n=4, max_new_tokens=24)
    assert same.mean == 0.0 and same.samples == 16 and 0 < same.mean_tokens <= 25
    config = TrainConfig(
        base_model=str(base_dir),
        output_dir=str(tmp_path / "moved"),
        estimator="agpo",  # the tiny base solves nothing: only a constant negative moves it
        learning_rate=3e-2,
        steps=3,
        prompts_per_step=2,
        group_size=4,
        max_completion_length=12,
        seed=0,
    )
    train(config)
    moved = kl_to_base(tmp_path / "moved", base_dir, prompts, n=4, max_new_tokens=24)
    assert moved.mean > 0.01 and moved.stderr > 0
