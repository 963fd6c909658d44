"""The in-process teacher: a local Hugging Face model directory, batched ``generate`` on CPU or GPU.

A LoRA adapter directory is loaded onto its base and merged (:func:`llm.bases.load_causal_lm`), so serving
an adapter costs what serving its base costs.

Prompts are sorted by length and padded on the left, so a batch wastes little compute on padding and every
row's answer starts at the same column. One lock serialises ``generate``: the teacher server calls it from
several requests at once, and a model (and the global torch RNG that seeding uses) is not safe to share.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.backends import encode_prompt, model_revision, render_prompt, teacher_identity
from pipelines.backends.base import Completion, Decoding, Generation, Messages, PromptError, TeacherError

if TYPE_CHECKING:
    import torch


def _stop_criterion(tokenizer: Any, stops: Sequence[str], prompt_len: int) -> Any:
    """A stopping criterion that ends a row once its decoded answer contains one of ``stops``.

    transformers' own ``stop_strings`` matches on raw token strings, special tokens included (a sampled
    ``<pad>`` "contains" ``a``); decoding the way the answer is finally decoded keeps stopping and cutting in step.
    Only a tail of each row is decoded: a stop string of c characters spans at most 4c byte-level tokens.
    """
    import torch
    from transformers import StoppingCriteria

    window = 4 * max(len(s) for s in stops) + 2

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
            tails = input_ids[:, max(prompt_len, input_ids.shape[1] - window) :].tolist()
            texts = tokenizer.batch_decode(tails, skip_special_tokens=True)
            hits = [any(s in text for s in stops) for text in texts]
            return torch.tensor(hits, dtype=torch.bool, device=input_ids.device)

    return StopOnText()


def _cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the earliest stop string (excluded, as OpenAI does), and whether one was found."""
    cuts = [i for i in (text.find(s) for s in stops) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


class TransformersBackend:
    """A :class:`~pipelines.backends.base.TeacherBackend` over ``AutoModelForCausalLM`` on a local directory.

    ``batch_size`` counts sequences per ``generate`` call (prompts x n); ``dtype`` is a torch dtype or its name
    (``"bfloat16"``, ``"auto"``); ``torch_threads`` sets torch's intra-op threads (one per process suits busy
    CPUs, see DESIGN.md section 7).
    """

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "cpu",
        batch_size: int = 64,
        dtype: str | torch.dtype | None = None,
        torch_threads: int | None = None,
    ) -> None:
        import torch
        from transformers import AutoTokenizer

        from llm.bases import BaseNotFoundError, is_model_dir, load_causal_lm

        self.model_dir = Path(model_dir)
        if not is_model_dir(self.model_dir):
            raise TeacherError(f"{self.model_dir} is not a model directory (no config.json or adapter_config.json)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._revision = model_revision(self.model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.tokenizer.padding_side = "left"  # answers must start at the same column in a batch
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        try:
            self.model = load_causal_lm(self.model_dir, dtype=dtype).to(self.device)
        except BaseNotFoundError as e:
            raise TeacherError(str(e)) from e
        self.model.eval()
        self._max_model_len: int | None = getattr(self.model.config, "max_position_embeddings", None)
        eos = self.model.generation_config.eos_token_id
        eos = self.tokenizer.eos_token_id if eos is None else eos
        self._eos_ids = set(eos if isinstance(eos, list) else [eos])

    # -- identity ---------------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.model_dir.resolve().name

    @property
    def revision(self) -> str:
        return self._revision

    @property
    def teacher_id(self) -> str:
        return teacher_identity(self.name, self._revision)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def max_model_len(self) -> int | None:
        """The longest prompt + answer the model was built for, where its config says."""
        return self._max_model_len

    # -- prompts ----------------------------------------------------------------------------------------------

    def render(self, messages: Messages) -> str:
        """The text the model reads for ``messages`` (:func:`~pipelines.backends.render_prompt`)."""
        return render_prompt(self.tokenizer, messages)

    def _encode(self, text: str, templated: bool) -> list[int]:
        return encode_prompt(self.tokenizer, text, templated)

    # -- generation -------------------------------------------------------------------------------------------

    def generate(self, prompts: Sequence[Messages], decoding: Decoding) -> list[Generation]:
        # Tokenising under the lock too: a fast tokenizer shared between threads can fail with "Already borrowed".
        with self._lock:
            templated = self.has_chat_template
            encoded = [self._encode(self.render(m), templated) for m in prompts]
            return self._generate_ids(encoded, decoding)

    def generate_text(self, prompts: Sequence[str], decoding: Decoding) -> list[Generation]:
        """The same for prompts that are already text (the ``/v1/completions`` endpoint): no template applied."""
        with self._lock:
            return self._generate_ids([self._encode(p, templated=False) for p in prompts], decoding)

    def _generate_ids(self, encoded: list[list[int]], decoding: Decoding) -> list[Generation]:
        """Generation for tokenised prompts; the caller holds the lock."""
        import torch

        self.ping()
        self._check_lengths(encoded, decoding)
        # Greedy decoding gives n identical answers: compute one and copy it.
        rows_per_prompt = decoding.n if decoding.temperature > 0 else 1
        per_batch = max(1, self.batch_size // rows_per_prompt)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        results: dict[int, list[Completion]] = {}
        # fork_rng keeps a request's seed from leaking into the process-wide RNG that others draw from.
        with torch.random.fork_rng(devices=self._rng_devices(), enabled=decoding.seed is not None):
            if decoding.seed is not None:
                torch.manual_seed(decoding.seed)
            for start in range(0, len(order), per_batch):
                batch = order[start : start + per_batch]
                answers = self._generate_batch([encoded[i] for i in batch], decoding, rows_per_prompt)
                for k, index in enumerate(batch):
                    group = answers[k * rows_per_prompt : (k + 1) * rows_per_prompt]
                    results[index] = group if rows_per_prompt == decoding.n else group * decoding.n
        return [Generation(completions=results[i], prompt_tokens=len(encoded[i])) for i in range(len(encoded))]

    # -- label scores -----------------------------------------------------------------------------------------

    def score_next(
        self, prompts: Sequence[Messages], prefixes: Sequence[str], candidates: Sequence[str]
    ) -> list[list[float]]:
        """:class:`~pipelines.backends.base.LabelScorer`: one forward pass per prompt, its answer begun with
        its prefix; the log-probability of each candidate's first token next."""
        from llm.scoring import first_tokens, next_token_logprobs

        with self._lock:
            self.ping()
            try:
                ids = first_tokens(self.tokenizer, candidates)
            except ValueError as e:
                raise TeacherError(f"{self.name}: {e}") from e
            templated = self.has_chat_template
            encoded = [
                self._encode(self.render(m) + prefix, templated) for m, prefix in zip(prompts, prefixes, strict=True)
            ]
            self._check_lengths(encoded, Decoding(max_tokens=1))
            rows = next_token_logprobs(self.model, self.tokenizer, encoded, ids, batch_size=self.batch_size)
            return rows.tolist()

    def _check_lengths(self, encoded: list[list[int]], decoding: Decoding) -> None:
        """Raise :class:`PromptError` naming every prompt that is empty or does not fit the context."""
        limit = self.max_model_len
        refused: dict[int, str] = {}
        for i, ids in enumerate(encoded):
            if not ids:
                refused[i] = "empty after tokenisation"
            elif limit and len(ids) + decoding.max_tokens > limit:
                refused[i] = (
                    f"{len(ids)} tokens; with max_tokens={decoding.max_tokens} that exceeds the model's context of "
                    f"{limit} tokens"
                )
        if refused:
            raise PromptError(refused)

    def _rng_devices(self) -> list[int]:
        return [self.device.index or 0] if self.device.type == "cuda" else []

    def _generate_batch(self, batch: list[list[int]], decoding: Decoding, rows_per_prompt: int) -> list[Completion]:
        import torch
        from transformers import StoppingCriteriaList

        enc = self.tokenizer.pad({"input_ids": batch}, return_tensors="pt").to(self.device)
        prompt_len = enc["input_ids"].shape[1]
        sampling: dict[str, Any] = (
            # top_k=0 switches off transformers' default top-k of 50, which OpenAI-style decoding does not have.
            {"do_sample": True, "temperature": decoding.temperature, "top_p": decoding.top_p, "top_k": 0}
            if decoding.temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        criteria = StoppingCriteriaList(
            [_stop_criterion(self.tokenizer, decoding.stop, prompt_len)] if decoding.stop else []
        )
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                **sampling,
                max_new_tokens=decoding.max_tokens,
                num_return_sequences=rows_per_prompt,
                stopping_criteria=criteria,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        return [self._completion(row, decoding) for row in out[:, prompt_len:].tolist()]

    def _completion(self, generated: list[int], decoding: Decoding) -> Completion:
        ended_by_eos = False
        for pos, token in enumerate(generated):
            if token in self._eos_ids:
                generated, ended_by_eos = generated[: pos + 1], True
                break
        else:
            # Rows that finish early are filled with padding up to the batch's longest row.
            end = len(generated)
            while end and generated[end - 1] == self.tokenizer.pad_token_id:
                end -= 1
            generated = generated[:end]
        text, hit_stop = _cut_at_stop(self.tokenizer.decode(generated, skip_special_tokens=True), decoding.stop)
        finished = hit_stop or ended_by_eos or len(generated) < decoding.max_tokens
        return Completion(text=text, completion_tokens=len(generated), finish_reason="stop" if finished else "length")

    def ping(self) -> None:
        if self.model is None:
            raise TeacherError(f"teacher {self.teacher_id} is closed")

    def close(self) -> None:
        with self._lock:
            self.model = None  # type: ignore[assignment]
