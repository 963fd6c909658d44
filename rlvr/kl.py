"""How far a trained policy has moved from its base: KL(policy || base), estimated from the policy's own samples.

For completions y sampled from the policy at temperature 1, ``log pi(y | x) - log base(y | x)`` summed over y's
tokens is an unbiased estimate of the sequence-level KL divergence. Methods that move at different speeds are
compared at matched KL rather than at one step count: a method that reaches a pass@1 at a smaller KL moved the base
less to get it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from rlvr.sampling import row_batches


@dataclass(frozen=True)
class KLEstimate:
    """Mean sequence-level KL(policy || base) in nats over ``samples`` completions, with its standard error."""

    mean: float
    stderr: float
    samples: int
    mean_tokens: float

    def to_json(self) -> dict[str, float]:
        return asdict(self)


Row = tuple[list[int], list[int]]  # a prompt's token ids and one completion's, end-of-sequence included


def sample_rows(
    model: Any, tokenizer: Any, prompts: Sequence[str], n: int, max_new_tokens: int, seed: int, batch_size: int
) -> list[Row]:
    """``n`` temperature-1 completions per prompt as token ids, cut after the end-of-sequence token.

    Ids, not decoded text: decoding drops special tokens, and a text re-tokenised would not be what was drawn.
    Prompts of one length share a batch, so no row is padded on the left.
    """
    torch.manual_seed(seed)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    rows: list[Row] = []
    for chunk in row_batches(tokenizer, prompts, n, batch_size, same_length=True):
        length = len(encoded[chunk[0]])
        with torch.inference_mode():
            out = model.generate(
                input_ids=torch.tensor([encoded[i] for i in chunk]),
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                max_new_tokens=max_new_tokens,
                pad_token_id=pad,
                eos_token_id=eos,
            )
        for i, seq in zip(chunk, out[:, length:].tolist(), strict=True):
            rows.append((encoded[i], seq[: seq.index(eos) + 1] if eos in seq else seq))
    return rows


def sequence_logprobs(model: Any, rows: Sequence[Row], batch_size: int, pad: int = 0) -> list[float]:
    """Each row's completion log-probability under ``model`` given its prompt (padded on the right, masked)."""
    sums: list[float] = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        full = [p + c for p, c in chunk]
        width = max(len(r) for r in full)
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in full])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in full])
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(2, ids[:, 1:, None])[..., 0]
        for row, (p, c) in enumerate(chunk):
            sums.append(float(logp[row, len(p) - 1 : len(p) + len(c) - 1].sum()))
    return sums


def kl_to_base(
    policy_dir: str | Path,
    base_dir: str | Path,
    prompts: Sequence[str],
    *,
    n: int = 16,
    max_new_tokens: int = 128,
    seed: int = 0,
    batch_size: int = 256,
) -> KLEstimate:
    """KL(policy || base) from ``n`` temperature-1 samples of the policy per prompt."""
    from transformers import AutoTokenizer

    from llm.bases import load_causal_lm

    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    pad = tokenizer.pad_token_id or 0
    policy = load_causal_lm(policy_dir).eval()
    rows = sample_rows(policy, tokenizer, prompts, n, max_new_tokens, seed, batch_size)
    mine = sequence_logprobs(policy, rows, batch_size, pad)
    theirs = sequence_logprobs(load_causal_lm(base_dir).eval(), rows, batch_size, pad)
    gaps = [a - b for a, b in zip(mine, theirs, strict=True)]
    stderr = statistics.stdev(gaps) / math.sqrt(len(gaps)) if len(gaps) > 1 else float("nan")
    return KLEstimate(statistics.fmean(gaps), stderr, len(gaps), statistics.fmean(len(c) for _, c in rows))
